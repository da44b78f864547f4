import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/data/rng';
import { FitError, invertNormalMatrix, leastSquares, ols } from '../../../src/scaling/fit';

/** y = a·exp(−b·t) + noise, a linear-space problem with a numeric Jacobian. */
function decayProblem(sigma: number, seed: number) {
  const rng = new Rng(seed);
  const t = Array.from({ length: 30 }, (_, i) => i * 0.2);
  const y = t.map((ti) => 2.5 * Math.exp(-1.3 * ti) + sigma * rng.normal());
  return {
    t,
    problem: {
      paramNames: ['a', 'b'] as const,
      y,
      initial: [1, 0.5],
      model: ([a, b]: readonly number[], i: number) => a * Math.exp(-b * t[i]),
    },
  };
}

describe('leastSquares', () => {
  it('recovers a nonlinear model with a numeric Jacobian', () => {
    const { problem } = decayProblem(0.01, 1);
    const fit = leastSquares(problem);
    expect(fit.params.a).toBeCloseTo(2.5, 1);
    expect(fit.params.b).toBeCloseTo(1.3, 1);
    expect(Math.abs(fit.params.a - 2.5)).toBeLessThan(4 * fit.stderr.a);
    expect(Math.abs(fit.params.b - 1.3)).toBeLessThan(4 * fit.stderr.b);
    expect(fit.r2).toBeGreaterThan(0.999);
    expect(fit.n).toBe(30);
    expect(fit.dof).toBe(28);
    expect(fit.residuals).toHaveLength(30);
    expect(fit.space).toBe('linear');
    expect(fit.sigma).toBeGreaterThan(0.005);
    expect(fit.sigma).toBeLessThan(0.02);
  });

  it('matches the textbook OLS stderr for a straight line', () => {
    const rng = new Rng(7);
    const x = Array.from({ length: 20 }, (_, i) => i);
    const y = x.map((xi) => 1 + 0.5 * xi + 0.3 * rng.normal());
    const fit = leastSquares({
      paramNames: ['b0', 'b1'],
      y,
      initial: [0, 0],
      model: ([b0, b1], i) => b0 + b1 * x[i],
    });
    const [b0, b1] = ols(
      x.map((v) => [1, v]),
      y,
    )!;
    expect(fit.params.b0).toBeCloseTo(b0, 8);
    expect(fit.params.b1).toBeCloseTo(b1, 8);
    const n = x.length;
    const xm = x.reduce((s, v) => s + v, 0) / n;
    const sxx = x.reduce((s, v) => s + (v - xm) ** 2, 0);
    const s2 = y.reduce((s, v, i) => s + (v - b0 - b1 * x[i]) ** 2, 0) / (n - 2);
    expect(fit.stderr.b1).toBeCloseTo(Math.sqrt(s2 / sxx), 8);
    expect(fit.stderr.b0).toBeCloseTo(Math.sqrt(s2 * (1 / n + (xm * xm) / sxx)), 8);
  });

  it('respects lower bounds', () => {
    // Data want a negative offset; the bound keeps it at 0.
    const x = [1, 2, 3, 4, 5];
    const fit = leastSquares({
      paramNames: ['slope', 'offset'],
      y: x.map((v) => 2 * v - 1),
      initial: [1, 1],
      lower: [-Infinity, 0],
      model: ([s, o], i) => s * x[i] + o,
    });
    expect(fit.params.offset).toBe(0);
    expect(fit.warnings.some((w) => w.includes('offset'))).toBe(true);
  });

  it('throws FitError with counts when there are too few points', () => {
    const problem = {
      paramNames: ['a', 'b', 'c'],
      y: [1, 2, 3],
      initial: [0, 0, 0],
      model: (q: readonly number[], i: number) => q[0] + q[1] * i + q[2] * i * i,
    };
    expect(() => leastSquares(problem)).toThrow(FitError);
    expect(() => leastSquares(problem)).toThrow('needs at least 4 points, got 3');
    try {
      leastSquares(problem);
    } catch (e) {
      expect((e as FitError).needed).toBe(4);
      expect((e as FitError).given).toBe(3);
    }
  });

  it('flags a non-identifiable model with infinite stderr', () => {
    const x = [1, 2, 3, 4, 5];
    // a and b only enter as a + b.
    const fit = leastSquares({
      paramNames: ['a', 'b', 'c'],
      y: x.map((v) => 3 + 2 * v),
      initial: [1, 1, 1],
      model: ([a, b, c], i) => a + b + c * x[i],
    });
    expect(fit.params.a + fit.params.b).toBeCloseTo(3, 6);
    expect(fit.stderr.a).toBe(Infinity);
    expect(fit.warnings.join(' ')).toMatch(/singular/);
  });

  it('bootstrap is deterministic for a seed and close to the stderr', () => {
    const { problem } = decayProblem(0.02, 3);
    const a = leastSquares(problem, { bootstrap: { samples: 100, seed: 42 } });
    const b = leastSquares(problem, { bootstrap: { samples: 100, seed: 42 } });
    const c = leastSquares(problem, { bootstrap: { samples: 100, seed: 43 } });
    expect(a.bootstrap).toEqual(b.bootstrap);
    expect(a.bootstrap!.std.b).not.toBe(c.bootstrap!.std.b);
    expect(a.bootstrap!.succeeded).toBe(100);
    // Bootstrap spread and linearized stderr agree to within a factor of 2.
    for (const name of ['a', 'b'] as const) {
      const ratio = a.bootstrap!.std[name] / a.stderr[name];
      expect(ratio).toBeGreaterThan(0.5);
      expect(ratio).toBeLessThan(2);
    }
  });
});

describe('invertNormalMatrix', () => {
  it('inverts a badly scaled but well-posed JᵀJ', () => {
    const J = [
      [1e-6, 1e6],
      [2e-6, 3e6],
      [5e-6, 1e6],
    ];
    const inv = invertNormalMatrix(J, 2)!;
    // (JᵀJ)·inv = I. A naive unscaled Cholesky of JᵀJ (condition ~1e24) would fail here.
    const A = [0, 1].map((a) => [0, 1].map((b) => J.reduce((s, r) => s + r[a] * r[b], 0)));
    for (let a = 0; a < 2; a++) {
      for (let b = 0; b < 2; b++) {
        const t0 = A[a][0] * inv[0][b];
        const t1 = A[a][1] * inv[1][b];
        // Terms are ~1e10 and cancel: the error bound is relative to their size.
        expect(Math.abs(t0 + t1 - (a === b ? 1 : 0))).toBeLessThan(1e-9 * (Math.abs(t0) + Math.abs(t1)));
      }
    }
  });
});
