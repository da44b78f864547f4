/**
 * Worker-side full evaluation of a trained SAE ("what the learned latents are").
 *
 * The row-heavy part runs on the GPU, exactly as the trainer's own evaluation (run panel,
 * metrics.json): Trainer.evalBatches sends the held-out rows through GpuSae.forward() (B rows at a
 * time, the last batch its rows alone), with the EMA weights when the run keeps them
 * (Trainer.withEvalWeights), and its reconstruction and codes stream into src/eval's
 * EvalAccumulator, whose nMSE, EV, L0 and never-fired count are src/sae/metrics.ts's. What
 * follows is CPU work on the sparse codes: feature recovery (synthetic data or a directions
 * file), probes (a labels file), N2G explanations (token ids + vocabulary), and the downstream
 * loss and ablation sparsity through the dataset's llama2.c model (the demo, or a dataset extracted
 * in the page), on the WGSL forward pass when a device is there.
 *
 * The worker keeps the last finished Trainer (with its GPU buffers) for this until a new run
 * starts; the last evaluation's codes and contexts are kept for the latent browser's 'latent'
 * requests.
 */
import { openActivationFile } from '../data/open';
import { Rng } from '../data/rng';
import { openTokenIds } from '../data/sidecars';
import { Batcher } from '../data/stream';
import {
  chanceMaxCosine,
  codesByLatent,
  concatCodes,
  EvalAccumulator,
  type ExplainSource,
  type Explanation,
  explainAll,
  featureRecovery,
  type LatentCsc,
  oneVsRest,
  probeLoss,
  type SparseCodes,
} from '../eval/index';
import {
  ablationSparsityOn,
  downstreamLossOn,
  type LmRunner,
  log10Histogram,
  quantiles,
  rowsReconstructor,
  type SaeOnRows,
} from '../eval/lm-runner';
import { type LlamaCheckpoint, readCheckpoint } from '../lm/checkpoint';
import { readTokenizer, type Tokenizer } from '../lm/tokenizer';
import { isBatchCut } from '../sae/config';
import { EVAL_MAX_ROWS } from '../sae/metrics';
import type { Trainer } from '../sae/trainer';
import { Contexts } from './contexts';
import type { OpenedDataset } from './datasets';
import type { LmContext } from './lm-context';
import { heldOutWindows, lmRunnerFor } from './lm-eval';
import type { AblationReport, DatasetSpec, FullEvalReport, FullEvalRequest } from './protocol';

export type Progress = (fraction: number, phase: string) => void;

/** What an evaluation reads: the trainer (GPU model, config, normalization) and the dataset it trained on. */
interface Target {
  trainer: Trainer;
  dataset: OpenedDataset | null;
}

let retained: Target | null = null;
/** URL of each opened demo dataset (for its provenance: model, tokenizer, text, positions). */
const demoUrls = new WeakMap<OpenedDataset, string>();

/** Language model, text and positions of each dataset extracted in the page ('extract-lm'). */
const lmContexts = new WeakMap<OpenedDataset, LmContext>();

/** Remembers the language model an extracted dataset came from (downstream loss, token contexts). */
export function noteLmDataset(ds: OpenedDataset, ctx: LmContext) {
  lmContexts.set(ds, ctx);
}

/** Remembers where a dataset came from (call after openDataset). */
export function noteDataset(ds: OpenedDataset, spec: DatasetSpec) {
  if (spec.kind === 'demo') {
    demoUrls.set(ds, spec.url ?? new URL('/demo/stories260K_L2_resid.f16.npy', self.location.origin).href);
  }
}

/** Keeps a finished run's trainer (and its GPU buffers) for evaluation; destroys the previous one. */
export function retainTrainer(trainer: Trainer, dataset: OpenedDataset | null) {
  if (retained && retained.trainer !== trainer) retained.trainer.destroy();
  retained = { trainer, dataset };
  state = null;
}

/** Frees the retained trainer (a new run is starting, or the device is gone). */
export function releaseTrainer() {
  retained?.trainer.destroy();
  retained = null;
  state = null;
}

/** The retained finished trainer, if any. */
export function retainedTrainer(): Trainer | null {
  return retained?.trainer ?? null;
}

/** State of the last full evaluation, for 'latent' and 'export-dashboards' requests (./dashboards.ts). */
export interface EvalState {
  trainer: Trainer;
  /** the dataset evaluated on, when it is the one the SAE trained on or was imported for */
  dataset: OpenedDataset | null;
  N: number;
  d: number;
  codes: SparseCodes;
  csc: LatentCsc;
  acc: EvalAccumulator;
  freq: Float64Array;
  meanAct: Float64Array;
  W_dec: Float32Array;
  /** [rows] global dataset row of each evaluated row */
  rowIds: Float64Array;
  contexts: Contexts | null;
  vocab: string[] | null;
  explained: Map<number, Explanation | null>;
}
let state: EvalState | null = null;

/** The last full evaluation, or null before one (or after a new run dropped it). */
export function lastEvaluation(): EvalState | null {
  return state;
}

/**
 * The language model the dataset's rows came from: one extracted in the page, the demo's
 * stories260K (fetched from the page's bundle), or null for a dataset of files.
 */
export async function datasetModel(ds: OpenedDataset): Promise<DemoLm | LmContext | null> {
  const extracted = lmContexts.get(ds);
  if (extracted) return extracted;
  const url = demoUrls.get(ds);
  return url ? loadDemoLm(url) : null;
}

const yieldToEvents = () => new Promise<void>((r) => setTimeout(r, 0));

/**
 * Full evaluation of `live` (a run in progress or paused) or else the retained finished run.
 * @param dataset the dataset open now; used for tokens / vocab only when it is the one trained on
 */
export async function fullEvaluate(
  live: { trainer: Trainer; dataset: OpenedDataset | null } | null,
  req: FullEvalRequest,
  onProgress: Progress,
): Promise<FullEvalReport> {
  const target: Target | null = live ?? retained;
  if (!target) throw new Error('nothing to evaluate: train an SAE first');
  const { trainer, dataset } = target;
  const { cfg, sae, source } = trainer;
  const { d, nLatents: N } = cfg;
  const maxRows = Math.max(1, Math.floor(req.maxRows ?? EVAL_MAX_ROWS));
  onProgress(0, 'evaluating');

  // ---- 1. GPU forward of the evaluation rows, as the run panel's evaluation reads them ----
  // (Trainer.evalBatches: the same rows, batches and forward; the EMA weights when the run keeps
  // them, swapped in on the GPU; the metrics through src/sae/metrics.ts's accumulator, so the run
  // panel, metrics.json, this panel and eval.json agree exactly for one SAE.)
  const acc = new EvalAccumulator({
    N,
    d,
    mean: trainer.stats.mean,
    topM: topMFor(N),
    fireThreshold: cfg.fireThreshold,
    innerLevels: cfg.matryoshkaWidths.length - 1,
  });
  const codeParts: SparseCodes[] = [];
  const idParts: Float64Array[] = [];
  const wantRaw = !!req.labels && maxRows * d <= 32 << 20;
  const rawParts: Float32Array[] = [];
  const split = new Batcher(source, { heldOutFraction: cfg.evalFrac, nonFinite: 'skip', shuffleRows: 1 });
  const total = Math.min(maxRows, split.split.heldOutRows > 0 ? split.split.heldOutRows : source.rows);
  // Parameters on the CPU (decoder geometry, downstream): the weights evaluated.
  const { weights, params } = await trainer.withEvalWeights(async (weights) => {
    let done = 0;
    for await (const b of trainer.evalBatches(maxRows)) {
      acc.add(b.x, b.codes, b.xHat, b.rowL0, b.xInner);
      codeParts.push(b.codes);
      idParts.push(b.rowIds.slice());
      if (wantRaw) rawParts.push(b.x.slice());
      done += b.codes.rows;
      onProgress(0.55 * Math.min(1, done / Math.max(1, total)), 'evaluating');
    }
    return { weights, params: await sae.readParams() };
  });
  const codes = concatCodes(codeParts);
  const rowIds = concatF64(idParts);
  const rep = acc.report(40);
  const since = await sae.readU32('tokensSince', N);
  let deadRule = 0;
  for (let i = 0; i < N; i++) if (since[i] > cfg.deadTokens) deadRule++;

  const report: FullEvalReport = {
    weights,
    rows: rep.rows,
    nmse: rep.nmse,
    explainedVariance: rep.explainedVariance,
    ...(rep.prefixNmse
      ? { prefixNmse: rep.prefixNmse, prefixWidths: cfg.matryoshkaWidths.slice(0, -1) }
      : {}),
    l0: rep.l0,
    deadFraction: rep.deadFraction,
    deadFractionRule: deadRule / N,
    density: {
      edges: Array.from(rep.density.edges),
      counts: Array.from(rep.density.counts),
      neverFired: rep.density.neverFired,
    },
    latents: Array.from({ length: N }, (_, i) => ({
      id: i,
      freq: rep.firingFrequency[i],
      meanAct: rep.meanActWhenActive[i],
      maxAct: rep.maxAct[i],
    })),
  };
  const csc = codesByLatent(codes, N, 0);

  // ---- 2. feature recovery ----
  const dirs = await trueDirections(req, source, d);
  if (dirs) {
    onProgress(0.58, 'evaluating: feature recovery');
    await yieldToEvents();
    const F = dirs.length / d;
    const r = featureRecovery(params.W_dec, N, dirs, F, d, 0.9);
    report.recovery = {
      meanMaxCos: r.meanMaxCos,
      fractionRecovered: r.fractionRecovered,
      threshold: r.threshold,
      sorted: subsample(r.sorted, 1024),
      chance: d >= 2 ? chanceMaxCosine(d, N, 4000) : Number.NaN,
    };
  }

  // ---- 3. probes ----
  if (req.labels) {
    onProgress(0.62, 'evaluating: probes');
    await yieldToEvents();
    const lab = await openTokenIds(req.labels.blob, req.labels.name, source.rows);
    const labels = await readByRows(lab.readIds.bind(lab), rowIds);
    let maxL = 0;
    let minL = 0;
    for (const v of labels) {
      maxL = Math.max(maxL, v);
      minL = Math.min(minL, v);
    }
    if (minL < 0) throw new Error(`${req.labels.name}: labels must be non-negative integers`);
    const binary = maxL <= 1;
    const masks = binary
      ? [Uint8Array.from(labels, (v) => (v > 0 ? 1 : 0))]
      : oneVsRest(labels, Math.min(maxL + 1, 32));
    const names = binary ? [req.labels.name] : masks.map((_, c) => `class ${c}`);
    const keep = masks.map((m, j) => ({ m, name: names[j] })).filter(({ m }) => m.some((v) => v === 1));
    const x = wantRaw ? concatF32(rawParts) : undefined;
    const pr = probeLoss(
      csc,
      N,
      keep.map((t) => t.m),
      { x, d, rawIters: 60 },
    );
    report.probes = pr.tasks.map((t, j) => ({
      task: keep[j].name,
      bestLatent: t.bestLatent,
      loss: t.loss,
      constantLoss: t.constantLoss,
      ...(Number.isFinite(t.rawLoss) ? { rawLoss: t.rawLoss } : {}),
    }));
  }

  // ---- 4. token contexts and explanations ----
  const ds = dataset;
  let contexts: Contexts | null = null;
  if (ds?.tokenIds && ds.source === source) {
    onProgress(0.66, 'evaluating: token contexts');
    const positions = lmContexts.get(ds)?.positions ?? (await demoPositions(ds, source.rows));
    contexts = await Contexts.build(ds.tokenIds, positions, ds.vocab, rowIds, source.rows);
  }
  const vocab = ds && ds.source === source ? ds.vocab : null;
  const explained = new Map<number, Explanation | null>();
  const nExplain = Math.max(0, Math.floor(req.explainLatents ?? 0));
  if (contexts && nExplain > 0) {
    onProgress(0.7, 'evaluating: explanations');
    await yieldToEvents();
    const live: number[] = [];
    for (let i = 0; i < N; i++) if (csc.start[i + 1] - csc.start[i] >= 4) live.push(i);
    const pick = new Rng(cfg.seed + 0xe7a1).shuffle(Uint32Array.from(live)).slice(0, nExplain).sort();
    const src = explainSource(csc, contexts, vocab);
    const chunk = 16;
    const all: Explanation[] = [];
    for (let s = 0; s < pick.length; s += chunk) {
      const sum = explainAll(pick.subarray(s, s + chunk), src);
      for (const e of sum.explanations) {
        explained.set(e.latent, e);
        all.push(e);
      }
      for (const i of sum.silent) explained.set(i, null);
      onProgress(0.7 + 0.15 * Math.min(1, (s + chunk) / pick.length), 'evaluating: explanations');
      await yieldToEvents();
    }
    for (const e of all) {
      report.latents[e.latent].f1 = e.f1;
      report.latents[e.latent].explanation = e.text;
    }
    if (all.length > 0) {
      const mean = (f: (e: Explanation) => number) => all.reduce((a, e) => a + f(e), 0) / all.length;
      const histogram = new Array(10).fill(0);
      for (const e of all) histogram[Math.min(9, Math.floor(e.f1 * 10))]++;
      report.explanations = {
        count: all.length,
        meanF1: mean((e) => e.f1),
        meanPrecision: mean((e) => e.precision),
        meanRecall: mean((e) => e.recall),
        histogram,
      };
    }
  }

  // ---- 5. downstream loss and ablation sparsity through the language model ----
  if (req.downstream || req.ablation) {
    const sameData = ds && ds.source === source;
    const extracted = sameData ? lmContexts.get(ds) : undefined;
    const url = sameData ? demoUrls.get(ds) : undefined;
    if (!extracted && !url)
      throw new Error(
        'downstream loss and ablation sparsity need activations from a language model: the demo dataset or one extracted in the page',
      );
    if (extracted?.family === 'llama2c' && extracted.site !== 'resid')
      throw new Error(
        `downstream loss and ablation sparsity splice into the residual stream; this dataset is the MLP output of layer ${extracted.layer}`,
      );
    onProgress(0.86, 'evaluating: downstream loss');
    await yieldToEvents();
    const lm = extracted ?? (await loadDemoLm(url as string));
    const norm = trainer.norm;
    const sae: SaeOnRows = {
      sae: {
        params,
        k: cfg.k,
        activation: cfg.activation,
        inputScale: norm.kind === 'scalar' ? norm.scale : 1,
        // BatchTopK is spliced per token with its learned threshold, as the GPU evaluation runs it.
        ...(isBatchCut(cfg.activation)
          ? { inferenceThreshold: await trainer.sae.readInferenceThreshold() }
          : {}),
      },
      perRow: norm.kind === 'paper',
    };
    const runner = lmRunnerFor(lm, req.lmBackend ?? 'auto', saeDevice(trainer));
    if (req.downstream) {
      const t0 = performance.now();
      report.downstream = await lmDownstream(lm, runner, sae, (f) =>
        onProgress(0.86 + (req.ablation ? 0.06 : 0.14) * f, 'evaluating: downstream loss'),
      );
      report.downstreamRun = { backend: runner.backend, seconds: (performance.now() - t0) / 1000 };
    }
    if (req.ablation) {
      onProgress(0.92, 'evaluating: ablation sparsity');
      report.ablation = await lmAblation(lm, runner, sae, req.ablation, cfg.seed, (f) =>
        onProgress(0.92 + 0.08 * f, 'evaluating: ablation sparsity'),
      );
    }
  }

  state = {
    trainer,
    dataset: ds && ds.source === source ? ds : null,
    N,
    d,
    codes,
    csc,
    acc,
    freq: rep.firingFrequency,
    meanAct: rep.meanActWhenActive,
    W_dec: params.W_dec,
    rowIds,
    contexts,
    vocab,
    explained,
  };
  onProgress(1, 'evaluating');
  return report;
}

// ---- helpers ----

function topMFor(N: number): number {
  return Math.max(4, Math.min(20, Math.floor((1 << 22) / N)));
}

function concatF64(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function concatF32(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function subsample(a: Float64Array, n: number): number[] {
  if (a.length <= n) return Array.from(a);
  return Array.from({ length: n }, (_, j) => a[Math.round((j * (a.length - 1)) / (n - 1))]);
}

/** Values of rows `rowIds` (sorted ascending, in contiguous runs) from a reader of row ranges. */
async function readByRows(
  read: (start: number, count: number) => Promise<Int32Array>,
  rowIds: Float64Array,
): Promise<Int32Array> {
  const out = new Int32Array(rowIds.length);
  for (let j = 0; j < rowIds.length; ) {
    let e = j + 1;
    while (e < rowIds.length && rowIds[e] === rowIds[e - 1] + 1 && e - j < 1 << 20) e++;
    out.set(await read(rowIds[j], e - j), j);
    j = e;
  }
  return out;
}

/** Planted directions of a synthetic dataset, or a directions .npy [F, d] the user gave. */
async function trueDirections(
  req: FullEvalRequest,
  source: Trainer['source'],
  d: number,
): Promise<Float32Array | null> {
  if (req.directions) {
    const s = await openActivationFile(req.directions.blob, req.directions.name);
    if (s.d !== d)
      throw new Error(`${req.directions.name}: directions have width ${s.d}, the SAE has d = ${d}`);
    return s.readRows(0, s.rows);
  }
  const dirs = (source as { directions?: unknown }).directions;
  return dirs instanceof Float32Array && dirs.length % d === 0 && dirs.length > 0 ? dirs : null;
}

/** The demo's positions sidecar (windows restart where the position does not increase). */
async function demoPositions(ds: OpenedDataset, rows: number): Promise<Int32Array | null> {
  const url = demoUrls.get(ds);
  if (!url) return null;
  try {
    const res = await fetch(url.replace(/\.f16\.npy$/, '.positions.npy'));
    if (!res.ok) return null;
    const p = await openTokenIds(await res.blob(), 'positions.npy', rows);
    return await p.readIds(0, rows);
  } catch {
    return null;
  }
}

export function explainSource(csc: LatentCsc, ctx: Contexts, vocab: string[] | null): ExplainSource {
  const half = Math.floor(csc.rows / 2);
  return {
    csc,
    contextOf: (row, n) => ctx.contextOf(row, n),
    trainRows: [0, half],
    testRows: [half, csc.rows],
    ...(vocab ? { vocab } : {}),
  };
}

/** The language model of the demo dataset, from its provenance file (bundled with the page). */
export interface DemoLm {
  name: string;
  ckpt: LlamaCheckpoint;
  tok: Tokenizer;
  text: string;
  charsUsed: number;
  layer: number;
}

const demoLms = new Map<string, Promise<DemoLm>>();

function loadDemoLm(demoUrl: string): Promise<DemoLm> {
  let p = demoLms.get(demoUrl);
  if (!p) {
    p = (async () => {
      const get = async (url: string) => {
        const res = await fetch(url);
        if (!res.ok) throw new Error(`could not load ${url} for the downstream loss (HTTP ${res.status})`);
        return res;
      };
      const prov = (await (await get(demoUrl.replace(/\.f16\.npy$/, '.json'))).json()) as {
        model: { path: string };
        tokenizer: string;
        text: { path: string; charsUsed: number };
        layer: number;
      };
      const root = new URL('../', demoUrl);
      const at = (path: string) => new URL(path.replace(/^public\//, ''), root).href;
      const ckpt = readCheckpoint(await (await get(at(prov.model.path))).arrayBuffer(), 'stories260K.bin');
      const tok = readTokenizer(await (await get(at(prov.tokenizer))).arrayBuffer(), {
        vocabSize: ckpt.config.vocabSize,
        name: 'tok512.bin',
      });
      const text = await (await get(at(prov.text.path))).text();
      return { name: 'stories260K', ckpt, tok, text, charsUsed: prov.text.charsUsed, layer: prov.layer };
    })();
    p.catch(() => demoLms.delete(demoUrl));
    demoLms.set(demoUrl, p);
  }
  return p;
}

/** The GPU device of the model being evaluated (the worker's device). */
function saeDevice(trainer: Trainer): GPUDevice | null {
  return trainer.sae.device ?? null;
}

/**
 * Downstream loss of the SAE spliced into the dataset's model at its residual index, on held-out
 * text (at most 12 windows, 768 tokens), on the WGSL forward when a device is there.
 */
async function lmDownstream(
  lm: DemoLm | LmContext,
  runner: LmRunner,
  sae: SaeOnRows,
  onProgress: (f: number) => void,
): Promise<NonNullable<FullEvalReport['downstream']>> {
  const windows = heldOutWindows(lm, 768, 12);
  return downstreamLossOn(runner, windows, lm.layer, rowsReconstructor(sae), {
    onProgress: async (f) => {
      onProgress(f);
      await yieldToEvents();
    },
  });
}

/** Ablation sparsity (paper §4.5) of a sample of latents active in held-out text, as a distribution. */
async function lmAblation(
  lm: DemoLm | LmContext,
  runner: LmRunner,
  sae: SaeOnRows,
  req: NonNullable<FullEvalRequest['ablation']>,
  seed: number,
  onProgress: (f: number) => void,
): Promise<AblationReport> {
  const t0 = performance.now();
  const nLatents = Math.max(1, Math.floor(req.latents ?? 64));
  const nTokens = Math.max(8, Math.floor(req.tokens ?? 512));
  const perLatent = Math.max(1, Math.floor(req.positionsPerLatent ?? 2));
  const future = Math.max(1, Math.floor(req.futureTokens ?? 16));
  const windows = heldOutWindows(lm, nTokens, 64);
  const r = await ablationSparsityOn(runner, windows, lm.layer, sae, {
    sample: nLatents,
    seed: seed + 0xab1a,
    positionsPerLatent: perLatent,
    futureTokens: future,
    onProgress: async (f) => {
      onProgress(f);
      await yieldToEvents();
    },
  });
  const qs = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1];
  const qf = quantiles(r.effectiveFraction, qs);
  const qc = quantiles(r.effectiveCount, qs);
  const V = runner.config.vocabSize;
  return {
    latents: r.latents.length,
    requested: nLatents,
    activeLatents: r.activeLatents,
    tokens: windows.reduce((a, w) => a + w.length, 0),
    positionsPerLatent: perLatent,
    futureTokens: future,
    vocab: V,
    meanCount: r.meanEffectiveCount,
    meanFraction: r.meanEffectiveFraction,
    quantiles: qs.map((q, j) => ({ q, fraction: qf[j], count: qc[j] })),
    // fractions lie in [1/(T'·V), 1]
    histogram: log10Histogram(r.effectiveFraction, Math.floor(Math.log10(1 / (future * V))), 0, 16),
    perLatent: Array.from(r.latents, (id, j) => ({
      id,
      fraction: r.effectiveFraction[j],
      count: r.effectiveCount[j],
      positions: r.positions[j],
    })),
    backend: runner.backend,
    forwards: r.forwards,
    seconds: (performance.now() - t0) / 1000,
  };
}
