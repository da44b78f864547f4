// Fused encode + TopK over a tile of latents [lat0, lat0 + n): the pre-activations never reach memory.
// Each thread owns RB rows and one chunk of L latents of the tile (chunk c: tile columns [c·L, c·L + L)),
// computes pre-activations RN latents at a time in registers with exactly the arithmetic of the encode
// variant it stands in for, and keeps a sorted private top-KOUT list per row (KP ≤ 64):
//   encode_topk     as encode_blocked (and encode_naive / encode_tiled, the same per-element order):
//                   acc = Σ_c ascending (x[b,c] − b_pre[c])·W[n,c], then pre = acc + b_enc[lat]
//   encode_topk_v4  as encode_blocked_v4 (d % 4 == 0): acc = Σ_c4 ascending dot(x4 − b_pre4, W4), + b_enc
// Out: raw sorted lists [C, B, KOUT] (list c of row b at (c·B + b)·KOUT), C = ⌈n / L⌉ chunks, ordered as
// topk.wgsl (larger value first, ties to the lower latent, NaN and -inf as NEG_MAX, (NEG_MAX, NONE)
// padding), values not relu'd, global latent indices — merged by shaders/topk-merge.wgsl (merge with C).
// KOUT = k, or k + kAux with MULTI (from StepParams). Memory of the lists: C·B·KOUT·8 bytes.
// AuxK ((P.flags & FLAG_AUXK) != 0): also writes pre[row·n + (lat − lat0)] (the raw value, as encode
// would) for the latents with dead_flag[lat] != 0, so the AUX tiled TopK can read the dead columns of the
// tile buffer although the rest of it is never written.
// Latent offset / shard semantics as encode.wgsl: W_enc row wOff + (lat − lat0), b_enc[lat] (whole vector).

override MULTI: bool = false;
const RB: u32 = {{RB}}u;   // rows per thread
const RN: u32 = {{RN}}u;   // latents per register block
const KP: u32 = {{KP}}u;   // list capacity (next power of two ≥ KOUT, ≤ 64)
const WG: u32 = 64u;
const NEG_MAX: f32 = -3.4028234e38;

// n: tile width; L: chunk length; C: chunks = ⌈n / L⌉.
struct Sizes { B: u32, d: u32, n: u32, lat0: u32, wOff: u32, L: u32, C: u32, pad: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> b_pre: array<f32>;
@group(0) @binding(2) var<storage, read> W_enc: array<f32>;
@group(0) @binding(3) var<storage, read> b_enc: array<f32>;
@group(0) @binding(4) var<storage, read_write> pre: array<f32>;
@group(0) @binding(5) var<storage, read> dead_flag: array<u32>;
@group(0) @binding(6) var<storage, read_write> list_idx: array<u32>;
@group(0) @binding(7) var<storage, read_write> list_val: array<f32>;
@group(0) @binding(8) var<uniform> P: StepParams;
@group(0) @binding(9) var<uniform> sz: Sizes;
// The same buffers as vec4 (encode_topk_v4 only).
@group(0) @binding(10) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read> b_pre4: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read> W_enc4: array<vec4<f32>>;

fn better(av: f32, ai: u32, cv: f32, ci: u32) -> bool {
  return av > cv || (av == cv && ai < ci);
}

// Clamped to the lists' capacity: an unwritten uniform (k = 0) must not index below a list or spin.
fn kout_of() -> u32 { return clamp(select(P.k, P.k + P.kAux, MULTI), 1u, KP); }

// The work item g: row block (fastest, so a workgroup reads the same W_enc rows) and chunk.
struct Item { b0: u32, nBeg: u32, nEnd: u32, c: u32 }

fn item_of(g: u32) -> Item {
  let blocks = (sz.B + RB - 1u) / RB;
  let c = g / blocks;
  let nBeg = c * sz.L;
  return Item((g % blocks) * RB, nBeg, min(nBeg + sz.L, sz.n), c);
}

fn items() -> u32 { return ((sz.B + RB - 1u) / RB) * sz.C; }

// The RB × RN pre-activations of rows b0.. and tile columns n0.. (before + b_enc), clamped at the edges.
fn acc_scalar(b0: u32, n0: u32, nEnd: u32) -> array<f32, RB * RN> {
  var xo: array<u32, RB>;
  var wo: array<u32, RN>;
  for (var i = 0u; i < RB; i++) { xo[i] = min(b0 + i, sz.B - 1u) * sz.d; }
  for (var j = 0u; j < RN; j++) { wo[j] = (sz.wOff + min(n0 + j, nEnd - 1u)) * sz.d; }
  var acc: array<f32, RB * RN>;
  var xv: array<f32, RB>;
  for (var c = 0u; c < sz.d; c++) {
    let bp = b_pre[c];
    for (var i = 0u; i < RB; i++) { xv[i] = x[xo[i] + c] - bp; }
    for (var j = 0u; j < RN; j++) {
      let w = W_enc[wo[j] + c];
      for (var i = 0u; i < RB; i++) { acc[i * RN + j] += xv[i] * w; }
    }
  }
  return acc;
}

fn acc_v4(b0: u32, n0: u32, nEnd: u32) -> array<f32, RB * RN> {
  let d4 = sz.d / 4u;
  var xo: array<u32, RB>;
  var wo: array<u32, RN>;
  for (var i = 0u; i < RB; i++) { xo[i] = min(b0 + i, sz.B - 1u) * d4; }
  for (var j = 0u; j < RN; j++) { wo[j] = (sz.wOff + min(n0 + j, nEnd - 1u)) * d4; }
  var acc: array<f32, RB * RN>;
  var xv: array<vec4<f32>, RB>;
  for (var c = 0u; c < d4; c++) {
    let bp = b_pre4[c];
    for (var i = 0u; i < RB; i++) { xv[i] = x4[xo[i] + c] - bp; }
    for (var j = 0u; j < RN; j++) {
      let w = W_enc4[wo[j] + c];
      for (var i = 0u; i < RB; i++) { acc[i * RN + j] += dot(xv[i], w); }
    }
  }
  return acc;
}

// Adds + b_enc, writes dead columns (AuxK), offers each value to its row's list.
fn consume(acc: array<f32, RB * RN>, it: Item, n0: u32, kout: u32, auxk: bool,
           lv: ptr<function, array<f32, RB * KP>>, li: ptr<function, array<u32, RB * KP>>) {
  for (var i = 0u; i < RB; i++) {
    let row = it.b0 + i;
    if (row >= sz.B) { break; }
    let base = i * KP;
    for (var j = 0u; j < RN; j++) {
      let n = n0 + j;
      if (n >= it.nEnd) { break; }
      let lat = sz.lat0 + n;
      let pv = acc[i * RN + j] + b_enc[lat];
      if (auxk && dead_flag[lat] != 0u) { pre[row * sz.n + n] = pv; }
      var v = pv;
      // NaN (checked on the bits) and -inf sort as NEG_MAX, as topk.wgsl.
      if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) { v = NEG_MAX; }
      v = max(v, NEG_MAX);
      if (!better(v, lat, (*lv)[base + kout - 1u], (*li)[base + kout - 1u])) { continue; }
      var p = kout - 1u;
      while (p > 0u && better(v, lat, (*lv)[base + p - 1u], (*li)[base + p - 1u])) {
        (*lv)[base + p] = (*lv)[base + p - 1u];
        (*li)[base + p] = (*li)[base + p - 1u];
        p--;
      }
      (*lv)[base + p] = v;
      (*li)[base + p] = lat;
    }
  }
}

fn write_lists(it: Item, kout: u32, lv: ptr<function, array<f32, RB * KP>>, li: ptr<function, array<u32, RB * KP>>) {
  for (var i = 0u; i < RB; i++) {
    let row = it.b0 + i;
    if (row >= sz.B) { break; }
    let o = (it.c * sz.B + row) * kout;
    for (var j = 0u; j < kout; j++) {
      list_idx[o + j] = (*li)[i * KP + j];
      list_val[o + j] = (*lv)[i * KP + j];
    }
  }
}

@compute @workgroup_size(WG)
fn encode_topk(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let kout = kout_of();
  let auxk = (P.flags & FLAG_AUXK) != 0u;
  for (var g = gid.x; g < items(); g += nwg.x * WG) {
    let it = item_of(g);
    var lv: array<f32, RB * KP>;
    var li: array<u32, RB * KP>;
    for (var e = 0u; e < RB * KP; e++) { lv[e] = NEG_MAX; li[e] = NONE; }
    for (var n0 = it.nBeg; n0 < it.nEnd; n0 += RN) {
      consume(acc_scalar(it.b0, n0, it.nEnd), it, n0, kout, auxk, &lv, &li);
    }
    write_lists(it, kout, &lv, &li);
  }
}

@compute @workgroup_size(WG)
fn encode_topk_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let kout = kout_of();
  let auxk = (P.flags & FLAG_AUXK) != 0u;
  for (var g = gid.x; g < items(); g += nwg.x * WG) {
    let it = item_of(g);
    var lv: array<f32, RB * KP>;
    var li: array<u32, RB * KP>;
    for (var e = 0u; e < RB * KP; e++) { lv[e] = NEG_MAX; li[e] = NONE; }
    for (var n0 = it.nBeg; n0 < it.nEnd; n0 += RN) {
      consume(acc_v4(it.b0, n0, it.nEnd), it, n0, kout, auxk, &lv, &li);
    }
    write_lists(it, kout, &lv, &li);
  }
}
