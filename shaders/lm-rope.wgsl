// RoPE as llama2.c run.c, in place on the q and k columns of each token row: within each head,
// pair (2j, 2j+1) at position pos is rotated by angle pos · 10000^(-2j/HEAD_SIZE). The cos/sin
// come from a float64-computed table (f32 sin/cos of angles up to seq_len radians would be poor).
// One invocation per (token, pair) over the first N_ROT columns of a row of width STRIDE
// (q and k are contiguous: N_ROT = dim + kv_dim).

struct Params {
  T: u32,
  startPos: u32,  // position of row 0
  p1: u32,
  p2: u32,
}

override HEAD_SIZE: u32;
override N_ROT: u32;   // columns to rotate (even)
override STRIDE: u32;  // row width of qk

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> table: array<vec2f>;    // [seq_len, HEAD_SIZE/2] (cos, sin)
@group(0) @binding(2) var<storage, read_write> qk: array<f32>;   // [T, STRIDE]

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let pairs = N_ROT / 2u;
  let idx = gid.x;
  if (idx >= params.T * pairs) {
    return;
  }
  let t = idx / pairs;
  let c = 2u * (idx % pairs);
  let j = (c % HEAD_SIZE) / 2u;
  let cs = table[(params.startPos + t) * (HEAD_SIZE / 2u) + j];
  let at = t * STRIDE + c;
  let v0 = qk[at];
  let v1 = qk[at + 1u];
  qk[at] = v0 * cs.x - v1 * cs.y;
  qk[at + 1u] = v0 * cs.y + v1 * cs.x;
}
