// Appended to grad-latent.wgsl's module (its bindings, row_of, g_slice, S, P, LONG) where long lists
// get their own sums (grad.ts `split`, the GPU forms).
// Long lists (more than LONG entries; the sort lists their latents in long_list): a workgroup per
// (listed latent, slab of LQ vec4 columns), so a dead latent's B-entry AuxK list is not one thread's
// serial walk. LP partitions each sum the entries t ≡ p (mod LP) in list order, then a fixed tree adds
// the partitions: the sums depend only on the list, so sharding and tiling do not change them. The
// workgroup's control flow depends only on uniform values, as its barriers require.
const LQ: u32 = 16u;
const LP: u32 = 16u;
@group(0) @binding(24) var<storage, read> long_list: array<u32>;   // [1 + ...]: count, latents
var<workgroup> lred: array<vec4<f32>, 256>;   // [LP, LQ]
var<workgroup> lsum: array<f32, 16>;          // [LP]: Σ gv per partition (db_enc)
var<workgroup> n_long: u32;

// Listed latent j: its index, whether this shard holds it, and its list [s, s + n) (n = 0 if not).
struct LongLatent { i: u32, mine: bool, s: u32, n: u32 }

fn long_latent(j: u32) -> LongLatent {
  let i = long_list[1u + j];
  let mine = i >= S.lat0 && i - S.lat0 < S.n;
  let s = start[i];
  return LongLatent(i, mine, s, select(0u, start[i + 1u] - s, mine));
}

// How many latents are listed, read by one lane and made uniform for the barriers below.
fn long_count(lid: u32) -> u32 {
  if (lid == 0u) { n_long = long_list[0]; }
  return workgroupUniformLoad(&n_long);
}

// The fixed tree over the LP partitions of lred (partition p at lred[p·LQ + q]); lred[q] holds the sum.
fn reduce_partitions(p: u32, li: u32) {
  for (var h = LP / 2u; h > 0u; h >>= 1u) {
    if (p < h) { lred[li] += lred[li + h * LQ]; }
    workgroupBarrier();
  }
}

@compute @workgroup_size(256)
fn grad_long_dec_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
  let d4 = P.d / 4u;
  let q = lid.x % LQ;
  let p = lid.x / LQ;
  let c = wid.y * LQ + q;
  let count = long_count(lid.x);
  for (var j = wid.x; j < count; j += nwg.x) {
    let L = long_latent(j);
    let i = L.i;
    let mine = L.mine;
    let s = L.s;
    let n = select(0u, L.n, c < d4);
    let gs4 = g_slice(i) / 4u;
    var acc = vec4<f32>(0.0);
    for (var t = p; t < n; t += LP) {
      let e = rows[s + t];
      let r = row_of(e);
      let v = val_all[e];
      let o = r.x * d4 + c;
      if (r.y == 1u) { acc += v * g_aux4[o]; } else { acc += v * g4[gs4 + o]; }
    }
    lred[lid.x] = acc;
    workgroupBarrier();
    reduce_partitions(p, lid.x);
    if (p == 0u && mine && c < d4) { dW_dec4[(i - S.lat0) * d4 + c] = lred[q]; }
    workgroupBarrier();
  }
}

@compute @workgroup_size(256)
fn grad_long_enc_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
  let d4 = P.d / 4u;
  let q = lid.x % LQ;
  let p = lid.x / LQ;
  let c = wid.y * LQ + q;
  let bp = b_pre4[min(c, d4 - 1u)];
  let count = long_count(lid.x);
  for (var j = wid.x; j < count; j += nwg.x) {
    let L = long_latent(j);
    let i = L.i;
    let mine = L.mine;
    let s = L.s;
    let n = L.n;
    var acc = vec4<f32>(0.0);
    var acc0 = 0.0;
    for (var t = p; t < n; t += LP) {
      let e = rows[s + t];
      let gv = gv_all[e];
      acc0 += gv;
      if (c < d4) { acc += gv * (x4[row_of(e).x * d4 + c] - bp); }
    }
    lred[lid.x] = acc;
    if (q == 0u) { lsum[p] = acc0; }
    workgroupBarrier();
    reduce_partitions(p, lid.x);
    if (p == 0u && mine && c < d4) { dW_enc4[(i - S.lat0) * d4 + c] = lred[q]; }
    // db_enc by the first slab, with the same tree over the partitions.
    if (lid.x == 0u && wid.y == 0u && mine) {
      var h0 = array<f32, 16>();
      for (var u = 0u; u < LP; u++) { h0[u] = lsum[u]; }
      for (var h = LP / 2u; h > 0u; h >>= 1u) {
        for (var u = 0u; u < h; u++) { h0[u] += h0[u + h]; }
      }
      db_enc[i] = h0[0];
    }
    workgroupBarrier();
  }
}
