// y[t, o] (+)= Σ_i x[t, i] · w[o, i] for a batch of T token rows: Y[T, N_OUT] = X[T, N_IN] · Wᵀ with
// W stored (out, in) row-major, as llama2.c run.c matmul(). With ACCUM the product is added to y
// (the residual-stream adds x += wo·o and x += w2·h are folded in here).
// Each invocation computes a 4 (tokens) × 4 (outputs) block, summing over i in order in f32;
// an 8×8 workgroup covers 32 tokens × 32 outputs. Rows past T / N_OUT are clamped on load and
// skipped on store, so any T, N_IN, N_OUT work.

struct Params {
  T: u32,  // token rows in this window
  p0: u32,
  p1: u32,
  p2: u32,
}

override N_IN: u32;
override N_OUT: u32;
override ACCUM: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // [T, N_IN]
@group(0) @binding(2) var<storage, read> w: array<f32>;        // [N_OUT, N_IN]
@group(0) @binding(3) var<storage, read_write> y: array<f32>;  // [T, N_OUT]

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let T = params.T;
  let o0 = gid.x * 4u;
  let t0 = gid.y * 4u;
  if (o0 >= N_OUT || t0 >= T) {
    return;
  }
  let x0 = min(t0, T - 1u) * N_IN;
  let x1 = min(t0 + 1u, T - 1u) * N_IN;
  let x2 = min(t0 + 2u, T - 1u) * N_IN;
  let x3 = min(t0 + 3u, T - 1u) * N_IN;
  let w0 = min(o0, N_OUT - 1u) * N_IN;
  let w1 = min(o0 + 1u, N_OUT - 1u) * N_IN;
  let w2 = min(o0 + 2u, N_OUT - 1u) * N_IN;
  let w3 = min(o0 + 3u, N_OUT - 1u) * N_IN;
  var a0 = vec4f(0.0);
  var a1 = vec4f(0.0);
  var a2 = vec4f(0.0);
  var a3 = vec4f(0.0);
  for (var i = 0u; i < N_IN; i++) {
    let wv = vec4f(w[w0 + i], w[w1 + i], w[w2 + i], w[w3 + i]);
    a0 += x[x0 + i] * wv;
    a1 += x[x1 + i] * wv;
    a2 += x[x2 + i] * wv;
    a3 += x[x3 + i] * wv;
  }
  let acc = array<vec4f, 4>(a0, a1, a2, a3);
  for (var r = 0u; r < 4u; r++) {
    let t = t0 + r;
    if (t >= T) {
      break;
    }
    for (var c = 0u; c < 4u; c++) {
      let o = o0 + c;
      if (o >= N_OUT) {
        break;
      }
      let at = t * N_OUT + o;
      if (ACCUM) {
        y[at] = y[at] + acc[r][c];
      } else {
        y[at] = acc[r][c];
      }
    }
  }
}
