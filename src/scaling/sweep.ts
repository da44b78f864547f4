/**
 * Sweeps over the number of latents N and the sparsity k: the grid and its runs (pure logic; the
 * trainer runs the configs this file produces). Convergence tests are in convergence.ts, the
 * exported document (runs, fits, JSON, CSV) in sweep-result.ts.
 *
 * A sweep is a grid N × k with one token budget. Each run's learning rate
 * follows lr(N) = 2e-4 / sqrt(N / 2^14) (docs/DESIGN.md §1). A run either trains
 * for a fixed number of tokens or until its held-out nMSE stops improving
 * (convergence.ts), which is what the tokens-to-convergence law T ∝ N^beta needs.
 */

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
