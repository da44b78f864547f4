// Appended to grad-latent.wgsl's module (its bindings, row_of, S, P) as the software form of gv_v4
// (one level: g is [B, d]). A thread takes four consecutive entries of one row's list — ranks
// j0..j0+3 of the main or the AuxK entries — and reads g's row once per column group for the four
// dot products (gv_v4 reads it once per entry: 8 vec4 loads per 4 products here 5). Each entry's sum
// is gv_v4's: the same products in column order, then (x + y) + (z + w), so the same bits.

fn gv4_mine(e: u32, ok: bool) -> bool {
  let i = idx_all[e];
  return ok && i < P.N && val_all[e] > 0.0 && i >= S.lat0 && i - S.lat0 < S.n;
}

// Entry e of the group (ok: e exists) after its sum `a`: written by its latent's shard, or zeroed by
// the first shard when inactive, as gv_entry does.
fn gv4_put(e: u32, ok: bool, mine: bool, a: vec4<f32>) {
  if (!ok) { return; }
  if (mine) {
    gv_all[e] = (a.x + a.y) + (a.z + a.w);
    return;
  }
  let i = idx_all[e];
  if (!(i < P.N && val_all[e] > 0.0) && S.first != 0u) { gv_all[e] = 0.0; }
}

@compute @workgroup_size(WG)
fn gv_v4_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let gk = (P.k + 3u) / 4u;
  let ga = (P.kAux + 3u) / 4u;
  let nMain = P.B * gk;
  let d4 = P.d / 4u;
  for (var t = gid.x; t < nMain + P.B * ga; t += nwg.x * WG) {
    // The group's first entry e0, its row and the entries it holds (n ≤ 4: a row's last group may be short).
    var e0: u32;
    var row: u32;
    var n: u32;
    let aux = t >= nMain;
    if (!aux) {
      row = t / gk;
      let j0 = (t % gk) * 4u;
      e0 = row * P.k + j0;
      n = min(4u, P.k - j0);
    } else {
      row = (t - nMain) / ga;
      let j0 = ((t - nMain) % ga) * 4u;
      e0 = P.B * P.k + row * P.kAux + j0;
      n = min(4u, P.kAux - j0);
      // A row's AuxK entries come first and its padding (NONE) after, and nothing reads a padding
      // entry's gv (the sort's walk stops at a row's first padding, and the sums read the sorted
      // lists): a group that starts in the padding is left alone. With few or no dead latents that
      // is most of the groups (SwiftShader, d = 64, none dead: each such group was 16 loads and stores).
      if (idx_all[e0] >= P.N) { continue; }
    }
    let m0 = gv4_mine(e0, true);
    let m1 = gv4_mine(min(e0 + 1u, e0 + n - 1u), n > 1u);
    let m2 = gv4_mine(min(e0 + 2u, e0 + n - 1u), n > 2u);
    let m3 = gv4_mine(min(e0 + 3u, e0 + n - 1u), n > 3u);
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    if (m0 || m1 || m2 || m3) {
      // An entry that is not this shard's reads the shard's row 0 and its sum is dropped.
      let w0 = select(0u, (idx_all[e0] - S.lat0) * d4, m0);
      let w1 = select(0u, (idx_all[min(e0 + 1u, e0 + n - 1u)] - S.lat0) * d4, m1);
      let w2 = select(0u, (idx_all[min(e0 + 2u, e0 + n - 1u)] - S.lat0) * d4, m2);
      let w3 = select(0u, (idx_all[min(e0 + 3u, e0 + n - 1u)] - S.lat0) * d4, m3);
      let go = row * d4;
      if (aux) {
        for (var c = 0u; c < d4; c++) {
          let gr = g_aux4[go + c];
          a0 += W_dec4[w0 + c] * gr;
          a1 += W_dec4[w1 + c] * gr;
          a2 += W_dec4[w2 + c] * gr;
          a3 += W_dec4[w3 + c] * gr;
        }
      } else {
        for (var c = 0u; c < d4; c++) {
          let gr = g4[go + c];
          a0 += W_dec4[w0 + c] * gr;
          a1 += W_dec4[w1 + c] * gr;
          a2 += W_dec4[w2 + c] * gr;
          a3 += W_dec4[w3 + c] * gr;
        }
      }
    }
    gv4_put(e0, true, m0, a0);
    gv4_put(e0 + 1u, n > 1u, m1, a1);
    gv4_put(e0 + 2u, n > 2u, m2, a2);
    gv4_put(e0 + 3u, n > 3u, m3, a3);
  }
}
