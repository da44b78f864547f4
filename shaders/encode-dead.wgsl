// AuxK's pre-activations over latent tiles: after this step's dead-latent update, recompute
// pre[b, lat − lat0] for the dead latents lat of the tile [lat0, lat0 + n) only, so the tiled AUX TopK
// (topk.wgsl, TILED) reads the same values the untiled path keeps in [B, N]. Cost B·(dead in tile)·d:
// nothing when no latent is dead. The dead latents of the tile are a contiguous range of the ascending
// dead_list, found by binary search.
// The arithmetic is the encoder's, term for term, so the values are bit-identical to encode.wgsl:
//   encode_dead     acc += (x − b_pre)·w over c ascending, then + b_enc  (encode_naive/blocked/tiled)
//   encode_dead_v4  acc += dot(x4 − b_pre4, w4) over c/4 ascending, + b_enc  (encode_blocked_v4)
// x [B, d], W_enc the shard buffer holding the tile (row wOff + (lat − lat0)), b_enc [N] whole,
// pre the tile [B, n] (only the dead columns are written).

struct TileSizes { lat0: u32, n: u32, wOff: u32, pad: u32 }

const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> b_pre: array<f32>;
@group(0) @binding(2) var<storage, read> W_enc: array<f32>;
@group(0) @binding(3) var<storage, read> b_enc: array<f32>;
@group(0) @binding(4) var<storage, read_write> pre: array<f32>;
@group(0) @binding(5) var<storage, read> dead_list: array<u32>;
@group(0) @binding(6) var<storage, read> dead_info: array<u32>;
@group(0) @binding(7) var<uniform> P: StepParams;
@group(0) @binding(8) var<uniform> T: TileSizes;
@group(0) @binding(9) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read> b_pre4: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read> W_enc4: array<vec4<f32>>;

// First position q in dead_list[0, count) with dead_list[q] ≥ lat.
fn lower_bound(lat: u32, count: u32) -> u32 {
  var lo = 0u;
  var hi = count;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (dead_list[mid] < lat) { lo = mid + 1u; } else { hi = mid; }
  }
  return lo;
}

// Dead-list positions [q0, q1) of the tile's dead latents (empty when AuxK is off).
fn dead_range() -> vec2<u32> {
  let count = select(0u, dead_info[0], (P.flags & FLAG_AUXK) != 0u);
  if (count == 0u) { return vec2<u32>(0u, 0u); }
  return vec2<u32>(lower_bound(T.lat0, count), lower_bound(T.lat0 + T.n, count));
}

// One thread per block of 4 rows × 4 dead latents (register blocking, as the blocked encoders): x and
// W_enc are loaded once per block instead of once per output, which matters when most latents are
// dead (every latent is dead after the first step of a short run). Each output still accumulates
// its own terms in c order, so the blocking does not change a bit. Edges clamp their loads and skip
// their stores.
fn block_of(w: u32, cnt: u32) -> vec2<u32> {
  let lblocks = (cnt + 3u) / 4u;
  return vec2<u32>((w / lblocks) * 4u, (w % lblocks) * 4u);
}

fn n_blocks(cnt: u32) -> u32 { return ((P.B + 3u) / 4u) * ((cnt + 3u) / 4u); }

fn store_block(acc: array<vec4<f32>, 4>, b0: u32, q0: u32, cnt: u32, lats: vec4<u32>) {
  for (var r = 0u; r < 4u; r++) {
    let b = b0 + r;
    if (b >= P.B) { break; }
    for (var l = 0u; l < 4u; l++) {
      if (q0 + l >= cnt) { break; }
      pre[b * T.n + lats[l] - T.lat0] = acc[r][l] + b_enc[lats[l]];
    }
  }
}

fn dead_lats(q: vec2<u32>, q0: u32) -> vec4<u32> {
  let last = q.y - 1u;
  return vec4<u32>(dead_list[min(q.x + q0, last)], dead_list[min(q.x + q0 + 1u, last)],
                   dead_list[min(q.x + q0 + 2u, last)], dead_list[min(q.x + q0 + 3u, last)]);
}

@compute @workgroup_size(WG)
fn encode_dead(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let q = dead_range();
  let cnt = q.y - q.x;
  for (var w = gid.x; w < n_blocks(cnt); w += nwg.x * WG) {
    let blk = block_of(w, cnt);
    let lats = dead_lats(q, blk.y);
    var xo: vec4<u32>;
    for (var r = 0u; r < 4u; r++) { xo[r] = min(blk.x + r, P.B - 1u) * P.d; }
    let wo = (vec4<u32>(T.wOff) + lats - vec4<u32>(T.lat0)) * P.d;
    var acc: array<vec4<f32>, 4>;
    for (var r = 0u; r < 4u; r++) { acc[r] = vec4<f32>(0.0); }   // per block: see grad-latent.wgsl
    for (var c = 0u; c < P.d; c++) {
      let wv = vec4<f32>(W_enc[wo.x + c], W_enc[wo.y + c], W_enc[wo.z + c], W_enc[wo.w + c]);
      let bp = b_pre[c];
      for (var r = 0u; r < 4u; r++) {
        let xv = x[xo[r] + c] - bp;
        for (var l = 0u; l < 4u; l++) { acc[r][l] += xv * wv[l]; }
      }
    }
    store_block(acc, blk.x, blk.y, cnt, lats);
  }
}

@compute @workgroup_size(WG)
fn encode_dead_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let q = dead_range();
  let cnt = q.y - q.x;
  let d4 = P.d / 4u;
  for (var w = gid.x; w < n_blocks(cnt); w += nwg.x * WG) {
    let blk = block_of(w, cnt);
    let lats = dead_lats(q, blk.y);
    var xo: vec4<u32>;
    for (var r = 0u; r < 4u; r++) { xo[r] = min(blk.x + r, P.B - 1u) * d4; }
    let wo = (vec4<u32>(T.wOff) + lats - vec4<u32>(T.lat0)) * d4;
    var acc: array<vec4<f32>, 4>;
    for (var r = 0u; r < 4u; r++) { acc[r] = vec4<f32>(0.0); }   // per block: see grad-latent.wgsl
    for (var c = 0u; c < d4; c++) {
      let bp = b_pre4[c];
      let w0 = W_enc4[wo.x + c];
      let w1 = W_enc4[wo.y + c];
      let w2 = W_enc4[wo.z + c];
      let w3 = W_enc4[wo.w + c];
      for (var r = 0u; r < 4u; r++) {
        let xv = x4[xo[r] + c] - bp;
        acc[r] += vec4<f32>(dot(xv, w0), dot(xv, w1), dot(xv, w2), dot(xv, w3));
      }
    }
    store_block(acc, blk.x, blk.y, cnt, lats);
  }
}
