// pre[b, n] = (x[b] - b_pre) · W_enc[wOff + n] + b_enc[lat0 + n], n in [0, N)
// x [B, d], W_enc [≥ wOff + N, d] (latent-major rows), b_enc [≥ lat0 + N], pre [B, N].
// The only dense op of a step: 2·B·d·N flops.
// Latent tiles: N is the width of the tile of latents [lat0, lat0 + N) this dispatch computes (the whole
// latent range when lat0 = 0); pre is that tile, row stride N. b_enc stays the whole vector (indexed by
// the global latent lat0 + n); W_enc may be a shard buffer holding a range of latents, whose row wOff is
// the tile's first latent. lat0 = wOff = 0 is the untiled product.
// Micro-batches (threshold family): pre row b is x row row0 + b (x stays the whole [B_total, d]); row0 = 0
// is the whole batch.
// Three variants of the same product, chosen per adapter by the autotuner:
//   encode_naive   one output per thread (the baseline the others are measured against)
//   encode_blocked each thread keeps an RB×RN register tile, no workgroup memory, no barriers
//                  (barriers are expensive on SwiftShader and some mobile GPUs)
//   encode_tiled   classic shared-memory tiling with barriers (good where barriers are cheap)

struct Sizes { B: u32, d: u32, N: u32, lat0: u32, wOff: u32, row0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> b_pre: array<f32>;
@group(0) @binding(2) var<storage, read> W_enc: array<f32>;
@group(0) @binding(3) var<storage, read> b_enc: array<f32>;
@group(0) @binding(4) var<storage, read_write> pre: array<f32>;
@group(0) @binding(5) var<uniform> sz: Sizes;

const RB: u32 = {{RB}}u;   // rows per thread (blocked)
const RN: u32 = {{RN}}u;   // latents per thread (blocked)
const WG: u32 = 64u;
const TILE: u32 = 16u;     // tiled variant: TILE×TILE outputs per workgroup, TILE-deep slabs of d

@compute @workgroup_size(WG)
fn encode_naive(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let n = wid.x * WG + lid.x;
  let b = wid.y;
  if (n >= sz.N || b >= sz.B) { return; }
  var acc = 0.0;
  let xo = (sz.row0 + b) * sz.d;
  let wo = (sz.wOff + n) * sz.d;
  for (var c = 0u; c < sz.d; c++) {
    acc += (x[xo + c] - b_pre[c]) * W_enc[wo + c];
  }
  pre[b * sz.N + n] = acc + b_enc[sz.lat0 + n];
}

// Workgroup = 8×8 threads; thread (tx, ty) owns rows ty*RB.. and latents tx*RN.. of a (8·RB)×(8·RN) tile.
@compute @workgroup_size(8, 8)
fn encode_blocked(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let n0 = (wid.x * 8u + lid.x) * RN;
  let b0 = (wid.y * 8u + lid.y) * RB;
  if (n0 >= sz.N || b0 >= sz.B) { return; }
  var xo: array<u32, RB>;
  var wo: array<u32, RN>;
  for (var i = 0u; i < RB; i++) { xo[i] = (sz.row0 + min(b0 + i, sz.B - 1u)) * sz.d; }
  for (var j = 0u; j < RN; j++) { wo[j] = (sz.wOff + min(n0 + j, sz.N - 1u)) * sz.d; }
  var acc: array<f32, RB * RN>;
  var xv: array<f32, RB>;
  for (var c = 0u; c < sz.d; c++) {
    let bp = b_pre[c];
    for (var i = 0u; i < RB; i++) { xv[i] = x[xo[i] + c] - bp; }
    for (var j = 0u; j < RN; j++) {
      let w = W_enc[wo[j] + c];
      for (var i = 0u; i < RB; i++) { acc[i * RN + j] += xv[i] * w; }
    }
  }
  for (var i = 0u; i < RB; i++) {
    let b = b0 + i;
    if (b >= sz.B) { break; }
    for (var j = 0u; j < RN; j++) {
      let n = n0 + j;
      if (n >= sz.N) { break; }
      pre[b * sz.N + n] = acc[i * RN + j] + b_enc[sz.lat0 + n];
    }
  }
}

var<workgroup> xs: array<f32, TILE * TILE>;
var<workgroup> ws: array<f32, TILE * TILE>;

@compute @workgroup_size(TILE, TILE)
fn encode_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let n = wid.x * TILE + lid.x;
  let b = wid.y * TILE + lid.y;
  // Loads for the slab: thread (lx, ly) loads x[wid.y*TILE + ly, c0 + lx] and W_enc[wid.x*TILE + ly, c0 + lx].
  let lb = sz.row0 + min(wid.y * TILE + lid.y, sz.B - 1u);
  let ln = sz.wOff + min(wid.x * TILE + lid.y, sz.N - 1u);
  var acc = 0.0;
  for (var c0 = 0u; c0 < sz.d; c0 += TILE) {
    let c = c0 + lid.x;
    var xv = 0.0;
    var wv = 0.0;
    if (c < sz.d) {
      xv = x[lb * sz.d + c] - b_pre[c];
      wv = W_enc[ln * sz.d + c];
    }
    xs[lid.y * TILE + lid.x] = xv;
    ws[lid.y * TILE + lid.x] = wv;
    workgroupBarrier();
    for (var t = 0u; t < TILE; t++) {
      acc += xs[lid.y * TILE + t] * ws[lid.x * TILE + t];
    }
    workgroupBarrier();
  }
  if (n < sz.N && b < sz.B) { pre[b * sz.N + n] = acc + b_enc[sz.lat0 + n]; }
}

// As encode_blocked, reading x, b_pre and W_enc as vec4 (d % 4 == 0): a quarter of the loads, and
// each load is one 16-byte access. The same buffers are bound a second time with vec4 element type.
@group(0) @binding(6) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> b_pre4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read> W_enc4: array<vec4<f32>>;

@compute @workgroup_size(8, 8)
fn encode_blocked_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let n0 = (wid.x * 8u + lid.x) * RN;
  let b0 = (wid.y * 8u + lid.y) * RB;
  if (n0 >= sz.N || b0 >= sz.B) { return; }
  let d4 = sz.d / 4u;
  var xo: array<u32, RB>;
  var wo: array<u32, RN>;
  for (var i = 0u; i < RB; i++) { xo[i] = (sz.row0 + min(b0 + i, sz.B - 1u)) * d4; }
  for (var j = 0u; j < RN; j++) { wo[j] = (sz.wOff + min(n0 + j, sz.N - 1u)) * d4; }
  var acc: array<f32, RB * RN>;
  var xv: array<vec4<f32>, RB>;
  for (var c = 0u; c < d4; c++) {
    let bp = b_pre4[c];
    for (var i = 0u; i < RB; i++) { xv[i] = x4[xo[i] + c] - bp; }
    for (var j = 0u; j < RN; j++) {
      let w = W_enc4[wo[j] + c];
      for (var i = 0u; i < RB; i++) { acc[i * RN + j] += dot(xv[i], w); }
    }
  }
  for (var i = 0u; i < RB; i++) {
    let b = b0 + i;
    if (b >= sz.B) { break; }
    for (var j = 0u; j < RN; j++) {
      let n = n0 + j;
      if (n >= sz.N) { break; }
      pre[b * sz.N + n] = acc[i * RN + j] + b_enc[sz.lat0 + n];
    }
  }
}

// Workgroup-tiled and register-blocked, with vec4 loads (d % 4 == 0): the shape that is fast where
// barriers and workgroup memory are cheap (discrete GPUs). A 16×16 workgroup computes a 64×64 output
// tile, each thread 4 rows × 4 latents; 16-deep slabs of x − b_pre and W_enc are staged in workgroup
// memory as vec4, one vec4 of each per thread per slab. The products are added one component at a
// time in ascending c, so the values are bit-identical to the scalar variants (naive, blocked, tiled).
const WT: u32 = 64u;        // output rows and latents per workgroup
const SLAB4: u32 = 4u;      // vec4s per row per slab (16 floats of d)
var<workgroup> xs4: array<vec4<f32>, WT * SLAB4>;
var<workgroup> ws4: array<vec4<f32>, WT * SLAB4>;

@compute @workgroup_size(16, 16)
fn encode_wgtile(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let d4 = sz.d / 4u;
  let t = lid.y * 16u + lid.x;
  let r = t / SLAB4;          // staged row (and staged latent) this thread loads
  let q = t % SLAB4;          // its vec4 within the slab
  let lb = sz.row0 + min(wid.y * WT + r, sz.B - 1u);
  let ln = sz.wOff + min(wid.x * WT + r, sz.N - 1u);
  var acc: array<f32, 16>;
  for (var c4 = 0u; c4 < d4; c4 += SLAB4) {
    let c = c4 + q;
    var xv = vec4<f32>(0.0);
    var wv = vec4<f32>(0.0);
    if (c < d4) {
      xv = x4[lb * d4 + c] - b_pre4[c];
      wv = W_enc4[ln * d4 + c];
    }
    xs4[r * SLAB4 + q] = xv;
    ws4[r * SLAB4 + q] = wv;
    workgroupBarrier();
    let kEnd = min(SLAB4, d4 - c4);
    for (var k = 0u; k < kEnd; k++) {
      var a: array<vec4<f32>, 4>;
      for (var i = 0u; i < 4u; i++) { a[i] = xs4[(lid.y * 4u + i) * SLAB4 + k]; }
      for (var j = 0u; j < 4u; j++) {
        let w = ws4[(lid.x * 4u + j) * SLAB4 + k];
        for (var i = 0u; i < 4u; i++) {
          var s = acc[i * 4u + j];
          s += a[i].x * w.x;
          s += a[i].y * w.y;
          s += a[i].z * w.z;
          s += a[i].w * w.w;
          acc[i * 4u + j] = s;
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let b = wid.y * WT + lid.y * 4u + i;
    if (b >= sz.B) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = wid.x * WT + lid.x * 4u + j;
      if (n >= sz.N) { break; }
      pre[b * sz.N + n] = acc[i * 4u + j] + b_enc[sz.lat0 + n];
    }
  }
}

// encode_blocked_v4 with the RB×RN register tile unrolled into named variables by the wrapper
// (src/gpu/kernels/encode.ts, unrolledBody): no private array is indexed, so a compiler that does not
// unroll loops (SwiftShader) keeps the tile in registers instead of per-lane memory. The same dot
// products added in the same order as encode_blocked_v4, so its values are bit for bit the same.
// With chunk maxima (the wrapper's chunkMax, for the 'chunkmax' TopK) it also writes each row's
// largest of its RN values into pre_max[b, n0 / RN] ([B, ⌈N / RN⌉]), as the TopK ranks values: NaN
// and -inf as -3.4028234e38. While the tile is in registers that costs a compare and a select per
// value, and the TopK need not read all of pre to find the chunks that hold a row's largest values.
// m = select(m, v, v > m) from -3.4028234e38: a NaN compares false and never enters, nor does -inf.
// Columns past N repeat latent N − 1 (the clamped offsets), which leaves a maximum unchanged.
@group(0) @binding(9) var<storage, read_write> pre_max: array<f32>;

fn above(m: f32, v: f32) -> f32 { return select(m, v, v > m); }

@compute @workgroup_size(8, 8)
fn encode_unrolled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let n0 = (wid.x * 8u + lid.x) * RN;
  let b0 = (wid.y * 8u + lid.y) * RB;
  if (n0 >= sz.N || b0 >= sz.B) { return; }
  let d4 = sz.d / 4u;
{{UNROLLED_SETUP}}
  for (var c = 0u; c < d4; c++) {
    let bp = b_pre4[c];
{{UNROLLED_STEP}}
  }
{{UNROLLED_STORE}}
}
