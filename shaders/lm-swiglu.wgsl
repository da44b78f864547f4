// SwiGLU gate of the llama2.c FFN: out[t, j] = silu(gate) · up, silu(g) = g / (1 + exp(-g)),
// where row t of hb holds [gate = w1·x (HIDDEN) | up = w3·x (HIDDEN)].
// One invocation per (t, j).

struct Params {
  T: u32,
  p0: u32,
  p1: u32,
  p2: u32,
}

override HIDDEN: u32;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> hb: array<f32>;         // [T, 2·HIDDEN]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [T, HIDDEN]

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let idx = gid.x;
  if (idx >= params.T * HIDDEN) {
    return;
  }
  let t = idx / HIDDEN;
  let j = idx % HIDDEN;
  let g = hb[t * 2u * HIDDEN + j];
  let u = hb[t * 2u * HIDDEN + HIDDEN + j];
  // exp(-g) is capped so that very negative g gives ≈ -0 instead of an overflow.
  out[idx] = g / (1.0 + exp(min(-g, 80.0))) * u;
}
