// Sparse backward through the TopK indices: no dense [B, N] gradient exists.
// Entries e index idx_all/val_all/gv_all [B·(k+kAux)]: e < B·k are main TopK pairs (row e / k),
// the rest AuxK pairs (row (e − B·k) / kAux), whose gradient source is g_aux instead of g.
// W_dec, W_enc, dW_dec, dW_enc are the buffers of one latent shard S (rows i − S.lat0); the kernels
// run once per shard. Every sum is over one latent's entries or carried across shards in latent
// order, so the result does not depend on how the latents are sharded.
//   gv          one thread per entry of this shard: gv[e] = (W_dec[idx[e]] · g_src[row]) · [val[e] > 0]  B·(k+kAux)·d
//               (on software with d % 4 == 0 and d ≤ 1536: inside grad_dec_reg's walk, grad-reg.wgsl)
//   grad_dec    one workgroup per latent i, over its sorted list (sort-by-latent.wgsl), deterministic:
//               dW_dec[i] = Σ val·g_src[row]
//   grad_enc    likewise: dW_enc[i] = Σ gv·(x[row] − b_pre),  db_enc[i] = Σ gv
//   bpre_part   one thread per (chunk of 32 latents, column): enc_part[j, c] (+)= Σ db_enc[i]·W_enc[i, c]  N·d
//   bpre_final  one workgroup per column: db_pre = Σ_b (g[b] + g_aux[b]) − Σ_j enc_part[j, c]        B·d
// Matryoshka: g is [G, B, d], one source per level (nested-grad.wgsl); a main entry of latent i reads
// the slice of i's level, g[0] (every prefix) feeds db_pre. One level otherwise: g is [B, d].

const WG: u32 = 64u;
const CPT: u32 = {{CPT}}u;   // columns per thread in grad_dec/grad_enc: ceil(d / WG)

@group(0) @binding(0) var<storage, read> idx_all: array<u32>;
@group(0) @binding(1) var<storage, read> val_all: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> g_aux: array<f32>;
@group(0) @binding(4) var<storage, read> W_dec: array<f32>;
@group(0) @binding(5) var<storage, read_write> gv_all: array<f32>;
@group(0) @binding(6) var<storage, read> start: array<u32>;
@group(0) @binding(7) var<storage, read> rows: array<u32>;
@group(0) @binding(8) var<storage, read> x: array<f32>;
@group(0) @binding(9) var<storage, read> b_pre: array<f32>;
@group(0) @binding(10) var<storage, read> W_enc: array<f32>;
@group(0) @binding(11) var<storage, read_write> dW_dec: array<f32>;
@group(0) @binding(12) var<storage, read_write> dW_enc: array<f32>;
@group(0) @binding(13) var<storage, read_write> db_enc: array<f32>;
@group(0) @binding(14) var<storage, read_write> db_pre: array<f32>;
@group(0) @binding(15) var<uniform> P: StepParams;
@group(0) @binding(16) var<uniform> S: Shard;
@group(0) @binding(17) var<storage, read_write> enc_part: array<f32>;   // [ceil(N / LCH), d]
@group(0) @binding(28) var<storage, read> dead_info: array<u32>;
// IDLE_AUX: as loss.wgsl's; with no AuxK candidate the loss writes no g_aux, and db_pre leaves it out
// (it would add exactly ±0 to g, which is never −0: the same sums).
override IDLE_AUX: bool = false;
fn aux_idle() -> bool {
  return IDLE_AUX && select(0u, dead_info[0], (P.flags & FLAG_AUXK) != 0u) == 0u;
}

fn level_of(i: u32) -> u32 {
{{LEVEL_OF}}
}

// Offset of latent i's gradient-source slice in g (0 with one level).
fn g_slice(i: u32) -> u32 { return level_of(i) * P.B * P.d; }

// Row of entry e and whether it belongs to AuxK. Selects, not a branch: the per-entry walks take it
// in every lane (docs/DESIGN.md, no branch in the hot loops).
fn row_of(e: u32) -> vec2<u32> {
  let nMain = P.B * P.k;
  let aux = e >= nMain;
  let r = div_rows(select(e, e - nMain, aux), select(P.k, P.kAux, aux));
  return vec2<u32>(r, select(0u, 1u, aux));
}

@compute @workgroup_size(WG)
fn gv(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var e = gid.x; e < P.B * (P.k + P.kAux); e += nwg.x * WG) { gv_entry(e); }
}

// Each entry is written by exactly one shard: its latent's, or the first for an inactive entry.
fn gv_entry(e: u32) {
  let i = idx_all[e];
  let v = val_all[e];
  let live = i < P.N && v > 0.0;
  let mine = live && i >= S.lat0 && i - S.lat0 < S.n;
  if (!mine) {
    if (!live && S.first != 0u) { gv_all[e] = 0.0; }
    return;
  }
  var acc = 0.0;
  let r = row_of(e);
  let wo = (i - S.lat0) * P.d;
  let go = r.x * P.d;
  if (r.y == 0u) {
    let gs = g_slice(i) + go;
    for (var c = 0u; c < P.d; c++) { acc += W_dec[wo + c] * g[gs + c]; }
  } else {
    for (var c = 0u; c < P.d; c++) { acc += W_dec[wo + c] * g_aux[go + c]; }
  }
  gv_all[e] = acc;
}

// vec4 form of gv (d % 4 == 0), in gv's order for vec4 rows: the d/4 column groups in GV_TPL parts, part
// q the groups c ≡ q (mod GV_TPL) in order (a vec4 sum reduced as (x + y) + (z + w)), then the parts
// added in order. GV_TPL is the software sums' threads per latent (grad-reg.wgsl), which compute gv
// in their walk over a latent's list, a part per thread, in this order; so every form has its bits.
const GV_TPL: u32 = {{GV_TPL}}u;
@group(0) @binding(25) var<storage, read> W_dec4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn gv_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var e = gid.x; e < P.B * (P.k + P.kAux); e += nwg.x * WG) {
    let i = idx_all[e];
    let v = val_all[e];
    let live = i < P.N && v > 0.0;
    let mine = live && i >= S.lat0 && i - S.lat0 < S.n;
    if (!mine) {
      if (!live && S.first != 0u) { gv_all[e] = 0.0; }
      continue;
    }
    let d4 = P.d / 4u;
    let r = row_of(e);
    let wo = (i - S.lat0) * d4;
    let go = select(r.x * d4, g_slice(i) / 4u + r.x * d4, r.y == 0u);
    var sum = 0.0;
    for (var q = 0u; q < GV_TPL; q++) {
      var acc = vec4<f32>(0.0);
      if (r.y == 0u) {
        for (var c = q; c < d4; c += GV_TPL) { acc += W_dec4[wo + c] * g4[go + c]; }
      } else {
        for (var c = q; c < d4; c += GV_TPL) { acc += W_dec4[wo + c] * g_aux4[go + c]; }
      }
      sum += (acc.x + acc.y) + (acc.z + acc.w);
    }
    gv_all[e] = sum;
  }
}

// Two passes over the lists (decoder, then encoder side) so each entry point binds at most 8 storage
// buffers, the WebGPU default limit.
// Each thread keeps its CPT columns' sums in registers and walks the latent's list once, so an
// entry's row, source and value are read once per thread instead of once per column; every sum still
// adds its terms in list order, so the result does not change by a bit.
@compute @workgroup_size(WG)
fn grad_dec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
  for (var il = wid.x; il < S.n; il += nwg.x) {
    let i = S.lat0 + il;
    let s = start[i];
    let n = start[i + 1u] - s;
    let gs = g_slice(i);
    // Zeroed explicitly for each latent: a declaration inside the loop was not re-zeroed per
    // iteration on SwiftShader (a workgroup's second latent started from its first one's sums).
    var acc: array<f32, CPT>;
    for (var j = 0u; j < CPT; j++) { acc[j] = 0.0; }
    for (var t = 0u; t < n; t++) {
      let e = rows[s + t];
      let r = row_of(e);
      let v = val_all[e];
      let o = r.x * P.d;
      if (r.y == 1u) {
        for (var j = 0u; j < CPT; j++) {
          let c = lid.x + j * WG;
          if (c < P.d) { acc[j] += v * g_aux[o + c]; }
        }
      } else {
        for (var j = 0u; j < CPT; j++) {
          let c = lid.x + j * WG;
          if (c < P.d) { acc[j] += v * g[gs + o + c]; }
        }
      }
    }
    for (var j = 0u; j < CPT; j++) {
      let c = lid.x + j * WG;
      if (c < P.d) { dW_dec[il * P.d + c] = acc[j]; }
    }
  }
}

@compute @workgroup_size(WG)
fn grad_enc(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_id) lid: vec3<u32>) {
  var bp: array<f32, CPT>;
  for (var j = 0u; j < CPT; j++) { bp[j] = b_pre[min(lid.x + j * WG, P.d - 1u)]; }
  for (var il = wid.x; il < S.n; il += nwg.x) {
    let i = S.lat0 + il;
    let s = start[i];
    let n = start[i + 1u] - s;
    // Zeroed explicitly for each latent: a declaration inside the loop was not re-zeroed per
    // iteration on SwiftShader (a workgroup's second latent started from its first one's sums).
    var acc: array<f32, CPT>;
    for (var j = 0u; j < CPT; j++) { acc[j] = 0.0; }
    for (var t = 0u; t < n; t++) {
      let e = rows[s + t];
      let gv = gv_all[e];
      let o = row_of(e).x * P.d;
      for (var j = 0u; j < CPT; j++) {
        let c = lid.x + j * WG;
        if (c < P.d) { acc[j] += gv * (x[o + c] - bp[j]); }
      }
    }
    for (var j = 0u; j < CPT; j++) {
      let c = lid.x + j * WG;
      if (c < P.d) { dW_enc[il * P.d + c] = acc[j]; }
    }
    if (lid.x == 0u) {
      var acc0 = 0.0;
      for (var t = 0u; t < n; t++) { acc0 += gv_all[rows[s + t]]; }
      db_enc[i] = acc0;
    }
  }
}

// vec4 forms (d % 4 == 0): a thread owns CPT4 groups of 4 columns, so an entry's row, source and
// value are read, and its row computed, once per 4 columns instead of once per column (on CPU
// backends each invocation is a SIMD lane that repeats them). Each column still adds its terms in
// list order, the scalar kernels' additions in their order (and sums still do not depend on the
// shards). The buffers are bound a second time with vec4 element type.
@group(0) @binding(18) var<storage, read> g4: array<vec4<f32>>;
@group(0) @binding(19) var<storage, read> g_aux4: array<vec4<f32>>;
@group(0) @binding(20) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(21) var<storage, read> b_pre4: array<vec4<f32>>;
@group(0) @binding(22) var<storage, read_write> dW_dec4: array<vec4<f32>>;
@group(0) @binding(23) var<storage, read_write> dW_enc4: array<vec4<f32>>;

const WG4: u32 = {{WG4}}u;   // invocations per latent: 16 on a GPU, 4 on software (grad.ts)
const CPT4: u32 = {{CPT4}}u;   // vec4 column groups per thread: ceil(d / 4 / WG4)
// Lists longer than this are left to grad_long_*_v4 (the sort's SHORT, so they are the ones it lists
// in long_list); 0xffffffff when the split is off and these kernels walk every list.
const LONG: u32 = {{LONG}}u;

@compute @workgroup_size(WG4)
fn grad_dec_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
  let d4 = P.d / 4u;
  for (var il = wid.x; il < S.n; il += nwg.x) {
    let i = S.lat0 + il;
    let s = start[i];
    let n = start[i + 1u] - s;
    if (n > LONG) { continue; }
    let gs4 = g_slice(i) / 4u;
    var acc: array<vec4<f32>, CPT4>;
    for (var j = 0u; j < CPT4; j++) { acc[j] = vec4<f32>(0.0); }
    for (var t = 0u; t < n; t++) {
      let e = rows[s + t];
      let r = row_of(e);
      let v = val_all[e];
      let o = r.x * d4;
      if (r.y == 1u) {
        for (var j = 0u; j < CPT4; j++) {
          let c = lid.x + j * WG4;
          if (c < d4) { acc[j] += v * g_aux4[o + c]; }
        }
      } else {
        for (var j = 0u; j < CPT4; j++) {
          let c = lid.x + j * WG4;
          if (c < d4) { acc[j] += v * g4[gs4 + o + c]; }
        }
      }
    }
    for (var j = 0u; j < CPT4; j++) {
      let c = lid.x + j * WG4;
      if (c < d4) { dW_dec4[il * d4 + c] = acc[j]; }
    }
  }
}

@compute @workgroup_size(WG4)
fn grad_enc_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
  let d4 = P.d / 4u;
  var bp: array<vec4<f32>, CPT4>;
  for (var j = 0u; j < CPT4; j++) { bp[j] = b_pre4[min(lid.x + j * WG4, d4 - 1u)]; }
  for (var il = wid.x; il < S.n; il += nwg.x) {
    let i = S.lat0 + il;
    let s = start[i];
    let n = start[i + 1u] - s;
    if (n > LONG) { continue; }
    var acc: array<vec4<f32>, CPT4>;
    for (var j = 0u; j < CPT4; j++) { acc[j] = vec4<f32>(0.0); }
    for (var t = 0u; t < n; t++) {
      let e = rows[s + t];
      let gv = gv_all[e];
      let o = row_of(e).x * d4;
      for (var j = 0u; j < CPT4; j++) {
        let c = lid.x + j * WG4;
        if (c < d4) { acc[j] += gv * (x4[o + c] - bp[j]); }
      }
    }
    for (var j = 0u; j < CPT4; j++) {
      let c = lid.x + j * WG4;
      if (c < d4) { dW_enc4[il * d4 + c] = acc[j]; }
    }
    if (lid.x == 0u) {
      var acc0 = 0.0;
      for (var t = 0u; t < n; t++) { acc0 += gv_all[rows[s + t]]; }
      db_enc[i] = acc0;
    }
  }
}

// The encoder's share of db_pre, Σ_i db_enc[i]·W_enc[i, c], in chunks of LCH latents: one thread per
// (chunk, column) sums its chunk in latent order, and a chunk that a shard boundary cuts is continued by
// the next shard from the stored partial, so each chunk's additions are those of one pass over all N
// latents. bpre_final adds the chunks with a fixed tree. (One thread per column walking all N latents
// was 4096 dependent iterations at d = 768 on a GPU.)
const LCH: u32 = {{LCH}}u;

@compute @workgroup_size(WG)
fn bpre_part(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let j0 = S.lat0 / LCH;
  let j1 = (S.lat0 + S.n + LCH - 1u) / LCH;
  for (var t = gid.x; t < (j1 - j0) * P.d; t += nwg.x * WG) {
    let j = j0 + t / P.d;
    let c = t % P.d;
    let lo = max(j * LCH, S.lat0);
    let hi = min((j + 1u) * LCH, S.lat0 + S.n);
    var enc = select(0.0, enc_part[j * P.d + c], lo != j * LCH);
    for (var i = lo; i < hi; i++) { enc += db_enc[i] * W_enc[(i - S.lat0) * P.d + c]; }
    enc_part[j * P.d + c] = enc;
  }
}

// bpre_part over vec4 column groups (software, d % 4 == 0): each component's chunk sums as bpre_part's, in
// latent order, from a quarter of the loads (SwiftShader, B = 1024, d = 768, N = 4096: 9.1 → 4.1 ms).
@group(0) @binding(29) var<storage, read> W_enc4: array<vec4<f32>>;
@group(0) @binding(30) var<storage, read_write> enc_part4w: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn bpre_part_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let d4 = P.d / 4u;
  let j0 = S.lat0 / LCH;
  let j1 = (S.lat0 + S.n + LCH - 1u) / LCH;
  for (var t = gid.x; t < (j1 - j0) * d4; t += nwg.x * WG) {
    let j = j0 + t / d4;
    let c = t % d4;
    let lo = max(j * LCH, S.lat0);
    let hi = min((j + 1u) * LCH, S.lat0 + S.n);
    var enc = select(vec4<f32>(0.0), enc_part4w[j * d4 + c], lo != j * LCH);
    for (var i = lo; i < hi; i++) { enc += db_enc[i] * W_enc4[(i - S.lat0) * d4 + c]; }
    enc_part4w[j * d4 + c] = enc;
  }
}

// One workgroup per column: lane t sums rows b ≡ t and chunks j ≡ t (mod FWG_B) in order, then a
// fixed tree adds the lanes (the same additions however the latents are sharded).
const FWG_B: u32 = 64u;
var<workgroup> bred: array<f32, 128>;   // [2, FWG_B]: decoder and encoder shares

@compute @workgroup_size(FWG_B)
fn bpre_final(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_id) lid: vec3<u32>) {
  // The decoder's share: x̂ = … + b_pre, and AuxK's ê too, as in openai's train.py (decode_sparse
  // adds pre_bias; only the target's pre_bias is detached). g_aux is 0 when AuxK is off; with
  // Multi-TopK g already carries it.
  let multi = (P.flags & FLAG_MULTI) != 0u;
  let idle = aux_idle();
  let nChunks = (P.N + LCH - 1u) / LCH;
  for (var c = wid.x; c < P.d; c += nwg.x) {
    var dec = 0.0;
    if (idle) {
      for (var b = lid.x; b < P.B; b += FWG_B) { dec += g[b * P.d + c]; }
    } else {
      for (var b = lid.x; b < P.B; b += FWG_B) {
        dec += g[b * P.d + c] + select(g_aux[b * P.d + c], 0.0, multi);
      }
    }
    var enc = 0.0;
    for (var j = lid.x; j < nChunks; j += FWG_B) { enc += enc_part[j * P.d + c]; }
    bred[lid.x] = dec;
    bred[FWG_B + lid.x] = enc;
    workgroupBarrier();
    for (var h = FWG_B / 2u; h > 0u; h >>= 1u) {
      if (lid.x < h) {
        bred[lid.x] += bred[lid.x + h];
        bred[FWG_B + lid.x] += bred[FWG_B + lid.x + h];
      }
      workgroupBarrier();
    }
    if (lid.x == 0u) { db_pre[c] = bred[0] - bred[FWG_B]; }
    workgroupBarrier();
  }
}

// bpre_final's form for software adapters: one thread per column forms the same FWG_B lane sums and
// adds them with the same trees, so its bits are bpre_final's, without a barrier (see colsum_r_seq in
// loss.wgsl).
@compute @workgroup_size(16)
fn bpre_final_seq(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let multi = (P.flags & FLAG_MULTI) != 0u;
  let idle = aux_idle();
  let nChunks = (P.N + LCH - 1u) / LCH;
  for (var c = gid.x; c < P.d; c += nwg.x * 16u) {
    var dec: array<f32, FWG_B>;
    var enc: array<f32, FWG_B>;
    for (var t = 0u; t < FWG_B; t++) {
      var a = 0.0;
      if (idle) {
        for (var b = t; b < P.B; b += FWG_B) { a += g[b * P.d + c]; }
      } else {
        for (var b = t; b < P.B; b += FWG_B) { a += g[b * P.d + c] + select(g_aux[b * P.d + c], 0.0, multi); }
      }
      dec[t] = a;
      var e = 0.0;
      for (var j = t; j < nChunks; j += FWG_B) { e += enc_part[j * P.d + c]; }
      enc[t] = e;
    }
    for (var h = FWG_B / 2u; h > 0u; h >>= 1u) {
      for (var t = 0u; t < h; t++) {
        dec[t] += dec[t + h];
        enc[t] += enc[t + h];
      }
    }
    db_pre[c] = dec[0] - enc[0];
  }
}

// bpre_final_seq over four columns a thread through vec4 views (d % 4 == 0): each component's sums as
// bpre_final_seq's, so the same bits with a quarter of the loads; workgroups of 4 (one SIMD batch on
// SwiftShader) so that d = 64 spreads over the cores (16 threads in one workgroup ran on one).
@group(0) @binding(26) var<storage, read> enc_part4: array<vec4<f32>>;

@compute @workgroup_size(4)
fn bpre_final_seq4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let multi = (P.flags & FLAG_MULTI) != 0u;
  let idle = aux_idle();
  let nChunks = (P.N + LCH - 1u) / LCH;
  let d4 = P.d / 4u;
  for (var c = gid.x; c < d4; c += nwg.x * 4u) {
    var dec: array<vec4<f32>, FWG_B>;
    var enc: array<vec4<f32>, FWG_B>;
    for (var t = 0u; t < FWG_B; t++) {
      var a = vec4<f32>(0.0);
      if (idle) {
        for (var b = t; b < P.B; b += FWG_B) { a += g4[b * d4 + c]; }
      } else {
        for (var b = t; b < P.B; b += FWG_B) { a += g4[b * d4 + c] + select(g_aux4[b * d4 + c], vec4<f32>(0.0), multi); }
      }
      dec[t] = a;
      var e = vec4<f32>(0.0);
      for (var j = t; j < nChunks; j += FWG_B) { e += enc_part4[j * d4 + c]; }
      enc[t] = e;
    }
    for (var h = FWG_B / 2u; h > 0u; h >>= 1u) {
      for (var t = 0u; t < h; t++) {
        dec[t] += dec[t + h];
        enc[t] += enc[t + h];
      }
    }
    let r = dec[0] - enc[0];
    db_pre[4u * c] = r.x;
    db_pre[4u * c + 1u] = r.y;
    db_pre[4u * c + 2u] = r.z;
    db_pre[4u * c + 3u] = r.w;
  }
}
