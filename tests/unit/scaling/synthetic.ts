/**
 * Synthetic sweep data for the scaling tests: exact laws times seeded
 * log-normal noise, L_obs = L_true · exp(σ·ε), ε ~ N(0, 1). σ is therefore
 * the noise in log L, the space every loss law is fitted in.
 */
import { Rng } from '../../../src/data/rng';
import { type LNkParam, type LNParam, predictLN, predictLNk } from '../../../src/scaling/laws';

/** L(N) truth: L = e^1 · N^-0.3 + 0.05 (nMSE ≈ 0.16 … 0.06 over 2^10 … 2^20). */
export const LN_TRUTH: Record<LNParam, number> = { alpha: 1.0, beta: -0.3, L_irr: 0.05 };

/** Joint-law truth: the paper's GPT-4 fit (Gao et al. 2024, §3.1.2). */
export const LNK_TRUTH: Record<LNkParam, number> = {
  alpha: -0.5,
  beta_k: 0.26,
  beta_N: -0.017,
  gamma: -0.042,
  zeta: -1.32,
  eta: -0.085,
};

/** N = 2^lo … 2^hi, every power of two. */
export function powersOfTwo(lo: number, hi: number): number[] {
  return Array.from({ length: hi - lo + 1 }, (_, i) => 2 ** (lo + i));
}

export function lnPoints(sigma: number, seed: number, Ns = powersOfTwo(10, 20)) {
  const rng = new Rng(seed);
  return Ns.map((N) => ({ N, L: predictLN(LN_TRUTH, N) * Math.exp(sigma * rng.normal()) }));
}

export function lnkPoints(
  sigma: number,
  seed: number,
  Ns = powersOfTwo(10, 20),
  ks = [8, 16, 32, 64, 128, 256, 512],
) {
  const rng = new Rng(seed);
  const pts: { N: number; k: number; L: number }[] = [];
  for (const N of Ns) {
    for (const k of ks) pts.push({ N, k, L: predictLNk(LNK_TRUTH, N, k) * Math.exp(sigma * rng.normal()) });
  }
  return pts;
}

export function powerLawPoints(c: number, beta: number, xs: number[], sigma: number, seed: number) {
  const rng = new Rng(seed);
  return xs.map((x) => ({ x, y: c * x ** beta * Math.exp(sigma * rng.normal()) }));
}
