// Token + learned-position embedding (GPT-2's wte, wpe): x[t, i] = wte[tokens[t], i] + wpe[startPos + t, i].
// Element loop strided over the dispatched invocations.

struct Params {
  T: u32,
  startPos: u32,  // position of row 0
  p1: u32,
  p2: u32,
}

override D: u32;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;   // [T]
@group(0) @binding(2) var<storage, read> wte: array<f32>;      // [vocab, D]
@group(0) @binding(3) var<storage, read> wpe: array<f32>;      // [positions, D]
@group(0) @binding(4) var<storage, read_write> x: array<f32>;  // [T, D]

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let total = params.T * D;
  for (var i = gid.x; i < total; i += nwg.x * 64u) {
    let t = i / D;
    let j = i % D;
    x[i] = wte[tokens[t] * D + j] + wpe[(params.startPos + t) * D + j];
  }
}
