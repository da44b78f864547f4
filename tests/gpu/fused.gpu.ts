/**
 * Latent tiles: (for each tile: encode tile → tiled TopK → merge) then emit, and the fused encode+TopK,
 * must write idxAll/valAll exactly — index for index, value bit for bit — as the whole-row path
 * (encode [B, N] → TopK), and that must match topkRef on the whole-row pre-activations.
 */
import { createBufferFrom, readF32, readU32, STORAGE } from '../../src/gpu/buffers';
import { createEncode, type EncodeVariant } from '../../src/gpu/kernels/encode';
import {
  createEncodeTopK,
  ENCODE_TOPK_CHUNK,
  type EncodeTopKVariant,
} from '../../src/gpu/kernels/encode-topk';
import { createTopK, type TopKVariant } from '../../src/gpu/kernels/topk';
import { createTopKMerge } from '../../src/gpu/kernels/topk-merge';
import { STEP_PARAMS_BYTES } from '../../src/gpu/step-params';
import { NONE, topkRef } from '../../src/reference/step';
import { assert, gpuTest, randn, rng } from './harness';

type Mode = 'main' | 'aux' | 'multi';
const FLAG_AUXK = 4;
const SENTINEL_IDX = 0xabcdef01;
const SENTINEL_VAL = 12345.5;

/** A StepParams uniform with the fields TopK and merge read (B, d, N, k, kAux, flags). */
function stepParams(
  device: GPUDevice,
  p: { B: number; d: number; N: number; k: number; kAux: number; flags: number },
) {
  const u = new Uint32Array(24);
  u.set([p.B, p.d, p.N, p.k, p.kAux, 1, 0, p.flags]);
  const buf = device.createBuffer({
    label: 'params',
    size: STEP_PARAMS_BYTES,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buf, 0, u);
  return buf;
}

export interface Problem {
  B: number;
  d: number;
  N: number;
  x: Float32Array;
  b_pre: Float32Array;
  W_enc: Float32Array;
  b_enc: Float32Array;
}

export interface Selection {
  mode: Mode;
  k: number;
  kAux: number;
  /** ascending dead latents (AUX) */
  dead?: number[];
  /** FLAG_AUXK (default on) */
  auxk?: boolean;
}

/** Random normal problem. */
export function randomProblem(B: number, d: number, N: number, seed: number): Problem {
  return {
    B,
    d,
    N,
    x: randn(B * d, seed),
    b_pre: randn(d, seed + 1, 0.5),
    W_enc: randn(N * d, seed + 2, 1 / Math.sqrt(d)),
    b_enc: randn(N, seed + 3, 0.1),
  };
}

/** Small integers everywhere: every product and sum is exact, so equal values (ties) are frequent. */
export function tieProblem(B: number, d: number, N: number, seed: number): Problem {
  const r = rng(seed);
  const int = (n: number, lo: number, hi: number) =>
    Float32Array.from({ length: n }, () => lo + Math.floor(r.u() * (hi - lo + 1)));
  return {
    B,
    d,
    N,
    x: int(B * d, -1, 2),
    b_pre: int(d, 0, 1),
    W_enc: int(N * d, -1, 1),
    b_enc: int(N, -2, 2),
  };
}

const region = (B: number, s: Selection) => {
  const E = B * (s.k + s.kAux);
  return { E, K: s.mode === 'aux' ? s.kAux : s.mode === 'multi' ? s.k + s.kAux : s.k };
};

interface Bufs {
  x: GPUBuffer;
  b_pre: GPUBuffer;
  b_enc: GPUBuffer;
  deadList: GPUBuffer;
  deadInfo: GPUBuffer;
  deadFlag: GPUBuffer;
  idxAll: GPUBuffer;
  valAll: GPUBuffer;
  params: GPUBuffer;
}

function commonBufs(device: GPUDevice, p: Problem, s: Selection): Bufs {
  const dead = s.dead ?? [];
  const flag = new Uint32Array(p.N);
  for (const i of dead) flag[i] = 1;
  const { E } = region(p.B, s);
  return {
    x: createBufferFrom(device, 'x', p.x),
    b_pre: createBufferFrom(device, 'b_pre', p.b_pre),
    b_enc: createBufferFrom(device, 'b_enc', p.b_enc),
    deadList: createBufferFrom(device, 'deadList', Uint32Array.from(dead.length ? dead : [0])),
    deadInfo: createBufferFrom(device, 'deadInfo', Uint32Array.from([dead.length, 0, 0, 0])),
    deadFlag: createBufferFrom(device, 'deadFlag', flag),
    idxAll: createBufferFrom(device, 'idxAll', new Uint32Array(E).fill(SENTINEL_IDX)),
    valAll: createBufferFrom(device, 'valAll', new Float32Array(E).fill(SENTINEL_VAL)),
    params: stepParams(device, {
      B: p.B,
      d: p.d,
      N: p.N,
      k: s.k,
      kAux: s.kAux,
      flags: (s.auxk ?? true) && s.mode !== 'multi' ? FLAG_AUXK : 0,
    }),
  };
}

async function finish(device: GPUDevice, enc: GPUCommandEncoder, b: Bufs, E: number, extra: GPUBuffer[]) {
  device.queue.submit([enc.finish()]);
  const idx = await readU32(device, b.idxAll, E);
  const val = await readF32(device, b.valAll, E);
  for (const buf of [...Object.values(b), ...extra]) buf.destroy();
  return { idx, val };
}

/** Today's path: encode [B, N] → createTopK into idxAll/valAll. Also returns the whole pre. */
export async function wholeRow(
  device: GPUDevice,
  p: Problem,
  s: Selection,
  o: { encode?: EncodeVariant; topk?: TopKVariant } = {},
) {
  const { B, d, N } = p;
  const { E, K } = region(B, s);
  const b = commonBufs(device, p, s);
  const W = createBufferFrom(device, 'W_enc', p.W_enc);
  const pre = device.createBuffer({ label: 'pre', size: B * N * 4, usage: STORAGE });
  const encode = createEncode(device, { B, d, N }, o.encode ?? 'blocked4x4');
  const topk = createTopK(device, {
    B,
    N,
    K,
    aux: s.mode === 'aux',
    multi: s.mode === 'multi',
    variant: o.topk,
  });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  encode.run(pass, { x: b.x, b_pre: b.b_pre, W_enc: W, b_enc: b.b_enc, pre });
  topk.run(pass, topk.bind('whole', [pre, b.deadList, b.deadInfo, b.idxAll, b.valAll, b.params]));
  pass.end();
  const out = await finish(device, enc, b, E, [W]);
  const preVals = await readF32(device, pre, B * N);
  pre.destroy();
  encode.destroy();
  return { ...out, pre: preVals };
}

/** W_enc split into shard buffers of `shardW` latents (the last one ragged). */
function shards(device: GPUDevice, p: Problem, shardW: number) {
  const out: GPUBuffer[] = [];
  for (let s0 = 0; s0 < p.N; s0 += shardW)
    out.push(
      createBufferFrom(device, `W_enc@${s0}`, p.W_enc.slice(s0 * p.d, Math.min(p.N, s0 + shardW) * p.d)),
    );
  return out;
}

/** Tiles of width `tileW` (the last ragged) inside shards of `shardW` (a multiple of tileW). */
function tilesOf(N: number, tileW: number, shardW: number) {
  const t: { lat0: number; n: number; shard: number; wOff: number }[] = [];
  for (let lat0 = 0; lat0 < N; lat0 += tileW) {
    const shard = Math.floor(lat0 / shardW);
    t.push({ lat0, n: Math.min(tileW, N - lat0), shard, wOff: lat0 - shard * shardW });
  }
  return t;
}

/** The tiled path: per tile encode → tiled TopK → merge; then emit. */
export async function tiledPath(
  device: GPUDevice,
  p: Problem,
  s: Selection,
  o: { tileW: number; shardW?: number; encode?: EncodeVariant; topk?: TopKVariant; topkTile?: number },
) {
  const { B, d, N } = p;
  const { E, K } = region(B, s);
  const tileW = Math.min(o.tileW, N);
  const shardW = o.shardW ?? Math.ceil(N / tileW) * tileW;
  const b = commonBufs(device, p, s);
  const W = shards(device, p, shardW);
  const preTile = device.createBuffer({ label: 'preTile', size: B * tileW * 4, usage: STORAGE });
  const listIdx = device.createBuffer({ label: 'listIdx', size: B * K * 4, usage: STORAGE });
  const listVal = device.createBuffer({ label: 'listVal', size: B * K * 4, usage: STORAGE });
  const bestIdx = device.createBuffer({ label: 'bestIdx', size: B * K * 4, usage: STORAGE });
  const bestVal = device.createBuffer({ label: 'bestVal', size: B * K * 4, usage: STORAGE });
  const aux = s.mode === 'aux';
  const multi = s.mode === 'multi';
  const topk = createTopK(device, {
    B,
    N: tileW,
    K,
    aux,
    multi,
    variant: o.topk,
    tile: o.topkTile,
    tiled: true,
  });
  const merge = createTopKMerge(device, { B, K, aux, multi });
  const mbg = merge.bind('m', [
    listIdx,
    listVal,
    bestIdx,
    bestVal,
    b.idxAll,
    b.valAll,
    b.params,
    merge.mergeParams(1),
  ]);
  const encodes: { destroy(): void }[] = [];
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  merge.init(pass, mbg);
  for (const t of tilesOf(N, tileW, shardW)) {
    const e = createEncode(device, { B, d, N: t.n, lat0: t.lat0, wOff: t.wOff }, o.encode ?? 'blocked4x4');
    encodes.push(e);
    e.run(pass, { x: b.x, b_pre: b.b_pre, W_enc: W[t.shard], b_enc: b.b_enc, pre: preTile });
    const tp = topk.tileParams(t.lat0, t.n);
    topk.run(
      pass,
      topk.bind(`t${t.lat0}`, [preTile, b.deadList, b.deadInfo, listIdx, listVal, b.params, tp]),
    );
    merge.merge(pass, mbg);
  }
  merge.emit(pass, mbg);
  pass.end();
  const out = await finish(device, enc, b, E, [...W, preTile, listIdx, listVal, bestIdx, bestVal]);
  for (const e of encodes) e.destroy();
  topk.destroy();
  merge.destroy();
  return out;
}

/** Entries of idxAll/valAll equal (value bits, sentinels outside the region included). */
export function assertSameEntries(
  got: { idx: Uint32Array; val: Float32Array },
  want: { idx: Uint32Array; val: Float32Array },
  what: string,
) {
  assert(got.idx.length === want.idx.length, `${what}: length`);
  const gb = new Uint32Array(got.val.buffer, got.val.byteOffset, got.val.length);
  const wb = new Uint32Array(want.val.buffer, want.val.byteOffset, want.val.length);
  for (let e = 0; e < got.idx.length; e++) {
    if (got.idx[e] !== want.idx[e] || gb[e] !== wb[e])
      throw new Error(
        `${what}: entry ${e}: got (${got.idx[e]}, ${got.val[e]}) want (${want.idx[e]}, ${want.val[e]})`,
      );
  }
}

/** The whole-row entries against topkRef on the same f32 pre (and sentinels outside the mode's region). */
export function assertMatchesRef(
  got: { idx: Uint32Array; val: Float32Array; pre: Float32Array },
  p: Problem,
  s: Selection,
) {
  const { B, N } = p;
  const { E, K } = region(B, s);
  const wantIdx = new Uint32Array(E).fill(SENTINEL_IDX);
  const wantVal = new Float32Array(E).fill(SENTINEL_VAL);
  const cands = s.mode === 'aux' ? ((s.auxk ?? true) ? (s.dead ?? []) : []) : undefined;
  const r = topkRef(got.pre, B, N, K, cands);
  for (let row = 0; row < B; row++)
    for (let j = 0; j < K; j++) {
      let o: number;
      if (s.mode === 'multi') o = j < s.k ? row * s.k + j : B * s.k + row * s.kAux + (j - s.k);
      else o = (s.mode === 'aux' ? B * s.k : 0) + row * K + j;
      wantIdx[o] = r.idx[row * K + j];
      wantVal[o] = r.val[row * K + j];
    }
  assertSameEntries(got, { idx: wantIdx, val: wantVal }, 'whole-row vs topkRef');
}

const selectionName = (s: Selection) =>
  `${s.mode} k=${s.k} kAux=${s.kAux}${s.dead ? ` dead=${s.dead.length}` : ''}${s.auxk === false ? ' auxk-off' : ''}`;

/** Whole-row (checked against topkRef) vs tiled, for both TopK variants where K allows. */
async function checkTiled(
  device: GPUDevice,
  p: Problem,
  s: Selection,
  tileWs: number[],
  o: { shardW?: (tileW: number) => number; encode?: EncodeVariant; variants?: TopKVariant[] } = {},
) {
  const whole = await wholeRow(device, p, s, { encode: o.encode });
  assertMatchesRef(whole, p, s);
  const { K } = region(p.B, s);
  for (const tileW of tileWs)
    for (const v of o.variants ?? (['bitonic', 'insert'] as TopKVariant[])) {
      if (v === 'insert' && K > 64) continue;
      const got = await tiledPath(device, p, s, {
        tileW,
        shardW: o.shardW?.(tileW),
        encode: o.encode,
        topk: v,
      });
      assertSameEntries(got, whole, `tiled ${v} tileW=${tileW} ${selectionName(s)}`);
    }
}

// ---- tiled TopK + merge vs the whole row -------------------------------------------------------------

gpuTest('fused: tiled topk B=1 N=1 d=1 k=1 (main, aux, multi)', async (device) => {
  const p = randomProblem(1, 1, 1, 11);
  await checkTiled(device, p, { mode: 'main', k: 1, kAux: 0 }, [1, 64]);
  await checkTiled(device, p, { mode: 'aux', k: 1, kAux: 1, dead: [0] }, [1]);
  await checkTiled(device, p, { mode: 'aux', k: 1, kAux: 1, dead: [] }, [1]);
});

for (const K of [1, 8, 32, 64]) {
  gpuTest(`fused: tiled topk N=5000 k=${K} tiles 64/1000/4096, shards`, async (device) => {
    const p = randomProblem(3, 8, 5000, 20 + K);
    // shards of two tiles (wOff alternates 0 / tileW) for the small tiles; one shard otherwise
    await checkTiled(device, p, { mode: 'main', k: K, kAux: 0 }, [64, 1000, 4096], {
      shardW: (w) => (w === 64 ? 128 : 5000),
      variants:
        K === 64 ? ['bitonic', 'insert'] : ['insert', ...(K === 32 ? (['bitonic'] as TopKVariant[]) : [])],
    });
  });
}

gpuTest('fused: tiled topk N=5000 k=512 (bitonic) tiles 1000/4096', async (device) => {
  const p = randomProblem(2, 4, 5000, 30);
  await checkTiled(device, p, { mode: 'main', k: 512, kAux: 0 }, [1000, 4096], { variants: ['bitonic'] });
});

gpuTest('fused: tiled topk ties across tiles go to the lower index (integer data)', async (device) => {
  const p = tieProblem(5, 3, 700, 40);
  // tile 64: every value recurs in many tiles; both variants, shards of 3 tiles
  await checkTiled(device, p, { mode: 'main', k: 32, kAux: 0 }, [64, 100, 700], { shardW: (w) => 3 * w });
  await checkTiled(device, p, { mode: 'main', k: 300, kAux: 0 }, [64, 256], { variants: ['bitonic'] });
});

gpuTest('fused: tiled topk NaN, -inf, +inf and all-NaN tiles', async (device) => {
  const p = tieProblem(3, 2, 500, 41);
  for (let n = 0; n < 500; n++) {
    if (n % 7 === 0) p.b_enc[n] = Number.NaN;
    else if (n % 11 === 0) p.b_enc[n] = Number.NEGATIVE_INFINITY;
  }
  p.b_enc[333] = Number.POSITIVE_INFINITY;
  for (let n = 64; n < 128; n++) p.b_enc[n] = Number.NaN; // a whole tile of NaN
  await checkTiled(device, p, { mode: 'main', k: 16, kAux: 0 }, [64, 200]);
  // k larger than the finite candidates of a row: NaN latents fill the tail (as NEG_MAX, relu 0)
  const q = tieProblem(2, 1, 130, 42);
  for (let n = 0; n < 130; n++) if (n % 3) q.b_enc[n] = n % 2 ? Number.NaN : Number.NEGATIVE_INFINITY;
  q.x.fill(Number.NaN, 0, 1); // row 0: every pre is NaN
  await checkTiled(device, q, { mode: 'main', k: 64, kAux: 0 }, [16, 64]);
});

gpuTest(
  'fused: tiled aux over dead lists (none, few, > kAux spread over tiles, flag off)',
  async (device) => {
    const p = randomProblem(4, 6, 1500, 50);
    const kAux = 24;
    const many = Array.from({ length: 60 }, (_, i) => i * 23 + (i % 5)).filter(
      (i) => i < 1500 && (i < 300 || i >= 700),
    );
    await checkTiled(device, p, { mode: 'aux', k: 4, kAux, dead: [] }, [64, 1000]);
    await checkTiled(device, p, { mode: 'aux', k: 4, kAux, dead: [3, 64, 1499] }, [64, 1000]);
    await checkTiled(device, p, { mode: 'aux', k: 4, kAux, dead: many }, [64, 1000, 4096]);
    await checkTiled(device, p, { mode: 'aux', k: 4, kAux, dead: many, auxk: false }, [64]);
    // ties among dead latents in different tiles
    const t = tieProblem(3, 2, 900, 51);
    await checkTiled(
      device,
      t,
      { mode: 'aux', k: 2, kAux: 40, dead: many.filter((i) => i < 900) },
      [64, 128],
    );
  },
);

gpuTest('fused: tiled multi (ranks ≥ k to the AuxK region)', async (device) => {
  const p = tieProblem(4, 3, 1200, 60);
  await checkTiled(device, p, { mode: 'multi', k: 8, kAux: 24 }, [64, 500]);
  const q = randomProblem(2, 5, 3000, 61);
  await checkTiled(device, q, { mode: 'multi', k: 128, kAux: 384 }, [1000], { variants: ['bitonic'] });
});

gpuTest('fused: tiled encode variants (naive, tiled, vec4) keep the whole-row values', async (device) => {
  const p = randomProblem(9, 12, 333, 70);
  for (const encode of ['naive', 'tiled', 'vec4x8', 'blocked2x4'] as EncodeVariant[])
    await checkTiled(device, p, { mode: 'main', k: 8, kAux: 0 }, [64, 100], {
      encode,
      shardW: (w) => 2 * w,
      variants: ['insert'],
    });
});

// sanity: a padding entry reads NONE / 0
gpuTest('fused: tiled fewer candidates than k gives NONE / 0', async (device) => {
  const p = randomProblem(2, 3, 10, 80);
  const got = await tiledPath(device, p, { mode: 'main', k: 16, kAux: 0 }, { tileW: 4 });
  assert(got.idx[10] === NONE && got.val[10] === 0, 'padding entry should be NONE with value 0');
});

// ---- fused encode + TopK --------------------------------------------------------------------------

/** Whole-row step selection: the main (or multi) TopK, plus AuxK over the dead list when kAux > 0. */
async function wholeStep(device: GPUDevice, p: Problem, s: Selection, encode: EncodeVariant) {
  const main = await wholeRow(device, p, s, { encode });
  assertMatchesRef(main, p, s);
  if (s.mode === 'multi' || s.kAux === 0) return main;
  const aux = await wholeRow(device, p, { ...s, mode: 'aux' }, { encode });
  assertMatchesRef(aux, p, { ...s, mode: 'aux' });
  const E = main.idx.length;
  const off = p.B * s.k;
  const idx = Uint32Array.from({ length: E }, (_, e) => (e < off ? main.idx[e] : aux.idx[e]));
  const val = Float32Array.from({ length: E }, (_, e) => (e < off ? main.val[e] : aux.val[e]));
  return { idx, val };
}

/**
 * The fused path: per tile, encode-topk → lists [C, B, K] → merge (C lists); with AuxK, the tiled AUX
 * TopK reads the dead columns the fused kernel wrote into the tile buffer → its own merge. Then emit.
 */
async function fusedPath(
  device: GPUDevice,
  p: Problem,
  s: Selection,
  o: { tileW: number; shardW?: number; variant: EncodeTopKVariant; chunk?: number },
) {
  const { B, d, N } = p;
  const { E, K } = region(B, s);
  const multi = s.mode === 'multi';
  const withAux = !multi && s.kAux > 0;
  const tileW = Math.min(o.tileW, N);
  const shardW = o.shardW ?? Math.ceil(N / tileW) * tileW;
  const b = commonBufs(device, p, s);
  const W = shards(device, p, shardW);
  const chunk = Math.min(o.chunk ?? ENCODE_TOPK_CHUNK, tileW);
  const cMax = Math.ceil(tileW / chunk);
  const sb = (label: string, n: number) =>
    device.createBuffer({ label, size: Math.max(16, n * 4), usage: STORAGE });
  const preTile = sb('preTile', B * tileW);
  const lists = [sb('listIdx', cMax * B * K), sb('listVal', cMax * B * K)];
  const best = [sb('bestIdx', B * K), sb('bestVal', B * K)];
  const merge = createTopKMerge(device, { B, K, multi });
  const bgFor = new Map<number, GPUBindGroup[]>();
  const mbg = (C: number) => {
    let g = bgFor.get(C);
    if (!g) {
      g = merge.bind(`C${C}`, [...lists, ...best, b.idxAll, b.valAll, b.params, merge.mergeParams(C)]);
      bgFor.set(C, g);
    }
    return g;
  };
  const auxLists = [sb('auxListIdx', B * s.kAux), sb('auxListVal', B * s.kAux)];
  const auxBest = [sb('auxBestIdx', B * s.kAux), sb('auxBestVal', B * s.kAux)];
  const topkAux = withAux ? createTopK(device, { B, N: tileW, K: s.kAux, aux: true, tiled: true }) : null;
  const mergeAux = withAux ? createTopKMerge(device, { B, K: s.kAux, aux: true }) : null;
  const abg = mergeAux?.bind('aux', [
    ...auxLists,
    ...auxBest,
    b.idxAll,
    b.valAll,
    b.params,
    mergeAux.mergeParams(1),
  ]);
  const kernels: { destroy(): void }[] = [];
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  merge.init(pass, mbg(1));
  if (mergeAux && abg) mergeAux.init(pass, abg);
  for (const t of tilesOf(N, tileW, shardW)) {
    const f = createEncodeTopK(
      device,
      { B, d, N: t.n, K, lat0: t.lat0, wOff: t.wOff, chunk, multi },
      o.variant,
    );
    kernels.push(f);
    f.run(pass, {
      x: b.x,
      b_pre: b.b_pre,
      W_enc: W[t.shard],
      b_enc: b.b_enc,
      pre: preTile,
      deadFlag: b.deadFlag,
      listIdx: lists[0],
      listVal: lists[1],
      params: b.params,
    });
    merge.merge(pass, mbg(f.chunks));
    if (topkAux && mergeAux && abg) {
      const tp = topkAux.tileParams(t.lat0, t.n);
      topkAux.run(
        pass,
        topkAux.bind(`a${t.lat0}`, [preTile, b.deadList, b.deadInfo, ...auxLists, b.params, tp]),
      );
      mergeAux.merge(pass, abg);
    }
  }
  merge.emit(pass, mbg(1));
  if (mergeAux && abg) mergeAux.emit(pass, abg);
  pass.end();
  const out = await finish(device, enc, b, E, [...W, preTile, ...lists, ...best, ...auxLists, ...auxBest]);
  for (const k of kernels) k.destroy();
  merge.destroy();
  mergeAux?.destroy();
  topkAux?.destroy();
  return out;
}

/** Whole-row (vs topkRef) then fused for each variant, tile width and chunk. */
async function checkFused(
  device: GPUDevice,
  p: Problem,
  s: Selection,
  tileWs: number[],
  o: { chunks?: number[]; variants?: EncodeTopKVariant[]; shardW?: (tileW: number) => number } = {},
) {
  const variants = (o.variants ?? ['blocked4x4', 'blocked1x4', 'vec4x8']).filter(
    (v) => !v.startsWith('vec4') || p.d % 4 === 0,
  );
  const scalar = await wholeStep(device, p, s, 'blocked4x4');
  const v4 = p.d % 4 === 0 ? await wholeStep(device, p, s, 'vec4x4') : null;
  for (const variant of variants) {
    const want = variant.startsWith('vec4') ? v4! : scalar;
    for (const tileW of tileWs)
      for (const chunk of o.chunks ?? [ENCODE_TOPK_CHUNK]) {
        const got = await fusedPath(device, p, s, { tileW, shardW: o.shardW?.(tileW), variant, chunk });
        assertSameEntries(got, want, `fused ${variant} tileW=${tileW} chunk=${chunk} ${selectionName(s)}`);
      }
  }
}

gpuTest('fused: encode-topk B=1 N=1 d=1 k=1', async (device) => {
  const p = randomProblem(1, 1, 1, 111);
  await checkFused(device, p, { mode: 'main', k: 1, kAux: 0 }, [1, 64], { chunks: [1, 128] });
  await checkFused(device, p, { mode: 'main', k: 1, kAux: 1, dead: [0] }, [1]);
});

for (const K of [1, 8, 32, 64]) {
  gpuTest(`fused: encode-topk N=5000 k=${K} tiles 64/1000/4096, chunks, shards`, async (device) => {
    const p = randomProblem(5, 8, 5000, 120 + K);
    await checkFused(device, p, { mode: 'main', k: K, kAux: 0 }, [64, 1000, 4096], {
      chunks: [37, 256],
      shardW: (w) => (w === 64 ? 192 : w === 1000 ? 2000 : 5000),
    });
  });
}

gpuTest(
  'fused: encode-topk equals every scalar encoder (naive, tiled, blocked2x4) + topk',
  async (device) => {
    const p = randomProblem(7, 13, 700, 130);
    const s: Selection = { mode: 'main', k: 16, kAux: 0 };
    for (const e of ['naive', 'tiled', 'blocked2x4', 'blocked4x8'] as EncodeVariant[]) {
      const want = await wholeRow(device, p, s, { encode: e });
      const got = await fusedPath(device, p, s, { tileW: 256, variant: 'blocked2x4', chunk: 50 });
      assertSameEntries(got, want, `fused blocked2x4 vs encode ${e}`);
    }
    const q = randomProblem(7, 16, 700, 131);
    const want = await wholeRow(device, q, s, { encode: 'vec4x8' });
    const got = await fusedPath(device, q, s, { tileW: 256, variant: 'vec4x4', chunk: 50 });
    assertSameEntries(got, want, 'fused vec4x4 vs encode vec4x8');
  },
);

gpuTest('fused: encode-topk ties across tiles and chunks, NaN, ±inf', async (device) => {
  const p = tieProblem(6, 4, 900, 140);
  await checkFused(device, p, { mode: 'main', k: 32, kAux: 0 }, [64, 300], {
    chunks: [16, 64],
    shardW: (w) => 2 * w,
    variants: ['blocked4x4', 'blocked2x4', 'vec4x4'],
  });
  for (let n = 0; n < 900; n++) {
    if (n % 7 === 0) p.b_enc[n] = Number.NaN;
    else if (n % 11 === 0) p.b_enc[n] = Number.NEGATIVE_INFINITY;
  }
  p.b_enc[444] = Number.POSITIVE_INFINITY;
  p.x.fill(Number.NaN, 0, 4); // row 0: all NaN
  await checkFused(device, p, { mode: 'main', k: 64, kAux: 0 }, [64, 300], { chunks: [16, 300] });
});

gpuTest(
  'fused: encode-topk with AuxK (dead columns written, tiled aux topk): 0, few, > kAux dead, flag off',
  async (device) => {
    const p = randomProblem(5, 8, 1500, 150);
    const many = Array.from({ length: 70 }, (_, i) => i * 21 + (i % 3)).filter(
      (i) => i < 1500 && (i < 400 || i >= 1000),
    );
    const base = { mode: 'main' as const, k: 8, kAux: 24 };
    await checkFused(device, p, { ...base, dead: [] }, [64, 1000]);
    await checkFused(device, p, { ...base, dead: [0, 77, 1499] }, [64, 1000]);
    await checkFused(device, p, { ...base, dead: many }, [64, 1000, 4096], { chunks: [40, 128] });
    await checkFused(device, p, { ...base, dead: many, auxk: false }, [64]);
    const t = tieProblem(4, 4, 800, 151);
    await checkFused(device, t, { ...base, k: 4, kAux: 48, dead: many.filter((i) => i < 800) }, [64, 128], {
      chunks: [32],
    });
  },
);

gpuTest('fused: encode-topk multi (k + kAux ≤ 64)', async (device) => {
  const p = tieProblem(5, 4, 1200, 160);
  await checkFused(device, p, { mode: 'multi', k: 8, kAux: 24 }, [64, 500], { chunks: [20, 128] });
  const q = randomProblem(3, 12, 2000, 161);
  await checkFused(device, q, { mode: 'multi', k: 16, kAux: 48 }, [1000], { chunks: [100] });
});
