// Bias add in place over T rows of width N: y[t, j] += bias[j] (the b of GPT-2's c_attn, c_proj
// and c_fc, after the lm-matmul product W·x). Element loop strided over the dispatched invocations.

struct Params {
  T: u32,
  p0: u32,
  p1: u32,
  p2: u32,
}

override N: u32;  // row width

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> bias: array<f32>;     // [N]
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // [T, N]

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let total = params.T * N;
  for (var i = gid.x; i < total; i += nwg.x * 64u) {
    y[i] = y[i] + bias[i % N];
  }
}
