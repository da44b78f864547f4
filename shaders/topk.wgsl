// TopK per row of pre [B, N] by bitonic networks in workgroup memory.
// Keeps a running best list of KP (= next power of two ≥ k) entries; each tile of T pre-activations is
// cut into KP-long chunks, each chunk sorted descending, then chunks are merged pairwise keeping the
// better half (bitonic top-k), and the tile's top KP is merged into the best list. Order: larger value
// first, ties to the lower latent index, NaN as -inf — a total order, so the result is deterministic.
// AUX mode (AuxK): candidates are only the dead latents, read through dead_list[0..dead_info[0]).
// MULTI mode (Multi-TopK): the top k + kAux of each row; ranks < k go to the main rows, the rest to the
// AuxK region (so the decoder and the gradient see "main" = top-k, "aux" = ranks k..k+kAux−1).
// Out: out_idx/out_val, rows of KOUT at offset 0 (main) or B·k (AUX), with val = relu(pre); NONE index where fewer candidates than KOUT.

// TILED mode (latent tiles, entry points topk_tile / topk_insert_tile): the candidates of a row are the
// latents [TP.lat0, TP.lat0 + TP.n) read from a tile pre[row·n + (lat − lat0)] (AUX: only the dead latents in
// that range, found by binary search in the ascending dead_list). Out: a RAW sorted list per row at
// out_idx/out_val[row·KOUT + j], values not relu'd (NEG_MAX for NaN, -inf and padding), NONE index for
// padding, global latent indices; shaders/topk-merge.wgsl merges the tiles' lists and writes the entries.
// KOUT = k (main), kAux (AUX), k + kAux (MULTI), from StepParams in every mode.
override AUX: bool = false;
override MULTI: bool = false;
override TILED: bool = false;   // set with the *_tile entry points: raw [B, KOUT] lists, no out_slot
const KP: u32 = {{KP}}u;
const T: u32 = {{T}}u;
const WG: u32 = {{WG}}u;
const NEG_MAX: f32 = -3.4028234e38;   // padding and NaN sort below every finite value
const PER_THREAD: u32 = {{PER_THREAD}}u;  // max(1, T / 2 / WG): winners a thread holds during a merge
// Most candidates ranked by counting a candidate at a time (rank_row; topk.ts rankOne), most AuxK
// ranks by counting at all (rank_row_many past RANK_ONE; topk.ts auxRankMax) instead of the networks,
// and the candidates a lane then holds, ⌈RANK_MAX / WG⌉.
const RANK_ONE: u32 = {{RANK_ONE}}u;
const RANK_MAX: u32 = {{RANK_MAX}}u;
const RPL: u32 = {{RPL}}u;

@group(0) @binding(0) var<storage, read> pre: array<f32>;
@group(0) @binding(1) var<storage, read> dead_list: array<u32>;
@group(0) @binding(2) var<storage, read> dead_info: array<u32>;
@group(0) @binding(3) var<storage, read_write> out_idx: array<u32>;
@group(0) @binding(4) var<storage, read_write> out_val: array<f32>;
@group(0) @binding(5) var<uniform> P: StepParams;
// Per-tile uniform, read only by the *_tile entry points (their layouts alone include binding 6).
struct TileParams { lat0: u32, n: u32, pad0: u32, pad1: u32 }
@group(0) @binding(6) var<uniform> TP: TileParams;

var<workgroup> bv: array<f32, KP>;
var<workgroup> bi: array<u32, KP>;
var<workgroup> tv: array<f32, T>;
var<workgroup> ti: array<u32, T>;
var<workgroup> n_surv: atomic<u32>;   // candidates of the current tile that beat the best list
var<workgroup> n_surv_u: u32;

// Entry slot of rank j of a row.
fn out_slot(row: u32, j: u32, kout: u32) -> u32 {
  if (MULTI) {
    if (j < P.k) { return row * P.k + j; }
    return P.B * P.k + row * P.kAux + (j - P.k);
  }
  // Main pairs fill [0, B·k) of the shared entry arrays, AuxK pairs [B·k, B·(k+kAux)).
  return select(0u, P.B * P.k, AUX) + row * kout + j;
}

// Where a row's candidates come from: candidate t < count is latent lat0 + t (AUX: dead_list[d0 + t]),
// its pre-activation pre[row·stride + lat − lat0].
struct Src { count: u32, stride: u32, lat0: u32, d0: u32 }

fn aux_count() -> u32 { return select(0u, dead_info[0], (P.flags & FLAG_AUXK) != 0u); }

// The whole row [0, N) (the untiled entry points).
fn whole_src() -> Src {
  return Src(select(P.N, aux_count(), AUX), P.N, 0u, 0u);
}

// First t < cnt with dead_list[t] >= v (dead_list ascending).
fn lower_bound(cnt: u32, v: u32) -> u32 {
  var lo = 0u;
  var hi = cnt;
  while (lo < hi) {
    let m = (lo + hi) >> 1u;
    if (dead_list[m] < v) { lo = m + 1u; } else { hi = m; }
  }
  return lo;
}

// A tile [TP.lat0, TP.lat0 + TP.n) (the *_tile entry points).
fn tile_src() -> Src {
  if (AUX) {
    let cnt = aux_count();
    let lo = lower_bound(cnt, TP.lat0);
    let hi = lower_bound(cnt, TP.lat0 + TP.n);
    return Src(hi - lo, TP.n, TP.lat0, lo);
  }
  return Src(TP.n, TP.n, TP.lat0, 0u);
}

fn kout_of() -> u32 {
  if (AUX) { return P.kAux; }
  return select(P.k, P.k + P.kAux, MULTI);
}

// Candidate t of a row: (value as sorted — NaN and -inf as NEG_MAX —, global latent).
// A branch, not select(): select() evaluates both operands, a dead_list load per candidate.
fn cand_lat(s: Src, t: u32) -> u32 {
  if (AUX) { return dead_list[s.d0 + t]; }
  return s.lat0 + t;
}
fn cand_val(s: Src, row: u32, lat: u32) -> f32 {
  let v = pre[row * s.stride + (lat - s.lat0)];
  // NaN (checked on the bits: compilers may fold v != v) and -inf sort as NEG_MAX; a select, not a branch.
  return max(select(v, NEG_MAX, (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u), NEG_MAX);
}

// Rank j of a row's result: the entry (untiled: relu'd, NONE → 0) or the raw list (TILED).
fn put(row: u32, j: u32, kout: u32, v: f32, lat: u32) {
  if (TILED) {
    out_idx[row * kout + j] = lat;
    out_val[row * kout + j] = v;
    return;
  }
  let o = out_slot(row, j, kout);
  out_idx[o] = lat;
  out_val[o] = select(0.0, max(v, 0.0), lat != NONE);
}

// No candidates in this row source (AUX with no dead latents, in the tile or at all): every row's
// result is all padding; no barriers. The untiled form writes the AuxK entries NONE / 0 as before.
fn put_empty(start: u32, step: u32) {
  let kout = kout_of();
  for (var o = start; o < P.B * kout; o += step) {
    if (TILED) {
      out_idx[o] = NONE;
      out_val[o] = NEG_MAX;
    } else {
      out_idx[P.B * P.k + o] = NONE;
      out_val[P.B * P.k + o] = 0.0;
    }
  }
}

fn better(av: f32, ai: u32, cv: f32, ci: u32) -> bool {
  // | and & (not || and &&): no branch in the hot ranking loops, the same truth value.
  return (av > cv) | ((av == cv) & (ai < ci));
}

// Puts (v, i), which beats rank kout − 1 of the sorted list (lv, li), in its place (the last drops out).
fn list_insert(lv: ptr<function, array<f32, KP>>, li: ptr<function, array<u32, KP>>, kout: u32, v: f32, i: u32) {
  var j = kout - 1u;
  while (j > 0u && better(v, i, (*lv)[j - 1u], (*li)[j - 1u])) {
    (*lv)[j] = (*lv)[j - 1u];
    (*li)[j] = (*li)[j - 1u];
    j--;
  }
  (*lv)[j] = v;
  (*li)[j] = i;
}

// Compare-exchange tile[i], tile[j] (i < j): descending puts the better one at i.
fn cx_tile(i: u32, j: u32, desc: bool) {
  let swap = select(better(tv[i], ti[i], tv[j], ti[j]), better(tv[j], ti[j], tv[i], ti[i]), desc);
  if (swap) {
    let v = tv[i]; tv[i] = tv[j]; tv[j] = v;
    let x = ti[i]; ti[i] = ti[j]; ti[j] = x;
  }
}

fn cx_best(i: u32, j: u32) {
  if (better(bv[j], bi[j], bv[i], bi[i])) {
    let v = bv[i]; bv[i] = bv[j]; bv[j] = v;
    let x = bi[i]; bi[i] = bi[j]; bi[j] = x;
  }
}

@compute @workgroup_size(WG)
fn topk(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid3: vec3<u32>) {
  topk_rows(whole_src(), wid.x, nwg.x, lid3.x);
}

@compute @workgroup_size(WG)
fn topk_tile(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid3: vec3<u32>) {
  topk_rows(tile_src(), wid.x, nwg.x, lid3.x);
}

fn topk_rows(s: Src, wid: u32, nwg: u32, lid: u32) {
  if (AUX && s.count == 0u) {
    // No dead latents (the common case early in training): no candidates, no barriers.
    put_empty(wid * WG + lid, nwg * WG);
    return;
  }
  for (var row = wid; row < P.B; row += nwg) { topk_row(s, row, lid); }
}

fn topk_row(s: Src, row: u32, lid: u32) {
  let count = s.count;
  let kout = kout_of();
  // Uniform: count comes from uniforms and the read-only dead_info, the same for every row.
  if (count <= RANK_ONE) {
    rank_row(s, row, lid, count, kout);
    return;
  }
  if (AUX && count <= RANK_MAX) {
    rank_row_many(s, row, lid, count, kout);
    return;
  }
  workgroupBarrier();   // the previous row's output loop may still read bv/bi
  for (var i = lid; i < KP; i += WG) { bv[i] = NEG_MAX; bi[i] = NONE; }

  for (var t0 = 0u; t0 < count; t0 += T) {
    // Only the candidates that beat the best list's last entry can enter it: they are compacted to
    // the front of the tile (in any order: the networks below sort by a total order, so the result
    // does not depend on it), and the networks run over the next power of two ≥ their count, or not
    // at all. Once the best list has filled, few candidates of a tile beat it, so a wide row costs
    // about one pass over its pre-activations instead of a full sort of every T-wide tile.
    if (lid == 0u) { atomicStore(&n_surv, 0u); }
    workgroupBarrier();
    let cutV = bv[KP - 1u];
    let cutI = bi[KP - 1u];
    for (var i = lid; i < T; i += WG) {
      let t = t0 + i;
      if (t < count) {
        let lat = cand_lat(s, t);
        let v = cand_val(s, row, lat);
        if (better(v, lat, cutV, cutI)) {
          let slot = atomicAdd(&n_surv, 1u);
          tv[slot] = v;
          ti[slot] = lat;
        }
      }
    }
    workgroupBarrier();
    if (lid == 0u) { n_surv_u = atomicLoad(&n_surv); }
    let m = workgroupUniformLoad(&n_surv_u);
    if (m == 0u) { continue; }
    var S = KP;
    while (S < m) { S <<= 1u; }
    for (var i = m + lid; i < S; i += WG) { tv[i] = NEG_MAX; ti[i] = NONE; }
    workgroupBarrier();
  // Phase A: sort every KP-chunk descending (bitonic sort; direction from the bit within the chunk).
    for (var size = 2u; size <= KP; size <<= 1u) {
      for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
        for (var p = lid; p < S / 2u; p += WG) {
          let i = 2u * stride * (p / stride) + (p % stride);
          cx_tile(i, i + stride, ((i & (KP - 1u)) & size) == 0u);
        }
        workgroupBarrier();
      }
    }
    // Phase B: halve the tile until one chunk is left: chunk pair (2c, 2c+1) → chunk c, the better of
    // a[i] and b[KP-1-i] (a bitonic sequence holding the top KP of both), then a bitonic merge.
    for (var len = S; len > KP; len >>= 1u) {
      let half = len >> 1u;
      var keepV: array<f32, PER_THREAD>;
      var keepI: array<u32, PER_THREAD>;
      var n = 0u;
      for (var i = lid; i < half; i += WG) {
        let c = i / KP;
        let il = i % KP;
        let a = 2u * c * KP + il;
        let b = (2u * c + 1u) * KP + (KP - 1u - il);
        let takeA = better(tv[a], ti[a], tv[b], ti[b]);
        keepV[n] = select(tv[b], tv[a], takeA);
        keepI[n] = select(ti[b], ti[a], takeA);
        n++;
      }
      workgroupBarrier();
      n = 0u;
      for (var i = lid; i < half; i += WG) { tv[i] = keepV[n]; ti[i] = keepI[n]; n++; }
      workgroupBarrier();
      for (var stride = KP >> 1u; stride > 0u; stride >>= 1u) {
        for (var p = lid; p < half / 2u; p += WG) {
          let i = 2u * stride * (p / stride) + (p % stride);
          cx_tile(i, i + stride, true);
        }
        workgroupBarrier();
      }
    }
    // Merge the tile's sorted top KP into the sorted best list.
    for (var i = lid; i < KP; i += WG) {
      let j = KP - 1u - i;
      if (better(tv[j], ti[j], bv[i], bi[i])) { bv[i] = tv[j]; bi[i] = ti[j]; }
    }
    workgroupBarrier();
    for (var stride = KP >> 1u; stride > 0u; stride >>= 1u) {
      for (var p = lid; p < KP / 2u; p += WG) {
        let i = 2u * stride * (p / stride) + (p % stride);
        cx_best(i, i + stride);
      }
      workgroupBarrier();
    }
  }
  for (var j = lid; j < kout; j += WG) { put(row, j, kout, bv[j], bi[j]); }
}

// AuxK over the whole row with at most WG dead latents (the usual case): rank_row alone, in an entry
// point with no barrier and no workgroup memory. SwiftShader runs the workgroups of an entry point that
// has barriers as coroutines, each with its own stack and workgroup memory: the bitonic entry cost
// 176 ms at B = 1024, kAux = 384 with 20 dead latents, this one 10 ms (bench, one run). The step
// dispatches all three AuxK entries; compact_dead (dead.wgsl) writes the indirect workgroup counts of
// topk_rank_many (RANK_ONE < count ≤ RANK_MAX) and of the bitonic entry (count > RANK_MAX), 0 otherwise,
// so each row is ranked by exactly one of them.
@compute @workgroup_size(WG)
fn topk_rank(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_id) lid3: vec3<u32>) {
  let s = whole_src();
  if (s.count > RANK_ONE) { return; }
  if (AUX && s.count == 0u) {
    put_empty(wid.x * WG + lid3.x, nwg.x * WG);
    return;
  }
  let kout = kout_of();
  for (var row = wid.x; row < P.B; row += nwg.x) { {{RANK_ROW}}(s, row, lid3.x, s.count, kout); }
}

// AuxK with RANK_ONE < count ≤ RANK_MAX dead latents (software adapters: 2·WG < count ≤ 8·WG), in an
// entry point of its own: the same code in topk_rank's doubled its time at 40 dead (13 → 26 ms,
// B = 1024), the registers of the many-slot walks taken from the one-slot one; and from 65 to 128
// dead a walk per candidate is faster still (65 dead: 33 vs 55 ms).
@compute @workgroup_size(WG)
fn topk_rank_many(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_id) lid3: vec3<u32>) {
  let s = whole_src();
  if (s.count <= RANK_ONE || s.count > RANK_MAX) { return; }
  let kout = kout_of();
  for (var row = wid.x; row < P.B; row += nwg.x) { rank_row_many(s, row, lid3.x, s.count, kout); }
}

// At most RANK_ONE candidates (AuxK with few dead latents, a tile holding few of them, a small N): each
// thread ranks its candidates lid, lid + WG, … one at a time by counting the better ones — count²
// reads, no workgroup memory, no barrier — instead of a bitonic sort of a KP-wide list that is nearly
// all padding (AuxK's KP is nextPow2(kAux), 512 at the paper's kAux). The same total order (`better`),
// so the same lists; ranks from count up are padding, as the sort leaves them.
fn rank_row(s: Src, row: u32, lid: u32, count: u32, kout: u32) {
  for (var c = lid; c < count; c += WG) {
    let lat = cand_lat(s, c);
    let v = cand_val(s, row, lat);
    var rank = 0u;
    for (var u = 0u; u < count; u++) {
      let lu = cand_lat(s, u);
      rank += select(0u, 1u, better(cand_val(s, row, lu), lu, v, lat));
    }
    if (rank < kout) { put(row, rank, kout, v, lat); }
  }
  for (var j = count + lid; j < kout; j += WG) { put(row, j, kout, NEG_MAX, NONE); }
}

// rank_row over up to RANK_MAX candidates, more than RANK_ONE: lane lid's are lid + r·WG for r < RPL, held in named
// variables (topk.ts generates the lines) and ranked in one walk over the candidates, so each
// candidate's latent and value are loaded once for all of them. One walk for each power of two of
// slots up to RPL, picked outside it by the lane's slots in use, so a smaller count pays for fewer
// compares and no walk tests a slot in its loop (SwiftShader, B = 1024, kAux = 384: a walk per
// candidate cost 122 ms at 128 dead and 472 at 256; a slot test per step of the walk cost more than
// four compares without one).
fn rank_row_many(s: Src, row: u32, lid: u32, count: u32, kout: u32) {
  // This lane's slots in use (lanes of a SIMD batch differ by at most one: most batches branch alike).
  let used = min(RPL, (max(count, lid) - lid + WG - 1u) / WG);
{{RANK_SLOTS}}
  if (lid < count) {
{{RANK_COUNT}}
  }
{{RANK_PUT}}
  for (var j = count + lid; j < kout; j += WG) { put(row, j, kout, NEG_MAX, NONE); }
}

// Variant for small k (KP ≤ 64): one invocation per row keeps a sorted list of KP in private memory and
// inserts each candidate that beats the current k-th. No workgroup memory and no barriers — the
// autotuner prefers it where barriers are expensive or N per row is modest. Same order and output.
@compute @workgroup_size(64)
fn topk_insert(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  insert_rows(whole_src(), gid.x, nwg.x * 64u);
}

@compute @workgroup_size(64)
fn topk_insert_tile(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  insert_rows(tile_src(), gid.x, nwg.x * 64u);
}

fn insert_rows(s: Src, start: u32, step: u32) {
  let count = s.count;
  let kout = kout_of();
  for (var row = start; row < P.B; row += step) {
    var lv: array<f32, KP>;
    var li: array<u32, KP>;
    for (var j = 0u; j < KP; j++) { lv[j] = NEG_MAX; li[j] = NONE; }
    // The entry a candidate must beat (rank kout − 1), held in registers: most candidates stop at
    // this one test, and a dynamically indexed private array lives in memory on CPU backends.
    var cutV = NEG_MAX;
    var cutI = NONE;
    for (var t = 0u; t < count; t++) {
      let lat = cand_lat(s, t);
      let v = cand_val(s, row, lat);
      if (!better(v, lat, cutV, cutI)) { continue; }
      list_insert(&lv, &li, kout, v, lat);
      cutV = lv[kout - 1u];
      cutI = li[kout - 1u];
    }
    for (var j = 0u; j < kout; j++) { put(row, j, kout, lv[j], li[j]); }
  }
}
