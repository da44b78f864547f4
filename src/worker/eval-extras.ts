/**
 * The CPU part of a full evaluation, on the sparse codes of the GPU forward (./eval-forward.ts):
 * feature recovery (synthetic data's planted directions or a directions file), probes (a labels
 * file), and N2G explanations of a sample of latents (token ids + vocabulary). Each adds its
 * section to the report.
 */
import { openActivationFile } from '../data/open';
import { Rng } from '../data/rng';
import { openTokenIds } from '../data/sidecars';
import {
  chanceMaxCosine,
  type ExplainSource,
  type Explanation,
  explainAll,
  featureRecovery,
  type LatentCsc,
  oneVsRest,
  probeLoss,
} from '../eval/index';
import type { Trainer } from '../sae/trainer';
import type { Contexts } from './contexts';
import type { Progress } from './eval-forward';
import type { FullEvalReport, FullEvalRequest } from './protocol';

export const yieldToEvents = () => new Promise<void>((r) => setTimeout(r, 0));

/**
 * Feature recovery of the decoder W_dec [N, d] against the true directions [F, d] (planted in a
 * synthetic dataset, or the request's directions file); undefined when there are none.
 */
export async function recoveryReport(
  req: FullEvalRequest,
  source: Trainer['source'],
  W_dec: Float32Array,
  N: number,
  d: number,
  onProgress: Progress,
): Promise<FullEvalReport['recovery']> {
  const dirs = await trueDirections(req, source, d);
  if (!dirs) return undefined;
  onProgress(0.58, 'evaluating: feature recovery');
  await yieldToEvents();
  const F = dirs.length / d;
  const r = featureRecovery(W_dec, N, dirs, F, d, 0.9);
  return {
    meanMaxCos: r.meanMaxCos,
    fractionRecovered: r.fractionRecovered,
    threshold: r.threshold,
    sorted: subsample(r.sorted, 1024),
    chance: d >= 2 ? chanceMaxCosine(d, N, 4000) : Number.NaN,
  };
}

/**
 * Probes of the request's labels (one per dataset row) on the evaluated rows `rowIds`: the best
 * single latent of each task (binary labels: one task; classes: one-vs-rest, at most 32), and a
 * probe on the raw rows [rows, d] when they were kept.
 */
export async function probesReport(
  labelsFile: NonNullable<FullEvalRequest['labels']>,
  sourceRows: number,
  csc: LatentCsc,
  N: number,
  rowIds: Float64Array,
  raw: Float32Array | undefined,
  d: number,
  onProgress: Progress,
): Promise<FullEvalReport['probes']> {
  onProgress(0.62, 'evaluating: probes');
  await yieldToEvents();
  const lab = await openTokenIds(labelsFile.blob, labelsFile.name, sourceRows);
  const labels = await readByRows(lab.readIds.bind(lab), rowIds);
  let maxL = 0;
  let minL = 0;
  for (const v of labels) {
    maxL = Math.max(maxL, v);
    minL = Math.min(minL, v);
  }
  if (minL < 0) throw new Error(`${labelsFile.name}: labels must be non-negative integers`);
  const binary = maxL <= 1;
  const masks = binary
    ? [Uint8Array.from(labels, (v) => (v > 0 ? 1 : 0))]
    : oneVsRest(labels, Math.min(maxL + 1, 32));
  const names = binary ? [labelsFile.name] : masks.map((_, c) => `class ${c}`);
  const keep = masks.map((m, j) => ({ m, name: names[j] })).filter(({ m }) => m.some((v) => v === 1));
  const pr = probeLoss(
    csc,
    N,
    keep.map((t) => t.m),
    { x: raw, d, rawIters: 60 },
  );
  return pr.tasks.map((t, j) => ({
    task: keep[j].name,
    bestLatent: t.bestLatent,
    loss: t.loss,
    constantLoss: t.constantLoss,
    ...(Number.isFinite(t.rawLoss) ? { rawLoss: t.rawLoss } : {}),
  }));
}

/**
 * N2G explanations of up to `count` latents (seeded sample of those with ≥ 4 activations), 16 at a
 * time; fills each explained latent's f1 and text in report.latents and the summary in
 * report.explanations. Returns every sampled latent's explanation (null: it said nothing).
 */
export async function addExplanations(
  report: FullEvalReport,
  csc: LatentCsc,
  contexts: Contexts,
  vocab: string[] | null,
  count: number,
  seed: number,
  onProgress: Progress,
): Promise<Map<number, Explanation | null>> {
  const explained = new Map<number, Explanation | null>();
  onProgress(0.7, 'evaluating: explanations');
  await yieldToEvents();
  const live: number[] = [];
  for (let i = 0; i < csc.N; i++) if (csc.start[i + 1] - csc.start[i] >= 4) live.push(i);
  const pick = new Rng(seed + 0xe7a1).shuffle(Uint32Array.from(live)).slice(0, count).sort();
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
  return explained;
}

/** What N2G reads: the codes by latent, each row's token context; first half trains, second tests. */
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

/** At most n values of a sorted array, evenly spaced, first and last included. */
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
