// Appended to topk.wgsl's module (its Src, cand_lat, cand_val, better, put) where the device has quads
// of lanes (kernel.ts quadForms): rank_row with each quad of lanes loading 4 candidates at once and
// handing them round with quadBroadcast, so a lane's count over the candidates loads a quarter as
// often. The same counts of better candidates in the same total order, so the same lists.
// Why: in rank_row every lane loads each candidate's latent and value itself, and the lanes of a
// SIMD batch load the same ones: on SwiftShader each such load is a gather (AuxK with 67 dead
// latents, B = 1024: most of a 33 ms TopK).
enable subgroups;
// A quad's lanes walk the candidates in step (their rounds start at the quad's first lane and every
// bound is uniform), which the analysis cannot see.
diagnostic(off, subgroup_uniformity);

fn rank_row_quad(s: Src, row: u32, lid: u32, count: u32, kout: u32) {
  let q = lid & 3u;
  for (var c0 = lid - q; c0 < count; c0 += WG) {
    let c = c0 + q;
    let live = c < count;
    let lat = cand_lat(s, min(c, count - 1u));
    let v = cand_val(s, row, lat);
    var rank = 0u;
    for (var u0 = 0u; u0 < count; u0 += 4u) {
      let lu = cand_lat(s, min(u0 + q, count - 1u));
      let vu = cand_val(s, row, lu);
{{RANK_QUAD}}
    }
    if (live && rank < kout) { put(row, rank, kout, v, lat); }
  }
  for (var j = count + lid; j < kout; j += WG) { put(row, j, kout, NEG_MAX, NONE); }
}
