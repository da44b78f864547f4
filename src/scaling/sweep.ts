/**
 * Sweeps over the number of latents N and the sparsity k (pure logic; the
 * trainer runs the configs this file produces).
 *
 * A sweep is a grid N × k with one token budget. Each run's learning rate
 * follows lr(N) = 2e-4 / sqrt(N / 2^14) (docs/DESIGN.md §1). A run either trains
 * for a fixed number of tokens or until its held-out nMSE stops improving
 * (`detectConvergence`), which is what the tokens-to-convergence law
 * T ∝ N^beta needs.
 */
import { type BootstrapOptions, FitError, type FitResult } from './fit';
import { fitLN, fitLNk, fitPowerLaw, type LNkParam, type LNParam, type PowerLawParam } from './laws';

// ---------------------------------------------------------------------------
// Grid

/** How long each run trains. Token counts are activation vectors (rows). */
export type TokenBudget =
  | { kind: 'tokens'; tokens: number }
  | {
      kind: 'converged';
      /** Converged when nMSE improves by less than this fraction over the last doubling of tokens. */
      tol: number;
      /** Hard cap: stop here even if not converged. */
      maxTokens: number;
      /** Never stop before this many tokens (the first doublings are noisy). Default 0. */
      minTokens?: number;
    };

export interface SweepGrid {
  /** Latent counts; each must be a power of two. */
  N: number[];
  /** Sparsities (active latents per token); positive integers. */
  k: number[];
  budget: TokenBudget;
  /** lr at N = 2^14; default 2e-4. */
  baseLr?: number;
  /** Seed used by every run, so runs differ only in N and k. Default 0. */
  seed?: number;
}

/** One run of a sweep. */
export interface SweepRunConfig {
  /** Stable id, `N{N}_k{k}`. */
  id: string;
  N: number;
  k: number;
  /** Adam learning rate from `lrForN`. */
  lr: number;
  seed: number;
  budget: TokenBudget;
}

/** Reference latent count of the lr rule. */
const LR_REFERENCE_N = 2 ** 14;
/** Default lr at the reference N (the paper's / sparsify's). */
const DEFAULT_BASE_LR = 2e-4;

/**
 * lr(N) = base / sqrt(N / 2^14): the rule EleutherAI's sparsify fitted to the
 * paper's sweeps (larger dictionaries want smaller steps).
 */
export function lrForN(N: number, baseLr: number = DEFAULT_BASE_LR): number {
  if (!(N > 0)) throw new RangeError(`lrForN: N must be positive, got ${N}`);
  return baseLr / Math.sqrt(N / LR_REFERENCE_N);
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0 && n <= 2 ** 30;
}

/** Throw a RangeError unless the budget is usable. */
function validateBudget(budget: TokenBudget): void {
  if (budget.kind === 'tokens') {
    if (!(budget.tokens > 0) || !Number.isFinite(budget.tokens)) {
      throw new RangeError(`budget.tokens must be a positive number, got ${budget.tokens}`);
    }
    return;
  }
  if (!(budget.tol > 0 && budget.tol < 1))
    throw new RangeError(`budget.tol must be in (0, 1), got ${budget.tol}`);
  if (!(budget.maxTokens > 0) || !Number.isFinite(budget.maxTokens)) {
    throw new RangeError(`budget.maxTokens must be a positive number, got ${budget.maxTokens}`);
  }
  const min = budget.minTokens ?? 0;
  if (!(min >= 0) || min > budget.maxTokens) {
    throw new RangeError(`budget.minTokens must be in [0, maxTokens], got ${min}`);
  }
}

/**
 * The runs of a grid: every (N, k) with k < N, N ascending then k ascending
 * (small, fast runs first, so the first fits appear early). Duplicate values
 * are dropped. Pairs with k ≥ N are skipped rather than rejected, because a
 * grid crossing small N with large k is common and such a run is not sparse.
 *
 * Throws RangeError for N that is not a power of two, k that is not a
 * positive integer, or an invalid budget.
 */
export function expandGrid(grid: SweepGrid): SweepRunConfig[] {
  for (const N of grid.N) {
    if (!isPowerOfTwo(N)) throw new RangeError(`expandGrid: N must be a power of two, got ${N}`);
  }
  for (const k of grid.k) {
    if (!Number.isInteger(k) || k < 1)
      throw new RangeError(`expandGrid: k must be a positive integer, got ${k}`);
  }
  validateBudget(grid.budget);
  const baseLr = grid.baseLr ?? DEFAULT_BASE_LR;
  const seed = grid.seed ?? 0;
  const Ns = [...new Set(grid.N)].sort((a, b) => a - b);
  const ks = [...new Set(grid.k)].sort((a, b) => a - b);
  const runs: SweepRunConfig[] = [];
  for (const N of Ns) {
    for (const k of ks) {
      if (k >= N) continue;
      runs.push({ id: `N${N}_k${k}`, N, k, lr: lrForN(N, baseLr), seed, budget: { ...grid.budget } });
    }
  }
  return runs;
}

/**
 * Token counts at which to measure held-out nMSE: geometric, `perDoubling`
 * points per doubling from `firstTokens` up to and including `maxTokens`.
 * The convergence test compares nMSE at t and t/2, so geometric spacing gives
 * it the same resolution at every scale. Values are rounded to integers.
 */
export function evalSchedule(firstTokens: number, maxTokens: number, perDoubling = 4): number[] {
  if (!(firstTokens > 0) || !(maxTokens >= firstTokens) || !(perDoubling >= 1)) {
    throw new RangeError('evalSchedule: need 0 < firstTokens <= maxTokens and perDoubling >= 1');
  }
  const out: number[] = [];
  for (let j = 0; ; j++) {
    const t = Math.round(firstTokens * 2 ** (j / perDoubling));
    if (t >= maxTokens) break;
    if (out.length === 0 || t > out[out.length - 1]) out.push(t);
  }
  out.push(Math.round(maxTokens));
  return out;
}

// ---------------------------------------------------------------------------
// Convergence

/** One held-out evaluation during a run. */
export interface CurveSample {
  /** Tokens trained on so far (> 0). */
  tokens: number;
  /** Held-out normalized MSE at that point (≥ 0). */
  nmse: number;
}

export interface ConvergenceResult {
  /** True when the criterion has been met at some sample at or after minTokens. */
  converged: boolean;
  /**
   * Interpolated token count at which the improvement over the preceding
   * doubling first fell below tol (at or after minTokens). Null when not
   * converged. When the criterion already holds at the first sample that
   * can be tested, the crossing happened earlier than can be seen: this is
   * that sample's tokens (an upper bound) and `censored` is true.
   */
  tokensToConvergence: number | null;
  censored: boolean;
  /** Relative improvement (L(t/2) − L(t)) / L(t/2) at the last sample; null if the curve spans less than one doubling. */
  lastImprovement: number | null;
}

export interface ConvergenceOptions {
  /** Ignore crossings before this many tokens (early plateaus). Default 0. */
  minTokens?: number;
}

/**
 * Decide whether a run has converged: nMSE improved by less than a fraction
 * `tol` over the last doubling of tokens, i.e.
 *     r(t) = (L(t/2) − L(t)) / L(t/2) < tol.
 *
 * - L is the running minimum of the nMSE curve, so one noisy evaluation above
 *   the trend does not read as "stopped improving" (r ≥ 0 always).
 * - L(t/2) is interpolated linearly in log tokens between samples; r is
 *   evaluated at every sample with t ≥ 2·t_first.
 * - The convergence point is the FIRST crossing of tol at or after
 *   `minTokens`, interpolated linearly in log tokens between the last
 *   sample above tol and the first below. This is exactly where an
 *   until-converged run (`shouldStop`) stops, so tokens-to-convergence means
 *   the same for fixed-budget runs analysed afterwards. An early plateau
 *   can trigger it too; that is what minTokens is for.
 *
 * Accuracy: on a smooth a·t^-b + c curve sampled 4× per doubling the
 * crossing is within a few percent of the exact one; evaluation noise of ε
 * (relative) moves r by ≈ 1.4ε, and the first crossing catches downward
 * excursions, so noise biases it early: at tol = 1% (see the tests) ε = 0.1%
 * gives 0.6–1.4× the exact crossing, ε = 0.2% gives 0.3–1.5×. Use a larger
 * tol, or evaluate on more held-out tokens, when evaluations are noisier.
 *
 * @param curve samples sorted by strictly increasing tokens; non-finite nMSE
 *   samples (diverged evaluations) are ignored.
 * @param tol fraction in (0, 1), e.g. 0.01.
 */
export function detectConvergence(
  curve: readonly CurveSample[],
  tol: number,
  options: ConvergenceOptions = {},
): ConvergenceResult {
  if (!(tol > 0 && tol < 1)) throw new RangeError(`detectConvergence: tol must be in (0, 1), got ${tol}`);
  const minTokens = options.minTokens ?? 0;
  const samples = curve.filter((s) => Number.isFinite(s.nmse));
  for (let i = 0; i < samples.length; i++) {
    if (!(samples[i].tokens > 0) || (i > 0 && !(samples[i].tokens > samples[i - 1].tokens))) {
      throw new RangeError('detectConvergence: tokens must be positive and strictly increasing');
    }
  }
  const none: ConvergenceResult = {
    converged: false,
    tokensToConvergence: null,
    censored: false,
    lastImprovement: null,
  };
  if (samples.length < 2) return none;

  const logT = samples.map((s) => Math.log(s.tokens));
  const env: number[] = [];
  for (const s of samples) env.push(Math.min(s.nmse, env.length ? env[env.length - 1] : Infinity));

  /** Envelope at log-tokens x, x within [logT[0], logT[last]]. */
  const envAt = (x: number): number => {
    let j = 1;
    while (j < logT.length - 1 && logT[j] < x) j++;
    const w = (x - logT[j - 1]) / (logT[j] - logT[j - 1]);
    return env[j - 1] + Math.min(1, Math.max(0, w)) * (env[j] - env[j - 1]);
  };

  // r at every sample that has a full doubling behind it.
  const tested: { x: number; r: number }[] = [];
  for (let i = 0; i < samples.length; i++) {
    const xHalf = logT[i] - Math.LN2;
    if (xHalf < logT[0] - 1e-12) continue;
    const before = envAt(Math.max(xHalf, logT[0]));
    // A zero loss cannot improve further: call that no improvement.
    const r = before > 0 ? (before - env[i]) / before : 0;
    tested.push({ x: logT[i], r });
  }
  if (tested.length === 0) return none;
  const lastImprovement = tested[tested.length - 1].r;

  const xMin = minTokens > 0 ? Math.log(minTokens) : -Infinity;
  for (let j = 0; j < tested.length; j++) {
    const b = tested[j];
    if (b.x < xMin - 1e-12 || !(b.r < tol)) continue;
    const a = j > 0 ? tested[j - 1] : null;
    if (a === null || a.r < tol) {
      // Already below tol at the first sample we may look at.
      return { converged: true, tokensToConvergence: Math.exp(b.x), censored: true, lastImprovement };
    }
    const w = (a.r - tol) / (a.r - b.r);
    const x = Math.max(xMin, a.x + w * (b.x - a.x));
    return { converged: true, tokensToConvergence: Math.exp(x), censored: false, lastImprovement };
  }
  return { ...none, lastImprovement };
}

/**
 * Whether a run should stop now, given its curve so far (the last sample is
 * "now"). Fixed budgets stop at their token count; 'converged' budgets stop
 * at maxTokens, or once `detectConvergence` (with the budget's minTokens)
 * says converged.
 */
export function shouldStop(
  curve: readonly CurveSample[],
  budget: TokenBudget,
): { stop: boolean; reason: 'budget' | 'converged' | null } {
  const tokens = curve.length ? curve[curve.length - 1].tokens : 0;
  if (budget.kind === 'tokens') {
    return tokens >= budget.tokens ? { stop: true, reason: 'budget' } : { stop: false, reason: null };
  }
  if (tokens >= budget.maxTokens) return { stop: true, reason: 'budget' };
  if (detectConvergence(curve, budget.tol, { minTokens: budget.minTokens }).converged) {
    return { stop: true, reason: 'converged' };
  }
  return { stop: false, reason: null };
}

// ---------------------------------------------------------------------------
// Results

/** Final metrics of a run, all measured on the held-out set. */
export interface SweepRunFinal {
  /** Normalized MSE Σe²/Σ(x − mean x)² on raw activations. */
  nmse: number;
  /** Mean number of active latents per token (≤ k for TopK). */
  l0: number;
  /** Fraction of latents dead at the end, in [0, 1]. */
  dead_fraction: number;
  /** Tokens trained on. */
  tokens: number;
  /** From `detectConvergence`; null if the run did not converge (or had a fixed budget and was not tested). */
  tokens_to_convergence: number | null;
  /** 'ema': the metrics are those of the EMA of the weights (the run kept one, --ema), as the paper evaluates. */
  weights?: 'ema' | 'live';
}

export interface SweepRun {
  config: SweepRunConfig;
  final: SweepRunFinal;
  /** Optional held-out nMSE curve, for plots and re-running the convergence test. */
  curve?: CurveSample[];
}

/** A fit that either worked or was refused (too few points, …). */
export type FitOutcome<P extends string> = { ok: true; fit: FitResult<P> } | { ok: false; error: string };

export interface SweepFits {
  /** L(N) = exp(alpha) N^beta + L_irr, one fit per k. */
  LN: { k: number; outcome: FitOutcome<LNParam> }[];
  /** Joint L(N, k) over all runs. */
  LNk: FitOutcome<LNkParam>;
  /** L(k) = c k^beta, one fit per N. */
  Lk: { N: number; outcome: FitOutcome<PowerLawParam> }[];
  /** Tokens to convergence T(N) = c N^beta, one fit per k, over converged runs. */
  T: { k: number; outcome: FitOutcome<PowerLawParam> }[];
}

/** The JSON document a sweep exports. */
export interface SweepResult {
  version: 1;
  grid?: SweepGrid;
  runs: SweepRun[];
  fits: SweepFits;
}

/** Run `f`, turning a FitError into a refused outcome (other errors are bugs and propagate). */
function attempt<P extends string>(f: () => FitResult<P>): FitOutcome<P> {
  try {
    return { ok: true, fit: f() };
  } catch (e) {
    if (e instanceof FitError) return { ok: false, error: e.message };
    throw e;
  }
}

function groupBy<T>(items: readonly T[], key: (t: T) => number): Map<number, T[]> {
  const m = new Map<number, T[]>();
  for (const it of [...items].sort((a, b) => key(a) - key(b))) {
    const group = m.get(key(it));
    if (group) group.push(it);
    else m.set(key(it), [it]);
  }
  return m;
}

/**
 * Fit every law the runs support. Fits without enough points come back as
 * `{ok: false, error}` instead of throwing, so a partial sweep still exports.
 */
export function fitSweep(
  runs: readonly SweepRun[],
  options: { bootstrap?: BootstrapOptions } = {},
): SweepFits {
  const byK = groupBy(runs, (r) => r.config.k);
  const byN = groupBy(runs, (r) => r.config.N);
  return {
    LN: [...byK].map(([k, group]) => ({
      k,
      outcome: attempt(() =>
        fitLN(
          group.map((r) => ({ N: r.config.N, L: r.final.nmse })),
          options,
        ),
      ),
    })),
    LNk: attempt(() =>
      fitLNk(
        runs.map((r) => ({ N: r.config.N, k: r.config.k, L: r.final.nmse })),
        options,
      ),
    ),
    Lk: [...byN].map(([N, group]) => ({
      N,
      outcome: attempt(() =>
        fitPowerLaw(
          group.map((r) => ({ x: r.config.k, y: r.final.nmse })),
          options,
        ),
      ),
    })),
    T: [...byK].map(([k, group]) => ({
      k,
      outcome: attempt(() =>
        fitPowerLaw(
          group
            .filter((r) => r.final.tokens_to_convergence !== null)
            .map((r) => ({ x: r.config.N, y: r.final.tokens_to_convergence as number })),
          options,
        ),
      ),
    })),
  };
}

/** Assemble the exportable sweep document, fitting the laws. */
export function makeSweepResult(
  runs: readonly SweepRun[],
  grid?: SweepGrid,
  options: { bootstrap?: BootstrapOptions } = {},
): SweepResult {
  return { version: 1, ...(grid ? { grid } : {}), runs: [...runs], fits: fitSweep(runs, options) };
}

/**
 * Check that a parsed JSON value has the SweepResult shape (the parts the
 * app reads back: version, runs with config and final metrics). Throws a
 * TypeError naming the first bad field. Fits are recomputed rather than
 * trusted when missing.
 */
export function parseSweepResult(value: unknown): SweepResult {
  const doc = asObject(value, 'document');
  if (doc.version !== 1) failParse('version (expected 1)');
  if (!Array.isArray(doc.runs)) failParse('runs');
  (doc.runs as unknown[]).forEach((run, i) => {
    const config = asObject(asObject(run, `runs[${i}]`).config, `runs[${i}].config`);
    if (typeof config.id !== 'string') failParse(`runs[${i}].config.id`);
    for (const f of ['N', 'k', 'lr']) {
      if (typeof config[f] !== 'number') failParse(`runs[${i}].config.${f}`);
    }
    const final = asObject((run as Record<string, unknown>).final, `runs[${i}].final`);
    for (const f of ['nmse', 'l0', 'dead_fraction', 'tokens']) {
      if (typeof final[f] !== 'number') failParse(`runs[${i}].final.${f}`);
    }
    const ttc = final.tokens_to_convergence;
    if (!(ttc === null || typeof ttc === 'number')) failParse(`runs[${i}].final.tokens_to_convergence`);
  });
  const result = doc as unknown as SweepResult;
  if (typeof doc.fits !== 'object' || doc.fits === null) return { ...result, fits: fitSweep(result.runs) };
  return result;
}

function failParse(path: string): never {
  throw new TypeError(`parseSweepResult: bad or missing ${path}`);
}

function asObject(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) failParse(path);
  return v as Record<string, unknown>;
}

// ---------------------------------------------------------------------------
// CSV

/** Column order of `sweepToCsv`. */
export const SWEEP_CSV_COLUMNS = [
  'id',
  'N',
  'k',
  'lr',
  'seed',
  'max_tokens',
  'tol',
  'nmse',
  'l0',
  'dead_fraction',
  'tokens',
  'tokens_to_convergence',
] as const;

/** RFC 4180 quoting: only fields with a comma, quote or newline are quoted. */
function csvField(v: string | number | null | undefined): string {
  if (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v))) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * One header line, then one line per run, in the given order; lines end in
 * "\n". Numbers use JS's shortest round-trip form; null / non-finite values
 * are empty fields. `max_tokens` is the fixed budget or the cap; `tol` is
 * empty for fixed budgets.
 */
export function sweepToCsv(runs: readonly SweepRun[]): string {
  const lines = [SWEEP_CSV_COLUMNS.join(',')];
  for (const { config: c, final: f } of runs) {
    const b = c.budget;
    const row = [
      c.id,
      c.N,
      c.k,
      c.lr,
      c.seed,
      b.kind === 'tokens' ? b.tokens : b.maxTokens,
      b.kind === 'tokens' ? null : b.tol,
      f.nmse,
      f.l0,
      f.dead_fraction,
      f.tokens,
      f.tokens_to_convergence,
    ];
    lines.push(row.map(csvField).join(','));
  }
  return lines.join('\n') + '\n';
}
