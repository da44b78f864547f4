// The [N, d] tensors' update in one walk per latent row (software adapters, d % 4 == 0, no gradient
// clipping): update.wgsl's project_dec_v4, adam.wgsl's adam on W_dec and W_enc, and renorm_dec_v4,
// one thread per row of one latent shard (rows i − S.lat0):
//   dot = dW_dec[i]·W_dec[i] (FLAG_PROJECT)                                          read 2 rows
//   per column: gd = dW_dec − dot·W_dec (written back: the projected gradient), ge = dW_enc,
//     the row's share of ‖grad‖² (norm_part[i], with db_enc[i]²), Adam on W_dec with gd and on
//     W_enc with ge, and Σ W_dec'² for the renormalization                           8 rows in, 7 out
//   W_dec[i] /= ‖W_dec'[i]‖ (RENORM, the unit-norm decoder: the row this thread has just written)
// Every value is computed by the same operations in the same order as those three kernels (each
// component added in column order; Adam's gradient is theirs times the clip factor 1.0, exact), so
// the bits are theirs. Without clipping nothing in Adam waits for ‖grad‖, which clip_reduce still
// sums afterwards for the metrics.
// Why: the three kernels pass over the rows 23 times (projection 6, Adam 2 × 7, renormalization 3),
// this one 17 + the renormalization of a row still in cache; on SwiftShader these are loads at
// memory speed (d = 768, N = 4096: 49 ms of a 1.3 s step in the three).

// Appended to update.wgsl's module: its bindings (W_dec4, dW_dec4, dW_enc4, db_enc, norm_part, P, S),
// WG and row sums (project_dot4, add_grad_sq4, add_sq4), and these.
@group(0) @binding(13) var<storage, read_write> W_enc4: array<vec4<f32>>;
@group(0) @binding(14) var<storage, read_write> m_dec4: array<vec4<f32>>;
@group(0) @binding(15) var<storage, read_write> v_dec4: array<vec4<f32>>;
@group(0) @binding(16) var<storage, read_write> m_enc4: array<vec4<f32>>;
@group(0) @binding(17) var<storage, read_write> v_enc4: array<vec4<f32>>;

override RENORM: bool = true;

// adam.wgsl's update of one vec4 element; returns θ'.
fn adam4(theta: vec4<f32>, g: vec4<f32>, m: ptr<function, vec4<f32>>, v: ptr<function, vec4<f32>>) -> vec4<f32> {
  *m = P.beta1 * *m + P.oneMinusBeta1 * g;
  *v = P.beta2 * *v + P.oneMinusBeta2 * g * g;
  return theta - P.stepSize * *m / (sqrt(*v * P.bc2) + P.eps);
}

@compute @workgroup_size(WG)
fn update_rows_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let d4 = P.d / 4u;
  for (var il = gid.x; il < S.n; il += nwg.x * WG) {
    let i = S.lat0 + il;
    let o = il * d4;
    let dot = project_dot4(o, d4);
    var sq = db_enc[i] * db_enc[i];
    var sw = 0.0;
    for (var c = 0u; c < d4; c++) {
      let w = W_dec4[o + c];
      let gd = dW_dec4[o + c] - dot * w;
      dW_dec4[o + c] = gd;
      let ge = dW_enc4[o + c];
      sq = add_grad_sq4(sq, gd, ge);
      var m = m_dec4[o + c];
      var v = v_dec4[o + c];
      let wn = adam4(w, gd, &m, &v);
      m_dec4[o + c] = m;
      v_dec4[o + c] = v;
      W_dec4[o + c] = wn;
      sw = add_sq4(sw, wn);
      var me = m_enc4[o + c];
      var ve = v_enc4[o + c];
      let we = adam4(W_enc4[o + c], ge, &me, &ve);
      m_enc4[o + c] = me;
      v_enc4[o + c] = ve;
      W_enc4[o + c] = we;
    }
    norm_part[i] = sq;
    if (RENORM) {
      let inv = 1.0 / max(sqrt(sw), 1e-30);
      for (var c = 0u; c < d4; c++) { W_dec4[o + c] *= inv; }
    }
  }
}
