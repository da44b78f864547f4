/**
 * The per-step uniform StepParams, written once: the WGSL struct that every training-step kernel sees
 * (prepended by src/gpu/kernels/kernel.ts) and the TypeScript writer are both generated from this list,
 * so the two cannot drift apart. Every field is 4 bytes (u32 or f32), in this order.
 */
export const STEP_PARAMS = [
  ['B', 'u32', 'batch rows'],
  ['d', 'u32', 'model width'],
  ['N', 'u32', 'latents'],
  ['k', 'u32', 'entries per row in the main region (TopK k, BatchTopK cap, N for the threshold family)'],
  ['kAux', 'u32', 'AuxK entries per row'],
  ['deadTokens', 'u32', 'tokens without firing before a latent counts as dead'],
  ['oneMinusBeta1', 'f32', '1 − β1, rounded once from float64 (not 1 − f32(β1) in the kernel)'],
  ['flags', 'u32', 'FLAG_* bits'],
  ['lr', 'f32', ''],
  ['beta1', 'f32', ''],
  ['beta2', 'f32', ''],
  ['eps', 'f32', ''],
  ['stepSize', 'f32', 'lr / (1 − β1^t)'],
  ['bc2', 'f32', '1 / (1 − β2^t)'],
  ['lossScale', 'f32', '1 / (B · c), c = mean ‖x − mean x‖² of a sample (normalized space)'],
  ['auxCoef', 'f32', ''],
  ['fireThreshold', 'f32', ''],
  ['clipNorm', 'f32', ''],
  ['emaDecay', 'f32', ''],
  ['slot', 'u32', 'metrics ring slot for this step'],
  [
    'l1Scale',
    'f32',
    'sparsity penalty weight per token: λ_t / (B·√c) (L1 family) or λ_t / B (JumpReLU’s L0)',
  ],
  ['bandwidth', 'f32', 'JumpReLU STE kernel width ε'],
  ['kBatch', 'u32', 'BatchTopK: entries kept over the whole batch (B·k)'],
  ['oneMinusBeta2', 'f32', '1 − β2 from float64: in float32, 1 − f32(0.999) is 1.3e-5 low'],
  ['oneMinusEmaDecay', 'f32', '1 − EMA decay from float64'],
  ['thetaBeta', 'f32', 'BatchTopK: decay β of the running inference threshold θ (batch-topk.wgsl)'],
  ['oneMinusThetaBeta', 'f32', '1 − β of θ from float64'],
  ['pad0', 'u32', ''],
] as const;

type StepParamName = (typeof STEP_PARAMS)[number][0];
export type StepParamValues = Record<Exclude<StepParamName, `pad${number}`>, number>;

/** Bytes of the uniform (a multiple of 16, as uniform structs must be). */
export const STEP_PARAMS_BYTES = STEP_PARAMS.length * 4;

/** Bits of StepParams.flags (WGSL: FLAG_<NAME>). */
export const STEP_FLAGS = {
  /** project the decoder-row gradient orthogonal to the row */
  PROJECT: 1,
  /** clip the global gradient norm */
  CLIP: 2,
  /** AuxK on */
  AUXK: 4,
  /** aux loss is auxCoef·lossScale·‖ê + e‖² (Multi-TopK, Gated), not AuxK's */
  RECON_AUX: 8,
  /** Multi-TopK: the main gradient also carries the aux one (g += g_aux) */
  MULTI: 16,
  /** an evaluation forward pass: leave the metrics ring alone */
  NO_METRICS: 32,
  /** the threshold family in micro-batches: the loss takes each row's L0 from row_stats (activation.wgsl row_l0) */
  ROW_L0: 64,
  /** BatchTopK training step: update the running inference threshold θ (tau[1]) after the batch cut */
  THETA_UPDATE: 128,
  /** BatchTopK evaluation forward: keep each row's candidates above θ, no batch-level cut */
  THETA_EVAL: 256,
} as const;

/** The WGSL declaration of StepParams and the FLAG_* constants. */
export const STEP_PARAMS_WGSL = `struct StepParams {\n${STEP_PARAMS.map(
  ([name, type, doc]) => `  ${name}: ${type},${doc ? ` // ${doc}` : ''}`,
).join('\n')}\n}\n${Object.entries(STEP_FLAGS)
  .map(([name, bit]) => `const FLAG_${name}: u32 = ${bit}u;`)
  .join('\n')}\n`;

/** The uniform's bytes from named values (u32 fields must be integers in [0, 2^32)). */
export function writeStepParams(v: StepParamValues): ArrayBuffer {
  const buf = new ArrayBuffer(STEP_PARAMS_BYTES);
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  STEP_PARAMS.forEach(([name, type], i) => {
    const x = name.startsWith('pad') ? 0 : v[name as keyof StepParamValues];
    if (type === 'u32') u[i] = x;
    else f[i] = x;
  });
  return buf;
}
