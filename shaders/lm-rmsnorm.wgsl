// RMSNorm of each token row (llama2.c run.c rmsnorm): out[t] = weight ⊙ (x[t] / sqrt(mean(x[t]²) + eps)),
// eps = 1e-5. One workgroup per row (dispatch T workgroups); a strided sum of squares, then a tree
// reduction in workgroup memory.

override D: u32;          // row width
override EPS: f32 = 1e-5;

const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> x: array<f32>;          // [T, D]
@group(0) @binding(1) var<storage, read> weight: array<f32>;     // [D]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [T, D]

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x * D;
  var ss = 0.0;
  for (var i = lid; i < D; i += WG) {
    let v = x[row + i];
    ss += v * v;
  }
  partial[lid] = ss;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      partial[lid] += partial[lid + s];
    }
    workgroupBarrier();
  }
  let inv = 1.0 / sqrt(partial[0] / f32(D) + EPS);
  for (var i = lid; i < D; i += WG) {
    out[row + i] = weight[i] * (inv * x[row + i]);
  }
}
