// LayerNorm of each token row with gain and bias (GPT-2's ln_1, ln_2, ln_f; torch.nn.LayerNorm):
//   out[t] = (x[t] − mean) / sqrt(var + EPS) ⊙ gain + bias,   var = mean((x[t] − mean)²) (biased).
// Sums run on the row shifted by its first element, x − x[t, 0] (exact while the values are within a
// factor 2 of each other, and small): the mean of a row whose mean is large against its spread then
// loses nothing to f32 rounding at the mean's magnitude (a float64 reference found 5e-6 errors at
// mean 100, spread 2, without it). The variance is taken about the mean in a second pass over the
// row (not E[x²] − mean², which cancels in the same case). One workgroup per row, rows strided over
// the dispatched workgroups (at most 256: SwiftShader pays per workgroup); each sum is a strided
// per-thread sum, then a tree reduction in workgroup memory.

struct Params {
  T: u32,
  p0: u32,
  p1: u32,
  p2: u32,
}

override D: u32;          // row width
override EPS: f32 = 1e-5;

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;          // [T, D]
@group(0) @binding(2) var<storage, read> gain: array<f32>;       // [D]
@group(0) @binding(3) var<storage, read> bias: array<f32>;       // [D]
@group(0) @binding(4) var<storage, read_write> out: array<f32>;  // [T, D]

var<workgroup> partial: array<f32, WG>;

/** Sum of every thread's `v` (all threads get it); leaves `partial` free for reuse on return. */
fn workgroup_sum(v: f32, lid: u32) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      partial[lid] += partial[lid + s];
    }
    workgroupBarrier();
  }
  let total = partial[0];
  // Every thread has read partial[0] before any thread writes its next partial.
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) lid: u32,
) {
  for (var t = wid.x; t < params.T; t += nwg.x) {
    let row = t * D;
    let shift = x[row];
    var s = 0.0;
    for (var i = lid; i < D; i += WG) {
      s += x[row + i] - shift;
    }
    // mean = shift + m; c = (x − shift) − m keeps the shifted, small values throughout.
    let m = workgroup_sum(s, lid) / f32(D);
    var ss = 0.0;
    for (var i = lid; i < D; i += WG) {
      let c = (x[row + i] - shift) - m;
      ss += c * c;
    }
    let inv = 1.0 / sqrt(workgroup_sum(ss, lid) / f32(D) + EPS);
    for (var i = lid; i < D; i += WG) {
      out[row + i] = ((x[row + i] - shift) - m) * inv * gain[i] + bias[i];
    }
  }
}
