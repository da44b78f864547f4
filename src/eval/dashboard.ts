/**
 * Per-latent dashboard maths (what Neuronpedia / SAEDashboard show for a latent), as pure
 * functions over the evaluation's per-latent CSC (./codes.ts) and the language model's weights:
 *
 *  - the histogram of a latent's nonzero (firing) values;
 *  - its value on any evaluated row (for shading every token of a context);
 *  - contexts sampled from activation-quantile bands, not only the top ones;
 *  - the tokens whose logits the latent's decoder direction raises and lowers most, through the
 *    model's final norm and unembedding (the direct path from the residual stream to the logits).
 *
 * The worker (src/worker/dashboards.ts) assembles these with token contexts into a
 * {@link LatentDashboard}, for the page's latent browser and the static dashboard folder
 * (src/io/dashboard.ts) alike.
 */
import { Rng } from '../data/rng.ts';
import type { LatentCsc } from './codes.ts';
import { FIRE_THRESHOLD } from './metrics.ts';

/** One token context of a latent, ready to show. */
export interface DashContext {
  /** dataset row of the context's anchor token */
  row: number;
  /** the latent's value on the anchor token */
  value: number;
  /** [T] display pieces of the context's tokens (empty when the dataset has no token ids) */
  tokens: string[];
  /** [T] the latent's value on each token; null where that token's row was not evaluated */
  acts: (number | null)[];
  /** index of the anchor token in tokens (−1 without tokens) */
  active: number;
}

/** Contexts drawn from one activation-quantile band. */
interface DashBand {
  /** quantile range of the band among the firing values, e.g. 0.75–1 */
  qLo: number;
  qHi: number;
  /** value range of the band (smallest, largest firing value in it) */
  lo: number;
  hi: number;
  /** firing rows in the band */
  count: number;
  contexts: DashContext[];
}

export interface LogitEffect {
  token: number;
  /** display piece of the token */
  piece: string;
  /** change of the token's logit per unit of the latent (before the norm's 1/scale) */
  value: number;
}

/** Everything one latent's dashboard shows (page and exported folder). */
export interface LatentDashboard {
  id: number;
  /** fraction of evaluated rows where it fired */
  freq: number;
  /** mean / max value where it fired (NaN / 0 when it never fired) */
  meanAct: number;
  maxAct: number;
  /** evaluated rows where it fired */
  fired: number;
  /** histogram of its firing values on [0, max] */
  histogram: { edges: number[]; counts: number[] };
  /** top-activating contexts, value desc */
  top: DashContext[];
  /** quantile-sampled contexts, lowest band first */
  bands: DashBand[];
  /** logit effects through the dataset's model; null when no model is loaded */
  logits: { up: LogitEffect[]; down: LogitEffect[] } | null;
  explanation?: { text: string; precision: number; recall: number; f1: number };
}

/**
 * Histogram of one latent's firing values (value > threshold, i.e. its nonzero activations), in
 * `bins` equal bins on [0, max(values)]; the same bins and counts as activationHistogram (./metrics.ts)
 * over the codes the CSC was built from, without a pass over every row.
 * @param values [n] the latent's values (e.g. its CSC column slice); values ≤ threshold are left out
 */
export function valueHistogram(
  values: ArrayLike<number>,
  opts: { bins?: number; threshold?: number } = {},
): { edges: Float64Array; counts: Uint32Array; fired: number } {
  const bins = opts.bins ?? 32;
  const th = opts.threshold ?? FIRE_THRESHOLD;
  let max = 0;
  for (let j = 0; j < values.length; j++) if (values[j] > max) max = values[j];
  const edges = Float64Array.from({ length: bins + 1 }, (_, b) => (max * b) / bins);
  const counts = new Uint32Array(bins);
  let fired = 0;
  for (let j = 0; j < values.length; j++) {
    const v = values[j];
    if (!(v > th)) continue;
    fired++;
    counts[Math.min(bins - 1, Math.max(0, Math.floor((v / max) * bins)))]++;
  }
  return { edges, counts, fired };
}

/**
 * The latent's value on evaluated row `row` (0 where it did not fire there), by binary search in
 * its CSC column (rows ascending, as codesByLatent builds it). O(log nnz_latent).
 */
export function valueAt(csc: LatentCsc, latent: number, row: number): number {
  let lo = csc.start[latent];
  let hi = csc.start[latent + 1];
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (csc.row[mid] < row) lo = mid + 1;
    else hi = mid;
  }
  return lo < csc.start[latent + 1] && csc.row[lo] === row ? csc.val[lo] : 0;
}

export interface QuantileBand {
  qLo: number;
  qHi: number;
  lo: number;
  hi: number;
  count: number;
  /** sampled rows of the band and their values, value desc (then row asc) */
  picks: { row: number; value: number }[];
}

/**
 * Samples rows from activation-quantile bands of one latent. The n firing values are ranked
 * ascending (ties by row); band b holds ranks [⌊b·n/B⌋, ⌊(b+1)·n/B⌋), i.e. quantiles b/B..(b+1)/B.
 * From each band `perBand` rows are drawn uniformly without replacement with Rng.derive(seed,
 * latent), first among rows not in `exclude` (e.g. the top contexts already shown), then from the
 * excluded ones if the band has too few others. Deterministic for a seed.
 * @param rows [n] rows where the latent fired; values [n] its value there (any order)
 * @returns B bands, lowest first (bands with no row are kept, with count 0 and no picks)
 */
export function quantileBands(
  rows: ArrayLike<number>,
  values: ArrayLike<number>,
  opts: {
    bands?: number;
    perBand?: number;
    seed?: number;
    latent?: number;
    exclude?: ReadonlySet<number>;
  } = {},
): QuantileBand[] {
  const B = opts.bands ?? 4;
  const m = opts.perBand ?? 4;
  const n = rows.length;
  const rng = Rng.derive(opts.seed ?? 0, opts.latent ?? 0);
  const order = Array.from({ length: n }, (_, j) => j).sort(
    (a, b) => values[a] - values[b] || rows[a] - rows[b],
  );
  const out: QuantileBand[] = [];
  for (let b = 0; b < B; b++) {
    const r0 = Math.floor((b * n) / B);
    const r1 = Math.floor(((b + 1) * n) / B);
    const members = order.slice(r0, r1);
    const fresh = members.filter((j) => !opts.exclude?.has(rows[j]));
    const seen = members.filter((j) => opts.exclude?.has(rows[j]));
    const picked = [...sampleWithout(fresh, Math.min(m, fresh.length), rng)];
    if (picked.length < m) picked.push(...sampleWithout(seen, Math.min(m - picked.length, seen.length), rng));
    picked.sort((a, c) => values[c] - values[a] || rows[a] - rows[c]);
    out.push({
      qLo: b / B,
      qHi: (b + 1) / B,
      lo: members.length ? values[members[0]] : Number.NaN,
      hi: members.length ? values[members[members.length - 1]] : Number.NaN,
      count: members.length,
      picks: picked.map((j) => ({ row: rows[j], value: values[j] })),
    });
  }
  return out;
}

/** c items of `from` drawn uniformly without replacement (partial Fisher–Yates on a copy). */
function sampleWithout(from: number[], c: number, rng: Rng): number[] {
  const a = from.slice();
  for (let j = 0; j < c; j++) {
    const p = j + rng.nextInt(a.length - j);
    const t = a[j];
    a[j] = a[p];
    a[p] = t;
  }
  return a.slice(0, c);
}

/**
 * The language model's final norm, as the direct path from the residual stream to the logits sees
 * a direction added to the residual:
 *  - llama2.c: RMSNorm, y = x / rms(x) ⊙ w;
 *  - GPT-2: LayerNorm, y = (x − mean(x)) / σ(x) ⊙ γ + β.
 */
export type FinalNorm = { kind: 'rms'; weight: Float32Array } | { kind: 'layernorm'; weight: Float32Array };

/** The unembedding and the final norm's weight, ready for {@link logitEffects}. */
export interface LogitLens {
  /** [V, d] the unembedding U (a reference, not a copy: GPT-2's is 154 MB) */
  unembed: Float32Array;
  /** [d] the norm's weight w (RMSNorm weight, LayerNorm γ) */
  weight: Float32Array;
  V: number;
  d: number;
  /** subtract the direction's mean over d first (LayerNorm) */
  center: boolean;
}

/**
 * The direct path from the residual stream to the logits: the final norm, then the unembedding U
 * [V, d] (llama2.c: `wcls`, the token embedding when shared; GPT-2: the tied `wte`). The norm's
 * 1/rms or 1/σ is a positive scalar per token that scales every logit change alike, so the ranking
 * of tokens (what a dashboard shows) does not depend on it and it is left out: values are per unit
 * of the latent at unit norm scale. For LayerNorm the mean subtraction is linear, so a direction u
 * reaches the normalized residual as u − mean(u): the lens centers it. LayerNorm's bias β is
 * dropped: it adds the same vector U·β to the logits whichever latent fires, so it is no effect of
 * the latent.
 */
export function logitLens(norm: FinalNorm, unembed: Float32Array, V: number, d: number): LogitLens {
  if (norm.weight.length !== d)
    throw new Error(`final norm has ${norm.weight.length} weights, expected d = ${d}`);
  if (unembed.length !== V * d)
    throw new Error(`unembedding has ${unembed.length} values, expected ${V}·${d}`);
  return { unembed, weight: norm.weight, V, d, center: norm.kind === 'layernorm' };
}

/**
 * Direct logit effect of a decoder direction: e = U · (w ⊙ (dir − [center] mean(dir))) [V], and the
 * `top` tokens it raises most (largest e, desc) and lowers most (smallest e, asc); ties by token id.
 * @param dir [d] a row of W_dec (in the SAE's input space: only its direction matters)
 * @param piece display text of a token id
 */
export function logitEffects(
  lens: LogitLens,
  dir: ArrayLike<number>,
  top = 10,
  piece: (t: number) => string = (t) => `<${t}>`,
): { up: LogitEffect[]; down: LogitEffect[] } {
  const { V, d, unembed, weight } = lens;
  const v = new Float64Array(d);
  let mean = 0;
  if (lens.center) {
    for (let j = 0; j < d; j++) mean += dir[j];
    mean /= d;
  }
  for (let j = 0; j < d; j++) v[j] = weight[j] * (dir[j] - mean);
  const e = new Float64Array(V);
  for (let t = 0; t < V; t++) {
    let s = 0;
    const o = t * d;
    for (let j = 0; j < d; j++) s += unembed[o + j] * v[j];
    e[t] = s;
  }
  const fx = (t: number): LogitEffect => ({ token: t, piece: piece(t), value: e[t] });
  return { up: largest(e, top, 1).map(fx), down: largest(e, top, -1).map(fx) };
}

/**
 * Indices of the k largest sign·e[t] (desc; ties to the lower index) in one pass with a sorted list
 * of k (V up to 50k per latent, k ~ 10: no full sort).
 */
function largest(e: Float64Array, k: number, sign: 1 | -1): number[] {
  const keep: number[] = [];
  const better = (a: number, b: number) => sign * e[a] > sign * e[b] || (e[a] === e[b] && a < b);
  for (let t = 0; t < e.length; t++) {
    if (keep.length === k && !better(t, keep[k - 1])) continue;
    let p = keep.length < k ? keep.length : k - 1;
    if (keep.length < k) keep.push(t);
    while (p > 0 && better(t, keep[p - 1])) {
      keep[p] = keep[p - 1];
      p--;
    }
    keep[p] = t;
  }
  return keep;
}
