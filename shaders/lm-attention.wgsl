// Causal grouped-query attention over a whole window (llama2.c run.c, positions 0..T-1):
// for query row t and head h (kv head h / KV_MUL),
//   att_s = softmax_s(q_t,h · k_s / sqrt(HEAD_SIZE)) for s ≤ t;   o[t, h] = Σ_s att_s v_s.
// One invocation per (t, h). Two passes over s: the max score, then exp-weights and the weighted
// sum of v; divided by the weight sum at the end.
// qkv rows hold [q (N_HEADS·HEAD_SIZE) | k (KV_DIM) | v (KV_DIM)], width STRIDE.

struct Params {
  T: u32,
  p0: u32,
  p1: u32,
  p2: u32,
}

const HS: u32 = {{HEAD_SIZE}}u;

override N_HEADS: u32;
override KV_MUL: u32;   // N_HEADS / n_kv_heads
override KV_DIM: u32;
override STRIDE: u32;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;        // [T, STRIDE]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [T, N_HEADS·HS]

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let idx = gid.x;
  if (idx >= params.T * N_HEADS) {
    return;
  }
  let t = idx / N_HEADS;
  let h = idx % N_HEADS;
  let dim = N_HEADS * HS;
  let kOff = dim + (h / KV_MUL) * HS;
  let vOff = kOff + KV_DIM;
  let scale = 1.0 / sqrt(f32(HS));
  var q: array<f32, HS>;
  for (var i = 0u; i < HS; i++) {
    q[i] = qkv[t * STRIDE + h * HS + i];
  }
  var m = -3.0e38;
  for (var s = 0u; s <= t; s++) {
    var dot = 0.0;
    for (var i = 0u; i < HS; i++) {
      dot += q[i] * qkv[s * STRIDE + kOff + i];
    }
    m = max(m, dot * scale);
  }
  var acc: array<f32, HS>;
  var sum = 0.0;
  for (var s = 0u; s <= t; s++) {
    var dot = 0.0;
    for (var i = 0u; i < HS; i++) {
      dot += q[i] * qkv[s * STRIDE + kOff + i];
    }
    let e = exp(dot * scale - m);
    sum += e;
    for (var i = 0u; i < HS; i++) {
      acc[i] += e * qkv[s * STRIDE + vOff + i];
    }
  }
  let inv = 1.0 / sum;
  for (var i = 0u; i < HS; i++) {
    out[t * dim + h * HS + i] = acc[i] * inv;
  }
}
