/**
 * The scaling laws of Gao et al. 2024 ("Scaling and evaluating sparse
 * autoencoders", arXiv 2406.04093), fitted with `leastSquares`.
 *
 * Units: N = number of latents, k = active latents per token, L = normalized
 * MSE (dimensionless, > 0). Every loss law is fitted to log L, as in the
 * paper, because sweep losses span decades and a fit in linear space would be
 * dominated by the largest losses.
 */
import {
  countDistinct,
  FitError,
  type FitOptions,
  type FitResult,
  leastSquares,
  ols,
  requireAtLeast,
} from './fit';

// ---------------------------------------------------------------------------
// Shared validation

function requirePositive(law: string, name: string, value: number, index: number): void {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new FitError(
      `${law}: ${name} must be positive and finite, but point ${index} has ${name}=${value}`,
    );
  }
}

// ---------------------------------------------------------------------------
// (a) L(N) = exp(alpha) · N^beta + L_irr

export type LNParam = 'alpha' | 'beta' | 'L_irr';
export interface LNPoint {
  /** Number of latents. */
  N: number;
  /** Final normalized MSE. */
  L: number;
}

/** L(N) = exp(alpha) · N^beta + L_irr. */
export function predictLN(params: Record<LNParam, number>, N: number): number {
  return Math.exp(params.alpha + params.beta * Math.log(N)) + params.L_irr;
}

/**
 * Fit L(N) = exp(alpha) · N^beta + L_irr (L_irr ≥ 0) to log L.
 *
 * Needs ≥ 4 points (3 parameters + 1 for the residual variance) at ≥ 3
 * distinct N (a power law plus a constant is not determined by two N).
 *
 * Initial guess: profile over L_irr — for each candidate L_irr in
 * [0, min L) regress log(L − L_irr) on log N, keep the candidate with the
 * smallest SSE in log L. This 1-D search makes the fit insensitive to where
 * the irreducible loss lies.
 */
export function fitLN(points: readonly LNPoint[], options?: FitOptions): FitResult<LNParam> {
  const law = 'fitLN';
  requireAtLeast(law, 'points', 4, points.length);
  points.forEach((pt, i) => {
    requirePositive(law, 'N', pt.N, i);
    requirePositive(law, 'L', pt.L, i);
  });
  requireAtLeast(law, 'distinct N values', 3, countDistinct(points.map((pt) => pt.N)));

  const logN = points.map((pt) => Math.log(pt.N));
  const logL = points.map((pt) => Math.log(pt.L));
  const minL = Math.min(...points.map((pt) => pt.L));

  let init: number[] | null = null;
  let bestSse = Infinity;
  for (const f of profileFractions()) {
    const Lirr = f * minL;
    const coef = ols(
      logN.map((x) => [1, x]),
      points.map((pt) => Math.log(pt.L - Lirr)),
    );
    if (coef === null) continue;
    const s = logN.reduce(
      (acc, x, i) => acc + (logL[i] - Math.log(Math.exp(coef[0] + coef[1] * x) + Lirr)) ** 2,
      0,
    );
    if (s < bestSse) {
      bestSse = s;
      init = [coef[0], coef[1], Lirr];
    }
  }
  if (init === null) throw new FitError(`${law}: could not find an initial guess`);

  return leastSquares<LNParam>(
    {
      paramNames: ['alpha', 'beta', 'L_irr'],
      y: logL,
      space: 'log',
      initial: init,
      lower: [-Infinity, -Infinity, 0],
      model: ([alpha, beta, Lirr], i) => Math.log(Math.exp(alpha + beta * logN[i]) + Lirr),
      jacobian: ([alpha, beta, Lirr], i) => {
        const A = Math.exp(alpha + beta * logN[i]);
        const S = A + Lirr;
        return [A / S, (A * logN[i]) / S, 1 / S];
      },
      acceptResample: (idx) => countDistinct(idx.map((i) => points[i].N)) >= 3,
    },
    options,
  );
}

/**
 * Fractions f of min L tried as the irreducible loss when profiling: a linear
 * grid plus points crowding towards 1, where a loss that has nearly
 * flattened puts L_irr.
 */
function profileFractions(): number[] {
  const fs: number[] = [];
  for (let j = 0; j < 40; j++) fs.push(j / 40);
  fs.push(0.99, 0.995, 0.999);
  return fs;
}

// ---------------------------------------------------------------------------
// (b) Joint law L(N, k)

export type LNkParam = 'alpha' | 'beta_k' | 'beta_N' | 'gamma' | 'zeta' | 'eta';
export interface LNkPoint {
  N: number;
  k: number;
  L: number;
}

/**
 * The paper's joint law (§3.1.2):
 * L(N, k) = exp(alpha + beta_k log k + beta_N log N + gamma log k log N)
 *         + exp(zeta + eta log k).
 * The second term is an irreducible loss that depends on k only.
 */
export function predictLNk(params: Record<LNkParam, number>, N: number, k: number): number {
  const lk = Math.log(k);
  const lN = Math.log(N);
  return (
    Math.exp(params.alpha + params.beta_k * lk + params.beta_N * lN + params.gamma * lk * lN) +
    Math.exp(params.zeta + params.eta * lk)
  );
}

/**
 * Fit the joint law L(N, k) to log L.
 *
 * Needs ≥ 7 points (6 parameters + 1), ≥ 3 distinct N (power law plus floor
 * along N) and ≥ 2 distinct k (the k-dependence of both the exponent and
 * the floor).
 *
 * Initial guess: a grid over the irreducible term's (eta, scale); for each,
 * subtract it and regress log(L − irreducible) on [1, log k, log N,
 * log k·log N], which is linear. LM then starts from the three best grid
 * points and the best result wins, guarding against a local minimum.
 */
export function fitLNk(points: readonly LNkPoint[], options?: FitOptions): FitResult<LNkParam> {
  const law = 'fitLNk';
  requireAtLeast(law, 'points', 7, points.length);
  points.forEach((pt, i) => {
    requirePositive(law, 'N', pt.N, i);
    requirePositive(law, 'k', pt.k, i);
    requirePositive(law, 'L', pt.L, i);
  });
  requireAtLeast(law, 'distinct N values', 3, countDistinct(points.map((pt) => pt.N)));
  requireAtLeast(law, 'distinct k values', 2, countDistinct(points.map((pt) => pt.k)));

  const lk = points.map((pt) => Math.log(pt.k));
  const lN = points.map((pt) => Math.log(pt.N));
  const logL = points.map((pt) => Math.log(pt.L));
  const X = points.map((_, i) => [1, lk[i], lN[i], lk[i] * lN[i]]);

  const candidates: { sse: number; init: number[] }[] = [];
  for (let e = -12; e <= 8; e++) {
    const eta = e / 8; // −1.5 … 1 in steps of 1/8
    // Largest floor c·k^eta that stays below every point's L.
    const cMax = Math.min(...points.map((pt, i) => pt.L / Math.exp(eta * lk[i])));
    for (const f of [0.001, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]) {
      const zeta = Math.log(f * cMax);
      const floor = lk.map((x) => Math.exp(zeta + eta * x));
      const coef = ols(
        X,
        points.map((pt, i) => Math.log(pt.L - floor[i])),
      );
      if (coef === null) continue;
      let s = 0;
      for (let i = 0; i < points.length; i++) {
        const A = Math.exp(X[i].reduce((acc, v, j) => acc + v * coef[j], 0));
        s += (logL[i] - Math.log(A + floor[i])) ** 2;
      }
      if (Number.isFinite(s)) candidates.push({ sse: s, init: [...coef, zeta, eta] });
    }
  }
  if (candidates.length === 0) {
    throw new FitError(
      `${law}: the points do not identify the law (log k·log N is collinear with log k and log N; ` +
        `use several N at each of several k)`,
    );
  }
  candidates.sort((a, b) => a.sse - b.sse);

  const names: LNkParam[] = ['alpha', 'beta_k', 'beta_N', 'gamma', 'zeta', 'eta'];
  const problem = (initial: number[]) => ({
    paramNames: names,
    y: logL,
    space: 'log' as const,
    initial,
    model: (q: readonly number[], i: number) =>
      Math.log(
        Math.exp(q[0] + q[1] * lk[i] + q[2] * lN[i] + q[3] * lk[i] * lN[i]) + Math.exp(q[4] + q[5] * lk[i]),
      ),
    jacobian: (q: readonly number[], i: number) => {
      const A = Math.exp(q[0] + q[1] * lk[i] + q[2] * lN[i] + q[3] * lk[i] * lN[i]);
      const B = Math.exp(q[4] + q[5] * lk[i]);
      const a = A / (A + B);
      const b = B / (A + B);
      return [a, a * lk[i], a * lN[i], a * lk[i] * lN[i], b, b * lk[i]];
    },
    acceptResample: (idx: readonly number[]) =>
      countDistinct(idx.map((i) => points[i].N)) >= 3 && countDistinct(idx.map((i) => points[i].k)) >= 2,
  });

  // Multi-start without bootstrap; the bootstrap (if asked) runs once, from
  // the winner.
  let best: FitResult<LNkParam> | null = null;
  for (const c of candidates.slice(0, 3)) {
    const fit = leastSquares(problem(c.init), { maxIterations: options?.maxIterations });
    if (best === null || fit.sse < best.sse) best = fit;
  }
  if (best === null) throw new FitError(`${law}: no start converged`);
  if (!options?.bootstrap) return best;
  return leastSquares(problem(names.map((nm) => best.params[nm])), options);
}

// ---------------------------------------------------------------------------
// (c) y = c · x^beta

export type PowerLawParam = 'c' | 'beta';
export interface XYPoint {
  x: number;
  y: number;
}

/** y = c · x^beta. */
export function predictPowerLaw(params: Record<PowerLawParam, number>, x: number): number {
  return params.c * x ** params.beta;
}

/**
 * Fit y = c · x^beta by least squares on log y = log c + beta·log x (the
 * log-log linear regression). Used for tokens-to-convergence T ∝ N^beta and
 * for L(k) at fixed N.
 *
 * The model is parametrized by c itself (not log c) so that stderr.c comes
 * straight from σ²(JᵀJ)⁻¹ with ∂/∂c = 1/c — the delta-method error of
 * exp(log c) — and the bootstrap resamples c directly. The closed-form OLS
 * solution is the starting point, so LM only confirms it; stderr.beta equals
 * the textbook OLS slope error.
 *
 * Needs ≥ 3 points (2 parameters + 1) at ≥ 2 distinct x.
 */
export function fitPowerLaw(points: readonly XYPoint[], options?: FitOptions): FitResult<PowerLawParam> {
  const law = 'fitPowerLaw';
  requireAtLeast(law, 'points', 3, points.length);
  points.forEach((pt, i) => {
    requirePositive(law, 'x', pt.x, i);
    requirePositive(law, 'y', pt.y, i);
  });
  requireAtLeast(law, 'distinct x values', 2, countDistinct(points.map((pt) => pt.x)));

  const lx = points.map((pt) => Math.log(pt.x));
  const ly = points.map((pt) => Math.log(pt.y));
  const coef = ols(
    lx.map((v) => [1, v]),
    ly,
  );
  if (coef === null) throw new FitError(`${law}: log x has no spread`);
  return leastSquares<PowerLawParam>(
    {
      paramNames: ['c', 'beta'],
      y: ly,
      space: 'log',
      initial: [Math.exp(coef[0]), coef[1]],
      lower: [Number.MIN_VALUE, -Infinity],
      model: ([c, beta], i) => Math.log(c) + beta * lx[i],
      jacobian: ([c], i) => [1 / c, lx[i]],
      acceptResample: (idx) => countDistinct(idx.map((i) => points[i].x)) >= 2,
    },
    options,
  );
}
