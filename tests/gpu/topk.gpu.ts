import { createBufferFrom, readF32, readU32, STORAGE } from '../../src/gpu/buffers';
import { createEncode, type EncodeVariant } from '../../src/gpu/kernels/encode';
import { createTopK, type TopKVariant } from '../../src/gpu/kernels/topk';
import { STEP_PARAMS_BYTES } from '../../src/gpu/step-params';
import { NONE, topkRef } from '../../src/reference/step';
import { resolveConfig } from '../../src/sae/config';
import { stepParamsBytes } from '../../src/sae/step-uniform';
import { assertClose, gpuTest, randn } from './harness';

/** Runs the TopK kernel alone on `pre` [B, N]; aux mode takes candidates from `deadList`. */
async function runTopK(
  device: GPUDevice,
  pre: Float32Array,
  B: number,
  N: number,
  K: number,
  opts: {
    tile?: number;
    dead?: number[];
    variant?: TopKVariant;
    chunk?: number;
    wg?: number;
    /** 'chunkmax': the encoder's chunk maxima [B, ⌈N / givenChunk⌉] */
    preMax?: Float32Array;
    givenChunk?: number;
    /** 'chunked'/'chunkmax': false keeps step 1's chain of exchanges */
    step1Net?: boolean;
  } = {},
) {
  const aux = opts.dead !== undefined;
  const k = aux ? 1 : K;
  const kAux = aux ? K : 0;
  const cfg = resolveConfig({ d: 2, nLatents: N, k, kAux, batchSize: B, deadTokens: 1 });
  const params = device.createBuffer({
    size: STEP_PARAMS_BYTES,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(params, 0, stepParamsBytes(cfg, 1, 1e-3, 1));
  const E = B * (k + kAux);
  const dead = opts.dead ?? [];
  const bufs = [
    createBufferFrom(device, 'pre', pre),
    createBufferFrom(device, 'deadList', Uint32Array.from(dead.length ? dead : [0])),
    createBufferFrom(device, 'deadInfo', Uint32Array.from([dead.length, 0, 0, 0])),
    device.createBuffer({ label: 'idx', size: E * 4, usage: STORAGE }),
    device.createBuffer({ label: 'val', size: E * 4, usage: STORAGE }),
    params,
  ];
  const kernel = createTopK(device, {
    B,
    N,
    K,
    aux,
    tile: opts.tile,
    variant: opts.variant,
    chunk: opts.chunk,
    givenChunk: opts.givenChunk,
    step1Net: opts.step1Net,
    wg: opts.wg,
  });
  const preMax = opts.preMax ? createBufferFrom(device, 'preMax', opts.preMax) : undefined;
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  kernel.run(pass, kernel.bind('t', bufs, preMax));
  pass.end();
  device.queue.submit([enc.finish()]);
  const off = aux ? B * k : 0;
  const idx = await readU32(device, bufs[3], B * K, off);
  const val = await readF32(device, bufs[4], B * K, off);
  for (const b of bufs) b.destroy();
  preMax?.destroy();
  return { idx, val };
}

function check(
  got: { idx: Uint32Array; val: Float32Array },
  pre: Float32Array,
  B: number,
  N: number,
  K: number,
  dead?: number[],
) {
  const want = topkRef(pre, B, N, K, dead);
  for (let e = 0; e < B * K; e++) {
    if (got.idx[e] !== want.idx[e])
      throw new Error(`idx[${Math.floor(e / K)}, ${e % K}] = ${got.idx[e]}, want ${want.idx[e]}`);
  }
  assertClose(got.val, want.val, 0, 0, 'val'); // relu of copied f32 values: exact
}

const SHAPES: { B: number; N: number; K: number; tile?: number }[] = [
  { B: 3, N: 1, K: 1 },
  { B: 5, N: 37, K: 1 },
  { B: 4, N: 100, K: 7 },
  { B: 3, N: 5000, K: 32 }, // several 2048-tiles, N not a power of two
  { B: 2, N: 700, K: 512 }, // the largest k
  { B: 2, N: 513, K: 300, tile: 512 },
  { B: 3, N: 1000, K: 16, tile: 64 }, // many small tiles
];

for (const s of SHAPES) {
  gpuTest(
    `topk B=${s.B} N=${s.N} k=${s.K}${s.tile ? ` tile=${s.tile}` : ''} vs reference`,
    async (device) => {
      const pre = randn(s.B * s.N, s.N + s.K);
      check(await runTopK(device, pre, s.B, s.N, s.K, { tile: s.tile }), pre, s.B, s.N, s.K);
    },
  );
}

// 256 invocations per row, the bitonic default on a GPU: the same network, other lanes doing it.
gpuTest(
  'topk bitonic with 256 invocations per row (the GPU default) vs reference, AuxK too',
  async (device) => {
    for (const s of SHAPES.filter((x) => x.N > 1)) {
      const pre = randn(s.B * s.N, s.N + s.K + 1);
      check(await runTopK(device, pre, s.B, s.N, s.K, { tile: s.tile, wg: 256 }), pre, s.B, s.N, s.K);
    }
    const pre = randn(4 * 3000, 9);
    const dead = Array.from({ length: 700 }, (_, i) => i * 4 + 1);
    check(await runTopK(device, pre, 4, 3000, 24, { wg: 256, dead }), pre, 4, 3000, 24, dead);
  },
);

gpuTest('topk ties go to the lower index; NaN and -inf sort last; negatives give relu 0', async (device) => {
  const N = 300;
  const pre = new Float32Array(2 * N);
  for (let i = 0; i < N; i++) pre[i] = Math.floor(i / 50); // row 0: blocks of 50 equal values
  for (let i = 0; i < N; i++) pre[N + i] = -1 - (i % 7);
  pre[N + 3] = Number.NaN;
  pre[N + 4] = Number.NEGATIVE_INFINITY;
  pre[N + 10] = 2;
  const got = await runTopK(device, pre, 2, N, 64);
  check(got, pre, 2, N, 64);
  // Explicit: row 0's top 64 are indices 250..299 (value 5) then 200..213 (value 4).
  const expectRow0 = [
    ...Array.from({ length: 50 }, (_, i) => 250 + i),
    ...Array.from({ length: 14 }, (_, i) => 200 + i),
  ];
  if (Array.from(got.idx.subarray(0, 64)).join() !== expectRow0.join()) throw new Error('tie order');
  if (got.idx[64] !== 10 || got.val[64] !== 2 || got.val[65] !== 0) throw new Error('row 1 head');
});

gpuTest('auxk topk over a dead list, fewer candidates than k gives NONE', async (device) => {
  const B = 3;
  const N = 900;
  const pre = randn(B * N, 9);
  const dead = Array.from({ length: 40 }, (_, i) => i * 21 + 5);
  const got = await runTopK(device, pre, B, N, 32, { dead });
  check(got, pre, B, N, 32, dead);
  const few = await runTopK(device, pre, B, N, 32, { dead: dead.slice(0, 5) });
  check(few, pre, B, N, 32, dead.slice(0, 5));
  if (few.idx[5] !== NONE || few.val[5] !== 0) throw new Error('padding entry should be NONE with value 0');
  const none = await runTopK(device, pre, B, N, 8, { dead: [] });
  if (!none.idx.every((i) => i === NONE)) throw new Error('no dead latents must give only NONE');
});

for (const s of [
  { B: 70, N: 37, K: 1 },
  { B: 5, N: 1000, K: 33 },
  { B: 3, N: 300, K: 64 },
]) {
  gpuTest(`topk insert variant B=${s.B} N=${s.N} k=${s.K} vs reference`, async (device) => {
    const pre = randn(s.B * s.N, s.N + 3 * s.K);
    pre[5] = pre[6]; // a tie
    check(await runTopK(device, pre, s.B, s.N, s.K, { variant: 'insert' }), pre, s.B, s.N, s.K);
    const dead = Array.from({ length: Math.min(s.N, 50) }, (_, i) => (i * 7) % s.N).sort((a, b) => a - b);
    const uniq = [...new Set(dead)];
    check(
      await runTopK(device, pre, s.B, s.N, s.K, { variant: 'insert', dead: uniq }),
      pre,
      s.B,
      s.N,
      s.K,
      uniq,
    );
  });
}

// 'chunked': the best kout chunks by maximum, then the latents ≥ t of those chunks ranked by counting
// (or, past 2·KP of them, inserted). Chunk widths around the ranks that matter: fewer chunks than k
// (t = NEG_MAX, every latent a candidate), a partial last chunk, k = 64 (the largest KP).
for (const s of [
  { B: 70, N: 37, K: 1, chunk: 8 },
  { B: 9, N: 1000, K: 33, chunk: 32 },
  { B: 5, N: 1000, K: 8, chunk: 16 },
  { B: 3, N: 300, K: 64, chunk: 32 },
  { B: 4, N: 100, K: 7, chunk: 32 },
]) {
  gpuTest(`topk chunked variant B=${s.B} N=${s.N} k=${s.K} chunk=${s.chunk} vs reference`, async (device) => {
    const pre = randn(s.B * s.N, s.N + 5 * s.K);
    pre[5] = pre[6]; // a tie
    const got = await runTopK(device, pre, s.B, s.N, s.K, { variant: 'chunked', chunk: s.chunk });
    check(got, pre, s.B, s.N, s.K);
  });
}

gpuTest('topk chunked: ties at the threshold, NaN and -inf chunks, many latents ≥ t', async (device) => {
  const N = 512;
  const B = 7;
  const pre = new Float32Array(B * N);
  // Row 0: every latent equal (each chunk's maximum ties; the lowest indices win).
  pre.fill(1.5, 0, N);
  // Row 1: ramps that repeat per chunk of 16 (the top values tie across chunks).
  for (let i = 0; i < N; i++) pre[N + i] = i % 16;
  // Row 2: all NaN but three latents; row 3: -inf with a few finite values.
  for (let i = 0; i < N; i++) pre[2 * N + i] = Number.NaN;
  pre[2 * N + 400] = 3;
  pre[2 * N + 17] = -2;
  pre[2 * N + 300] = 3;
  for (let i = 0; i < N; i++) pre[3 * N + i] = Number.NEGATIVE_INFINITY;
  pre[3 * N + 5] = 1;
  pre[3 * N + 511] = 0.5;
  // Row 4: one heavy chunk holds every large value; row 5: normal values.
  for (let i = 0; i < N; i++) pre[4 * N + i] = i >= 64 && i < 96 ? 10 + i : -i;
  const r = randn(N, 77);
  pre.set(r, 5 * N);
  // Row 6: exactly 2·KP = 16 latents ≥ t at k = 8, the last one scanned (latent 5, in the chunk of
  // maximum t = 100, scanned last) in the result and followed by lower latents: with the list full,
  // later writes land in its last slot. Chunks 1–7 (of 32) hold 200 and 100, chunk 1 one more 100.
  pre.fill(-1, 6 * N, 7 * N);
  for (let c = 1; c < 8; c++) {
    pre[6 * N + c * 32] = 200;
    pre[6 * N + c * 32 + 1] = 100;
  }
  pre[6 * N + 34] = 100;
  pre[6 * N + 5] = 100;
  for (const chunk of [16, 32]) {
    for (const K of [8, 12])
      check(await runTopK(device, pre, B, N, K, { variant: 'chunked', chunk }), pre, B, N, K);
  }
});

// 'chunkmax': the unrolled encoder writes each row's maximum per RN latents while its tile is in
// registers; the TopK ranks chunks by them. The maxima must be exactly those of the pre it wrote (NaN
// and -inf as NEG_MAX, a ragged last chunk), pre the plain encoder's bit for bit, and the lists the
// reference's. Rows: one NaN row (x), a -inf block and a huge latent (b_enc), a tie (equal rows).
gpuTest('topk chunkmax: unrolled encoder chunk maxima, then the lists, vs reference', async (device) => {
  const [B, d, N] = [37, 8, 150];
  const x = randn(B * d, 31);
  x[3 * d + 2] = Number.NaN;
  const W_enc = randn(N * d, 32, 0.4);
  W_enc.copyWithin(21 * d, 20 * d, 21 * d);
  const b_enc = randn(N, 33, 0.1);
  b_enc[21] = b_enc[20];
  for (let n = 40; n < 56; n++) b_enc[n] = Number.NEGATIVE_INFINITY;
  b_enc[7] = 3e38;
  const bufs = {
    x: createBufferFrom(device, 'x', x),
    b_pre: createBufferFrom(device, 'b_pre', randn(d, 34, 0.5)),
    W_enc: createBufferFrom(device, 'W_enc', W_enc),
    b_enc: createBufferFrom(device, 'b_enc', b_enc),
  };
  const encode = async (variant: EncodeVariant, chunkMax: boolean) => {
    const k = createEncode(device, { B, d, N }, variant, { chunkMax });
    const C = Math.ceil(N / (k.chunkMaxWidth || 1));
    const pre = device.createBuffer({ label: 'pre', size: B * N * 4, usage: STORAGE });
    const preMax = device.createBuffer({ label: 'preMax', size: B * C * 4, usage: STORAGE });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    k.run(pass, { ...bufs, pre, preMax });
    pass.end();
    device.queue.submit([enc.finish()]);
    const out = {
      RN: k.chunkMaxWidth,
      pre: await readF32(device, pre, B * N),
      preMax: await readF32(device, preMax, B * C),
    };
    k.destroy();
    pre.destroy();
    preMax.destroy();
    return out;
  };
  const low = Math.fround(NEG_MAX);
  const key = (v: number) => (Number.isNaN(v) ? low : Math.max(v, low));
  for (const variant of ['unroll4x4', 'unroll8x16', 'unroll16x8'] as const) {
    const { RN, pre, preMax } = await encode(variant, true);
    const plain = (await encode(variant, false)).pre;
    const bits = [new Uint32Array(pre.buffer), new Uint32Array(plain.buffer)];
    const diff = bits[0].findIndex((v, i) => v !== bits[1][i]);
    if (diff >= 0)
      throw new Error(`${variant}: pre[${diff}] ${pre[diff]} vs the plain encoder's ${plain[diff]}`);
    const C = Math.ceil(N / RN);
    for (let b = 0; b < B; b++)
      for (let c = 0; c < C; c++) {
        let m = low;
        for (let n = c * RN; n < Math.min(N, c * RN + RN); n++) m = Math.max(m, key(pre[b * N + n]));
        if (preMax[b * C + c] !== m)
          throw new Error(`${variant}: preMax[${b}, ${c}] = ${preMax[b * C + c]}, want ${m}`);
      }
    for (const K of [1, 8, 33])
      check(
        await runTopK(device, pre, B, N, K, { variant: 'chunkmax', givenChunk: RN, preMax }),
        pre,
        B,
        N,
        K,
      );
  }
  for (const b of Object.values(bufs)) b.destroy();
});

// Step 1 of 'chunked' and 'chunkmax' by networks (groups of KP chunks sorted, then merged into the
// best KP) must keep the chain's chunks: the same lists bit for bit, and the reference's. Values on a
// grid of 1/4, so chunk maxima tie across groups; rows with every latent equal (ties decided by chunk
// index alone), NaN and -inf chunks, a row of NaN but one latent, the best latents in the ragged last
// chunk and group; K from 1 to 64 (KP 1 to 64), so that groups are whole, ragged and a single one.
gpuTest(
  'topk chunked/chunkmax: step 1 by networks, the lists of the chain and of the reference',
  async (device) => {
    const [B, N, RN] = [24, 1003, 8];
    const C = Math.ceil(N / RN);
    const pre = randn(B * N, 41).map((v) => Math.round(v * 4) / 4);
    pre.fill(0.5, 0, N);
    for (let n = 0; n < N; n += 3) pre[N + n] = Number.NaN;
    for (let n = 0; n < 400; n++) pre[2 * N + n] = Number.NEGATIVE_INFINITY;
    pre.fill(Number.NaN, 3 * N, 4 * N);
    pre[3 * N + 517] = -2;
    pre[4 * N + N - 1] = 9;
    pre[5 * N + N - 2] = 9;
    pre[5 * N + 3] = 9;
    const low = Math.fround(NEG_MAX);
    const preMax = new Float32Array(B * C).fill(low);
    for (let b = 0; b < B; b++)
      for (let n = 0; n < N; n++) {
        const v = pre[b * N + n];
        const c = b * C + Math.floor(n / RN);
        if (!Number.isNaN(v)) preMax[c] = Math.max(preMax[c], v);
      }
    const given = { variant: 'chunkmax' as const, givenChunk: RN, preMax };
    for (const [K, opts] of [
      [1, given],
      [8, given],
      [13, given],
      [64, given],
      [8, { variant: 'chunked' as const, chunk: 16 }],
      [33, { variant: 'chunked' as const, chunk: 32 }],
    ] as const) {
      const net = await runTopK(device, pre, B, N, K, opts);
      const chain = await runTopK(device, pre, B, N, K, { ...opts, step1Net: false });
      for (let e = 0; e < B * K; e++)
        if (net.idx[e] !== chain.idx[e] || !Object.is(net.val[e], chain.val[e]))
          throw new Error(
            `${opts.variant} K=${K} entry ${e}: (${net.idx[e]}, ${net.val[e]}) vs the chain's (${chain.idx[e]}, ${chain.val[e]})`,
          );
      check(net, pre, B, N, K);
    }
  },
);

// ---- tiled mode: the raw sorted list of a tile of latents [lat0, lat0 + n) ------------------------------

const NEG_MAX = -3.4028234e38;

/** Runs the tiled TopK on the tile [lat0, lat0 + n) of `pre` [B, N] (passed as a [B, n] tile buffer). */
async function runTopKTile(
  device: GPUDevice,
  pre: Float32Array,
  B: number,
  N: number,
  K: number,
  lat0: number,
  n: number,
  opts: { dead?: number[]; variant?: 'bitonic' | 'insert'; auxk?: boolean } = {},
) {
  const aux = opts.dead !== undefined;
  const k = aux ? 1 : K;
  const kAux = aux ? K : 0;
  const cfg = resolveConfig({
    d: 2,
    nLatents: N,
    k,
    kAux,
    batchSize: B,
    deadTokens: 1,
    auxk: opts.auxk ?? true,
  });
  const params = device.createBuffer({
    size: STEP_PARAMS_BYTES,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(params, 0, stepParamsBytes(cfg, 1, 1e-3, 1));
  const tile = new Float32Array(B * n);
  for (let b = 0; b < B; b++) tile.set(pre.subarray(b * N + lat0, b * N + lat0 + n), b * n);
  const dead = opts.dead ?? [];
  const bufs = [
    createBufferFrom(device, 'preTile', tile),
    createBufferFrom(device, 'deadList', Uint32Array.from(dead.length ? dead : [0])),
    createBufferFrom(device, 'deadInfo', Uint32Array.from([dead.length, 0, 0, 0])),
    createBufferFrom(device, 'listIdx', new Uint32Array(B * K).fill(7)),
    createBufferFrom(device, 'listVal', new Float32Array(B * K).fill(7)),
    params,
  ];
  const kernel = createTopK(device, { B, N: n + 3, K, aux, variant: opts.variant, tiled: true });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  kernel.run(pass, kernel.bind('t', [...bufs, kernel.tileParams(lat0, n)]));
  pass.end();
  device.queue.submit([enc.finish()]);
  const idx = await readU32(device, bufs[3], B * K);
  const val = await readF32(device, bufs[4], B * K);
  for (const b of bufs) b.destroy();
  kernel.destroy();
  return { idx, val };
}

/** Raw list: the reference order over the tile's candidates, values as sorted (not relu'd), NEG_MAX padding. */
function checkRaw(
  got: { idx: Uint32Array; val: Float32Array },
  pre: Float32Array,
  B: number,
  N: number,
  K: number,
  cands: number[],
) {
  const want = topkRef(pre, B, N, K, cands);
  for (let e = 0; e < B * K; e++) {
    const lat = want.idx[e];
    const raw = lat === NONE ? NEG_MAX : pre[Math.floor(e / K) * N + lat];
    const wantVal = Number.isNaN(raw) ? NEG_MAX : Math.max(raw, NEG_MAX);
    if (got.idx[e] !== lat || got.val[e] !== Math.fround(wantVal))
      throw new Error(
        `tile list [${Math.floor(e / K)}, ${e % K}] = (${got.idx[e]}, ${got.val[e]}), want (${lat}, ${wantVal})`,
      );
  }
}

for (const variant of ['bitonic', 'insert'] as const) {
  gpuTest(`topk tiled ${variant}: raw list of a tile, ties, NaN/-inf, padding`, async (device) => {
    const B = 3;
    const N = 400;
    const pre = randn(B * N, 91);
    for (let i = 0; i < N; i++) pre[i] = Math.floor(i / 30) - 6; // row 0: ties, negatives kept raw
    pre[N + 130] = Number.NaN;
    pre[N + 131] = Number.NEGATIVE_INFINITY;
    pre[N + 132] = Number.POSITIVE_INFINITY;
    for (const [lat0, n, K] of [
      [0, 400, 16],
      [100, 150, 32],
      [130, 5, 8], // fewer candidates than K: NEG_MAX / NONE padding
      [399, 1, 1],
    ]) {
      const cands = Array.from({ length: n }, (_, i) => lat0 + i);
      checkRaw(await runTopKTile(device, pre, B, N, K, lat0, n, { variant }), pre, B, N, K, cands);
    }
    // AUX: the dead latents inside the tile only (binary search in the ascending dead list)
    const dead = [0, 5, 99, 100, 101, 170, 249, 250, 251, 300, 399];
    for (const [lat0, n] of [
      [100, 150],
      [0, 100],
      [102, 60], // no dead latent in [102, 162)
      [251, 149],
      [0, 400],
    ]) {
      const cands = dead.filter((i) => i >= lat0 && i < lat0 + n);
      checkRaw(await runTopKTile(device, pre, B, N, 4, lat0, n, { variant, dead }), pre, B, N, 4, cands);
    }
    // AuxK flag off: no candidates whatever the dead list holds
    checkRaw(
      await runTopKTile(device, pre, B, N, 4, 0, 400, { variant, dead, auxk: false }),
      pre,
      B,
      N,
      4,
      [],
    );
  });
}
