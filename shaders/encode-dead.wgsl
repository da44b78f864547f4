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

@compute @workgroup_size(WG)
fn encode_dead(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let q = dead_range();
  let cnt = q.y - q.x;
  for (var w = gid.x; w < P.B * cnt; w += nwg.x * WG) {
    let b = w / cnt;
    let lat = dead_list[q.x + w % cnt];
    let xo = b * P.d;
    let wo = (T.wOff + lat - T.lat0) * P.d;
    var acc = 0.0;
    for (var c = 0u; c < P.d; c++) {
      let xv = x[xo + c] - b_pre[c];
      acc += xv * W_enc[wo + c];
    }
    pre[b * T.n + lat - T.lat0] = acc + b_enc[lat];
  }
}

@compute @workgroup_size(WG)
fn encode_dead_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let q = dead_range();
  let cnt = q.y - q.x;
  let d4 = P.d / 4u;
  for (var w = gid.x; w < P.B * cnt; w += nwg.x * WG) {
    let b = w / cnt;
    let lat = dead_list[q.x + w % cnt];
    let xo = b * d4;
    let wo = (T.wOff + lat - T.lat0) * d4;
    var acc = 0.0;
    for (var c = 0u; c < d4; c++) {
      let xv = x4[xo + c] - b_pre4[c];
      acc += dot(xv, W_enc4[wo + c]);
    }
    pre[b * T.n + lat - T.lat0] = acc + b_enc[lat];
  }
}
