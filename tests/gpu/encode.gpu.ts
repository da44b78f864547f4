import { createBufferFrom, readF32, STORAGE } from '../../src/gpu/buffers';
import { createEncode, ENCODE_VARIANTS, type EncodeVariant } from '../../src/gpu/kernels/encode';
import { getPipeline } from '../../src/gpu/pipelines';
import { encodeRef } from '../../src/reference/encode';
import { assertClose, gpuTest, randn } from './harness';

// Shapes: a random one, then edges — B, d, N not multiples of any tile, N = 1, d = 1, B = 1.
const SHAPES = [
  { B: 64, d: 48, N: 96 },
  { B: 13, d: 20, N: 29 },
  { B: 37, d: 19, N: 53 },
  { B: 5, d: 7, N: 1 },
  { B: 9, d: 1, N: 33 },
  { B: 1, d: 33, N: 70 },
];

for (const variant of ENCODE_VARIANTS) {
  for (const { B, d, N } of SHAPES) {
    gpuTest(`encode ${variant} B=${B} d=${d} N=${N}`, async (device) => {
      const x = randn(B * d, 1);
      const b_pre = randn(d, 2, 0.5);
      const W_enc = randn(N * d, 3, 1 / Math.sqrt(d));
      const b_enc = randn(N, 4, 0.1);
      const bufs = {
        x: createBufferFrom(device, 'x', x),
        b_pre: createBufferFrom(device, 'b_pre', b_pre),
        W_enc: createBufferFrom(device, 'W_enc', W_enc),
        b_enc: createBufferFrom(device, 'b_enc', b_enc),
        pre: device.createBuffer({ label: 'pre', size: B * N * 4, usage: STORAGE }),
      };
      const k = createEncode(device, { B, d, N }, variant);
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      k.run(pass, bufs);
      pass.end();
      device.queue.submit([enc.finish()]);
      const got = await readF32(device, bufs.pre, B * N);
      const want = encodeRef(x, b_pre, W_enc, b_enc, B, d, N);
      // f32 accumulation over d terms of size ~1: error grows like sqrt(d)·eps; 1e-5 relative + tiny abs.
      assertClose(got, want, 1e-5 * Math.sqrt(d), 1e-5, 'pre');
      k.destroy();
      for (const b of Object.values(bufs)) b.destroy();
    });
  }
}

// Latent tiles: the tile [lat0, lat0 + n) with W_enc a shard buffer (its row wOff is latent lat0) equals the
// whole product's columns bit for bit (same arithmetic order), and the float64 reference.
for (const variant of ENCODE_VARIANTS) {
  gpuTest(`encode ${variant} tile lat0/wOff from a shard buffer`, async (device) => {
    const B = 11;
    const d = 24;
    const N = 150;
    const x = randn(B * d, 5);
    const b_pre = randn(d, 6, 0.5);
    const W_enc = randn(N * d, 7, 1 / Math.sqrt(d));
    const b_enc = randn(N, 8, 0.1);
    const common = {
      x: createBufferFrom(device, 'x', x),
      b_pre: createBufferFrom(device, 'b_pre', b_pre),
      b_enc: createBufferFrom(device, 'b_enc', b_enc),
    };
    const W = createBufferFrom(device, 'W_enc', W_enc);
    const preAll = device.createBuffer({ label: 'preAll', size: B * N * 4, usage: STORAGE });
    const whole = createEncode(device, { B, d, N }, variant);
    // shard = latents [40, 150) (rows 0..110 of the shard buffer); tile = latents [57, 57 + 61)
    const shard0 = 40;
    const lat0 = 57;
    const n = 61;
    const shard = createBufferFrom(device, 'W_shard', W_enc.slice(shard0 * d));
    const preTile = device.createBuffer({ label: 'preTile', size: B * n * 4, usage: STORAGE });
    const tile = createEncode(device, { B, d, N: n, lat0, wOff: lat0 - shard0 }, variant);
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    whole.run(pass, { ...common, W_enc: W, pre: preAll });
    tile.run(pass, { ...common, W_enc: shard, pre: preTile });
    pass.end();
    device.queue.submit([enc.finish()]);
    const all = await readF32(device, preAll, B * N);
    const got = await readF32(device, preTile, B * n);
    const want = new Float32Array(B * n);
    for (let b = 0; b < B; b++) for (let j = 0; j < n; j++) want[b * n + j] = all[b * N + lat0 + j];
    const gb = new Uint32Array(got.buffer);
    const wb = new Uint32Array(want.buffer);
    for (let e = 0; e < B * n; e++)
      if (gb[e] !== wb[e])
        throw new Error(`pre tile [${Math.floor(e / n)}, ${e % n}] = ${got[e]}, whole ${want[e]}`);
    const ref = encodeRef(x, b_pre, W_enc, b_enc, B, d, N);
    const refTile = new Float64Array(B * n);
    for (let b = 0; b < B; b++) for (let j = 0; j < n; j++) refTile[b * n + j] = ref[b * N + lat0 + j];
    assertClose(got, refTile, 1e-5 * Math.sqrt(d), 1e-5, 'pre tile');
    whole.destroy();
    tile.destroy();
    for (const b of [...Object.values(common), W, preAll, shard, preTile]) b.destroy();
  });
}

// The workgroup-tiled encoder adds its products in the scalar order: bit-identical to blocked4x4
// (so the scalar fused encode+TopK and AuxK's encode-dead match it too), across partial tiles and slabs.
gpuTest('encode wgtile4x4 equals blocked4x4 bit for bit (B=70, d=44, N=130)', async (device) => {
  const [B, d, N] = [70, 44, 130];
  const bufs = {
    x: createBufferFrom(device, 'x', randn(B * d, 11)),
    b_pre: createBufferFrom(device, 'b_pre', randn(d, 12, 0.5)),
    W_enc: createBufferFrom(device, 'W_enc', randn(N * d, 13, 0.2)),
    b_enc: createBufferFrom(device, 'b_enc', randn(N, 14, 0.1)),
  };
  const outs: Float32Array[] = [];
  for (const variant of ['blocked4x4', 'wgtile4x4'] as const) {
    const pre = device.createBuffer({ label: `pre-${variant}`, size: B * N * 4, usage: STORAGE });
    const k = createEncode(device, { B, d, N }, variant);
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    k.run(pass, { ...bufs, pre });
    pass.end();
    device.queue.submit([enc.finish()]);
    outs.push(await readF32(device, pre, B * N));
    k.destroy();
    pre.destroy();
  }
  const [a, b] = outs.map((o) => new Uint32Array(o.buffer));
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i]) throw new Error(`pre[${i}]: ${outs[0][i]} vs ${outs[1][i]} (bits differ)`);
  for (const buf of Object.values(bufs)) buf.destroy();
});

/** Seeded inputs of the encoder at one shape (x, b_pre, W_enc, b_enc), seeds from `seed`. */
function encodeInputs(device: GPUDevice, B: number, d: number, N: number, seed: number) {
  return {
    x: createBufferFrom(device, 'x', randn(B * d, seed)),
    b_pre: createBufferFrom(device, 'b_pre', randn(d, seed + 1, 0.5)),
    W_enc: createBufferFrom(device, 'W_enc', randn(N * d, seed + 2, 1 / Math.sqrt(d))),
    b_enc: createBufferFrom(device, 'b_enc', randn(N, seed + 3, 0.1)),
  };
}

/** The bits of pre [B, N] from one encoder run on `bufs`. */
async function encodeBits(
  device: GPUDevice,
  bufs: ReturnType<typeof encodeInputs>,
  sizes: { B: number; d: number; N: number },
  variant: EncodeVariant,
  copy?: number,
) {
  const { B, N } = sizes;
  const pre = device.createBuffer({ label: `pre ${variant}`, size: B * N * 4, usage: STORAGE });
  const k = createEncode(device, sizes, variant, { copy });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  k.run(pass, { ...bufs, pre });
  pass.end();
  device.queue.submit([enc.finish()]);
  const got = new Uint32Array((await readF32(device, pre, B * N)).buffer);
  k.destroy();
  pre.destroy();
  return got;
}

// The unrolled tiles add the same dot products in the same order as the vec4 tiles of the same shape
// (only the register allocation differs), so their outputs are bit for bit the same.
gpuTest('encode unroll4x4 and unroll4x8 equal vec4x4 and vec4x8 bit for bit', async (device) => {
  const [B, d, N] = [70, 36, 90];
  const bufs = encodeInputs(device, B, d, N, 11);
  const out = (variant: EncodeVariant) => encodeBits(device, bufs, { B, d, N }, variant);
  for (const [a, b] of [
    ['vec4x4', 'unroll4x4'],
    ['vec4x8', 'unroll4x8'],
  ] as const) {
    const [ua, ub] = [await out(a), await out(b)];
    const diff = ua.findIndex((v, i) => v !== ub[i]);
    if (diff >= 0) throw new Error(`${a} vs ${b}: first differing bits at ${diff}`);
  }
  for (const b of Object.values(bufs)) b.destroy();
});

// A compiled copy (getPipeline `copy`, which the autotuner times against the first on software
// adapters) is a pipeline of its own running the same kernel: copy 0's bits.
gpuTest('encode: a compiled copy is its own pipeline and gives copy 0 bit for bit', async (device) => {
  const code = '@compute @workgroup_size(1) fn main() {}';
  const [p0, p1, p1again] = [0, 1, 1].map((copy) =>
    getPipeline(device, { label: 'copy-test', code, entryPoint: 'main', copy }),
  );
  if (p0 === p1) throw new Error('copy 1 returned copy 0 pipeline');
  if (p1 !== p1again) throw new Error('copy 1 was compiled twice (not cached)');
  const [B, d, N] = [40, 24, 70];
  const bufs = encodeInputs(device, B, d, N, 21);
  for (const variant of ['unroll16x16', 'blocked4x4'] as const) {
    const bits: Uint32Array[] = [];
    for (const copy of [0, 1, 2]) bits.push(await encodeBits(device, bufs, { B, d, N }, variant, copy));
    for (const copy of [1, 2]) {
      const diff = bits[copy].findIndex((v, i) => v !== bits[0][i]);
      if (diff >= 0) throw new Error(`${variant} copy ${copy}: first differing bits at ${diff}`);
    }
  }
  for (const b of Object.values(bufs)) b.destroy();
});
