import code from '../../../shaders/topk.wgsl?raw';
import chunkMaxWgsl from '../../../shaders/topk-chunk-max.wgsl?raw';
import chunkedWgsl from '../../../shaders/topk-chunked.wgsl?raw';
import rankQuadWgsl from '../../../shaders/topk-rank-quad.wgsl?raw';
import { TOPK_INSERT_MAX_K, type TOPK_VARIANT_NAMES } from '../kernel-variants';
import { gpuForms, groupsFor, loopGroups, nextPow2, phases, quadForms } from './kernel';

/** Largest tile: (KP + T)·8 bytes of workgroup memory stay within 32 KiB at KP = 512. */
const TOPK_MAX_TILE = 2048;

export type TopKVariant = (typeof TOPK_VARIANT_NAMES)[number];

/** Chunk width of 'chunked' (topk_insert_chunked) unless the caller names one. */
const TOPK_CHUNK = 32;

/** Most candidates the chunked TopK ranks by a sorting network (ours; beyond, by counting). */
const RANK_NET_MAX = 16;

/** Batcher's odd–even merge sort of P (a power of two) slots: the compare-exchanges (a, b), a < b. */
function oddEvenMergeSort(P: number): [number, number][] {
  const out: [number, number][] = [];
  const merge = (lo: number, n: number, r: number) => {
    const step = 2 * r;
    if (step < n) {
      merge(lo, n, step);
      merge(lo + r, n, step);
      for (let i = lo + r; i + r < lo + n; i += step) out.push([i, i + r]);
    } else out.push([lo, lo + r]);
  };
  const sort = (lo: number, n: number) => {
    if (n <= 1) return;
    sort(lo, n / 2);
    sort(lo + n / 2, n / 2);
    merge(lo, n, 1);
  };
  sort(0, P);
  return out;
}

/**
 * rank_net (topk-chunked.wgsl's RANK_NET): rank_count's result by a sorting network over P named
 * slots, the candidates past n as padding (NEG_MAX, NONE), each compare-exchange keeping the better
 * (better(): larger value, then lower index; a total order) in the lower slot. No loop-indexed array
 * is touched after the P loads (on SwiftShader each such access is a gather), and the result is the
 * unique sorted order, so the lists are rank_count's.
 */
function rankNet(P: number): string {
  const S = [...Array(P).keys()];
  const ce = (p: [number, number]) => `  ${slotExchange('v', 'i')(p)}`;
  return [
    'fn rank_net(row: u32, kout: u32, n: u32, cv: ptr<function, array<f32, 2 * KP>>,',
    '            ci: ptr<function, array<u32, 2 * KP>>) {',
    ...S.flatMap((j) => [
      `  var v${j} = select(NEG_MAX, (*cv)[${j}], ${j}u < n);`,
      `  var i${j} = select(NONE, (*ci)[${j}], ${j}u < n);`,
    ]),
    ...oddEvenMergeSort(P).map(ce),
    ...S.slice(0, P / 2).map((j) => `  if (${j}u < kout) { put(row, ${j}u, kout, v${j}, i${j}); }`),
    '}',
  ].join('\n');
}

/** Invocations per row of the bitonic TopK and of topk_rank: 256 on a GPU (more lanes per barrier
 * step), 64 where barriers are emulated. */
const topkLanes = (device: GPUDevice) => (gpuForms(device) ? 256 : 64);

/**
 * Most dead latents the AuxK TopK ranks by counting (topk_rank, then topk_rank_many: count² reads a
 * row) before the bitonic networks take over: one per lane on a GPU; on a software adapter
 * RANK_MAX_SOFTWARE (B = 1024, kAux = 384: 512 dead 635 ms ranked, 513 733–900 by the networks).
 */
const auxRankMax = (device: GPUDevice) => (gpuForms(device) ? topkLanes(device) : RANK_MAX_SOFTWARE);
const RANK_MAX_SOFTWARE = 512;
/**
 * Most dead latents topk_rank ranks a candidate at a time (then topk_rank_many): its lanes on a GPU,
 * twice them on software (SwiftShader, B = 1024, kAux = 384: 65 dead 33 vs 55 ms in topk_rank_many, 128
 * dead 122 vs 102).
 */
const auxRankOne = (device: GPUDevice) => (gpuForms(device) ? 1 : 2) * topkLanes(device);

/**
 * rank_row's lines for R candidates a lane (slot r: candidate lid + r·WG, its latent l_r, value v_r
 * and rank r_r). The walk over the candidates comes in one copy per power of two of slots up to R,
 * the smallest that holds the lane's `used` slots chosen outside the loop.
 */
function rankSlots(R: number) {
  const upTo = (n: number) => [...Array(n).keys()];
  const pad = (indent: number) => (l: string) => ' '.repeat(indent) + l;
  // Walk widths 1, 2, 4, … below R, then R.
  const widths = [...upTo(Math.ceil(Math.log2(R))).map((i) => 2 ** i), R];
  const walk = (w: number) => [
    'for (var u = 0u; u < count; u++) {',
    '  let lu = cand_lat(s, u);',
    '  let vu = cand_val(s, row, lu);',
    ...upTo(w).map((r) => `  r${r} += select(0u, 1u, better(vu, lu, v${r}, l${r}));`),
    '}',
  ];
  // if (used <= 1) { walk 1 } else if (used <= 2) { walk 2 } … else { walk R }; one width: the walk alone.
  const count =
    widths.length === 1
      ? walk(R)
      : [
          ...widths.flatMap((w, n) => [
            n === 0
              ? `if (used <= ${w}u) {`
              : n === widths.length - 1
                ? '} else {'
                : `} else if (used <= ${w}u) {`,
            ...walk(w).map(pad(2)),
          ]),
          '}',
        ];
  return {
    RPL: R,
    RANK_SLOTS: upTo(R)
      .flatMap((r) => [
        `let ok${r} = lid + ${r}u * WG < count;`,
        `var l${r} = NONE;`,
        `var v${r} = NEG_MAX;`,
        `var r${r} = 0u;`,
        `if (ok${r}) { l${r} = cand_lat(s, lid + ${r}u * WG); v${r} = cand_val(s, row, l${r}); }`,
      ])
      .map(pad(2))
      .join('\n'),
    RANK_COUNT: count.map(pad(4)).join('\n'),
    RANK_PUT: upTo(R)
      .map((r) => `if (ok${r} && r${r} < kout) { put(row, r${r}, kout, v${r}, l${r}); }`)
      .map(pad(2))
      .join('\n'),
  };
}

/**
 * What compact_dead needs for the AuxK TopK's and the AuxK decode's indirect dispatches (createTopK's
 * and createDecode's `indirect`): AUX_GROUPS is the decode's count too (loopGroups of its rows).
 */
export const auxDispatch = (device: GPUDevice, B: number) => ({
  AUX_RANK_ONE: auxRankOne(device),
  AUX_RANK_MAX: auxRankMax(device),
  AUX_GROUPS: loopGroups(device, B),
  AUX_INSERT_GROUPS: insertGroups(device, B),
});

/** Workgroups of topk_insert (64 rows each, striding). */
const insertGroups = (device: GPUDevice, B: number) => groupsFor(device, B, 64);

/**
 * Byte offsets in deadInfo of the dispatches that compact_dead sets to 0 workgroups while no latent is
 * dead and none was at the last step (dead.wgsl): topk_rank and the AuxK decode, and the AuxK
 * topk_insert.
 */
export const AUX_SKIP_OFFSET = { rank: 32, insert: 48 } as const;

/** Bytes of the per-tile TileParams uniform of the tiled TopK (lat0, n, 2 × pad). */
const TILE_PARAMS_BYTES = 16;

/** Step 1's end (both forms): the named slots copied to the arrays mv, mc that step 2 indexes; t. */
const step1Out = (J: number[]) => [
  '    var mv: array<f32, KP>;',
  '    var mc: array<u32, KP>;',
  ...J.map((j) => `    mv[${j}] = mv${j};\n    mc[${j}] = mc${j};`),
  '    let t = mv[kout - 1u];',
];

/** A compare-exchange of named slots (a, b), a < b, leaving the better (better()) in a. */
const slotExchange =
  (v: string, i: string) =>
  ([a, b]: [number, number]) =>
    `{ let w = better(${v}${b}, ${i}${b}, ${v}${a}, ${i}${a}); let tv = ${v}${a}; let ti = ${i}${a}; ` +
    `${v}${a} = select(${v}${a}, ${v}${b}, w); ${i}${a} = select(${i}${a}, ${i}${b}, w); ` +
    `${v}${b} = select(${v}${b}, tv, w); ${i}${b} = select(${i}${b}, ti, w); }`;

/**
 * Chunks a group in step 1 by networks (ours): at most 16. SwiftShader, one pass, alternating (TopK at
 * B = 1024, N = 4096, 256 chunks a row): k = 32 groups of 32, 16, 8: 15.9, 14.9, 17.1 ms (the chain
 * 26.7); k = 64 groups of 64, 16, 8: 47, 48, 53 ms (the chain 74), and compiling took 26, 3.8, 2.7 s
 * (the chain 0.75).
 */
const STEP1_GROUP = 16;

/**
 * Step 1 by networks: the chunk maxima in groups of GS ≤ KP, each group sorted by Batcher's network,
 * then merged into the best KP so far: slot j and the group's rank KP − 1 − j (padding past GS), the
 * better of the two, make a bitonic sequence holding the best KP of both, which the bitonic merge's
 * KP/2·log2 KP exchanges sort. The same sorted best KP as the chain (better() is a total order;
 * padding (NEG_MAX, NONE) beats nothing), so the same lists. Why: the chain costs KP exchanges a chunk,
 * this (sort + merge) / GS: at B = 4096, N = 1024, k = 8 (64 chunks a row) 19 + 8 + 12 for 8 chunks,
 * the TopK 9.9 → 8.0 ms on SwiftShader (one pass, alternating); at k = 32 26.7 → 14.9 ms.
 */
function chunkStep1Net(KP: number, cmax: string, GS: number) {
  const J = [...Array(KP).keys()];
  const U = [...Array(GS).keys()];
  const clean: [number, number][] = [];
  for (let s = KP / 2; s >= 1; s /= 2) for (const j of J) if ((j & s) === 0) clean.push([j, j + s]);
  return [
    '    // The best KP chunks so far as (maximum, first latent), best first.',
    ...J.map((j) => `    var mv${j} = NEG_MAX;\n    var mc${j} = NONE;`),
    '    let nch = (count + CH - 1u) / CH;',
    `    for (var g0 = 0u; g0 < nch; g0 += ${GS}u) {`,
    '      // A group of GS chunks (past the last: padding), sorted, then merged.',
    ...U.flatMap((j) => [
      `      let c${j} = g0 + ${j}u;`,
      `      var v${j} = select(NEG_MAX, ${cmax}(s, row, min(c${j}, nch - 1u) * CH), c${j} < nch);`,
      `      var i${j} = select(NONE, c${j} * CH, c${j} < nch);`,
    ]),
    ...oddEvenMergeSort(GS).map((p) => `      ${slotExchange('v', 'i')(p)}`),
    ...J.slice(KP - GS).map(
      (j) =>
        `      { let w = better(v${KP - 1 - j}, i${KP - 1 - j}, mv${j}, mc${j}); ` +
        `mv${j} = select(mv${j}, v${KP - 1 - j}, w); mc${j} = select(mc${j}, i${KP - 1 - j}, w); }`,
    ),
    ...clean.map((p) => `      ${slotExchange('mv', 'mc')(p)}`),
    '    }',
    ...step1Out(J),
  ].join('\n');
}

/**
 * topk-chunked.wgsl's step 1 for KP slots: the chunk maxima (from `cmax`) passed down KP named slots
 * (value mv_j, first latent mc_j) by compare-exchanges, then copied to the arrays mv, mc that step 2
 * indexes; t = mv[kout − 1].
 */
function chunkStep1(KP: number, cmax: string) {
  const J = [...Array(KP).keys()];
  return [
    '    // Chunks as (maximum, first latent), best first: each chunk passes down the named slots by',
    '    // compare-exchanges, without a branch.',
    ...J.map((j) => `    var mv${j} = NEG_MAX;\n    var mc${j} = NONE;`),
    '    for (var c0 = 0u; c0 < count; c0 += CH) {',
    `      var xv = ${cmax}(s, row, c0);`,
    '      var xi = c0;',
    ...J.map(
      (j) =>
        `      { let sw = better(xv, xi, mv${j}, mc${j}); let tv = mv${j}; let ti = mc${j}; ` +
        `mv${j} = select(mv${j}, xv, sw); mc${j} = select(mc${j}, xi, sw); xv = select(xv, tv, sw); xi = select(xi, ti, sw); }`,
    ),
    '    }',
    ...step1Out(J),
  ].join('\n');
}

/**
 * TopK (or AuxK when aux) per row. 'bitonic': bitonic sort + merge of tiles in workgroup memory, any K in
 * [1, 512] and any N. 'insert': one invocation per row with a sorted private list (K ≤ 64).
 * `tile` (power of two ≥ KP) and `wg` (invocations per row, bitonic) are the autotuner's knobs: fewer
 * invocations make each barrier cheaper where barriers are emulated (SwiftShader).
 * multi (Multi-TopK): K = k + kAux per row, ranks ≥ k written to the AuxK region.
 * Bindings: pre [B,N], deadList [N], deadInfo [DEAD_INFO_WORDS], idxAll, valAll [B·(k+kAux)] (out), params.
 *
 * tiled (latent tiles): N is the tile width n; the candidates of a row are the latents [lat0, lat0 + n)
 * of a tile buffer pre [B, n] (AUX: the dead ones among them), and the output is a raw sorted list
 * [B, K] per row (global latent indices, values not relu'd, (NEG_MAX, NONE) padding) for
 * createTopKMerge. K must equal the list width the StepParams give (k, kAux when aux, k + kAux when
 * multi). Bindings: pre tile [B,n], deadList, deadInfo, listIdx [B,K] (out), listVal [B,K] (out), params,
 * tileParams(lat0, n). One pipeline serves every tile of width ≤ n (T is sized from n); each tile gets its
 * own 16-byte uniform from tileParams(), which destroy() frees.
 */
export function createTopK(
  device: GPUDevice,
  s: {
    B: number;
    N: number;
    K: number;
    aux: boolean;
    multi?: boolean;
    tile?: number;
    wg?: number;
    variant?: TopKVariant;
    /** 'chunked': latents per chunk (default TOPK_CHUNK) */
    chunk?: number;
    /** 'chunkmax': the width of the chunks whose maxima the encoder writes (its RN); 0 or absent: 'chunked' */
    givenChunk?: number;
    /** 'chunked'/'chunkmax': false keeps step 1's chain of exchanges (tests compare the two); default networks */
    step1Net?: boolean;
    tiled?: boolean;
    /**
     * AuxK over whole rows: deadInfo, where compact_dead writes the dispatches of the bitonic entry,
     * topk_rank_many, and topk_rank or topk_insert (none of them while no latent is dead: dead.wgsl)
     */
    indirect?: GPUBuffer;
  },
) {
  const KP = nextPow2(s.K);
  if (s.K < 1 || KP > 512) throw new Error(`topk: K must be in [1, 512], got ${s.K}`);
  const insert =
    (s.variant === 'insert' || s.variant === 'chunked' || s.variant === 'chunkmax') &&
    KP <= TOPK_INSERT_MAX_K;
  // 'chunked' over whole rows of the main TopK; AuxK (dead-list candidates) and tiles keep topk_insert.
  const chunked =
    insert && (s.variant === 'chunked' || s.variant === 'chunkmax') && !s.aux && !(s.tiled ?? false);
  // 'chunkmax' where the encoder writes chunk maxima (givenChunk, its RN): bind() takes them
  // ([B, ⌈N / givenChunk⌉], binding 8). Elsewhere it is 'chunked'.
  const given = chunked && s.variant === 'chunkmax' && (s.givenChunk ?? 0) > 0;
  const chunk = given ? (s.givenChunk as number) : (s.chunk ?? TOPK_CHUNK);
  if (chunked && !(Number.isInteger(chunk) && chunk >= 1))
    throw new Error(`topk: chunk must be a positive integer, got ${chunk}`);
  const T = Math.max(KP, Math.min(s.tile ?? TOPK_MAX_TILE, nextPow2(s.N)));
  // Invocations per row of 'bitonic': the network's compare-exchanges are fixed, so WG changes who does
  // them, not the result. 256 on a GPU (more lanes per barrier step), 64 where barriers are emulated.
  const WG = s.wg ?? topkLanes(device);
  const tiled = s.tiled ?? false;
  const constants: Record<string, boolean> = tiled
    ? { AUX: s.aux, MULTI: s.multi ?? false, TILED: true }
    : { AUX: s.aux, MULTI: s.multi ?? false };
  // AuxK with an indirect dispatch: topk_rank ranks rows with at most rankOne dead latents, topk_rank_many
  // up to rankMax (software), the bitonic entry beyond; the last two run with loopGroups(B)
  // workgroups or none, as compact_dead writes.
  const rankFirst = s.aux && !tiled && !insert && s.indirect;
  // Candidates ranked by counting: one at a time up to rankOne (rank_row), up to rankMax for AuxK
  // (rank_row_many: ⌈rankMax / WG⌉ a lane); compact_dead dispatches with the same bounds.
  // topk_rank's candidates loaded by quads of lanes and shared (topk-rank-quad.wgsl; software only).
  const rankQuad = !!rankFirst && !gpuForms(device) && quadForms(device) && WG % 4 === 0;
  const rankOne = s.aux ? auxRankOne(device) : WG;
  const rankMax = s.aux ? auxRankMax(device) : WG;
  const kernel = phases(
    device,
    'topk',
    chunked ? code + chunkedWgsl + (given ? chunkMaxWgsl : '') : code + (rankQuad ? rankQuadWgsl : ''),
    rankFirst
      ? [
          {
            entry: 'topk_rank',
            constants,
            groups: 0,
            indirect: { buffer: s.indirect!, offset: AUX_SKIP_OFFSET.rank },
          },
          ...(rankMax > rankOne
            ? [
                {
                  entry: 'topk_rank_many',
                  constants,
                  groups: 0,
                  indirect: { buffer: s.indirect!, offset: 16 },
                },
              ]
            : []),
          { entry: 'topk', constants, groups: 0, indirect: { buffer: s.indirect!, offset: 4 } },
        ]
      : [
          insert
            ? {
                entry: tiled ? 'topk_insert_tile' : chunked ? 'topk_insert_chunked' : 'topk_insert',
                constants,
                groups: insertGroups(device, s.B),
                // AuxK over whole rows: nothing while no latent is dead (dead.wgsl).
                ...(s.aux && !tiled && s.indirect
                  ? { indirect: { buffer: s.indirect, offset: AUX_SKIP_OFFSET.insert } }
                  : {}),
              }
            : {
                entry: tiled ? 'topk_tile' : 'topk',
                constants,
                groups: loopGroups(device, s.B),
              },
        ],
    {
      KP,
      T,
      PER_THREAD: Math.max(1, T / 2 / WG),
      WG,
      RANK_ONE: rankOne,
      RANK_ROW: rankQuad ? 'rank_row_quad' : 'rank_row',
      RANK_QUAD: [0, 1, 2, 3]
        .map(
          (j) =>
            `      { let lj = quadBroadcast(lu, ${j}u); let vj = quadBroadcast(vu, ${j}u); ` +
            `rank += select(0u, 1u, (u0 + ${j}u < count) & better(vj, lj, v, lat)); }`,
        )
        .join('\n'),
      RANK_MAX: rankMax,
      ...rankSlots(Math.ceil(rankMax / WG)),
      ...(chunked
        ? {
            CH: chunk,
            V4: String(s.N % 4 === 0 && chunk % 4 === 0),
            CHUNK_MAX: given ? 'chunk_max_given' : 'chunk_max',
            STEP1:
              s.step1Net === false
                ? chunkStep1(KP, given ? 'chunk_max_given' : 'chunk_max')
                : chunkStep1Net(KP, given ? 'chunk_max_given' : 'chunk_max', Math.min(KP, STEP1_GROUP)),
            ...(2 * KP <= RANK_NET_MAX
              ? { RANK: 'rank_net', RANK_NET: rankNet(2 * KP) }
              : { RANK: 'rank_count', RANK_NET: '' }),
          }
        : {}),
    },
  );
  const uniforms: GPUBuffer[] = [];
  return {
    ...kernel,
    // topk_insert_chunked also reads pre as vec4 (binding 7): the same buffer, bound twice;
    // 'chunkmax' reads the encoder's chunk maxima instead (binding 8).
    bind: (name: string, all: GPUBuffer[], preMax?: GPUBuffer) => {
      if (given && !preMax) throw new Error("topk: 'chunkmax' binds the encoder's chunk maxima");
      return kernel.bind(
        name,
        chunked ? [...all.slice(0, 6), all[6] ?? all[0], all[0], preMax ?? all[0]] : all,
      );
    },
    /** A TileParams uniform for the tile [lat0, lat0 + n) (binding 6 of the tiled entries); freed by destroy(). */
    tileParams(lat0: number, n: number): GPUBuffer {
      if (!tiled) throw new Error('topk: tileParams() is for a tiled TopK');
      if (n < 1 || n > s.N) throw new Error(`topk: tile width ${n} outside [1, ${s.N}]`);
      const buf = device.createBuffer({
        label: `topk:tile@${lat0}+${n}`,
        size: TILE_PARAMS_BYTES,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      device.queue.writeBuffer(buf, 0, new Uint32Array([lat0, n, 0, 0]));
      uniforms.push(buf);
      return buf;
    },
    destroy() {
      for (const b of uniforms) b.destroy();
      uniforms.length = 0;
    },
  };
}
