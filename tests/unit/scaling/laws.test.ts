import { describe, expect, it } from 'vitest';
import { FitError } from '../../../src/scaling/fit';
import {
  fitLN,
  fitLNk,
  fitPowerLaw,
  predictLN,
  predictLNk,
  predictPowerLaw,
} from '../../../src/scaling/laws';
import { LN_TRUTH, LNK_TRUTH, lnkPoints, lnPoints, powerLawPoints, powersOfTwo } from './synthetic';

describe('fitLN: L(N) = exp(alpha) N^beta + L_irr', () => {
  it('recovers known parameters from 1%-noise data', () => {
    const fit = fitLN(lnPoints(0.01, 1));
    expect(Math.abs(fit.params.beta - LN_TRUTH.beta)).toBeLessThan(0.03);
    expect(Math.abs(fit.params.L_irr - LN_TRUTH.L_irr) / LN_TRUTH.L_irr).toBeLessThan(0.1);
    expect(Math.abs(fit.params.alpha - LN_TRUTH.alpha)).toBeLessThan(0.2);
    expect(fit.r2).toBeGreaterThan(0.99);
    expect(fit.space).toBe('log');
    expect(fit.n).toBe(11);
    expect(fit.dof).toBe(8);
    expect(predictLN(fit.params, 2 ** 15)).toBeCloseTo(predictLN(LN_TRUTH, 2 ** 15), 2);
  });

  it('is exact on noiseless data, whatever the scale of L', () => {
    for (const scale of [1e-4, 1, 1e4]) {
      const pts = lnPoints(0, 1).map((p) => ({ N: p.N, L: p.L * scale }));
      const fit = fitLN(pts);
      expect(fit.params.beta).toBeCloseTo(LN_TRUTH.beta, 6);
      expect(fit.params.L_irr / scale).toBeCloseTo(LN_TRUTH.L_irr, 6);
      expect(fit.params.alpha - Math.log(scale)).toBeCloseTo(LN_TRUTH.alpha, 5);
    }
  });

  it('stderr shrinks with the noise', () => {
    const seeds = Array.from({ length: 10 }, (_, i) => i + 1);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const quiet = mean(seeds.map((s) => fitLN(lnPoints(0.005, s)).stderr.beta));
    const loud = mean(seeds.map((s) => fitLN(lnPoints(0.02, s)).stderr.beta));
    // stderr ∝ σ: 4× the noise → ≈ 4× the stderr.
    expect(loud / quiet).toBeGreaterThan(3);
    expect(loud / quiet).toBeLessThan(5);
  });

  it('stderr is calibrated: the truth lies within 3 stderr ~98% of the time', () => {
    // With dof = 8, |error| / stderr follows Student's t_8 when the
    // linearization holds: P(<1) = 0.65, P(<2) = 0.92, P(<3) = 0.983.
    // 100 seeds × 3 parameters; the bands allow for sampling error.
    const z: number[] = [];
    for (let seed = 1; seed <= 100; seed++) {
      const fit = fitLN(lnPoints(0.01, seed));
      for (const name of fit.paramNames)
        z.push(Math.abs(fit.params[name] - LN_TRUTH[name]) / fit.stderr[name]);
    }
    const frac = (t: number) => z.filter((v) => v < t).length / z.length;
    expect(frac(1)).toBeGreaterThan(0.55);
    expect(frac(1)).toBeLessThan(0.75);
    expect(frac(2)).toBeGreaterThan(0.85);
    expect(frac(3)).toBeGreaterThan(0.95);
    expect(Math.max(...z)).toBeLessThan(6);
  });

  it('keeps L_irr >= 0 when the data have no floor', () => {
    const pts = powersOfTwo(10, 20).map((N) => ({ N, L: 3 * N ** -0.25 }));
    const fit = fitLN(pts);
    expect(fit.params.L_irr).toBeGreaterThanOrEqual(0);
    expect(fit.params.L_irr).toBeLessThan(1e-6);
    expect(fit.params.beta).toBeCloseTo(-0.25, 4);
  });

  it('bootstrap is deterministic and comparable to stderr', () => {
    const pts = lnPoints(0.01, 5);
    const a = fitLN(pts, { bootstrap: { samples: 60, seed: 9 } });
    const b = fitLN(pts, { bootstrap: { samples: 60, seed: 9 } });
    expect(a.bootstrap).toEqual(b.bootstrap);
    expect(a.params).toEqual(b.params);
    expect(a.bootstrap!.succeeded).toBeGreaterThan(55);
    const ratio = a.bootstrap!.std.beta / a.stderr.beta;
    expect(ratio).toBeGreaterThan(0.4);
    expect(ratio).toBeLessThan(2.5);
  });

  it('refuses too few points, too few distinct N, and non-positive values', () => {
    expect(() => fitLN(lnPoints(0.01, 1).slice(0, 3))).toThrow(FitError);
    expect(() => fitLN(lnPoints(0.01, 1).slice(0, 3))).toThrow('fitLN: needs at least 4 points, got 3');
    const twoN = [1024, 1024, 2048, 2048].map((N) => ({ N, L: predictLN(LN_TRUTH, N) }));
    expect(() => fitLN(twoN)).toThrow('fitLN: needs at least 3 distinct N values, got 2');
    const bad = lnPoints(0, 1);
    bad[2] = { N: bad[2].N, L: 0 };
    expect(() => fitLN(bad)).toThrow(/L must be positive.*point 2/);
  });
});

describe('fitLNk: the joint law', () => {
  it('recovers the paper-like parameters from 1%-noise data on an 11 × 7 grid', () => {
    // Tolerances are ≈4 stderr (stderr at σ = 1%: beta_N ≈ 0.005, gamma ≈
    // 0.0013); beta_N alone is loosely pinned because it trades off against
    // gamma·log k, so the effective N-exponent at k = 32 is checked tighter.
    const tol = { alpha: 0.15, beta_k: 0.04, beta_N: 0.03, gamma: 0.006, zeta: 0.25, eta: 0.04 };
    const slope32 = (p: typeof LNK_TRUTH) => p.beta_N + p.gamma * Math.log(32);
    for (const seed of [1, 2, 3, 4, 5]) {
      const fit = fitLNk(lnkPoints(0.01, seed));
      for (const n of fit.paramNames) {
        const err = Math.abs(fit.params[n] - LNK_TRUTH[n]);
        expect(err, `${n}, seed ${seed}`).toBeLessThan(tol[n]);
        expect(err, `${n}, seed ${seed}`).toBeLessThan(4 * fit.stderr[n]);
      }
      expect(Math.abs(slope32(fit.params) - slope32(LNK_TRUTH))).toBeLessThan(0.015);
      expect(fit.r2).toBeGreaterThan(0.99);
      expect(fit.n).toBe(77);
      expect(fit.dof).toBe(71);
      expect(fit.warnings).toEqual([]);
    }
  });

  it('is exact on noiseless data and predicts within 0.1%', () => {
    const fit = fitLNk(lnkPoints(0, 1, powersOfTwo(10, 18), [8, 32, 128]));
    for (const n of fit.paramNames) expect(fit.params[n]).toBeCloseTo(LNK_TRUTH[n], 4);
    const rel = predictLNk(fit.params, 3000, 50) / predictLNk(LNK_TRUTH, 3000, 50) - 1;
    expect(Math.abs(rel)).toBeLessThan(1e-3);
  });

  it('stderr shrinks with the noise', () => {
    const loud = fitLNk(lnkPoints(0.02, 2));
    const quiet = fitLNk(lnkPoints(0.005, 2));
    for (const n of ['beta_N', 'beta_k', 'gamma'] as const) {
      const ratio = loud.stderr[n] / quiet.stderr[n];
      expect(ratio).toBeGreaterThan(2.5);
      expect(ratio).toBeLessThan(6);
    }
  });

  it('bootstrap is deterministic', () => {
    const pts = lnkPoints(0.01, 3, powersOfTwo(10, 16), [16, 64, 256]);
    const a = fitLNk(pts, { bootstrap: { samples: 20, seed: 1 } });
    const b = fitLNk(pts, { bootstrap: { samples: 20, seed: 1 } });
    expect(a.bootstrap).toEqual(b.bootstrap);
    expect(a.bootstrap!.std.gamma).toBeGreaterThan(0);
  });

  it('refuses too few points or too few distinct N / k', () => {
    const pts = lnkPoints(0.01, 1);
    expect(() => fitLNk(pts.slice(0, 6))).toThrow('fitLNk: needs at least 7 points, got 6');
    const oneK = lnkPoints(0.01, 1, powersOfTwo(10, 20), [32]);
    expect(() => fitLNk(oneK)).toThrow('fitLNk: needs at least 2 distinct k values, got 1');
    const twoN = lnkPoints(0.01, 1, [1024, 4096], [8, 16, 32, 64]);
    expect(() => fitLNk(twoN)).toThrow('fitLNk: needs at least 3 distinct N values, got 2');
    const neg = pts.map((p, i) => (i === 5 ? { ...p, k: -1 } : p));
    expect(() => fitLNk(neg)).toThrow(FitError);
  });
});

describe('fitPowerLaw: y = c x^beta', () => {
  it('recovers T ∝ N^0.6 within 0.03 and c within 3 stderr', () => {
    const xs = powersOfTwo(10, 18);
    const fit = fitPowerLaw(powerLawPoints(3e4, 0.6, xs, 0.05, 1));
    expect(Math.abs(fit.params.beta - 0.6)).toBeLessThan(0.03);
    expect(Math.abs(fit.params.c - 3e4)).toBeLessThan(3 * fit.stderr.c);
    expect(Math.abs(fit.params.beta - 0.6)).toBeLessThan(3 * fit.stderr.beta);
    expect(fit.r2).toBeGreaterThan(0.99);
    expect(predictPowerLaw(fit.params, 2 ** 14)).toBeGreaterThan(0);
  });

  it('matches the closed-form log-log regression, stderr included', () => {
    const pts = powerLawPoints(0.3, -0.2, [8, 16, 32, 64, 128, 256], 0.03, 4);
    const fit = fitPowerLaw(pts);
    const lx = pts.map((p) => Math.log(p.x));
    const ly = pts.map((p) => Math.log(p.y));
    const n = pts.length;
    const mx = lx.reduce((a, b) => a + b, 0) / n;
    const my = ly.reduce((a, b) => a + b, 0) / n;
    const sxx = lx.reduce((a, v) => a + (v - mx) ** 2, 0);
    const beta = lx.reduce((a, v, i) => a + (v - mx) * (ly[i] - my), 0) / sxx;
    const a0 = my - beta * mx;
    const s2 = ly.reduce((a, v, i) => a + (v - a0 - beta * lx[i]) ** 2, 0) / (n - 2);
    expect(fit.params.beta).toBeCloseTo(beta, 9);
    expect(fit.params.c).toBeCloseTo(Math.exp(a0), 9);
    expect(fit.stderr.beta).toBeCloseTo(Math.sqrt(s2 / sxx), 9);
    // Delta method: se(c) = c · se(log c).
    expect(fit.stderr.c / fit.params.c).toBeCloseTo(Math.sqrt(s2 * (1 / n + (mx * mx) / sxx)), 9);
  });

  it('stderr shrinks with the noise', () => {
    const xs = powersOfTwo(10, 18);
    const loud = fitPowerLaw(powerLawPoints(1, 0.5, xs, 0.08, 2));
    const quiet = fitPowerLaw(powerLawPoints(1, 0.5, xs, 0.02, 2));
    expect(loud.stderr.beta / quiet.stderr.beta).toBeCloseTo(4, 0);
  });

  it('bootstrap is deterministic', () => {
    const pts = powerLawPoints(2, 0.7, powersOfTwo(8, 14), 0.05, 6);
    const a = fitPowerLaw(pts, { bootstrap: { samples: 100, seed: 5 } });
    expect(fitPowerLaw(pts, { bootstrap: { samples: 100, seed: 5 } }).bootstrap).toEqual(a.bootstrap);
    expect(a.bootstrap!.std.beta).toBeGreaterThan(0);
  });

  it('refuses too few points, one distinct x, and non-positive y', () => {
    expect(() =>
      fitPowerLaw([
        { x: 1, y: 1 },
        { x: 2, y: 2 },
      ]),
    ).toThrow('fitPowerLaw: needs at least 3 points, got 2');
    expect(() => fitPowerLaw([1, 1, 1].map((x) => ({ x, y: 2 })))).toThrow(
      'fitPowerLaw: needs at least 2 distinct x values, got 1',
    );
    expect(() =>
      fitPowerLaw([
        { x: 1, y: 1 },
        { x: 2, y: -2 },
        { x: 3, y: 3 },
      ]),
    ).toThrow(FitError);
    expect(() =>
      fitPowerLaw([
        { x: 1, y: 1 },
        { x: 2, y: Number.NaN },
        { x: 3, y: 3 },
      ]),
    ).toThrow(/y must be positive/);
  });
});
