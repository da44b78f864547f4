// Stable sort of the step's (latent, entry) pairs into per-latent lists (CSC), so that per-latent
// gradient sums need no float atomics and are deterministic.
// Entries: e in [0, B·k) are main TopK pairs (row e / k); e in [B·k, B·(k+kAux)) are AuxK pairs.
// Canonical order inside a latent's list: by row, main before aux — key = 2·row + isAux, which is
// unique per latent because a row selects a latent at most once in each TopK.
//   sort_count   one thread per entry: counts[latent]++ (integer atomics: order-free)
//   sort_scan    one workgroup: start = exclusive scan(counts), cursor = start, counts reset to 0;
//                latents with more than SHORT entries are listed in long_list
//   sort_scatter one thread per entry: unordered[atomicAdd(cursor[latent])] = e
//   sort_order_short  one thread per latent with at most SHORT entries: rank by counting smaller keys
//   sort_order_long   one workgroup per listed latent: bitmap of keys → rank → rows[start + rank] = e
// Entries whose value is not positive are left out of the lists (latent_of).
// Row-block form (software adapters, where sort_order_long's barriers are expensive): a stable
// counting sort that needs no ordering pass. The rows are cut into G blocks; one thread per block
// walks its entries in the canonical order (row by row, main before aux):
//   sort_block_count   one thread per block: blocks[g, latent] += 1                  E
//   sort_block_scan    one thread per latent: blocks[g, i] ← Σ_{g' < g} (touched cells only), counts[i] ← total   G·N
//   sort_scan          as above: start, counts reset, long_list
//   sort_block_scatter one thread per block: rows[start[i] + blocks[g, i]++] = e, then its cells back to 0   E
// Each latent's list is block 0's entries, then block 1's, …, each block's in its walk order: exactly
// the canonical order, so both forms write the same rows. blocks is all zero between steps.
// Why two orderings: at large N nearly every list is short (B·(k+kAux)/N entries on average), and a
// workgroup per latent cost N barriers per step (1.3 s of a 6.3 s step at N = 16384 on SwiftShader).

const WG: u32 = 64u;
const WORDS: u32 = {{WORDS}}u;   // ceil(2·B / 32): bitmap words per latent
const SHORT: u32 = {{SHORT}}u;   // longest list one thread orders alone (O(n²) key reads)

@group(0) @binding(0) var<storage, read> idx_all: array<u32>;               // [B·(k+kAux)]
@group(0) @binding(1) var<storage, read_write> counts: array<atomic<u32>>;   // [N]
@group(0) @binding(2) var<storage, read_write> start: array<u32>;            // [N + 1]
@group(0) @binding(3) var<storage, read_write> cursor: array<atomic<u32>>;   // [N]
@group(0) @binding(4) var<storage, read_write> unordered: array<u32>;        // [B·(k+kAux)]
@group(0) @binding(5) var<storage, read_write> rows: array<u32>;             // [B·(k+kAux)]
@group(0) @binding(6) var<uniform> P: StepParams;
@group(0) @binding(7) var<storage, read_write> long_list: array<atomic<u32>>; // [1 + ⌊E/(SHORT+1)⌋]: count, latents
@group(0) @binding(8) var<storage, read_write> blocks: array<u32>;           // [G, N] (row-block form)

@group(0) @binding(9) var<storage, read> val_all: array<f32>;              // [B·(k+kAux)]

// Entry e's latent, or NONE where e is padding or its value is not positive (a ReLU'd 0, or NaN): such
// an entry adds exactly ±0 to every per-latent sum (v·g, gv·(x − b_pre) with gv = 0, gv), and an
// accumulator that starts at +0 never holds −0, so leaving it out of the lists changes no bit and
// saves the sums its row reads (AuxK among dead latents, whose pre-activations are mostly ≤ 0).
// A row's TopK and AuxK entries are ranked best first, so after its first such AuxK entry the rest
// are such entries or padding.
fn latent_of(e: u32) -> u32 { return select(NONE, idx_all[e], val_all[e] > 0.0); }

fn key_of(e: u32) -> u32 {
  let nMain = P.B * P.k;
  if (e < nMain) { return 2u * div_rows(e, P.k); }
  return 2u * div_rows(e - nMain, P.kAux) + 1u;
}

// key_of(a) < key_of(b) for two entries of one latent. A row holds a latent at most once per kind
// (main or AuxK), so within a kind the order of the keys is the order of the entries: no division.
fn key_less(a: u32, b: u32) -> bool {
  let nMain = P.B * P.k;
  if ((a < nMain) == (b < nMain)) { return a < b; }
  return key_of(a) < key_of(b);
}

fn n_entries() -> u32 { return P.B * (P.k + P.kAux); }

@compute @workgroup_size(WG)
fn sort_count(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (gid.x == 0u) { atomicStore(&long_list[0], 0u); }
  for (var e = gid.x; e < n_entries(); e += nwg.x * WG) {
    let i = latent_of(e);
    if (i < P.N) { atomicAdd(&counts[i], 1u); }
  }
}

var<workgroup> part: array<u32, WG>;

/** Exclusive prefix of v over the workgroup (Hillis–Steele); part[WG − 1] holds the total after. */
fn scan_part(lid: u32, v: u32) -> u32 {
  part[lid] = v;
  workgroupBarrier();
  for (var off = 1u; off < WG; off <<= 1u) {
    var add = 0u;
    if (lid >= off) { add = part[lid - off]; }
    workgroupBarrier();
    part[lid] += add;
    workgroupBarrier();
  }
  return part[lid] - v;
}

@compute @workgroup_size(WG)
fn sort_scan(@builtin(local_invocation_id) lid: vec3<u32>) {
  let per = (P.N + WG - 1u) / WG;
  let lo = min(lid.x * per, P.N);
  let hi = min(lo + per, P.N);
  var n = 0u;
  for (var i = lo; i < hi; i++) { n += atomicLoad(&counts[i]); }
  var pos = scan_part(lid.x, n);
  for (var i = lo; i < hi; i++) {
    let c = atomicLoad(&counts[i]);
    start[i] = pos;
    atomicStore(&cursor[i], pos);
    pos += c;
    atomicStore(&counts[i], 0u);   // ready for the next step without a clear
    // The order of long_list is free: each listed latent is ordered on its own.
    if (c > SHORT) { atomicStore(&long_list[1u + atomicAdd(&long_list[0], 1u)], i); }
  }
  if (lid.x == WG - 1u) { start[P.N] = part[WG - 1u]; }
}

@compute @workgroup_size(WG)
fn sort_scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var e = gid.x; e < n_entries(); e += nwg.x * WG) {
    let i = latent_of(e);
    if (i < P.N) { unordered[atomicAdd(&cursor[i], 1u)] = e; }
  }
}

var<workgroup> bits: array<atomic<u32>, WORDS>;
var<workgroup> prefix: array<u32, WORDS>;

@compute @workgroup_size(WG)
fn sort_order_short(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < P.N; i += nwg.x * WG) {
    let s = start[i];
    let n = start[i + 1u] - s;
    if (n > SHORT) { continue; }
    for (var t = 0u; t < n; t++) {
      let e = unordered[s + t];
      var rank = 0u;
      for (var u = 0u; u < n; u++) { rank += select(0u, 1u, key_less(unordered[s + u], e)); }
      rows[s + rank] = e;
    }
  }
}

var<workgroup> n_long: u32;

@compute @workgroup_size(WG)
fn sort_order_long(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
  if (lid.x == 0u) { n_long = atomicLoad(&long_list[0]); }
  let count = workgroupUniformLoad(&n_long);
  for (var j = wid.x; j < count; j += nwg.x) { order_latent(atomicLoad(&long_list[1u + j]), lid); }
}

var<workgroup> seg: vec2<u32>;

fn order_latent(i: u32, lid: vec3<u32>) {
  // start is read_write in this file, so its loads are not provably uniform: broadcast them.
  if (lid.x == 0u) { seg = vec2<u32>(start[i], start[i + 1u] - start[i]); }
  let sn = workgroupUniformLoad(&seg);
  workgroupBarrier();   // nobody may overwrite seg for the next latent before all have read it
  let s = sn.x;
  let n = sn.y;
  if (n <= WG) {
    // Short lists (most latents): rank by counting smaller keys, one entry per thread, no barriers.
    if (lid.x < n) {
      let e = unordered[s + lid.x];
      var rank = 0u;
      for (var t = 0u; t < n; t++) { rank += select(0u, 1u, key_less(unordered[s + t], e)); }
      rows[s + rank] = e;
    }
    return;
  }
  let words = (2u * P.B + 31u) / 32u;
  for (var w = lid.x; w < words; w += WG) { atomicStore(&bits[w], 0u); }
  workgroupBarrier();
  for (var t = lid.x; t < n; t += WG) {
    let key = key_of(unordered[s + t]);
    atomicOr(&bits[key >> 5u], 1u << (key & 31u));
  }
  workgroupBarrier();
  // Exclusive prefix of popcounts over the words: each thread a contiguous run, then a scan of runs.
  let per = (words + WG - 1u) / WG;
  let lo = min(lid.x * per, words);
  let hi = min(lo + per, words);
  var cnt = 0u;
  for (var w = lo; w < hi; w++) { cnt += countOneBits(atomicLoad(&bits[w])); }
  var run = scan_part(lid.x, cnt);
  for (var w = lo; w < hi; w++) {
    prefix[w] = run;
    run += countOneBits(atomicLoad(&bits[w]));
  }
  workgroupBarrier();
  for (var t = lid.x; t < n; t += WG) {
    let e = unordered[s + t];
    let key = key_of(e);
    let below = atomicLoad(&bits[key >> 5u]) & ((1u << (key & 31u)) - 1u);
    rows[s + prefix[key >> 5u] + countOneBits(below)] = e;
  }
}

// ---- Row-block form ----
const G: u32 = {{G}}u;   // row blocks
const BWG: u32 = 16u;

// The rows of block g: [g·⌈B/G⌉, (g + 1)·⌈B/G⌉) within B.
fn block_rows(g: u32) -> vec2<u32> {
  let per = (P.B + G - 1u) / G;
  return vec2<u32>(min(g * per, P.B), min((g + 1u) * per, P.B));
}

// Walks block g's entries in canonical order (row by row, main before aux; AuxK lists hold their
// entries first and padding (NONE) after, so a row's AuxK walk stops at the first padding) and on each (entry e, latent i): COUNT adds one to blocks[g, i], PLACE puts e at its
// rank and advances blocks[g, i], RESET sets blocks[g, i] back to 0.
const COUNT: u32 = 0u;
const PLACE: u32 = 1u;
const RESET: u32 = 2u;

fn walk_block(g: u32, op: u32) {
  let r = block_rows(g);
  let nMain = P.B * P.k;
  for (var row = r.x; row < r.y; row++) {
    for (var j = 0u; j < P.k; j++) {
      let e = row * P.k + j;
      let i = latent_of(e);
      if (i < P.N) { visit(g, i, e, op); }
    }
    for (var j = 0u; j < P.kAux; j++) {
      let e = nMain + row * P.kAux + j;
      let i = latent_of(e);
      if (i >= P.N) { break; }
      visit(g, i, e, op);
    }
  }
}

fn visit(g: u32, i: u32, e: u32, op: u32) {
  let o = g * P.N + i;
  if (op == PLACE) { rows[start[i] + blocks[o]] = e; }
  blocks[o] = select(blocks[o] + 1u, 0u, op == RESET);
}

@compute @workgroup_size(BWG)
fn sort_block_count(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x < G) { walk_block(gid.x, COUNT); }
}

@compute @workgroup_size(WG)
fn sort_block_scan(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (gid.x == 0u) { atomicStore(&long_list[0], 0u); }
  for (var i = gid.x; i < P.N; i += nwg.x * WG) {
    var run = 0u;
    for (var g = 0u; g < G; g++) {
      let c = blocks[g * P.N + i];
      // Untouched cells stay 0 (the scatter resets only the cells its block touched).
      if (c != 0u) { blocks[g * P.N + i] = run; }
      run += c;
    }
    atomicStore(&counts[i], run);
  }
}

@compute @workgroup_size(BWG)
fn sort_block_scatter(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= G) { return; }
  walk_block(gid.x, PLACE);
  // Back to zero for the next step: the cells this block touched, and no other.
  walk_block(gid.x, RESET);
}
