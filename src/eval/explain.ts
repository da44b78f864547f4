/**
 * N2G-style token-pattern explanations (Gao et al. 2024 §4.4, simplified from Neuron to Graph).
 *
 * For a latent:
 *  1. take its top-activating rows in the training range and split them by rank parity:
 *     even ranks are the training positives (the odd half is left to the caller, e.g. to show);
 *  2. build candidate patterns from each training context (tokens t_{−2}, t_{−1}, t_0, where t_0 is
 *     the token at the activating row): [t0], [t−1, t0], [t−2, t−1, t0], [t−2, *, t0];
 *  3. score each by F1 of "pattern matches ⇒ latent fires" on training positives + negatives,
 *     where the negatives are random non-firing rows plus "hard" negatives: non-firing rows whose
 *     token equals one of the activating tokens. Without hard negatives a random sample rarely
 *     contains the activating token in a non-firing context, so [t0] would tie with the true,
 *     more specific pattern; ties go to the shorter pattern (fewer fixed tokens);
 *  4. evaluate the winner on the held-out row range over all rows: precision = P(fires | match),
 *     recall = P(match | fires), F1.
 * A row's context comes from a callback, so the caller decides where windows start (a context
 * never crosses into the previous window: contextOf returns fewer tokens there).
 */
import { Rng } from '../data/rng.ts';
import { type LatentCsc, latentColumn } from './codes.ts';
import { FIRE_THRESHOLD } from './metrics.ts';

/** Token ids ending at the activating token (last entry, never null); null = any token. */
type Pattern = (number | null)[];

export interface ExplainSource {
  /** Activations of all rows, by latent (built with threshold 0 or lower than `threshold`). */
  csc: LatentCsc;
  /** Ids of up to n tokens ending with (and including) row's token; shorter at a window start. */
  contextOf(row: number, n: number): ArrayLike<number>;
  /** [start, end) rows for top contexts and negatives. */
  trainRows: readonly [number, number];
  /** [start, end) held-out rows for precision / recall. */
  testRows: readonly [number, number];
  /** id → piece, for the text rendering. */
  vocab?: readonly string[];
}

export interface ExplainOptions {
  /** Latent "fires" when its value exceeds this. Default FIRE_THRESHOLD. */
  threshold?: number;
  /** Top contexts taken (half train). Default 40. */
  nTop?: number;
  /** Random negatives. Default 200. */
  nNegatives?: number;
  /** Hard negatives (same token, latent silent). Default 200. */
  nHardNegatives?: number;
  seed?: number;
}

export interface Explanation {
  latent: number;
  pattern: Pattern;
  text: string;
  precision: number;
  recall: number;
  f1: number;
  /** F1 of the winner on the training positives + negatives. */
  trainF1: number;
  /** Held-out rows where the latent fired / where the pattern matched. */
  heldOutFires: number;
  heldOutMatches: number;
}

/** Whether the context ending at `row` matches the pattern. */
function matches(pattern: Pattern, src: Pick<ExplainSource, 'contextOf'>, row: number): boolean {
  const L = pattern.length;
  const ctx = src.contextOf(row, L);
  if (ctx.length < L) return false;
  const o = ctx.length - L;
  for (let j = 0; j < L; j++) if (pattern[j] !== null && ctx[o + j] !== pattern[j]) return false;
  return true;
}

/** Pattern as text: pieces quoted (so whitespace shows), wildcards as *. */
function renderPattern(pattern: Pattern, vocab?: readonly string[]): string {
  const piece = (t: number) => (vocab ? JSON.stringify(vocab[t] ?? `<${t}>`) : `<${t}>`);
  return pattern.map((t) => (t === null ? '*' : piece(t))).join(' ');
}

const f1Of = (tp: number, fp: number, fn: number) => (tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn));
const fixedTokens = (p: Pattern) => p.reduce<number>((n, t) => n + (t === null ? 0 : 1), 0);

/** Explains one latent; null when it never fires in the training range. */
export function explainLatent(
  latent: number,
  src: ExplainSource,
  opts: ExplainOptions = {},
): Explanation | null {
  const th = opts.threshold ?? FIRE_THRESHOLD;
  const nTop = opts.nTop ?? 40;
  const nNeg = opts.nNegatives ?? 200;
  const nHard = opts.nHardNegatives ?? 200;
  const rng = Rng.derive(opts.seed ?? 0, latent);
  const { csc } = src;
  const [t0, t1] = src.trainRows;
  const [h0, h1] = src.testRows;
  const col = latentColumn(csc, latent);

  // 1. top contexts in the training range (value desc, row asc)
  const fired: number[] = [];
  for (let p = csc.start[latent]; p < csc.start[latent + 1]; p++) {
    const r = csc.row[p];
    if (r >= t0 && r < t1 && csc.val[p] > th) fired.push(r);
  }
  if (fired.length === 0) return null;
  fired.sort((a, b) => col[b] - col[a] || a - b);
  const top = fired.slice(0, nTop);
  const trainPos = top.filter((_, j) => j % 2 === 0);

  // 2. candidates
  const seen = new Set<string>();
  const candidates: Pattern[] = [];
  const add = (p: Pattern) => {
    const key = p.map((t) => (t === null ? '*' : t)).join(',');
    if (!seen.has(key)) {
      seen.add(key);
      candidates.push(p);
    }
  };
  const actTokens = new Set<number>();
  for (const r of trainPos) {
    const ctx = Array.from(src.contextOf(r, 3));
    const L = ctx.length;
    const tok = ctx[L - 1];
    actTokens.add(tok);
    add([tok]);
    if (L >= 2) add([ctx[L - 2], tok]);
    if (L >= 3) {
      add([ctx[L - 3], ctx[L - 2], tok]);
      add([ctx[L - 3], null, tok]);
    }
  }

  // 3. negatives: random silent rows + silent rows carrying an activating token
  const negatives: number[] = [];
  const span = t1 - t0;
  for (let tries = 0; negatives.length < nNeg && tries < nNeg * 20 && span > 0; tries++) {
    const r = t0 + rng.nextInt(span);
    if (!(col[r] > th)) negatives.push(r);
  }
  const hard: number[] = [];
  for (let r = t0; r < t1; r++) {
    if (col[r] > th) continue;
    const ctx = src.contextOf(r, 1);
    if (ctx.length > 0 && actTokens.has(ctx[ctx.length - 1])) hard.push(r);
  }
  for (let j = 0; j < Math.min(nHard, hard.length); j++) {
    const pick = j + rng.nextInt(hard.length - j); // partial Fisher–Yates: a uniform sample
    const tmp = hard[j];
    hard[j] = hard[pick];
    hard[pick] = tmp;
    negatives.push(hard[j]);
  }

  let best: Pattern = candidates[0];
  let bestF1 = -1;
  for (const p of candidates) {
    let tp = 0;
    for (const r of trainPos) if (matches(p, src, r)) tp++;
    let fp = 0;
    for (const r of negatives) if (matches(p, src, r)) fp++;
    const f1 = f1Of(tp, fp, trainPos.length - tp);
    const better =
      f1 > bestF1 + 1e-12 ||
      (Math.abs(f1 - bestF1) <= 1e-12 && fixedTokens(p) < fixedTokens(best)) ||
      (Math.abs(f1 - bestF1) <= 1e-12 && fixedTokens(p) === fixedTokens(best) && p.length < best.length);
    if (better) {
      best = p;
      bestF1 = f1;
    }
  }

  // 4. held-out precision / recall over every row of the test range
  let tp = 0;
  let nMatch = 0;
  let nFire = 0;
  for (let r = h0; r < h1; r++) {
    const f = col[r] > th;
    const m = matches(best, src, r);
    if (f) nFire++;
    if (m) nMatch++;
    if (f && m) tp++;
  }
  const precision = nMatch > 0 ? tp / nMatch : 0;
  const recall = nFire > 0 ? tp / nFire : 0;
  return {
    latent,
    pattern: best,
    text: renderPattern(best, src.vocab),
    precision,
    recall,
    f1: precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0,
    trainF1: bestF1,
    heldOutFires: nFire,
    heldOutMatches: nMatch,
  };
}

export interface ExplainSummary {
  explanations: Explanation[];
  /** Latents not explained: never fired in the training range. */
  silent: number[];
  /** Latents not reached before the budget ran out. */
  skipped: number[];
  /** Sorted (ascending) held-out F1 / precision / recall of the explained latents. */
  f1: Float64Array;
  precision: Float64Array;
  recall: Float64Array;
  meanF1: number;
  meanPrecision: number;
  meanRecall: number;
  /** [10] explained latents per F1 decile [0, 0.1) … [0.9, 1]. */
  f1Histogram: Uint32Array;
}

/**
 * Explains many latents, stopping when `budgetMs` of wall time has passed (the rest are listed in
 * skipped), and summarizes the score distribution.
 */
export function explainAll(
  latents: ArrayLike<number>,
  src: ExplainSource,
  opts: ExplainOptions & { budgetMs?: number } = {},
): ExplainSummary {
  const t0 = performance.now();
  const explanations: Explanation[] = [];
  const silent: number[] = [];
  const skipped: number[] = [];
  for (let j = 0; j < latents.length; j++) {
    if (opts.budgetMs !== undefined && performance.now() - t0 > opts.budgetMs) {
      for (let q = j; q < latents.length; q++) skipped.push(latents[q]);
      break;
    }
    const e = explainLatent(latents[j], src, opts);
    if (e) explanations.push(e);
    else silent.push(latents[j]);
  }
  const sorted = (f: (e: Explanation) => number) => Float64Array.from(explanations, f).sort();
  const mean = (a: Float64Array) => (a.length ? a.reduce((s, v) => s + v, 0) / a.length : Number.NaN);
  const f1 = sorted((e) => e.f1);
  const precision = sorted((e) => e.precision);
  const recall = sorted((e) => e.recall);
  const f1Histogram = new Uint32Array(10);
  for (const v of f1) f1Histogram[Math.min(9, Math.floor(v * 10))]++;
  return {
    explanations,
    silent,
    skipped,
    f1,
    precision,
    recall,
    meanF1: mean(f1),
    meanPrecision: mean(precision),
    meanRecall: mean(recall),
    f1Histogram,
  };
}

/**
 * contextOf for rows laid out as in src/lm/extract (tokens [rows], positions [rows]: a row whose
 * position is ≤ the previous row's starts a new window). Returns a subarray, no copy.
 */
export function contextFromPositions(
  tokens: Int32Array | Uint32Array,
  positions: Int32Array | Uint32Array,
): (row: number, n: number) => ArrayLike<number> {
  // windowStart[r] = first row of r's window
  const windowStart = new Uint32Array(tokens.length);
  for (let r = 1; r < tokens.length; r++)
    windowStart[r] = positions[r] <= positions[r - 1] ? r : windowStart[r - 1];
  return (row, n) => tokens.subarray(Math.max(windowStart[row], row - n + 1), row + 1);
}
