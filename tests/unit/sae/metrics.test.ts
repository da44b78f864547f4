/**
 * The one definition of the evaluation metrics (src/sae/metrics.ts): its formulas by hand, its
 * independence of how rows are split into batches (bit for bit: the trainer's evaluation and the
 * evaluation panel may batch differently), and the evaluation library's accumulator giving the very
 * same numbers (it is the same code, extended).
 */
import { describe, expect, it } from 'vitest';
import { EvalAccumulator } from '../../../src/eval/metrics';
import { NONE } from '../../../src/reference/step';
import { type CodesBatch, MetricsAccumulator } from '../../../src/sae/metrics';

/** Seeded rows with a large common offset, codes with zeros, sub-threshold values and empty slots. */
function batch(rows: number, d: number, N: number, k: number, seed: number) {
  let a = seed >>> 0;
  const u = () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return a / 2 ** 32;
  };
  const x = Float32Array.from({ length: rows * d }, (_, i) => 1000 + (i % d) + (u() - 0.5) * 4);
  const xhat = x.map((v) => v + (u() - 0.5));
  const idx = Uint32Array.from({ length: rows * k }, () => (u() < 0.1 ? NONE : Math.floor(u() * N)));
  const val = Float32Array.from({ length: rows * k }, () => {
    const r = u();
    return r < 0.2 ? 0 : r < 0.3 ? 5e-4 : r * 3;
  });
  return { x, xhat, codes: { rows, k, idx, val } as CodesBatch };
}

function slice(b: ReturnType<typeof batch>, r0: number, r1: number, d: number) {
  const { k } = b.codes;
  return {
    x: b.x.subarray(r0 * d, r1 * d),
    xhat: b.xhat.subarray(r0 * d, r1 * d),
    codes: {
      rows: r1 - r0,
      k,
      idx: b.codes.idx.subarray(r0 * k, r1 * k),
      val: b.codes.val.subarray(r0 * k, r1 * k),
    },
  };
}

describe('MetricsAccumulator', () => {
  const d = 6;
  const N = 20;
  const k = 5;
  const rows = 57;
  const b = batch(rows, d, N, k, 3);
  // μ: a dataset mean that is not the evaluated rows' own mean
  const mean = Float64Array.from({ length: d }, (_, c) => 1000 + c + 0.3);

  it('nMSE about the dataset mean, EV from the rows’ variances, L0 of nonzero values, fires above the threshold', () => {
    const acc = new MetricsAccumulator({ N, d, mean, fireThreshold: 1e-3 });
    acc.add(b.x, b.codes, b.xhat);
    const m = acc.metrics();
    let num = 0;
    let den = 0;
    const xm = new Float64Array(d);
    const em = new Float64Array(d);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < d; c++) {
        const x = b.x[r * d + c];
        num += (b.xhat[r * d + c] - x) ** 2;
        den += (x - mean[c]) ** 2;
        xm[c] += x / rows;
        em[c] += (b.xhat[r * d + c] - x) / rows;
      }
    let vx = 0;
    let ve = 0;
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < d; c++) {
        vx += (b.x[r * d + c] - xm[c]) ** 2;
        ve += (b.xhat[r * d + c] - b.x[r * d + c] - em[c]) ** 2;
      }
    let l0 = 0;
    const fired = new Set<number>();
    for (let e = 0; e < rows * k; e++) {
      if (b.codes.idx[e] === NONE) continue;
      if (b.codes.val[e] > 0) l0++;
      if (b.codes.val[e] > 1e-3) fired.add(b.codes.idx[e]);
    }
    expect(m.rows).toBe(rows);
    expect(m.nmse).toBeCloseTo(num / den, 12);
    // the rows' own mean would give a different (smaller) denominator: μ matters
    expect(Math.abs(num / den - num / vx)).toBeGreaterThan(1e-3);
    expect(m.explainedVariance).toBeCloseTo(1 - ve / vx, 9);
    expect(m.l0).toBe(l0 / rows);
    expect(m.neverFired).toBe(N - fired.size);
    expect(m.neverFiredFraction).toBe((N - fired.size) / N);
  });

  it('bit for bit the same however the rows are split into batches', () => {
    const whole = new MetricsAccumulator({ N, d, mean, fireThreshold: 1e-3 });
    whole.add(b.x, b.codes, b.xhat);
    for (const cut of [
      [0, 16, 32, 48, rows],
      [0, 1, 50, rows],
      [0, 56, rows],
    ]) {
      const parts = new MetricsAccumulator({ N, d, mean, fireThreshold: 1e-3 });
      for (let i = 0; i + 1 < cut.length; i++) {
        const s = slice(b, cut[i], cut[i + 1], d);
        parts.add(s.x, s.codes, s.xhat);
      }
      expect(parts.metrics()).toEqual(whole.metrics());
    }
  });

  it('L0 from per-row counts when given (the threshold family’s codes keep only the largest 512)', () => {
    const acc = new MetricsAccumulator({ N, d, mean, fireThreshold: 1e-3 });
    const rowL0 = Float32Array.from({ length: rows }, (_, r) => 600 + (r % 3));
    acc.add(b.x, b.codes, b.xhat, rowL0);
    expect(acc.metrics().l0).toBe(rowL0.reduce((a, v) => a + v, 0) / rows);
  });

  it('the evaluation library’s accumulator reports exactly these numbers', () => {
    const core = new MetricsAccumulator({ N, d, mean, fireThreshold: 1e-3 });
    const full = new EvalAccumulator({ N, d, mean, fireThreshold: 1e-3, topM: 3 });
    for (const [r0, r1] of [
      [0, 20],
      [20, rows],
    ]) {
      const s = slice(b, r0, r1, d);
      core.add(s.x, s.codes, s.xhat);
      full.add(s.x, s.codes, s.xhat);
    }
    const m = core.metrics();
    const r = full.report();
    expect([r.rows, r.nmse, r.explainedVariance, r.l0, r.deadCount, r.deadFraction]).toEqual([
      m.rows,
      m.nmse,
      m.explainedVariance,
      m.l0,
      m.neverFired,
      m.neverFiredFraction,
    ]);
    // firing frequencies are fires above the threshold over rows; they sum to at most L0
    const sum = r.firingFrequency.reduce((a, f) => a + f, 0);
    expect(sum).toBeLessThan(r.l0);
  });
});
