// Parameter update (DESIGN §1 "Update"):
//   project_dec  one thread per latent: g_dec[i] −= (g_dec[i]·w_i) w_i (flag), and the row's share of
//                ‖grad‖² (dW_dec, dW_enc rows and db_enc) into norm_part[i]                           N·d
//   clip_reduce  one workgroup: ‖grad‖ (adding db_pre), clip factor min(1, clipNorm/‖grad‖) if clipping  N + d
//                (clip_reduce_seq: the same sums in one thread, software adapters)
//   adam         one thread per element of one tensor: Adam with bias correction folded into stepSize/bc2
//   renorm_dec   one thread per latent: W_dec[i] /= ‖W_dec[i]‖                                      N·d
//   project_dec_wg, renorm_dec_wg  the same with a workgroup per latent (GPU form): lanes take columns
//                c ≡ lane (mod WG), coalesced, and a fixed tree adds the lanes' sums
//   ema          one thread per element: θ_ema = decay·θ_ema + (1 − decay)·θ
//   project_dec_v4, renorm_dec_v4  project_dec and renorm_dec through vec4 views (d % 4 == 0, software
//                adapters): each component added in column order as the scalar forms do, so the same
//                bits with a quarter of the loads (SwiftShader gathers a vec4 per lane for about what a
//                float costs, and a thread per row makes every load a gather: lanes are d floats apart)
// W_dec, dW_dec, dW_enc are one latent shard's buffers (rows i − S.lat0); project_dec and renorm_dec
// run once per shard, clip_reduce once.

const WG: u32 = 64u;
const RWG: u32 = 256u;

@group(0) @binding(0) var<storage, read_write> W_dec: array<f32>;
@group(0) @binding(1) var<storage, read_write> dW_dec: array<f32>;
@group(0) @binding(2) var<storage, read> dW_enc: array<f32>;
@group(0) @binding(3) var<storage, read> db_enc: array<f32>;
@group(0) @binding(4) var<storage, read> db_pre: array<f32>;
@group(0) @binding(5) var<storage, read_write> norm_part: array<f32>;   // [N]
@group(0) @binding(6) var<storage, read_write> scal: array<f32>;        // [8]: [2] clip factor, [3] ‖grad‖
@group(0) @binding(7) var<storage, read_write> metrics: array<f32>;
@group(0) @binding(8) var<uniform> P: StepParams;
@group(0) @binding(9) var<uniform> S: Shard;
// vec4 views of W_dec, dW_dec, dW_enc (the _v4 forms).
@group(0) @binding(10) var<storage, read_write> W_dec4: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read_write> dW_dec4: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read> dW_enc4: array<vec4<f32>>;

var<workgroup> red: array<f32, RWG>;

// One thread per latent row, no barriers: rows are short (d) and there are many of them (N).
@compute @workgroup_size(WG)
fn project_dec(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var il = gid.x; il < S.n; il += nwg.x * WG) {
    let i = S.lat0 + il;
    let o = il * P.d;
    var dot = 0.0;
    if ((P.flags & FLAG_PROJECT) != 0u) {
      for (var c = 0u; c < P.d; c++) { dot += dW_dec[o + c] * W_dec[o + c]; }
    }
    var sq = db_enc[i] * db_enc[i];
    for (var c = 0u; c < P.d; c++) {
      let gd = dW_dec[o + c] - dot * W_dec[o + c];
      dW_dec[o + c] = gd;
      let ge = dW_enc[o + c];
      sq += gd * gd + ge * ge;
    }
    norm_part[i] = sq;
  }
}

// The vec4 forms' row sums, each component added in column order as the scalar forms add them (also
// update-fused.wgsl's, appended to this module). dW_dec[i]·W_dec[i] for the projection (0 without it):
fn project_dot4(o: u32, d4: u32) -> f32 {
  var dot = 0.0;
  if ((P.flags & FLAG_PROJECT) != 0u) {
    for (var c = 0u; c < d4; c++) {
      let p = dW_dec4[o + c] * W_dec4[o + c];
      dot += p.x;
      dot += p.y;
      dot += p.z;
      dot += p.w;
    }
  }
  return dot;
}

// sq + the four columns' gd² + ge² (a row's share of ‖grad‖²).
fn add_grad_sq4(sq: f32, gd: vec4<f32>, ge: vec4<f32>) -> f32 {
  var s = sq;
  s += gd.x * gd.x + ge.x * ge.x;
  s += gd.y * gd.y + ge.y * ge.y;
  s += gd.z * gd.z + ge.z * ge.z;
  s += gd.w * gd.w + ge.w * ge.w;
  return s;
}

// sq + the four columns' w² (a row's ‖W_dec[i]‖²).
fn add_sq4(sq: f32, w: vec4<f32>) -> f32 {
  var s = sq;
  s += w.x * w.x;
  s += w.y * w.y;
  s += w.z * w.z;
  s += w.w * w.w;
  return s;
}

@compute @workgroup_size(WG)
fn project_dec_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let d4 = P.d / 4u;
  for (var il = gid.x; il < S.n; il += nwg.x * WG) {
    let i = S.lat0 + il;
    let o = il * d4;
    let dot = project_dot4(o, d4);
    var sq = db_enc[i] * db_enc[i];
    for (var c = 0u; c < d4; c++) {
      let gd = dW_dec4[o + c] - dot * W_dec4[o + c];
      dW_dec4[o + c] = gd;
      sq = add_grad_sq4(sq, gd, dW_enc4[o + c]);
    }
    norm_part[i] = sq;
  }
}

@compute @workgroup_size(RWG)
fn clip_reduce(@builtin(local_invocation_id) lid: vec3<u32>) {
  var acc = 0.0;
  for (var i = lid.x; i < P.N; i += RWG) { acc += norm_part[i]; }
  for (var c = lid.x; c < P.d; c += RWG) { acc += db_pre[c] * db_pre[c]; }
  red[lid.x] = acc;
  workgroupBarrier();
  for (var s = RWG / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) { red[lid.x] += red[lid.x + s]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { clip_finish(red[0]); }
}

// The clip factor and ‖grad‖ from its square (both forms of clip_reduce).
fn clip_finish(sq: f32) {
  let norm = sqrt(sq);
  let clip = (P.flags & FLAG_CLIP) != 0u && norm > P.clipNorm;
  scal[2] = select(1.0, P.clipNorm / norm, clip);
  scal[3] = norm;
  metrics[P.slot * METRICS + 6u] = norm;
}

// clip_reduce in one thread (software adapters): lane t's sum, then the same tree, so the same bits
// without 256 lanes and 8 barriers (SwiftShader: 0.7 ms for a few thousand adds).
@compute @workgroup_size(1)
fn clip_reduce_seq() {
  var lanes: array<f32, RWG>;
  for (var t = 0u; t < RWG; t++) {
    var acc = 0.0;
    for (var i = t; i < P.N; i += RWG) { acc += norm_part[i]; }
    for (var c = t; c < P.d; c += RWG) { acc += db_pre[c] * db_pre[c]; }
    lanes[t] = acc;
  }
  for (var h = RWG / 2u; h > 0u; h >>= 1u) {
    for (var t = 0u; t < h; t++) { lanes[t] += lanes[t + h]; }
  }
  clip_finish(lanes[0]);
}

@compute @workgroup_size(WG)
fn renorm_dec(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var il = gid.x; il < S.n; il += nwg.x * WG) {
    let o = il * P.d;
    var sq = 0.0;
    for (var c = 0u; c < P.d; c++) { sq += W_dec[o + c] * W_dec[o + c]; }
    let inv = 1.0 / max(sqrt(sq), 1e-30);
    for (var c = 0u; c < P.d; c++) { W_dec[o + c] *= inv; }
  }
}

@compute @workgroup_size(WG)
fn renorm_dec_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let d4 = P.d / 4u;
  for (var il = gid.x; il < S.n; il += nwg.x * WG) {
    let o = il * d4;
    var sq = 0.0;
    for (var c = 0u; c < d4; c++) { sq = add_sq4(sq, W_dec4[o + c]); }
    let inv = 1.0 / max(sqrt(sq), 1e-30);
    for (var c = 0u; c < d4; c++) { W_dec4[o + c] *= inv; }
  }
}

// GPU forms: a workgroup per latent row. A thread per row reads columns d floats apart across a warp
// (one memory sector per lane per load); here a warp reads 32 consecutive columns.
var<workgroup> wred: array<f32, WG>;

// Σ over the workgroup's lanes of v with a fixed tree; every lane gets the sum.
fn lane_sum(lane: u32, v: f32) -> f32 {
  wred[lane] = v;
  workgroupBarrier();
  for (var h = WG / 2u; h > 0u; h >>= 1u) {
    if (lane < h) { wred[lane] += wred[lane + h]; }
    workgroupBarrier();
  }
  let total = wred[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WG)
fn project_dec_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid: vec3<u32>) {
  let project = (P.flags & FLAG_PROJECT) != 0u;
  for (var il = wid.x; il < S.n; il += nwg.x) {
    let i = S.lat0 + il;
    let o = il * P.d;
    var dot = 0.0;
    if (project) {
      for (var c = lid.x; c < P.d; c += WG) { dot += dW_dec[o + c] * W_dec[o + c]; }
    }
    let dotAll = lane_sum(lid.x, dot);
    var sq = 0.0;
    for (var c = lid.x; c < P.d; c += WG) {
      let gd = dW_dec[o + c] - dotAll * W_dec[o + c];
      dW_dec[o + c] = gd;
      let ge = dW_enc[o + c];
      sq += gd * gd + ge * ge;
    }
    let sqAll = lane_sum(lid.x, sq);
    if (lid.x == 0u) { norm_part[i] = db_enc[i] * db_enc[i] + sqAll; }
  }
}

@compute @workgroup_size(WG)
fn renorm_dec_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_id) lid: vec3<u32>) {
  for (var il = wid.x; il < S.n; il += nwg.x) {
    let o = il * P.d;
    var sq = 0.0;
    for (var c = lid.x; c < P.d; c += WG) { sq += W_dec[o + c] * W_dec[o + c]; }
    let inv = 1.0 / max(sqrt(lane_sum(lid.x, sq)), 1e-30);
    for (var c = lid.x; c < P.d; c += WG) { W_dec[o + c] *= inv; }
  }
}
