// TopK per row of pre [B, N] by bitonic networks in workgroup memory.
// Keeps a running best list of KP (= next power of two ≥ k) entries; each tile of T pre-activations is
// cut into KP-long chunks, each chunk sorted descending, then chunks are merged pairwise keeping the
// better half (bitonic top-k), and the tile's top KP is merged into the best list. Order: larger value
// first, ties to the lower latent index, NaN as -inf — a total order, so the result is deterministic.
// AUX mode (AuxK): candidates are only the dead latents, read through dead_list[0..dead_info[0]).
// MULTI mode (Multi-TopK): the top k + kAux of each row; ranks < k go to the main rows, the rest to the
// AuxK region (so the decoder and the gradient see "main" = top-k, "aux" = ranks k..k+kAux−1).
// Out: out_idx/out_val, rows of KOUT at offset 0 (main) or B·k (AUX), with val = relu(pre); NONE index where fewer candidates than KOUT.

override AUX: bool = false;
override MULTI: bool = false;
const KP: u32 = {{KP}}u;
const T: u32 = {{T}}u;
const WG: u32 = {{WG}}u;
const NEG_MAX: f32 = -3.4028234e38;   // padding and NaN sort below every finite value
const PER_THREAD: u32 = {{PER_THREAD}}u;  // max(1, T / 2 / WG): winners a thread holds during a merge

@group(0) @binding(0) var<storage, read> pre: array<f32>;
@group(0) @binding(1) var<storage, read> dead_list: array<u32>;
@group(0) @binding(2) var<storage, read> dead_info: array<u32>;
@group(0) @binding(3) var<storage, read_write> out_idx: array<u32>;
@group(0) @binding(4) var<storage, read_write> out_val: array<f32>;
@group(0) @binding(5) var<uniform> P: StepParams;

var<workgroup> bv: array<f32, KP>;
var<workgroup> bi: array<u32, KP>;
var<workgroup> tv: array<f32, T>;
var<workgroup> ti: array<u32, T>;

// Entry slot of rank j of a row.
fn out_slot(row: u32, j: u32, kout: u32) -> u32 {
  if (MULTI) {
    if (j < P.k) { return row * P.k + j; }
    return P.B * P.k + row * P.kAux + (j - P.k);
  }
  // Main pairs fill [0, B·k) of the shared entry arrays, AuxK pairs [B·k, B·(k+kAux)).
  return select(0u, P.B * P.k, AUX) + row * kout + j;
}

fn better(av: f32, ai: u32, cv: f32, ci: u32) -> bool {
  return av > cv || (av == cv && ai < ci);
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
  if (AUX && select(0u, dead_info[0], (P.flags & FLAG_AUXK) != 0u) == 0u) {
    // No dead latents (the common case early in training): no candidates, no barriers.
    for (var o = wid.x * WG + lid3.x; o < P.B * P.kAux; o += nwg.x * WG) {
      out_idx[P.B * P.k + o] = NONE;
      out_val[P.B * P.k + o] = 0.0;
    }
    return;
  }
  for (var row = wid.x; row < P.B; row += nwg.x) { topk_row(row, lid3.x); }
}

fn topk_row(row: u32, lid: u32) {
  var count = P.N;
  var kout = select(P.k, P.k + P.kAux, MULTI);
  if (AUX) {
    count = select(0u, dead_info[0], (P.flags & FLAG_AUXK) != 0u);
    kout = P.kAux;
  }
  workgroupBarrier();   // the previous row's output loop may still read bv/bi
  for (var i = lid; i < KP; i += WG) { bv[i] = NEG_MAX; bi[i] = NONE; }
  let base = row * P.N;

  for (var t0 = 0u; t0 < count; t0 += T) {
    for (var i = lid; i < T; i += WG) {
      let t = t0 + i;
      var v = NEG_MAX;
      var lat = NONE;
      if (t < count) {
        lat = select(t, dead_list[t], AUX);
        v = pre[base + lat];
        // NaN (checked on the bits: compilers may fold v != v) and -inf sort as NEG_MAX.
        if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) { v = NEG_MAX; }
        v = max(v, NEG_MAX);
      }
      tv[i] = v;
      ti[i] = lat;
    }
    workgroupBarrier();
    // Phase A: sort every KP-chunk descending (bitonic sort; direction from the bit within the chunk).
    for (var size = 2u; size <= KP; size <<= 1u) {
      for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
        for (var p = lid; p < T / 2u; p += WG) {
          let i = 2u * stride * (p / stride) + (p % stride);
          cx_tile(i, i + stride, ((i & (KP - 1u)) & size) == 0u);
        }
        workgroupBarrier();
      }
    }
    // Phase B: halve the tile until one chunk is left: chunk pair (2c, 2c+1) → chunk c, the better of
    // a[i] and b[KP-1-i] (a bitonic sequence holding the top KP of both), then a bitonic merge.
    for (var len = T; len > KP; len >>= 1u) {
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
  for (var j = lid; j < kout; j += WG) {
    let o = out_slot(row, j, kout);
    let lat = bi[j];
    out_idx[o] = lat;
    out_val[o] = select(0.0, max(bv[j], 0.0), lat != NONE);
  }
}

// Variant for small k (KP ≤ 64): one invocation per row keeps a sorted list of KP in private memory and
// inserts each candidate that beats the current k-th. No workgroup memory and no barriers — the
// autotuner prefers it where barriers are expensive or N per row is modest. Same order and output.
@compute @workgroup_size(64)
fn topk_insert(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  var count = P.N;
  var kout = select(P.k, P.k + P.kAux, MULTI);
  if (AUX) {
    count = select(0u, dead_info[0], (P.flags & FLAG_AUXK) != 0u);
    kout = P.kAux;
  }
  for (var row = gid.x; row < P.B; row += nwg.x * 64u) {
    var lv: array<f32, KP>;
    var li: array<u32, KP>;
    for (var j = 0u; j < KP; j++) { lv[j] = NEG_MAX; li[j] = NONE; }
    let base = row * P.N;
    for (var t = 0u; t < count; t++) {
      let lat = select(t, dead_list[t], AUX);
      var v = pre[base + lat];
      if ((bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u) { v = NEG_MAX; }
      v = max(v, NEG_MAX);
      if (!better(v, lat, lv[kout - 1u], li[kout - 1u])) { continue; }
      var j = kout - 1u;
      while (j > 0u && better(v, lat, lv[j - 1u], li[j - 1u])) {
        lv[j] = lv[j - 1u];
        li[j] = li[j - 1u];
        j--;
      }
      lv[j] = v;
      li[j] = lat;
    }
    for (var j = 0u; j < kout; j++) {
      let o = out_slot(row, j, kout);
      out_idx[o] = li[j];
      out_val[o] = select(0.0, max(lv[j], 0.0), li[j] != NONE);
    }
  }
}
