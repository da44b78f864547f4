/**
 * One plan of every GPU buffer a training step holds, computed from the config and the adapter's
 * limits before anything is allocated. The engine (GpuSae) allocates exactly these buffers; the page
 * and the CLI show the same plan as their memory estimate and refuse a config whose plan has problems.
 *
 * Scale (docs/DESIGN.md §6): the [N, d] tensors are split by latent range into shards that each
 * fit one storage binding; the sparse family never holds pre-activations [B, N], only a tile [B, n]
 * that the encoder and TopK walk across the latents, keeping per-row running top-k lists. The threshold
 * family splits the batch into micro-batches of b rows whose [b, N] buffers fit, and sums their gradients.
 */
import {
  bpreChunks,
  chunkMaxWords,
  DEAD_INFO_WORDS,
  gvFusedParts,
  sortLongSlots,
  sortRowBlocks,
  TOPK_INSERT_MAX_K,
} from '../gpu/kernel-variants';
import { largestBinding } from '../gpu/limits';
import { STEP_PARAMS_BYTES } from '../gpu/step-params';
import {
  DENSE_CODES_MAX,
  LAT_STATS,
  METRIC_SLOTS,
  METRICS,
  PER_LATENT,
  SHARDED,
  type ShardedName,
} from './buffer-names';
import { hasExtra, isDense, kList, kRow, type ResolvedConfig } from './config';
import type { BufferPlan, LatentRange, PlanKey, PlanLimits, PlannedBuffer, Tile } from './plan-types';

export { type BufferPlan, DEFAULT_LIMITS, type PlanLimits, type PlannedBuffer } from './plan-types';

/**
 * The pre-activation tile [B, n] is kept at or under this many bytes even where one binding could hold
 * more (ours): beyond it a bigger tile saves only dispatches, and memory stays free of a B·N term.
 */
const TILE_BUDGET_BYTES = 256 * 2 ** 20;

/** The fused encode + TopK keeps private lists of at most this many entries (encode-topk.wgsl). */
const FUSED_MAX_K = 64;
/** Fused chunks: at least this many latents per thread (ours: below it the merge dominates)… */
const FUSED_MIN_CHUNK = 128;
/** …and at most this many chunk lists per row and tile, so the lists stay ≤ 64·B·K·8 bytes. */
const FUSED_MAX_CHUNKS = 64;

/** Storage buffers the sparse decoder binds besides the W_dec shards (idx, val, b_pre, out). */
const DECODE_FIXED_BINDINGS = 4;

const allocBytes = (bytes: number) => Math.max(16, Math.ceil(bytes / 4) * 4);

const MiB = (b: number) =>
  b >= 2 ** 20
    ? `${(b / 2 ** 20).toFixed(0)} MiB`
    : b >= 1024
      ? `${(b / 1024).toFixed(1)} KiB`
      : `${b} bytes`;

/** Tile width of the encoder + TopK: all N when [B, N] fits the budget, else the largest that does. */
function tileWidth(c: ResolvedConfig, cap: number, shardLatents: number, forced?: number): number {
  if (forced) return Math.max(1, Math.min(forced, shardLatents));
  const budget = Math.min(cap, TILE_BUDGET_BYTES);
  const n = Math.floor(budget / (4 * c.batchSize));
  return Math.max(1, Math.min(n, shardLatents));
}

/**
 * Rows of a threshold-family micro-batch: the whole batch when [B, N] fits the budget, else the
 * largest b whose [b, N] does (at least 1; the plan refuses N·4 over the cap).
 */
function microBatchRows(c: ResolvedConfig, cap: number, forced?: number): number {
  if (forced) return Math.max(1, Math.min(forced, c.batchSize));
  const budget = Math.min(cap, TILE_BUDGET_BYTES);
  return Math.max(1, Math.min(c.batchSize, Math.floor(budget / (4 * c.nLatents))));
}

/** Adds one buffer of `words` floats to the plan. */
type Add = (key: PlanKey, words: number, shape: string, group: PlannedBuffer['group']) => void;

/** Appends to `buffers` a buffer of `words` floats (allocBytes: at least 16 bytes, 4-aligned). */
const adder =
  (buffers: PlannedBuffer[]): Add =>
  (key, words, shape, group) =>
    buffers.push({ key, bytes: allocBytes(4 * words), shape, group });

/** The binding cap of the plan (the adapter's, or maxBindingMiB's when lower) and which one it is. */
function bindingCapOf(cfg: ResolvedConfig, limits: PlanLimits): { bindingCap: number; capSource: string } {
  const adapterCap = largestBinding(limits);
  const userCap = cfg.maxBindingMiB ? Math.floor(cfg.maxBindingMiB * 2 ** 20) : Number.POSITIVE_INFINITY;
  const bindingCap = Math.min(adapterCap, userCap);
  const capSource =
    userCap < adapterCap
      ? `maxBindingMiB ${cfg.maxBindingMiB}`
      : limits.maxStorageBufferBindingSize <= limits.maxBufferSize
        ? 'the adapter’s maxStorageBufferBindingSize'
        : 'the adapter’s maxBufferSize';
  return { bindingCap, capSource };
}

type Layout = Pick<BufferPlan, 'shards' | 'tiles' | 'tileLatents' | 'microBatch' | 'microBatches'>;

/**
 * How the step splits its work under the binding cap: latent shards of the [N, d] tensors, tiles
 * of the encoder + TopK (sparse family), micro-batches of rows (threshold family); pushes to
 * `problems` what no split can fit.
 */
function layout(
  cfg: ResolvedConfig,
  limits: PlanLimits,
  { bindingCap, capSource }: { bindingCap: number; capSource: string },
  opts: { tileLatents?: number; microBatch?: number },
  problems: string[],
): Layout {
  const { batchSize: B, d, nLatents: N } = cfg;
  const dense = isDense(cfg.activation);
  // Shards: whole rows of d floats, as many latents as one binding holds.
  const shardLatents = Math.max(1, Math.min(N, Math.floor(bindingCap / (4 * d))));
  const shards: LatentRange[] = [];
  for (let lat0 = 0; lat0 < N; lat0 += shardLatents)
    shards.push({ lat0, n: Math.min(shardLatents, N - lat0) });
  // Matryoshka's decode also binds the inner prefixes' reconstructions.
  const decodeFixed = DECODE_FIXED_BINDINGS + (cfg.matryoshkaWidths.length > 1 ? 1 : 0);
  const maxShards = limits.maxStorageBuffersPerShaderStage - decodeFixed;
  if (4 * d > bindingCap)
    problems.push(
      `one decoder row of d = ${d} floats needs ${MiB(4 * d)}, over ${MiB(bindingCap)} (${capSource}): raise the cap`,
    );
  else if (shards.length > maxShards)
    problems.push(
      `W_enc/W_dec [${N}, ${d}] need ${shards.length} shards of ${MiB(4 * d * shardLatents)} (${capSource}), over the ${maxShards} the decoder can bind (maxStorageBuffersPerShaderStage ${limits.maxStorageBuffersPerShaderStage} − ${decodeFixed}): lower N to ≤ ${maxShards * shardLatents} or raise the binding cap`,
    );
  else if (dense && shards.length > 1)
    problems.push(
      `W_enc/W_dec [${N}, ${d}] need ${MiB(4 * N * d)}, over ${MiB(bindingCap)} (${capSource}); the ${cfg.activation} activation runs unsharded: lower N to ≤ ${shardLatents} or use topk/batchtopk`,
    );

  const tileLatents = dense ? N : tileWidth(cfg, bindingCap, shardLatents, opts.tileLatents);
  // Threshold family: micro-batches of b rows whose [b, N] buffers fit (memory without a B·N term).
  const microBatch = dense ? microBatchRows(cfg, bindingCap, opts.microBatch) : B;
  const microBatches: { row0: number; n: number }[] = [];
  for (let row0 = 0; row0 < B; row0 += microBatch)
    microBatches.push({ row0, n: Math.min(microBatch, B - row0) });
  if (dense && 4 * N > bindingCap)
    problems.push(
      `buffer pre [1, ${N}] (a micro-batch of one row) needs ${MiB(4 * N)}, over ${MiB(bindingCap)} (${capSource}): the ${cfg.activation} activation keeps a row of N pre-activations in one binding: lower N to ≤ ${Math.floor(bindingCap / 4)}, raise the cap, or use topk/batchtopk`,
    );
  const tiles: Tile[] = [];
  if (!dense)
    shards.forEach((s, shard) => {
      for (let off = 0; off < s.n; off += tileLatents)
        tiles.push({ lat0: s.lat0 + off, n: Math.min(tileLatents, s.n - off), shard, wOff: off });
    });
  return { shards, tiles, tileLatents, microBatch, microBatches };
}

/** The parameters [N, d] by shard with their gradients, moments and EMA; the small parameters likewise. */
function parameterBuffers(buffers: PlannedBuffer[], cfg: ResolvedConfig, shards: LatentRange[]) {
  const { d, nLatents: N } = cfg;
  const add = adder(buffers);
  // Per-latent tensors [N, d], by shard.
  const groupOf = (name: ShardedName): PlannedBuffer['group'] =>
    name.startsWith('d')
      ? 'gradients'
      : name.startsWith('ema')
        ? 'ema'
        : name.startsWith('W')
          ? 'parameters'
          : 'adam';
  for (const name of SHARDED) {
    if (name.startsWith('ema') && !cfg.ema) continue;
    shards.forEach((s, i) => {
      const where = shards.length > 1 ? ` latents ${s.lat0}…${s.lat0 + s.n - 1}` : '';
      add(`${name}#${i}`, s.n * d, `[${s.n}, ${d}]${where}`, groupOf(name));
    });
  }
  for (let i = 0; i < shards.length; i++)
    buffers.push({ key: `shardParams#${i}`, bytes: 16, shape: 'uniform', group: 'small' });
  // The small parameters, their gradients, moments and EMA.
  const extraN = hasExtra(cfg.activation) ? 2 * N : 1;
  for (const [p, n, shape] of [
    ['b_enc', N, `[${N}]`],
    ['b_pre', d, `[${d}]`],
    ['extra', extraN, `[${extraN}]`],
  ] as const) {
    add(p, n, shape, 'parameters');
    add(`d${p}`, n, shape, 'gradients');
    add(`m_${p}`, n, shape, 'adam');
    add(`v_${p}`, n, shape, 'adam');
    if (cfg.ema) add(`ema_${p}`, n, shape, 'ema');
  }
  add('emaDummy', 4, '[4]', 'small');
}

/** Whether the 'chunkmax' TopK can run: one tile of the sparse family, its per-row lists (K ≤ 64), vec4 rows. */
const chunkMaxApplies = (cfg: ResolvedConfig, lay: Layout) =>
  !isDense(cfg.activation) && lay.tiles.length === 1 && cfg.d % 4 === 0 && kList(cfg) <= TOPK_INSERT_MAX_K;

/** The batch's rows, reconstructions and gradients; the pre-activations (a tile, or a micro-batch's [b, N]). */
function batchBuffers(buffers: PlannedBuffer[], cfg: ResolvedConfig, lay: Layout, gAuxTail: boolean) {
  const { batchSize: B, d, nLatents: N } = cfg;
  const { tileLatents, microBatch, microBatches } = lay;
  const dense = isDense(cfg.activation);
  const add = adder(buffers);
  // The batch.
  for (const name of ['x', 'xHat', 'eHat', 'gAux'] as const) add(name, B * d, `[${B}, ${d}]`, 'batch');
  // g holds one gradient source per Matryoshka level (one level for every other activation).
  const G = cfg.matryoshkaWidths.length;
  const gRows = G + (gAuxTail ? 1 : 0);
  add('g', gRows * B * d, gRows > 1 ? `[${gRows}, ${B}, ${d}]` : `[${B}, ${d}]`, 'batch');
  // The inner prefixes' reconstructions (Matryoshka); a placeholder otherwise.
  add('xInner', G > 1 ? (G - 1) * B * d : 1, G > 1 ? `[${G - 1}, ${B}, ${d}]` : '[1]', 'batch');
  add('rowScale', B, `[${B}]`, 'batch');
  add('rowStats', B * 4, `[${B}, 4]`, 'batch');

  // Pre-activations: the tile [B, n] (sparse), or [B, N] and the dense family's activations.
  // Threshold family: [b, N] of a micro-batch (b = microBatch rows).
  const preRows = dense ? microBatch : B;
  add('pre', preRows * tileLatents, `[${preRows}, ${tileLatents}]`, 'pre-activations');
  // The 'chunkmax' TopK's chunk maxima (step-sparse.ts), sized for the narrowest unrolled encoder tile.
  const chunkMax = chunkMaxApplies(cfg, lay);
  const maxWords = chunkMax ? chunkMaxWords(B, N) : 1;
  add('preMax', maxWords, chunkMax ? `[${B}, ${maxWords / B}]` : '[1]', 'pre-activations');
  const BN = dense ? microBatch * N : 1;
  const bnShape = `[${microBatch}, ${N}]`;
  const gated = cfg.activation === 'gated';
  add('act', BN, dense ? bnShape : '[1]', 'pre-activations');
  add('gact', BN, dense ? bnShape : '[1]', 'pre-activations');
  add('gpre', BN, dense ? bnShape : '[1]', 'pre-activations');
  add('actAux', gated ? BN : 1, gated ? bnShape : '[1]', 'pre-activations');
  add('gactAux', gated ? BN : 1, gated ? bnShape : '[1]', 'pre-activations');
  // Each micro-batch's rows (the MicroBatch uniform of shaders/common.wgsl).
  if (dense)
    for (let m = 0; m < microBatches.length; m++)
      buffers.push({ key: `microRows#${m}`, bytes: 16, shape: 'uniform', group: 'small' });
}

/**
 * The entries (TopK + AuxK pairs per row, or the dense codes), their order by latent, the fused
 * encode + TopK's chunk lists and the running lists across tiles. Returns the fused path's minimum
 * chunk (0: no fused path).
 */
function entryBuffers(
  buffers: PlannedBuffer[],
  cfg: ResolvedConfig,
  lay: Layout & Pick<BufferPlan, 'sortBlocks' | 'gvParts'>,
): number {
  const { batchSize: B, nLatents: N, kAux } = cfg;
  const { tileLatents, tiles } = lay;
  const dense = isDense(cfg.activation);
  const add = adder(buffers);
  // Entries: TopK + AuxK pairs per row (sparse), the codes (dense), and the CSC order by latent.
  const kMain = kRow(cfg);
  const codesK = dense ? Math.min(N, DENSE_CODES_MAX) : kMain;
  const E = dense ? B * codesK : B * (kMain + kAux);
  add('idxAll', E, `[${E}]`, 'entries');
  add('valAll', E, `[${E}]`, 'entries');
  for (const name of ['gvAll', 'unordered', 'rows'] as const)
    add(name, dense ? 1 : E, dense ? '[1]' : `[${E}]`, 'entries');
  // gv's per-part sums where the software gradient sums form gv; on every adapter, so the plan does not
  // depend on its kind.
  const parts = lay.gvParts;
  add('gvPart', parts ? E * parts : 1, parts ? `[${E}, ${parts}]` : '[1]', 'entries');
  const longSlots = dense ? 1 : sortLongSlots(E);
  add('longList', longSlots, `[${longSlots}]`, 'entries');
  // The sort's per-(row block, latent) counts, where its row-block form applies (software adapters
  // use it; sort-by-latent.wgsl). Allocated on every adapter, so the plan does not depend on its kind.
  const G = lay.sortBlocks;
  add('sortBlocks', G ? G * N : 1, G ? `[${G}, ${N}]` : '[1]', 'entries');
  const multi = cfg.multiTopK;
  const kTop = kList(cfg);
  // The fused encode + TopK's chunk lists (K ≤ 64): at most FUSED_MAX_CHUNKS lists per row and tile.
  const fusedChunkMin =
    !dense && kTop <= FUSED_MAX_K ? Math.max(FUSED_MIN_CHUNK, Math.ceil(tileLatents / FUSED_MAX_CHUNKS)) : 0;
  const fusedLists = fusedChunkMin ? Math.ceil(tileLatents / fusedChunkMin) * B * kTop : 1;
  add(
    'fusedIdx',
    fusedLists,
    `[${Math.ceil(tileLatents / Math.max(1, fusedChunkMin))}, ${B}, ${kTop}]`,
    'entries',
  );
  add(
    'fusedVal',
    fusedLists,
    `[${Math.ceil(tileLatents / Math.max(1, fusedChunkMin))}, ${B}, ${kTop}]`,
    'entries',
  );
  // Running top-k lists across tiles (only when there is more than one tile).
  const many = tiles.length > 1;
  // (The fused path and AuxK use them with one tile too.)
  const lists = many || fusedChunkMin > 0;
  add('tileIdx', lists ? B * Math.max(kTop, kAux) : 1, `[${B}, ${Math.max(kTop, kAux)}]`, 'entries');
  add('tileVal', lists ? B * Math.max(kTop, kAux) : 1, `[${B}, ${Math.max(kTop, kAux)}]`, 'entries');
  add('bestIdx', lists ? B * kTop : 1, `[${B}, ${kTop}]`, 'entries');
  add('bestVal', lists ? B * kTop : 1, `[${B}, ${kTop}]`, 'entries');
  const auxLists = lists && kAux > 0 && !multi;
  add('bestAuxIdx', auxLists ? B * kAux : 1, `[${B}, ${kAux}]`, 'entries');
  add('bestAuxVal', auxLists ? B * kAux : 1, `[${B}, ${kAux}]`, 'entries');
  return fusedChunkMin;
}

/** Per-latent statistics and the CSC starts; the small scalars, the metric ring and the uniforms. */
function latentAndSmallBuffers(buffers: PlannedBuffer[], cfg: ResolvedConfig) {
  const { d, nLatents: N } = cfg;
  const dense = isDense(cfg.activation);
  const add = adder(buffers);
  for (const name of PER_LATENT) add(name, N, `[${N}]`, 'latents');
  add('start', N + 1, `[${N + 1}]`, 'latents');
  add('latStats', dense ? N * LAT_STATS : 1, `[${N}, ${LAT_STATS}]`, 'latents');
  // The encoder's share of db_pre by chunk of latents (grad-latent.wgsl bpre_part).
  add('encPart', bpreChunks(N) * d, `[${bpreChunks(N)}, ${d}]`, 'latents');

  // Small.
  add('deadInfo', DEAD_INFO_WORDS, `[${DEAD_INFO_WORDS}]`, 'small');
  add('colR', d, `[${d}]`, 'small');
  add('zerosD', d, `[${d}]`, 'small');
  add('scal', 8, '[8]', 'small');
  add('metrics', METRIC_SLOTS * METRICS, `[${METRIC_SLOTS}, ${METRICS}]`, 'small');
  // BatchTopK: [τ of the last batch cut, θ the running inference threshold (−1 until learned), −, −]
  add('tau', 4, '[4]', 'small');
  buffers.push({ key: 'params', bytes: STEP_PARAMS_BYTES, shape: 'uniform', group: 'small' });
  buffers.push({ key: 'paramsCodes', bytes: STEP_PARAMS_BYTES, shape: 'uniform', group: 'small' });
}

/** Each buffer over the binding cap, as a problem naming it and what to lower. */
function oversizeProblems(
  buffers: PlannedBuffer[],
  cfg: ResolvedConfig,
  { bindingCap, capSource }: { bindingCap: number; capSource: string },
): string[] {
  const { d, nLatents: N } = cfg;
  const dense = isDense(cfg.activation);
  const G = cfg.matryoshkaWidths.length;
  const problems: string[] = [];
  for (const b of buffers) {
    if (b.bytes <= bindingCap) continue;
    // (The threshold family's [b, N] buffers when not even b = 1 fits: one line above.)
    if (dense && b.group === 'pre-activations' && 4 * N > bindingCap) continue;
    const perRow: Record<string, number> = { rowStats: 4, rowScale: 1, g: G * d, xInner: (G - 1) * d };
    const fix = /^(x|xHat|eHat|g|gAux|xInner|rowScale|rowStats)$/.test(b.key)
      ? `lower the batch to ≤ ${Math.floor(bindingCap / (4 * (perRow[b.key] ?? d)))}`
      : b.group === 'pre-activations'
        ? `lower the batch to ≤ ${Math.floor(bindingCap / 4)}`
        : b.group === 'entries'
          ? 'lower the batch, k or kAux'
          : 'lower N';
    problems.push(
      `buffer ${b.key} ${b.shape} needs ${MiB(b.bytes)}, over ${MiB(bindingCap)} (${capSource}): ${fix}`,
    );
  }
  return problems;
}

/**
 * The buffers of a training step for `cfg` on an adapter with `limits`. `tileLatents` forces the tile
 * width (tests); the config's maxBindingMiB caps the binding size below the adapter's.
 */
export function bufferPlan(
  cfg: ResolvedConfig,
  limits: PlanLimits,
  opts: { tileLatents?: number; microBatch?: number } = {},
): BufferPlan {
  const cap = bindingCapOf(cfg, limits);
  const problems: string[] = [];
  const lay = layout(cfg, limits, cap, opts, problems);
  const buffers: PlannedBuffer[] = [];
  parameterBuffers(buffers, cfg, lay.shards);
  const entries = cfg.batchSize * (kRow(cfg) + cfg.kAux);
  const gvParts =
    !isDense(cfg.activation) && 4 * entries * gvFusedParts(cfg.d) <= cap.bindingCap ? gvFusedParts(cfg.d) : 0;
  const gLevels = cfg.matryoshkaWidths.length;
  // The one-walk gradient sums' copy of g_aux after g's levels (grad-both.wgsl): only where it fits.
  const gAuxTail =
    gvParts === 4 && cfg.kAux > 0 && 4 * (gLevels + 1) * cfg.batchSize * cfg.d <= cap.bindingCap;
  batchBuffers(buffers, cfg, lay, gAuxTail);
  const rowBlocks = isDense(cfg.activation) ? 0 : sortRowBlocks(cfg.batchSize, cfg.nLatents, cap.bindingCap);
  const sortBlocks = rowBlocks >= 2 ? rowBlocks : 0;
  const fusedChunkMin = entryBuffers(buffers, cfg, { ...lay, sortBlocks, gvParts });
  latentAndSmallBuffers(buffers, cfg);
  problems.push(...oversizeProblems(buffers, cfg, cap));
  const totalBytes = buffers.reduce((a, b) => a + b.bytes, 0);
  const chunkMax = chunkMaxApplies(cfg, lay);
  return {
    ...cap,
    ...lay,
    fusedChunkMin,
    chunkMax,
    sortBlocks,
    gvParts,
    gAuxTail,
    buffers,
    totalBytes,
    problems,
  };
}

/** A config that breaks a limit: one line naming the buffer, its size, the limit and what to change. */
export class LimitError extends Error {
  constructor(readonly problems: string[]) {
    super(problems[0] + (problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''));
    this.name = 'LimitError';
  }
}

/**
 * The LimitError for a plan the device could not allocate: WebGPU tells no free memory before an
 * allocation fails, so this is the first moment it is known. Names the buffer refused, what the plan
 * holds in all and its largest groups, and what to lower.
 */
export function outOfMemoryError(plan: BufferPlan, buffer: string): LimitError {
  const byGroup = new Map<string, number>();
  for (const b of plan.buffers) byGroup.set(b.group, (byGroup.get(b.group) ?? 0) + b.bytes);
  const largest = [...byGroup]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([group, bytes]) => `${group} ${MiB(bytes)}`)
    .join(', ');
  return new LimitError([
    `the GPU ran out of memory allocating ${buffer}: this run's buffers need ${MiB(plan.totalBytes)} in all (${largest}); lower N or the batch size`,
  ]);
}

/** Throws LimitError when the plan breaks a limit. */
export function assertPlan(plan: BufferPlan): BufferPlan {
  if (plan.problems.length) throw new LimitError(plan.problems);
  return plan;
}
