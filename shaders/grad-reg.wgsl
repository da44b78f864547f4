// Appended to grad-latent.wgsl's module (its bindings, row_of, g_slice, S, P, LONG) as the software
// form of grad_dec_v4/grad_enc_v4. TPL threads per latent, thread q owning the vec4 column groups
// c = q + u·TPL (u < Q), each sum in its own named variable (grad.ts generates those lines).
// Why: SwiftShader keeps a function-scope array indexed by a loop counter in memory, and every
// access to it is a per-lane gather or scatter; the array forms paid two of those per column per
// entry beside the one load that matters. TPL is a multiple of 4 (SwiftShader's SIMD width), so a
// batch of lanes walks one latent's list in step. Each column adds its terms in list order, as the
// array forms do, so the bits are theirs.
// gv in the walk (where the plan holds gvPart: TPL ≤ 8, d ≤ 1536; kernel-variants.ts gvFusedParts):
// grad_dec_reg also forms gv's parts (grad-latent.wgsl gv_v4 gives the order): thread q holds W_dec's
// columns c_u of its latent and adds w_u · g_src[row] over its columns in order, from the same loads
// of g as the sums, then writes the part to gv_part [E, TPL]; grad_enc_reg adds an entry's TPL parts
// in order, which is gv_v4's sum, and writes it to gv_all. gv's own pass over W_dec and g (68 of a
// 1441 ms step at d = 768) goes.
@group(0) @binding(27) var<storage, read_write> gv_part: array<f32>;
const TPL: u32 = {{TPL}}u;

// Item t of a shard: latent i (il in the shard), thread q of its TPL, its list [s, s + n).
struct RegItem { il: u32, q: u32, i: u32, s: u32, n: u32 }

fn reg_item(t: u32) -> RegItem {
  let il = t / TPL;
  let i = S.lat0 + il;
  let s = start[i];
  return RegItem(il, t % TPL, i, s, start[i + 1u] - s);
}

@compute @workgroup_size(64)
fn grad_dec_reg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let d4 = P.d / 4u;
  for (var t = gid.x; t < S.n * TPL; t += nwg.x * 64u) {
    let it = reg_item(t);
    if (it.n > LONG) { continue; }
    let q = it.q;
    let gs4 = g_slice(it.i) / 4u;
{{REG_COLS}}
{{REG_ZERO}}
{{REG_W}}
    for (var u = 0u; u < it.n; u++) {
      let e = rows[it.s + u];
      let r = row_of(e);
      let v = val_all[e];
      let o = r.x * d4;
{{REG_GV_INIT}}
      if (r.y == 1u) {
{{REG_DEC_AUX}}
      } else {
        let og = gs4 + o;
{{REG_DEC_MAIN}}
      }
{{REG_GV_PUT}}
    }
    let w = it.il * d4;
{{REG_STORE_DEC}}
  }
}

@compute @workgroup_size(64)
fn grad_enc_reg(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let d4 = P.d / 4u;
  for (var t = gid.x; t < S.n * TPL; t += nwg.x * 64u) {
    let it = reg_item(t);
    if (it.n > LONG) { continue; }
    let q = it.q;
{{REG_COLS}}
{{REG_BP}}
{{REG_ZERO}}
    var acc0 = 0.0;
    for (var u = 0u; u < it.n; u++) {
      let e = rows[it.s + u];
{{REG_GV_READ}}
      acc0 += gv;
      let o = row_of(e).x * d4;
{{REG_ENC}}
    }
    let w = it.il * d4;
{{REG_STORE_ENC}}
    if (q == 0u) { db_enc[it.i] = acc0; }
  }
}
