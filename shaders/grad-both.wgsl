// Appended after grad-reg.wgsl (its RegItem, reg_item, TPL and generated lines) where a latent's TPL = 4
// threads are one quad of lanes (the device has 'subgroups', subgroups of 4 or more lanes: grad.ts) and
// gv is formed in the walk (d ≤ 768): both sums in one walk over each latent's list. Each thread forms
// its part of gv as grad_dec_reg does; quadBroadcast hands every thread the quad's four parts, added
// in part order from +0 as grad_enc_reg adds gv_part, so gv, and every sum after it, keeps its bits.
// AuxK's entries read the loss's copy of g_aux after g's levels (plan.ts gAuxTail): one binding and
// no branch between the two sources (a branch over the named sums cost more than the walk saved).
// gv_all is not written: nothing on this path reads it, and its binding would be an eleventh, over
// SwiftShader's 10 storage buffers a stage.
// Why: each entry's list slot, row, value and offsets are read once instead of twice, and gv_part is
// neither written nor read (SwiftShader, alternating with the two walks in one process: the sums
// 14–16 → 8.5–9.5 ms at d = 64, B = 4096, k = 8; 240–314 → 175–227 ms at d = 768, B = 1024, k = 32,
// 67 latents dead).
enable subgroups;
// The quad's threads take the same branches (the comment in the loop), which the analysis cannot see.
diagnostic(off, subgroup_uniformity);

// Where g holds the loss's copy of g_aux (vec4s): after its G·B·d level rows (plan.ts gAuxTail).
const AUX_TAIL4: u32 = {{AUX_TAIL4}}u;

@compute @workgroup_size(64)
fn grad_both_reg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let d4 = P.d / 4u;
  for (var t = gid.x; t < S.n * TPL; t += nwg.x * 64u) {
    // Uniform across the quad: its four threads share a latent, its list and every branch below.
    let it = reg_item(t);
    if (it.n > LONG) { continue; }
    let q = it.q;
    let gs4 = g_slice(it.i) / 4u;
{{REG_COLS}}
{{REG_BP}}
{{REG_ZERO}}
{{REG_ZERO_B}}
{{REG_W}}
    var acc0 = 0.0;
    for (var u = 0u; u < it.n; u++) {
      let e = rows[it.s + u];
      let r = row_of(e);
      let v = val_all[e];
      // An AuxK entry reads the loss's copy of its g_aux row after g's levels: one binding, no branch.
      let o = r.x * d4;
      let og = select(gs4, AUX_TAIL4, r.y == 1u) + o;
      var p = vec4<f32>(0.0);
{{REG_DEC_MAIN}}
      let part = (p.x + p.y) + (p.z + p.w);
      let gv = (((0.0 + quadBroadcast(part, 0u)) + quadBroadcast(part, 1u)) + quadBroadcast(part, 2u)) +
        quadBroadcast(part, 3u);
      acc0 += gv;
{{REG_ENC_B}}
    }
    let w = it.il * d4;
{{REG_STORE_DEC}}
{{REG_STORE_ENC_B}}
    if (q == 0u) { db_enc[it.i] = acc0; }
  }
}
