// Appended to topk.wgsl's module (its bindings, StepParams, better, cand_val, put) for the 'chunked'
// variant: topk_insert over whole rows (not AUX, not TILED) in two passes over CH-wide chunks of
// latents. On SwiftShader the lanes of a SIMD group are rows, and a latent costs its insertion test
// more than its load: a scan that only took maxima ran 4.5× faster than the insertion scan
// (B = 4096, N = 1024, k = 8).
//  1. The best kout chunks by (maximum desc, chunk asc) over the N/CH chunk maxima (chunk_max scans
//     pre; 'chunkmax' reads the encoder's, topk-chunk-max.wgsl), in KP named slots kept sorted
//     without a branch: groups of up to 16 maxima sorted by a network, each merged into the slots by
//     a bitonic merge (topk.ts chunkStep1Net writes the lines; chunkStep1, each maximum passing down
//     the slots, is the form the tests compare it with); t = the kout-th one's maximum (NEG_MAX while
//     fewer than kout chunks exist).
//  2. The latents ≥ t of those chunks, appended without a branch and ranked by counting; with 2·KP or
//     more of them (ties at t, heavy chunks), topk_insert's scan over those chunks instead.
// The same lists: a latent v of a chunk c outside those kout is beaten by each of their maxima (larger
// than c's, which is ≥ v; or equal, from a lower chunk, so at a lower index), so kout latents beat v;
// and no latent below t can be in the result, which those kout maxima would fill.
// Why step 1 has no branch (said of the chain; the networks keep it): with the rows of a SIMD batch in its lanes, an insertion under a branch
// ran whenever any lane's chunk beat its list, each time as masked gathers and scatters into arrays
// indexed by the loop; the compare-exchanges do KP steps a chunk for every lane but only in
// registers (SwiftShader, alternating in one process: the TopK 13.1–13.7 → 9.3–9.5 ms at B = 4096,
// N = 1024, k = 8; 29.7–30.7 → 25.8–27.5 ms at B = 1024, N = 4096, k = 32). Step 2 keeps its arrays:
// both lists in named slots under the branch were slower (1.0× at k = 8, 2× at k = 32).
const CH: u32 = {{CH}}u;
// V4 (N and CH multiples of 4): the chunk maxima read pre as vec4 (binding 7, the same buffer), a
// quarter of the loads; the maxima are exact either way, so the lists do not change.
const V4: bool = {{V4}};
@group(0) @binding(7) var<storage, read> pre4: array<vec4<f32>>;

// Writes the best kout of the n < 2·KP candidates in order: each ranked by counting the better ones;
// ranks ≥ n are padding.
fn rank_count(row: u32, kout: u32, n: u32, cv: ptr<function, array<f32, 2 * KP>>,
              ci: ptr<function, array<u32, 2 * KP>>) {
  for (var a = 0u; a < n; a++) {
    var rank = 0u;
    for (var b = 0u; b < n; b++) { rank += select(0u, 1u, better((*cv)[b], (*ci)[b], (*cv)[a], (*ci)[a])); }
    if (rank < kout) { put(row, rank, kout, (*cv)[a], (*ci)[a]); }
  }
  for (var j = n; j < kout; j++) { put(row, j, kout, NEG_MAX, NONE); }
}
{{RANK_NET}}
// The largest value of latents [c0, min(c0 + CH, count)) of a row (NaN and -inf as NEG_MAX).
fn chunk_max(s: Src, row: u32, c0: u32) -> f32 {
  let c1 = min(c0 + CH, s.count);
  if (V4) {
    var m4 = vec4<f32>(NEG_MAX);
    for (var q = (row * s.stride + c0) / 4u; q < (row * s.stride + c1) / 4u; q++) {
      let v = pre4[q];
      let nan = (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
      m4 = max(m4, select(v, vec4<f32>(NEG_MAX), nan));
    }
    return max(max(m4.x, m4.y), max(m4.z, m4.w));
  }
  var m = NEG_MAX;
  for (var c = c0; c < c1; c++) { m = max(m, cand_val(s, row, c)); }
  return m;
}

@compute @workgroup_size(64)
fn topk_insert_chunked(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let s = whole_src();
  let count = s.count;
  let kout = kout_of();
  for (var row = gid.x; row < P.B; row += nwg.x * 64u) {
{{STEP1}}
    // The latents ≥ t of those chunks, appended without a branch: every latent is written at slot n, and
    // kept by counting it. The last slot takes every later write, so it holds a kept latent only
    // while n < 2·KP: the ranking below needs n < 2·KP.
    var cv: array<f32, 2 * KP>;
    var ci: array<u32, 2 * KP>;
    var n = 0u;
    for (var u = 0u; u < kout; u++) {
      let c0 = mc[u];
      if (c0 == NONE) { break; }
      for (var lat = c0; lat < min(c0 + CH, count); lat++) {
        let v = cand_val(s, row, lat);
        let slot = min(n, 2u * KP - 1u);
        cv[slot] = v;
        ci[slot] = lat;
        n += select(0u, 1u, v >= t);
      }
    }
    if (n < 2u * KP) {
      {{RANK}}(row, kout, n, &cv, &ci);
      continue;
    }
    // 2·KP or more latents ≥ t (ties at t, or heavy chunks): the insertion over the chunks.
    var lv: array<f32, KP>;
    var li: array<u32, KP>;
    for (var j = 0u; j < KP; j++) { lv[j] = NEG_MAX; li[j] = NONE; }
    var cutV = NEG_MAX;
    var cutI = NONE;
    for (var u = 0u; u < kout; u++) {
      let c0 = mc[u];
      if (c0 == NONE) { break; }
      for (var lat = c0; lat < min(c0 + CH, count); lat++) {
        let v = cand_val(s, row, lat);
        if (v < t || !better(v, lat, cutV, cutI)) { continue; }
        list_insert(&lv, &li, kout, v, lat);
        cutV = lv[kout - 1u];
        cutI = li[kout - 1u];
      }
    }
    for (var j = 0u; j < kout; j++) { put(row, j, kout, lv[j], li[j]); }
  }
}
