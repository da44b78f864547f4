// Running TopK over latent tiles: merges raw sorted per-row lists into a best list per row, then writes
// the step's entries. With it the step never holds pre [B, N]: for each tile, a tiled TopK
// (shaders/topk.wgsl, *_tile) or the fused encode+TopK (shaders/encode-topk.wgsl) leaves raw lists, and
//   init   best [B, K] ← (NEG_MAX, NONE)
//   merge  best ← top K of best ∪ lists[c] for c < M.C; lists laid out [C, B, K] (C = 1 for a tile list)
//   emit   best → out_idx/out_val exactly as topk.wgsl's out_slot writes (main at 0, AUX at B·k, MULTI
//          ranks < k to the main rows and the rest to the AuxK region), val = relu, 0 where NONE.
// Lists and best are sorted best-first by topk.wgsl's total order (larger value first, ties to the lower
// latent index; NaN and -inf are NEG_MAX already), values raw (not relu'd). Under a total order the top K
// of a union is the top K of the union of each part's top K, so tile by tile gives the whole-row TopK
// exactly. K = KOUT of topk.wgsl: k (main), kAux (AUX), k + kAux (MULTI), from StepParams.
// One invocation per row (merge) or per entry (init, emit): no workgroup memory, no barriers.

override AUX: bool = false;
override MULTI: bool = false;
const NEG_MAX: f32 = -3.4028234e38;
const WG: u32 = 64u;

struct MergeParams { C: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<storage, read> list_idx: array<u32>;
@group(0) @binding(1) var<storage, read> list_val: array<f32>;
@group(0) @binding(2) var<storage, read_write> best_idx: array<u32>;
@group(0) @binding(3) var<storage, read_write> best_val: array<f32>;
@group(0) @binding(4) var<storage, read_write> out_idx: array<u32>;
@group(0) @binding(5) var<storage, read_write> out_val: array<f32>;
@group(0) @binding(6) var<uniform> P: StepParams;
@group(0) @binding(7) var<uniform> M: MergeParams;

fn kout_of() -> u32 {
  if (AUX) { return P.kAux; }
  return select(P.k, P.k + P.kAux, MULTI);
}

fn better(av: f32, ai: u32, cv: f32, ci: u32) -> bool {
  // | and & (not || and &&): no branch in the hot ranking loops, the same truth value.
  return (av > cv) | ((av == cv) & (ai < ci));
}

// As topk.wgsl.
fn out_slot(row: u32, j: u32, kout: u32) -> u32 {
  if (MULTI) {
    if (j < P.k) { return row * P.k + j; }
    return P.B * P.k + row * P.kAux + (j - P.k);
  }
  return select(0u, P.B * P.k, AUX) + row * kout + j;
}

@compute @workgroup_size(WG)
fn merge_init(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let K = kout_of();
  for (var o = gid.x; o < P.B * K; o += nwg.x * WG) {
    best_idx[o] = NONE;
    best_val[o] = NEG_MAX;
  }
}

@compute @workgroup_size(WG)
fn merge_lists(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let K = kout_of();
  for (var row = gid.x; row < P.B; row += nwg.x * WG) {
    for (var c = 0u; c < M.C; c++) { merge_one(row * K, (c * P.B + row) * K, K); }
  }
}

// best[a0 .. a0+K) ← top K of itself ∪ list[l0 .. l0+K), in place. The merged order puts best first on
// ties (only (NEG_MAX, NONE) padding can tie: latents are distinct). a = how many of best stay: the
// smallest m with L[K-1-m] strictly better than A[m] (then the K−m entries L[0..K−m) all beat A[m]).
// Then a backward merge from position K−1: it writes at i + l − 1 ≥ i − 1, never over an unread A entry.
fn merge_one(a0: u32, l0: u32, K: u32) {
  // Most lists change nothing once best is full: skip when the list's head does not beat best's tail.
  if (!better(list_val[l0], list_idx[l0], best_val[a0 + K - 1u], best_idx[a0 + K - 1u])) { return; }
  var lo = 0u;
  var hi = K;
  while (lo < hi) {
    let m = (lo + hi) >> 1u;
    let lj = l0 + K - 1u - m;
    if (better(list_val[lj], list_idx[lj], best_val[a0 + m], best_idx[a0 + m])) { hi = m; } else { lo = m + 1u; }
  }
  var i = lo;
  var l = K - lo;
  while (l > 0u) {
    let p = a0 + i + l - 1u;
    let lv = list_val[l0 + l - 1u];
    let li = list_idx[l0 + l - 1u];
    var takeL = i == 0u;
    if (!takeL) { takeL = !better(lv, li, best_val[a0 + i - 1u], best_idx[a0 + i - 1u]); }
    if (takeL) {
      best_val[p] = lv;
      best_idx[p] = li;
      l--;
    } else {
      best_val[p] = best_val[a0 + i - 1u];
      best_idx[p] = best_idx[a0 + i - 1u];
      i--;
    }
  }
}

@compute @workgroup_size(WG)
fn merge_emit(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let K = kout_of();
  for (var o = gid.x; o < P.B * K; o += nwg.x * WG) {
    let row = o / K;
    let j = o - row * K;
    let lat = best_idx[o];
    let s = out_slot(row, j, K);
    out_idx[s] = lat;
    out_val[s] = select(0.0, max(best_val[o], 0.0), lat != NONE);
  }
}
