/**
 * Generic nonlinear least squares for the scaling-law fits.
 *
 * The search itself is done by `ml-levenberg-marquardt`. That library is a
 * bare LM loop, so this wrapper adds what the fits need around it:
 *  - column scaling: the library damps with λ·I (not λ·diag(JᵀJ)), so a
 *    parameter whose Jacobian column is tiny (L_irr in units of 1e-3) barely
 *    moves while one with a huge column (γ, multiplying log k·log N ≈ 30) is
 *    over-damped. We fit θ = p / s with s = 1/‖J_col‖ at the start, which
 *    makes every column unit-norm and λ·I equivalent to Marquardt scaling.
 *  - a stopping rule: the library only stops at `maxIterations` or when the
 *    SSE drops below an absolute `errorTolerance`, and it keeps stepping
 *    after uphill moves (it only remembers the best point). We run it in
 *    short chunks, each restarted from the best point so far, and stop once a
 *    chunk no longer lowers the SSE by a relative 1e-12.
 *  - the covariance σ²(JᵀJ)⁻¹ at the solution, R², residuals, and an optional
 *    deterministic bootstrap.
 *
 * Everything here works in "fit space": the caller maps its data to targets
 * `y` (e.g. log L, since losses span decades and the paper fits in log space)
 * and supplies a model in the same space.
 */
import { levenbergMarquardt } from 'ml-levenberg-marquardt';
import { Rng } from '../data/rng';

/** Thrown when a fit cannot be attempted (too few points, bad values). */
export class FitError extends Error {
  /** Points (or distinct values) the fit needs; undefined for bad-value errors. */
  readonly needed?: number;
  /** Points (or distinct values) it was given. */
  readonly given?: number;
  constructor(message: string, needed?: number, given?: number) {
    super(message);
    this.name = 'FitError';
    this.needed = needed;
    this.given = given;
  }
}

/**
 * Throw a FitError unless `given >= needed`. `what` names the quantity
 * counted ("points", "distinct N values") and `law` the fit, so the message
 * reads e.g. "fitLN: needs at least 4 points, got 2".
 */
export function requireAtLeast(law: string, what: string, needed: number, given: number): void {
  if (given < needed) {
    throw new FitError(`${law}: needs at least ${needed} ${what}, got ${given}`, needed, given);
  }
}

/** Number of distinct values in `xs` (exact comparison). */
export function countDistinct(xs: Iterable<number>): number {
  return new Set(xs).size;
}

/** A least-squares problem in fit space, with p parameters and n points. */
export interface LeastSquaresProblem<P extends string> {
  /** Parameter names, length p; fixes the order of every parameter array. */
  paramNames: readonly P[];
  /** Targets in fit space, length n. */
  y: ArrayLike<number>;
  /** Model value at point i (0 ≤ i < n) in fit space. */
  model: (params: readonly number[], i: number) => number;
  /**
   * ∂model/∂params at point i, length p. Optional: when absent it is
   * computed by central differences with a relative step.
   */
  jacobian?: (params: readonly number[], i: number) => number[];
  /** Starting point, length p. Fits are only as robust as this guess. */
  initial: readonly number[];
  /** Per-parameter lower bounds (e.g. 0 for L_irr); -Infinity for none. */
  lower?: readonly number[];
  /** Per-parameter upper bounds; +Infinity for none. */
  upper?: readonly number[];
  /** Which space y lives in; informational, copied to the result. */
  space?: 'linear' | 'log';
  /**
   * Bootstrap only: whether a resample (indices into 0..n-1, with repeats)
   * can identify the model, e.g. still has 3 distinct N. Rejected resamples
   * are redrawn a few times, then counted as failures.
   */
  acceptResample?: (indices: readonly number[]) => boolean;
}

export interface BootstrapOptions {
  /** Number of resamples. */
  samples: number;
  /** Seed for the resampling PRNG; same seed → same result. Default 0. */
  seed?: number;
}

export interface FitOptions {
  /** Cap on LM iterations for one fit. Default 500. */
  maxIterations?: number;
  /** Resample points with replacement, refit, and report the spread. */
  bootstrap?: BootstrapOptions;
}

interface BootstrapSummary<P extends string> {
  /** Resamples requested. */
  samples: number;
  /** Resamples that gave a finite fit (the statistics use only these). */
  succeeded: number;
  seed: number;
  /** Mean of each parameter over the successful resamples. */
  mean: Record<P, number>;
  /** Sample standard deviation (n−1) of each parameter; NaN with < 2 successes. */
  std: Record<P, number>;
}

/**
 * Result of a fit. Plain data only (JSON-serializable, though NaN/Infinity
 * become null in JSON).
 */
export interface FitResult<P extends string = string> {
  paramNames: P[];
  /** Best-fit parameters. */
  params: Record<P, number>;
  /**
   * Standard errors sqrt(diag(σ²(JᵀJ)⁻¹)), σ² = SSE/dof, J = ∂model/∂params
   * at the solution. Linearized: trust them when the fit is good and no
   * bound is active; Infinity when JᵀJ is singular (not identifiable).
   */
  stderr: Record<P, number>;
  /** σ²(JᵀJ)⁻¹, p×p in `paramNames` order. */
  covariance: number[][];
  /** 1 − SSE/SST in fit space (SST about the mean of y). */
  r2: number;
  /** y_i − model_i in fit space, length n, in input order. */
  residuals: number[];
  /** Sum of squared residuals. */
  sse: number;
  /** Residual standard deviation sqrt(SSE/dof), in fit-space units. */
  sigma: number;
  /** Number of points. */
  n: number;
  /** Degrees of freedom n − p. */
  dof: number;
  space: 'linear' | 'log';
  /** LM iterations used. */
  iterations: number;
  /** Non-fatal problems (active bounds, singular JᵀJ). */
  warnings: string[];
  bootstrap?: BootstrapSummary<P>;
}

const CHUNK_ITERATIONS = 10;
const DEFAULT_MAX_ITERATIONS = 500;

/**
 * Minimize Σ (y_i − model(params, i))² over params.
 *
 * Requires n ≥ p + 1 so that σ² (and hence stderr) is defined; throws
 * FitError otherwise, and for non-finite targets or a non-finite model at the
 * initial guess.
 */
export function leastSquares<P extends string>(
  problem: LeastSquaresProblem<P>,
  options: FitOptions = {},
): FitResult<P> {
  const p = problem.paramNames.length;
  const n = problem.y.length;
  requireAtLeast('leastSquares', 'points', p + 1, n);
  if (problem.initial.length !== p) {
    throw new FitError(`leastSquares: initial has ${problem.initial.length} values, expected ${p}`);
  }
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(problem.y[i])) throw new FitError(`leastSquares: target y[${i}] is not finite`);
  }
  const lower = problem.lower ?? new Array<number>(p).fill(-Infinity);
  const upper = problem.upper ?? new Array<number>(p).fill(Infinity);
  const maxIterations = options.maxIterations ?? DEFAULT_MAX_ITERATIONS;
  const all = Array.from({ length: n }, (_, i) => i);

  const start = clampAll(Array.from(problem.initial), lower, upper);
  if (!Number.isFinite(sse(problem, start, all))) {
    throw new FitError('leastSquares: the model is not finite at the initial guess');
  }
  const best = minimize(problem, start, all, lower, upper, maxIterations);
  const residuals = all.map((i) => problem.y[i] - problem.model(best.params, i));
  const totalSse = residuals.reduce((s, r) => s + r * r, 0);
  const dof = n - p;
  const sigma2 = totalSse / dof;
  const yMean = all.reduce((s, i) => s + problem.y[i], 0) / n;
  const sst = all.reduce((s, i) => s + (problem.y[i] - yMean) ** 2, 0);

  const warnings: string[] = [];
  const J = jacobianMatrix(problem, best.params, all);
  const inv = invertNormalMatrix(J, p);
  if (inv === null) {
    warnings.push('JᵀJ is singular at the solution: parameters are not identifiable from these points');
  }
  const covariance = Array.from({ length: p }, (_, a) =>
    Array.from({ length: p }, (_, b) => (inv === null ? NaN : sigma2 * inv[a][b])),
  );
  for (let j = 0; j < p; j++) {
    const v = best.params[j];
    if (v === lower[j] || v === upper[j]) {
      warnings.push(`${problem.paramNames[j]} is at its bound ${v}; its stderr is not meaningful`);
    }
  }

  const result: FitResult<P> = {
    paramNames: [...problem.paramNames],
    params: record(problem.paramNames, best.params),
    stderr: record(
      problem.paramNames,
      covariance.map((row, j) => (inv === null ? Infinity : Math.sqrt(Math.max(0, row[j])))),
    ),
    covariance,
    // SST = 0 (all targets equal) leaves R² undefined; a perfect fit of a
    // constant is still "perfect", so report 1 when SSE is 0 too.
    r2: sst > 0 ? 1 - totalSse / sst : totalSse === 0 ? 1 : NaN,
    residuals,
    sse: totalSse,
    sigma: Math.sqrt(sigma2),
    n,
    dof,
    space: problem.space ?? 'linear',
    iterations: best.iterations,
    warnings,
  };
  if (options.bootstrap) {
    result.bootstrap = bootstrap(problem, best.params, lower, upper, maxIterations, options.bootstrap);
  }
  return result;
}

/** Zip names and values into a record. */
function record<P extends string>(names: readonly P[], values: readonly number[]): Record<P, number> {
  const out = {} as Record<P, number>;
  names.forEach((name, j) => {
    out[name] = values[j];
  });
  return out;
}

function clampAll(x: number[], lower: readonly number[], upper: readonly number[]): number[] {
  return x.map((v, j) => Math.min(upper[j], Math.max(lower[j], v)));
}

/** Σ over `indices` of squared residuals. NaN if the model is not finite. */
function sse<P extends string>(
  problem: LeastSquaresProblem<P>,
  params: readonly number[],
  indices: readonly number[],
) {
  let s = 0;
  for (const i of indices) s += (problem.y[i] - problem.model(params, i)) ** 2;
  return s;
}

/** ∂model/∂params at point i: analytic if given, else central differences. */
function gradientAt<P extends string>(problem: LeastSquaresProblem<P>, params: readonly number[], i: number) {
  if (problem.jacobian) return problem.jacobian(params, i);
  const g = new Array<number>(params.length);
  const q = params.slice();
  for (let j = 0; j < params.length; j++) {
    // Relative step: cbrt(machine eps) ≈ 6e-6 balances truncation and rounding
    // error for central differences.
    const h = 6e-6 * Math.max(1, Math.abs(params[j]));
    q[j] = params[j] + h;
    const up = problem.model(q, i);
    q[j] = params[j] - h;
    const down = problem.model(q, i);
    q[j] = params[j];
    g[j] = (up - down) / (2 * h);
  }
  return g;
}

/** J[r][j] = ∂model/∂param_j at point indices[r]. */
function jacobianMatrix<P extends string>(
  problem: LeastSquaresProblem<P>,
  params: readonly number[],
  indices: readonly number[],
): number[][] {
  return indices.map((i) => gradientAt(problem, params, i));
}

/**
 * (JᵀJ)⁻¹ for J with rows of length p, or null when JᵀJ is (numerically)
 * singular. JᵀJ is scaled to unit diagonal before the Cholesky factorization
 * so that a badly scaled but well-posed problem is not mistaken for a
 * singular one.
 */
export function invertNormalMatrix(J: readonly (readonly number[])[], p: number): number[][] | null {
  const A = Array.from({ length: p }, () => new Array<number>(p).fill(0));
  for (const row of J) {
    for (let a = 0; a < p; a++) for (let b = 0; b <= a; b++) A[a][b] += row[a] * row[b];
  }
  const d = A.map((row, a) => Math.sqrt(row[a]));
  if (d.some((v) => !(v > 0) || !Number.isFinite(v))) return null;
  for (let a = 0; a < p; a++) for (let b = 0; b <= a; b++) A[a][b] /= d[a] * d[b];
  const L = cholesky(A, p);
  if (L === null) return null;
  // Invert column by column: solve L Lᵀ x = e_c.
  const inv = Array.from({ length: p }, () => new Array<number>(p).fill(0));
  for (let c = 0; c < p; c++) {
    const e = new Array<number>(p).fill(0);
    e[c] = 1;
    const x = choleskySolve(L, e, p);
    for (let a = 0; a < p; a++) inv[a][c] = x[a] / (d[a] * d[c]);
  }
  return inv;
}

/**
 * Lower Cholesky factor of the symmetric matrix whose lower triangle is in A,
 * or null if A is not positive definite to ~1e-12 relative precision (A is
 * expected to have unit diagonal).
 */
function cholesky(A: readonly (readonly number[])[], p: number): number[][] | null {
  const L = Array.from({ length: p }, () => new Array<number>(p).fill(0));
  for (let a = 0; a < p; a++) {
    for (let b = 0; b <= a; b++) {
      let s = A[a][b];
      for (let c = 0; c < b; c++) s -= L[a][c] * L[b][c];
      if (a === b) {
        if (!(s > 1e-12)) return null;
        L[a][a] = Math.sqrt(s);
      } else {
        L[a][b] = s / L[b][b];
      }
    }
  }
  return L;
}

function choleskySolve(L: readonly (readonly number[])[], rhs: readonly number[], p: number): number[] {
  const z = new Array<number>(p);
  for (let a = 0; a < p; a++) {
    let s = rhs[a];
    for (let c = 0; c < a; c++) s -= L[a][c] * z[c];
    z[a] = s / L[a][a];
  }
  const x = new Array<number>(p);
  for (let a = p - 1; a >= 0; a--) {
    let s = z[a];
    for (let c = a + 1; c < p; c++) s -= L[c][a] * x[c];
    x[a] = s / L[a][a];
  }
  return x;
}

/**
 * Ordinary least squares: coefficients b minimizing Σ_r (y_r − X_r·b)².
 * X is n×p (rows), y length n. Returns null when XᵀX is singular. Used for
 * initial guesses from log-linear regressions.
 */
export function ols(X: readonly (readonly number[])[], y: readonly number[]): number[] | null {
  const p = X[0]?.length ?? 0;
  if (p === 0 || X.length < p) return null;
  const inv = invertNormalMatrix(X, p);
  if (inv === null) return null;
  const xty = new Array<number>(p).fill(0);
  X.forEach((row, r) => {
    for (let a = 0; a < p; a++) xty[a] += row[a] * y[r];
  });
  return inv.map((row) => row.reduce((s, v, b) => s + v * xty[b], 0));
}

/**
 * Run the LM library on the points `indices` from `init`, in column-scaled
 * coordinates and in restarted chunks (see the file comment for why).
 */
function minimize<P extends string>(
  problem: LeastSquaresProblem<P>,
  init: readonly number[],
  indices: readonly number[],
  lower: readonly number[],
  upper: readonly number[],
  maxIterations: number,
): { params: number[]; sse: number; iterations: number } {
  const p = init.length;
  // Column scales from the Jacobian at the start; a zero or non-finite column
  // keeps scale 1 (the parameter then does not move, which is right).
  const J0 = jacobianMatrix(problem, init, indices);
  const scale = new Array<number>(p).fill(1);
  for (let j = 0; j < p; j++) {
    let s = 0;
    for (const row of J0) s += row[j] * row[j];
    const norm = Math.sqrt(s);
    if (norm > 0 && Number.isFinite(norm)) scale[j] = 1 / norm;
  }
  const toParams = (theta: readonly number[]) => theta.map((t, j) => t * scale[j]);
  // The library's x values are positions 0..m-1 into `indices`; it never
  // looks at them except to hand them back to our closures.
  const data = { x: indices.map((_, r) => r), y: indices.map((i) => problem.y[i]) };
  const model = (theta: number[]) => {
    const params = toParams(theta);
    return (r: number) => problem.model(params, indices[r]);
  };
  const jacobianFunction = (theta: number[]) => {
    const params = toParams(theta);
    return (r: number) => gradientAt(problem, params, indices[r]).map((g, j) => g * scale[j]);
  };
  const minValues = lower.map((v, j) => (v === -Infinity ? -Number.MAX_VALUE : v / scale[j]));
  const maxValues = upper.map((v, j) => (v === Infinity ? Number.MAX_VALUE : v / scale[j]));

  let theta = init.map((v, j) => v / scale[j]);
  let current = sse(problem, init, indices);
  let iterations = 0;
  while (iterations < maxIterations) {
    const out = levenbergMarquardt(data, model, {
      initialValues: theta,
      maxIterations: Math.min(CHUNK_ITERATIONS, maxIterations - iterations),
      // 0: never stop on an absolute SSE level (our targets can be tiny);
      // any strict decrease counts as an improvement.
      errorTolerance: 0,
      damping: 1e-3,
      jacobianFunction,
      minValues,
      maxValues,
    });
    iterations += Math.max(1, out.iterations);
    const next = out.parameterError;
    const improved = current - next;
    if (Number.isFinite(next) && next <= current) theta = out.parameterValues;
    if (!(improved > 1e-12 * current) || !Number.isFinite(next)) break;
    current = next;
  }
  const params = clampAll(toParams(theta), lower, upper);
  return { params, sse: sse(problem, params, indices), iterations };
}

/**
 * Bootstrap: resample the n points with replacement `samples` times, refit
 * each resample starting from the full-data solution, and summarize.
 */
function bootstrap<P extends string>(
  problem: LeastSquaresProblem<P>,
  solution: readonly number[],
  lower: readonly number[],
  upper: readonly number[],
  maxIterations: number,
  opts: BootstrapOptions,
): BootstrapSummary<P> {
  const n = problem.y.length;
  const p = solution.length;
  const seed = opts.seed ?? 0;
  const rng = new Rng(seed);
  const draws: number[][] = [];
  for (let s = 0; s < opts.samples; s++) {
    let indices: number[] | null = null;
    for (let attempt = 0; attempt < 10 && indices === null; attempt++) {
      const candidate = Array.from({ length: n }, () => rng.nextInt(n));
      if (!problem.acceptResample || problem.acceptResample(candidate)) indices = candidate;
    }
    if (indices === null) continue;
    const fit = minimize(problem, solution, indices, lower, upper, maxIterations);
    if (Number.isFinite(fit.sse) && fit.params.every(Number.isFinite)) draws.push(fit.params);
  }
  const mean = new Array<number>(p).fill(0);
  const std = new Array<number>(p).fill(NaN);
  for (let j = 0; j < p; j++) {
    mean[j] = draws.length ? draws.reduce((s, d) => s + d[j], 0) / draws.length : NaN;
    if (draws.length >= 2) {
      std[j] = Math.sqrt(draws.reduce((s, d) => s + (d[j] - mean[j]) ** 2, 0) / (draws.length - 1));
    }
  }
  return {
    samples: opts.samples,
    succeeded: draws.length,
    seed,
    mean: record(problem.paramNames, mean),
    std: record(problem.paramNames, std),
  };
}
