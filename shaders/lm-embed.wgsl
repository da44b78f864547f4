// Token embedding lookup: x[t, i] = embedding[tokens[t], i]. One invocation per (t, i).

struct Params {
  T: u32,
  p0: u32,
  p1: u32,
  p2: u32,
}

override D: u32;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;     // [T]
@group(0) @binding(2) var<storage, read> embedding: array<f32>;  // [vocab, D]
@group(0) @binding(3) var<storage, read_write> x: array<f32>;    // [T, D]

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let idx = gid.x;
  if (idx >= params.T * D) {
    return;
  }
  x[idx] = embedding[tokens[idx / D] * D + idx % D];
}
