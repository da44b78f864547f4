// Threshold activations and their backward, dense over [B, N] (pre = W_enc(x − b_pre) + b_enc):
//   VARIANT 2  ReLU:     a = relu(z);                      penalty λ·a·‖W_dec,i‖
//   VARIANT 3  ProLU:    m = z − b_enc; a = m·[m>0]·[z>0]; penalty λ·a·‖W_dec,i‖; ∂a/∂b_enc as ReLU's
//                        (Taggart 2024, the "ReLU" synthetic gradient)
//   VARIANT 4  Gated:    a = [z>0]·relu(e^r·(z − b_enc) + b_mag)   (z = π_gate, W_mag = e^r ⊙ W_gate);
//                        penalty λ·relu(z)·‖W_dec,i‖; aux loss ‖x − (relu(z)·sg(W_dec) + sg(b_pre))‖²,
//                        whose gradient g_aux reaches only the gate (Rajamanoharan et al. 2024a)
//   VARIANT 5  JumpReLU: a = z·[z > θ], θ = e^t;  penalty λ·[z > θ] (L0); STE with a rectangle kernel of
//                        width ε for ∂/∂θ (Rajamanoharan et al. 2024b)
// Per-latent parameters `extra` [2N]: Gated r = extra[i], b_mag = extra[N + i]; JumpReLU t = extra[i].
// λ enters as P.l1Scale (per token, normalized units; see src/sae/step.ts).
// Micro-batches (MB, shaders/common.wgsl): the [·, N] buffers hold the MB.n rows of one micro-batch;
// the per-row and per-element entries cover those rows, the per-latent sums (dense_fires, latent_sums)
// overwrite or add (MB.accFwd / MB.accBwd); the whole batch is one micro-batch.
//   dec_norm      one thread per latent: ‖W_dec,i‖                                   N·d
//   act_fwd       one thread per element: a, and for Gated relu(z) − a              b·N
//   dense_fires   one thread per latent: fires (+)= #{b: a > fireThreshold}          b·N
//   row_l0        one workgroup per row: L0 of the row → row_stats[row0 + b, 2]      b·N
//   act_bwd       one thread per element: ∂L/∂pre for the W_enc / b_pre path        b·N
//   latent_sums   one thread per latent: db_enc, ∂extra, Σ_b ∂L/∂pre, penalty, Σ_b (penalty base)  (+=)
//   latent_apply  one thread per latent: db_enc, dextra, dW_dec += λ·Σ base·W_dec,i/‖W_dec,i‖   N·d
//   dense_bpre    one thread per column: db_pre = Σ_b g − Σ_i (Σ_b ∂L/∂pre)_i W_enc,i   (B + N)·d
//   pen_reduce    one workgroup: Σ_i penalty → metrics slot 7                       N
//   norm_extra    one thread per latent: ‖dextra‖² into the gradient-norm partials    N

override VARIANT: u32 = 2u;
const WG: u32 = 64u;
const RWG: u32 = 256u;
const STATS: u32 = 6u;   // lat_stats row: db_enc, dextra0, dextra1, Σ ∂L/∂pre, penalty, Σ base

@group(0) @binding(0) var<storage, read> pre: array<f32>;
@group(0) @binding(1) var<storage, read_write> act: array<f32>;
@group(0) @binding(2) var<storage, read_write> act_aux: array<f32>;
@group(0) @binding(3) var<storage, read> gact: array<f32>;
@group(0) @binding(4) var<storage, read> gact_aux: array<f32>;
@group(0) @binding(5) var<storage, read_write> gpre: array<f32>;
@group(0) @binding(6) var<storage, read> b_enc: array<f32>;
@group(0) @binding(7) var<storage, read> extra: array<f32>;
@group(0) @binding(8) var<storage, read_write> dec_norm: array<f32>;
@group(0) @binding(9) var<storage, read_write> lat_stats: array<f32>;
@group(0) @binding(10) var<storage, read_write> W_dec: array<f32>;
@group(0) @binding(11) var<storage, read_write> dW_dec: array<f32>;
@group(0) @binding(12) var<storage, read_write> db_enc: array<f32>;
@group(0) @binding(13) var<storage, read_write> dextra: array<f32>;
@group(0) @binding(14) var<storage, read_write> fires_step: array<u32>;
@group(0) @binding(15) var<storage, read> g: array<f32>;
@group(0) @binding(16) var<storage, read> W_enc: array<f32>;
@group(0) @binding(17) var<storage, read_write> db_pre: array<f32>;
@group(0) @binding(18) var<storage, read_write> metrics: array<f32>;
@group(0) @binding(19) var<storage, read_write> norm_part: array<f32>;
@group(0) @binding(20) var<uniform> P: StepParams;
@group(0) @binding(21) var<storage, read_write> row_stats: array<f32>;   // [B, 4] (loss.wgsl)
@group(0) @binding(22) var<uniform> MB: MicroBatch;

var<workgroup> red: array<f32, RWG>;

// Activation of pre-activation z of latent i.
fn act_of(z: f32, i: u32) -> f32 {
  switch VARIANT {
    case 3u: {
      let m = z - b_enc[i];
      return select(0.0, m, m > 0.0 && z > 0.0);
    }
    case 4u: {
      let mag = exp(extra[i]) * (z - b_enc[i]) + extra[P.N + i];
      return select(0.0, max(mag, 0.0), z > 0.0);
    }
    case 5u: { return select(0.0, z, z > exp(extra[i])); }
    default: { return max(z, 0.0); }
  }
}

// Local gradients of one element: x = ∂L/∂pre on the W_enc / b_pre path, y = ∂L/∂b_enc,
// z = ∂L/∂extra[i], w = ∂L/∂extra[N + i].  ga = W_dec,i·g_b, gx = W_dec,i·g_aux,b, nrm = ‖W_dec,i‖.
fn local_grad(z: f32, i: u32, ga: f32, gx: f32, nrm: f32) -> vec4<f32> {
  let lam = P.l1Scale;
  switch VARIANT {
    case 3u: {
      let m = z - b_enc[i];
      let gp = select(0.0, ga + lam * nrm, m > 0.0 && z > 0.0);
      return vec4<f32>(gp, gp, 0.0, 0.0);
    }
    case 4u: {
      let er = exp(extra[i]);
      let mag = er * (z - b_enc[i]) + extra[P.N + i];
      let gm = select(0.0, ga, z > 0.0 && mag > 0.0);
      let gg = select(0.0, lam * nrm + gx, z > 0.0);
      return vec4<f32>(gg + gm * er, gg, gm * er * (z - b_enc[i]), gm);
    }
    case 5u: {
      let th = exp(extra[i]);
      let gp = select(0.0, ga, z > th);
      let inK = abs(z - th) < 0.5 * P.bandwidth;
      let dt = select(0.0, -th * (ga * th + lam) / P.bandwidth, inK);
      return vec4<f32>(gp, gp, dt, 0.0);
    }
    default: {
      let gp = select(0.0, ga + lam * nrm, z > 0.0);
      return vec4<f32>(gp, gp, 0.0, 0.0);
    }
  }
}

@compute @workgroup_size(WG)
fn dec_norm_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < P.N; i += nwg.x * WG) {
    var s = 0.0;
    for (var c = 0u; c < P.d; c++) { s += W_dec[i * P.d + c] * W_dec[i * P.d + c]; }
    dec_norm[i] = sqrt(s);
  }
}

@compute @workgroup_size(RWG)
fn act_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var o = gid.x; o < MB.n * P.N; o += nwg.x * RWG) {
    let z = pre[o];
    let a = act_of(z, o % P.N);
    act[o] = a;
    if (VARIANT == 4u) { act_aux[o] = max(z, 0.0) - a; }
  }
}

@compute @workgroup_size(WG)
fn dense_fires(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < P.N; i += nwg.x * WG) {
    var n = 0u;
    for (var b = 0u; b < MB.n; b++) {
      if (act[b * P.N + i] > P.fireThreshold) { n++; }
    }
    if (MB.accFwd != 0u) { n += fires_step[i]; }
    fires_step[i] = n;
  }
}

// The loss's L0 of a row (loss.wgsl counts it from the [B, N] activations when they are whole; with
// micro-batches, FLAG_ROW_L0, it takes this). Integer counts: exact in any order.
@compute @workgroup_size(RWG)
fn row_l0(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_id) lid: vec3<u32>) {
  for (var b = wid.x; b < MB.n; b += nwg.x) {
    var n = 0.0;
    for (var i = lid.x; i < P.N; i += RWG) {
      if (act[b * P.N + i] > 0.0) { n += 1.0; }
    }
    red[lid.x] = n;
    workgroupBarrier();
    for (var s = RWG / 2u; s > 0u; s >>= 1u) {
      if (lid.x < s) { red[lid.x] += red[lid.x + s]; }
      workgroupBarrier();
    }
    if (lid.x == 0u) { row_stats[(MB.row0 + b) * 4u + 2u] = red[0]; }
    workgroupBarrier();
  }
}

@compute @workgroup_size(RWG)
fn act_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var o = gid.x; o < MB.n * P.N; o += nwg.x * RWG) {
    let i = o % P.N;
    let gx = select(0.0, gact_aux[o], VARIANT == 4u);
    gpre[o] = local_grad(pre[o], i, gact[o], gx, dec_norm[i]).x;
  }
}

@compute @workgroup_size(WG)
fn latent_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < P.N; i += nwg.x * WG) {
    let nrm = dec_norm[i];
    var acc = vec4<f32>(0.0);
    var base = 0.0;
    for (var b = 0u; b < MB.n; b++) {
      let o = b * P.N + i;
      let z = pre[o];
      let gx = select(0.0, gact_aux[o], VARIANT == 4u);
      acc += local_grad(z, i, gact[o], gx, nrm);
      switch VARIANT {
        case 4u: { base += max(z, 0.0); }
        case 5u: { base += select(0.0, 1.0, z > exp(extra[i])); }
        default: { base += act_of(z, i); }
      }
    }
    let s = i * STATS;
    var pen = P.l1Scale * base * select(nrm, 1.0, VARIANT == 5u);
    if (MB.accBwd != 0u) {
      acc += vec4<f32>(lat_stats[s + 3u], lat_stats[s], lat_stats[s + 1u], lat_stats[s + 2u]);
      pen += lat_stats[s + 4u];
      base += lat_stats[s + 5u];
    }
    lat_stats[s] = acc.y;
    lat_stats[s + 1u] = acc.z;
    lat_stats[s + 2u] = acc.w;
    lat_stats[s + 3u] = acc.x;
    lat_stats[s + 4u] = pen;
    lat_stats[s + 5u] = base;
  }
}

@compute @workgroup_size(WG)
fn latent_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < P.N; i += nwg.x * WG) {
    let s = i * STATS;
    db_enc[i] = lat_stats[s];
    dextra[i] = lat_stats[s + 1u];
    dextra[P.N + i] = lat_stats[s + 2u];
    // ∂(λ·Σ_b base·‖w_i‖)/∂w_i = λ·Σ_b base · w_i / ‖w_i‖ (JumpReLU's L0 does not see the decoder).
    if (VARIANT != 5u) {
      let coef = P.l1Scale * lat_stats[s + 5u] / max(dec_norm[i], 1e-30);
      for (var c = 0u; c < P.d; c++) { dW_dec[i * P.d + c] += coef * W_dec[i * P.d + c]; }
    }
  }
}

@compute @workgroup_size(WG)
fn dense_bpre(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var c = gid.x; c < P.d; c += nwg.x * WG) {
    var acc = 0.0;
    for (var b = 0u; b < P.B; b++) { acc += g[b * P.d + c]; }
    var enc = 0.0;
    for (var i = 0u; i < P.N; i++) { enc += lat_stats[i * STATS + 3u] * W_enc[i * P.d + c]; }
    db_pre[c] = acc - enc;
  }
}

@compute @workgroup_size(RWG)
fn pen_reduce(@builtin(local_invocation_id) lid: vec3<u32>) {
  var acc = 0.0;
  for (var i = lid.x; i < P.N; i += RWG) { acc += lat_stats[i * STATS + 4u]; }
  red[lid.x] = acc;
  workgroupBarrier();
  for (var s = RWG / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) { red[lid.x] += red[lid.x + s]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { metrics[P.slot * METRICS + 7u] = red[0]; }
}

@compute @workgroup_size(WG)
fn norm_extra(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < P.N; i += nwg.x * WG) {
    norm_part[i] += dextra[i] * dextra[i] + dextra[P.N + i] * dextra[P.N + i];
  }
}
