// Losses and their gradients w.r.t. the reconstructions.
//   e = x̂ − x;  r = x − x̂ (treated as a constant for AuxK);  ea = ê − r
//   main  L   = Σ‖e‖² · lossScale                       (lossScale = 1 / (B·c))
//   AuxK  Lax = auxCoef · Σ‖ea‖² / D,  D = Σ_b ‖r_b − mean_b r‖² = Σ‖r‖² − ‖Σ_b r_b‖² / B
//   loss_rows  one thread per row: row sums                                  B·d
//   colsum_r   one workgroup per column: Σ_b r[b, c] (fixed tree over 64 lanes)   B·d
//   finalize   one workgroup: deterministic tree sums → scalars, metrics slot   B + d
//   loss_grad  one thread per element: g = 2·lossScale·e, g_aux = 2·auxCoef/D·ea  B·d
//              (the vec4 form: g in loss_rows_v4 but with Multi-TopK, g_aux alone here)
// FLAG_RECON_AUX (Multi-TopK, Gated): the aux term is a second reconstruction loss,
//   Lax = auxCoef · lossScale · Σ‖ea‖²  (ea = ê + e = x̂₂ − x), g_aux = 2·auxCoef·lossScale·ea,
//   and with FLAG_MULTI the main gradient also carries it (g += g_aux): Multi-TopK's top-4k
//   reconstruction shares the decoder bias and the top-k entries with the main one.
// FLAG_ROW_L0 (the threshold family in micro-batches, whose activations are not whole): each row's L0
//   is already in row_stats[b, 2] (shaders/activation.wgsl row_l0) instead of counted from top_val.
// Software forms (loss.ts picks them on a CPU adapter): loss_rows_v4, colsum_r_seq4 and loss_grad_v4
// read [B, d] as vec4 (d % 4 == 0) and add each component in the scalar forms' order; finalize_seq
// replays finalize's lanes and tree in one thread. The same bits, a quarter of the emulated loads and
// no barrier (SwiftShader: finalize's 256 lanes and 16 barriers cost 1.0–1.3 ms for a few adds).

const WG: u32 = 64u;
const FWG: u32 = 256u;
// IDLE_AUX (the sparse family without Multi-TopK: step.ts): AuxK's entries are the AuxK TopK's, so
// while AuxK has no candidate its lists are empty and g_aux (and g's copy of it) has one reader left,
// db_pre (grad-latent.wgsl), which then leaves it out too: loss_grad writes g alone, the same bits
// (its AuxK term is select(0, g_aux, multi) = 0 there).
override IDLE_AUX: bool = false;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> x_hat: array<f32>;
@group(0) @binding(2) var<storage, read> e_hat: array<f32>;
@group(0) @binding(3) var<storage, read> top_val: array<f32>;
@group(0) @binding(4) var<storage, read> row_scale: array<f32>;
@group(0) @binding(5) var<storage, read_write> row_stats: array<f32>;   // [B, 4]
@group(0) @binding(6) var<storage, read_write> col_r: array<f32>;       // [d]
@group(0) @binding(7) var<storage, read_write> scal: array<f32>;        // [8] gradient scales and sums
@group(0) @binding(8) var<storage, read> dead_info: array<u32>;
@group(0) @binding(9) var<storage, read_write> metrics: array<f32>;     // ring [slots, METRICS]
@group(0) @binding(10) var<storage, read_write> g: array<f32>;          // [B, d]
@group(0) @binding(11) var<storage, read_write> g_aux: array<f32>;      // [B, d]
@group(0) @binding(12) var<uniform> P: StepParams;
// vec4 views of x, x̂, ê, g, g_aux (the software forms).
@group(0) @binding(13) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(14) var<storage, read> x_hat4: array<vec4<f32>>;
@group(0) @binding(15) var<storage, read> e_hat4: array<vec4<f32>>;
@group(0) @binding(16) var<storage, read_write> g4: array<vec4<f32>>;
@group(0) @binding(17) var<storage, read_write> g_aux4: array<vec4<f32>>;

var<workgroup> red: array<f32, FWG * 4u>;
// Where g holds a copy of g_aux (vec4s, after its level rows; 0: no copy): the software gradient sums'
// one walk reads both sources through g's binding (grad-both.wgsl, grad.ts oneWalkTail4).
const AUX_TAIL4: u32 = {{AUX_TAIL4}}u;

// One thread per row, no barriers.
@compute @workgroup_size(WG)
fn loss_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var b = gid.x; b < P.B; b += nwg.x * WG) {
    var se = 0.0;
    var sea = 0.0;
    for (var c = 0u; c < P.d; c++) {
      let o = b * P.d + c;
      let e = x_hat[o] - x[o];
      let ea = e_hat[o] + e;
      se += e * e;
      sea += ea * ea;
    }
    put_row(b, se, sea);
  }
}

// Row b's L0 and its four statistics (both forms of loss_rows).
fn put_row(b: u32, se: f32, sea: f32) {
  var l0 = 0.0;
  if ((P.flags & FLAG_ROW_L0) != 0u) {
    l0 = row_stats[b * 4u + 2u];
  } else {
    for (var j = 0u; j < P.k; j++) {
      if (top_val[b * P.k + j] > 0.0) { l0 += 1.0; }
    }
  }
  let s2 = row_scale[b] * row_scale[b];
  row_stats[b * 4u] = se;
  row_stats[b * 4u + 1u] = sea;
  row_stats[b * 4u + 2u] = l0;
  row_stats[b * 4u + 3u] = se * s2;
}

// The vec4 form also writes g where it is the main term alone (not Multi-TopK): 2·lossScale·e, which
// finalize's scal[0] would be, from the e it holds; loss_grad_v4 then writes g_aux alone, and nothing
// while AuxK is idle. Why: loss_grad_v4 read x̂ and x again for it (SwiftShader, B = 4096, d = 64, no
// latent dead: 1.7 ms of a 3.6 ms loss).
@compute @workgroup_size(WG)
fn loss_rows_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let d4 = P.d / 4u;
  let gHere = (P.flags & FLAG_MULTI) == 0u;
  let s0 = 2.0 * P.lossScale;
  let idle = aux_idle();
  for (var b = gid.x; b < P.B; b += nwg.x * WG) {
    var se = 0.0;
    var sea = 0.0;
    if (idle) {
      // ê is 0 with no AuxK candidate (its lists are empty, now or since the step before): ea = e,
      // so sea is se bit for bit, without ê's loads.
      for (var c = 0u; c < d4; c++) {
        let o = b * d4 + c;
        let e = x_hat4[o] - x4[o];
        if (gHere) { g4[o] = s0 * e + vec4<f32>(0.0); }
        se += e.x * e.x;
        se += e.y * e.y;
        se += e.z * e.z;
        se += e.w * e.w;
      }
      put_row(b, se, se);
      continue;
    }
    for (var c = 0u; c < d4; c++) {
      let o = b * d4 + c;
      let e = x_hat4[o] - x4[o];
      if (gHere) { g4[o] = s0 * e + vec4<f32>(0.0); }
      let ea = e_hat4[o] + e;
      se += e.x * e.x;
      sea += ea.x * ea.x;
      se += e.y * e.y;
      sea += ea.y * ea.y;
      se += e.z * e.z;
      sea += ea.z * ea.z;
      se += e.w * e.w;
      sea += ea.w * ea.w;
    }
    put_row(b, se, sea);
  }
}

// One workgroup per column: lane t sums rows b ≡ t (mod CWG) in order, then a fixed tree adds the
// lanes. (One thread per column walking all B rows was B dependent loads on a GPU.)
const CWG: u32 = 64u;
var<workgroup> cred: array<f32, CWG>;

@compute @workgroup_size(CWG)
fn colsum_r(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
  for (var c = wid.x; c < P.d; c += nwg.x) {
    var acc = 0.0;
    for (var b = lid.x; b < P.B; b += CWG) { acc += x[b * P.d + c] - x_hat[b * P.d + c]; }
    cred[lid.x] = acc;
    workgroupBarrier();
    for (var h = CWG / 2u; h > 0u; h >>= 1u) {
      if (lid.x < h) { cred[lid.x] += cred[lid.x + h]; }
      workgroupBarrier();
    }
    if (lid.x == 0u) { col_r[c] = cred[0]; }
    workgroupBarrier();
  }
}

// colsum_r's form for software adapters: one thread per column forms the same CWG lane sums and adds
// them with the same tree, so its bits are colsum_r's, without a barrier (SwiftShader runs the
// workgroups of an entry point with barriers as coroutines: d of them cost more than the sums).
@compute @workgroup_size(16)
fn colsum_r_seq(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var c = gid.x; c < P.d; c += nwg.x * 16u) {
    var lane: array<f32, CWG>;
    for (var t = 0u; t < CWG; t++) {
      var acc = 0.0;
      for (var b = t; b < P.B; b += CWG) { acc += x[b * P.d + c] - x_hat[b * P.d + c]; }
      lane[t] = acc;
    }
    for (var h = CWG / 2u; h > 0u; h >>= 1u) {
      for (var t = 0u; t < h; t++) { lane[t] += lane[t + h]; }
    }
    col_r[c] = lane[0];
  }
}

// colsum_r_seq over four columns a thread (d % 4 == 0): each component as colsum_r_seq. Workgroups of 4
// (one SIMD batch on SwiftShader), so that d = 64's 16 threads spread over the cores.
@compute @workgroup_size(4)
fn colsum_r_seq4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let d4 = P.d / 4u;
  for (var c = gid.x; c < d4; c += nwg.x * 4u) {
    var lane: array<vec4<f32>, CWG>;
    for (var t = 0u; t < CWG; t++) {
      var acc = vec4<f32>(0.0);
      for (var b = t; b < P.B; b += CWG) { acc += x4[b * d4 + c] - x_hat4[b * d4 + c]; }
      lane[t] = acc;
    }
    for (var h = CWG / 2u; h > 0u; h >>= 1u) {
      for (var t = 0u; t < h; t++) { lane[t] += lane[t + h]; }
    }
    col_r[4u * c] = lane[0].x;
    col_r[4u * c + 1u] = lane[0].y;
    col_r[4u * c + 2u] = lane[0].z;
    col_r[4u * c + 3u] = lane[0].w;
  }
}

// The scalars and the metrics slot from the sums (both forms of finalize).
fn finish(se: f32, sea: f32, l0: f32, rawSe: f32, r2: f32) {
  let D = se - r2 / f32(P.B);
  let nDead = dead_info[0];
  let auxOn = (P.flags & FLAG_AUXK) != 0u && nDead > 0u && D > 1e-30;
  var auxLoss = select(0.0, P.auxCoef * sea / max(D, 1e-30), auxOn);
  scal[0] = 2.0 * P.lossScale;
  scal[1] = select(0.0, 2.0 * P.auxCoef / max(D, 1e-30), auxOn);
  if ((P.flags & FLAG_RECON_AUX) != 0u) {
    auxLoss = P.auxCoef * P.lossScale * sea;
    scal[1] = 2.0 * P.auxCoef * P.lossScale;
  }
  let m = P.slot * METRICS;
  metrics[m] = se * P.lossScale;
  metrics[m + 1u] = auxLoss;
  metrics[m + 2u] = rawSe;
  metrics[m + 3u] = l0 / f32(P.B);
  metrics[m + 4u] = f32(nDead);
  metrics[m + 5u] = D;
}

// finalize in one thread: lane t's sums over rows b ≡ t (mod FWG) in order, then the same tree.
@compute @workgroup_size(1)
fn finalize_seq() {
  var lanes: array<vec4<f32>, FWG>;
  var r2s: array<f32, FWG>;
  for (var t = 0u; t < FWG; t++) {
    var acc = vec4<f32>(0.0);
    for (var b = t; b < P.B; b += FWG) {
      acc += vec4<f32>(row_stats[b * 4u], row_stats[b * 4u + 1u], row_stats[b * 4u + 2u], row_stats[b * 4u + 3u]);
    }
    lanes[t] = acc;
    var r2 = 0.0;
    for (var c = t; c < P.d; c += FWG) { r2 += col_r[c] * col_r[c]; }
    r2s[t] = r2;
  }
  for (var s = FWG / 2u; s > 0u; s >>= 1u) {
    for (var t = 0u; t < s; t++) {
      lanes[t] += lanes[t + s];
      r2s[t] += r2s[t + s];
    }
  }
  finish(lanes[0].x, lanes[0].y, lanes[0].z, lanes[0].w, r2s[0]);
}

@compute @workgroup_size(FWG)
fn finalize(@builtin(local_invocation_id) lid: vec3<u32>) {
  var acc = vec4<f32>(0.0);
  for (var b = lid.x; b < P.B; b += FWG) {
    acc += vec4<f32>(row_stats[b * 4u], row_stats[b * 4u + 1u], row_stats[b * 4u + 2u], row_stats[b * 4u + 3u]);
  }
  var r2 = 0.0;
  for (var c = lid.x; c < P.d; c += FWG) { r2 += col_r[c] * col_r[c]; }
  red[lid.x * 4u] = acc.x;
  red[lid.x * 4u + 1u] = acc.y;
  red[lid.x * 4u + 2u] = acc.z;
  red[lid.x * 4u + 3u] = acc.w;
  workgroupBarrier();
  for (var s = FWG / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) {
      for (var q = 0u; q < 4u; q++) { red[lid.x * 4u + q] += red[(lid.x + s) * 4u + q]; }
    }
    workgroupBarrier();
  }
  let se = red[0];
  let sea = red[1];
  let l0 = red[2];
  let rawSe = red[3];
  workgroupBarrier();
  red[lid.x] = r2;
  workgroupBarrier();
  for (var s = FWG / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) { red[lid.x] += red[lid.x + s]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { finish(se, sea, l0, rawSe, red[0]); }
}

// AuxK has no candidate this step and nothing else makes g_aux (IDLE_AUX): uniform over a dispatch.
fn aux_idle() -> bool {
  return IDLE_AUX && select(0u, dead_info[0], (P.flags & FLAG_AUXK) != 0u) == 0u;
}

@compute @workgroup_size(FWG)
fn loss_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let idle = aux_idle();
  for (var o = gid.x; o < P.B * P.d; o += nwg.x * FWG) {
    let e = x_hat[o] - x[o];
    if (idle) {
      g[o] = scal[0] * e + 0.0;
      continue;
    }
    let ga = scal[1] * (e_hat[o] + e);
    g[o] = scal[0] * e + select(0.0, ga, (P.flags & FLAG_MULTI) != 0u);
    g_aux[o] = ga;
  }
}

@compute @workgroup_size(FWG)
fn loss_grad_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  // g is loss_rows_v4's but with Multi-TopK (which adds g_aux to it).
  let multi = (P.flags & FLAG_MULTI) != 0u;
  let idle = aux_idle();
  if (idle && !multi) { return; }
  for (var o = gid.x; o < P.B * P.d / 4u; o += nwg.x * FWG) {
    let e = x_hat4[o] - x4[o];
    if (idle) {
      g4[o] = scal[0] * e + vec4<f32>(0.0);
      continue;
    }
    let ga = scal[1] * (e_hat4[o] + e);
    if (multi) { g4[o] = scal[0] * e + ga; }
    g_aux4[o] = ga;
    if (AUX_TAIL4 != 0u) { g4[AUX_TAIL4 + o] = ga; }
  }
}
