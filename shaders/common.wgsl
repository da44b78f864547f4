// Shared by every training-step kernel (prepended by the TS wrappers): the per-step uniform.
// Field order must match src/sae/step.ts (stepParamsBytes); 96 bytes.
struct StepParams {
  B: u32,            // batch rows
  d: u32,            // model width
  N: u32,            // latents
  k: u32,            // TopK
  kAux: u32,         // AuxK
  deadTokens: u32,   // tokens without firing before a latent counts as dead
  pad0: u32,
  flags: u32,        // bit 0: gradient projection, bit 1: clip, bit 2: AuxK on
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  stepSize: f32,     // lr / (1 - beta1^t)
  bc2: f32,          // 1 / (1 - beta2^t)
  lossScale: f32,    // 1 / (B · c), c = mean ‖x - mean x‖² of a sample (normalized space)
  auxCoef: f32,
  fireThreshold: f32,
  clipNorm: f32,
  emaDecay: f32,
  slot: u32,         // metrics ring slot for this step
  l1Scale: f32,      // sparsity penalty weight per token: λ_t / (B·√c) (L1 family) or λ_t / B (JumpReLU's L0)
  bandwidth: f32,    // JumpReLU STE kernel width ε
  kBatch: u32,       // BatchTopK: entries kept over the whole batch (B·k)
  pad1: u32,
}

// A latent range of the [N, d] tensors (one shard): latents [lat0, lat0 + n), rows 0..n of the bound
// shard buffers. first / last: whether this is the first / last shard (for sums carried across shards).
struct Shard {
  lat0: u32,
  n: u32,
  first: u32,
  last: u32,
}

const FLAG_PROJECT: u32 = 1u;
const FLAG_CLIP: u32 = 2u;
const FLAG_AUXK: u32 = 4u;
const FLAG_RECON_AUX: u32 = 8u;   // aux loss is auxCoef·lossScale·‖ê + e‖² (Multi-TopK, Gated), not AuxK's
const FLAG_MULTI: u32 = 16u;      // Multi-TopK: the main gradient also carries the aux one (g += g_aux)
const FLAG_NO_METRICS: u32 = 32u; // an evaluation forward pass: leave the metrics ring alone
const FLAG_ROW_L0: u32 = 64u;     // threshold family in micro-batches: the loss takes each row's L0 from row_stats
// A micro-batch of the threshold family: batch rows [row0, row0 + n), whose [n, N] pre-activations and
// activations sit at rows 0..n of the [b, N] buffers ([B, d] buffers stay whole). accFwd / accBwd: add
// into the per-latent sums instead of overwriting them (every micro-batch but the first summed: the
// forward sums fires in row order, the backward its sums from the last micro-batch down). The whole
// batch is one micro-batch {0, B, 0, 0}.
struct MicroBatch {
  row0: u32,
  n: u32,
  accFwd: u32,
  accBwd: u32,
}

const NONE: u32 = 0xffffffffu;
const METRICS: u32 = 8u;  // floats per metrics slot

// Kernels loop grid-stride (over rows, latents or elements) so that one dispatch of at most
// maxComputeWorkgroupsPerDimension workgroups covers any size.
