// Shared by every training-step kernel (prepended by the TS wrappers, after the StepParams struct,
// and FLAG_* constants, which src/gpu/step-params.ts generates together with its TypeScript writer).

// A latent range of the [N, d] tensors (one shard): latents [lat0, lat0 + n), rows 0..n of the bound
// shard buffers. first / last: whether this is the first / last shard (for sums carried across shards).
struct Shard {
  lat0: u32,
  n: u32,
  first: u32,
  last: u32,
}

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

// ⌊e / k⌋ for k ≥ 1 and e < 2^22·k: the row of an entry e = row·k + j of a batch of fewer than 2^22
// rows (config.ts caps batches at MAX_BATCH_ROWS = 32768). An integer division by a value the
// compiler cannot see is scalarized on CPU backends (SwiftShader: one `div` per lane), and the
// gradient kernels take a row index per entry in every lane. The float quotient is within 0.75 of
// e / k there (three roundings of 2^-24 relative each, on a quotient below 2^22), so its truncation is
// ⌊e / k⌋ or one off either way: one correction each way, by selects (no branch or loop in the walks:
// docs/DESIGN.md). q·k > e ≥ 0 implies q ≥ 1, so q never wraps below 0.
fn div_rows(e: u32, k: u32) -> u32 {
  var q = u32(f32(e) / f32(k));
  q -= select(0u, 1u, q * k > e);
  q += select(0u, 1u, (q + 1u) * k <= e);
  return q;
}
const METRICS: u32 = 8u;  // floats per metrics slot

// Kernels loop grid-stride (over rows, latents or elements) so that one dispatch of at most
// maxComputeWorkgroupsPerDimension workgroups covers any size.
