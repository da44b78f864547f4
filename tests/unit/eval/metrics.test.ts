import { describe, expect, it } from 'vitest';
import { encodeSparse, reconstruct, type SparseCodes } from '../../../src/eval/codes';
import { evaluateSae } from '../../../src/eval/index';
import { activationHistogram, densityHistogram, EvalAccumulator } from '../../../src/eval/metrics';
import { randomParams, randomRows } from './helpers';

/** Hand-made batch: d = 2, 4 rows, N = 3, k = 2. */
const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]); // mean (4, 5); Σ‖x − mean‖² = 20 + 20
const codes: SparseCodes = {
  rows: 4,
  k: 2,
  idx: Uint32Array.from([0, 1, 0, 2, 0, 1, 1, 0]),
  // row 2's second value is below the fire threshold 1e-3; zeros never fire
  val: Float32Array.from([2, 1, 3, 0, 1, 0.0005, 4, 0]),
};

describe('EvalAccumulator against hand computations', () => {
  it('nMSE, EV, L0, dead, frequencies, mean activation, density', () => {
    const acc = new EvalAccumulator({ N: 3, d: 2, mean: [4, 5] });
    // e = x̂ − x = ±1 on one coordinate per row, zero mean: Σe² = 4, Σ n·Var(e) = 4
    const xhat = x.map((v, i) => v + [1, 0, 0, 1, -1, 0, 0, -1][i]);
    acc.add(x, codes, xhat);
    const r = acc.report(4);
    expect(r.rows).toBe(4);
    expect(r.nmse).toBeCloseTo(4 / 40, 12);
    expect(r.explainedVariance).toBeCloseTo(1 - 4 / 40, 12);
    // L0 counts nonzero values (6: row2's 0.0005 too); firing needs > 1e-3: row0 {0,1}, row1 {0}, row2 {0}, row3 {1}
    expect(r.l0).toBe(6 / 4);
    expect(Array.from(r.firingFrequency)).toEqual([0.75, 0.5, 0]);
    expect(r.deadCount).toBe(1);
    expect(r.deadFraction).toBeCloseTo(1 / 3, 12);
    expect(r.meanActWhenActive[0]).toBeCloseTo(2, 6);
    expect(r.meanActWhenActive[1]).toBeCloseTo(2.5, 6);
    expect(Number.isNaN(r.meanActWhenActive[2])).toBe(true);
    expect(Array.from(r.maxAct)).toEqual([3, 4, 0]);
    // rows = 4 → range [floor(log10 1/4), 0] = [−1, 0] in 4 bins; log10 .75 = −.125 → bin 3, log10 .5 = −.30 → bin 2
    expect(Array.from(r.density.edges)).toEqual([-1, -0.75, -0.5, -0.25, 0]);
    expect(Array.from(r.density.counts)).toEqual([0, 0, 1, 1]);
    expect(r.density.neverFired).toBe(1);
  });

  it('EV ignores a constant residual that nMSE counts', () => {
    const acc = new EvalAccumulator({ N: 3, d: 2, mean: [4, 5] });
    acc.add(
      x,
      codes,
      x.map((v) => v + 1),
    ); // Σe² = 8, Var(e) = 0
    const r = acc.report();
    expect(r.nmse).toBeCloseTo(8 / 40, 12);
    expect(r.explainedVariance).toBeCloseTo(1, 12);
  });

  it('a latent histogram of one latent', () => {
    const h = activationHistogram([codes], 0, { bins: 3 });
    expect(Array.from(h.edges)).toEqual([0, 1, 2, 3]);
    expect(Array.from(h.counts)).toEqual([0, 1, 2]); // values 1 → bin 1, 2 and 3 → bin 2
    expect(h.fired).toBe(3);
    expect(h.notFired).toBe(1);
    const d = densityHistogram([1, 0.01, 0], { bins: 2, lo: -2, hi: 0 });
    expect(Array.from(d.counts)).toEqual([1, 1]);
  });
});

describe('streaming equals one pass of direct computation', () => {
  const N = 40;
  const d = 8;
  const k = 4;
  const rows = 101;
  const params = randomParams(N, d, 5);
  // A large common offset: the shifted sums must not cancel catastrophically.
  const xs = randomRows(rows, d, 6, 1000);
  const b_pre = params.b_pre.map((v) => v + 1000);
  const p2 = { ...params, b_pre };

  it('nMSE / EV / L0 / dead / frequencies against a direct float64 computation, batch-size invariant', () => {
    const codes = encodeSparse(p2, xs, rows, d, k);
    const xhat = reconstruct(p2, codes, d);
    const mean = new Float64Array(d);
    for (let r = 0; r < rows; r++) for (let c = 0; c < d; c++) mean[c] += xs[r * d + c] / rows;
    let den = 0;
    let num = 0;
    const emean = new Float64Array(d);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < d; c++) {
        den += (xs[r * d + c] - mean[c]) ** 2;
        num += (xhat[r * d + c] - xs[r * d + c]) ** 2;
        emean[c] += (xhat[r * d + c] - xs[r * d + c]) / rows;
      }
    let evNum = 0;
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < d; c++) evNum += (xhat[r * d + c] - xs[r * d + c] - emean[c]) ** 2;
    const fires = new Float64Array(N);
    let l0 = 0;
    for (let e = 0; e < rows * k; e++) {
      if (codes.val[e] > 0) l0++;
      if (codes.val[e] > 1e-3) fires[codes.idx[e]]++;
    }
    const dead = fires.filter((f) => f === 0).length;

    for (const batchRows of [rows, 7]) {
      const { report } = evaluateSae(p2, xs, rows, k, { batchRows });
      expect(report.nmse).toBeCloseTo(num / den, 9);
      expect(report.explainedVariance).toBeCloseTo(1 - evNum / den, 9);
      expect(report.l0).toBeCloseTo(l0 / rows, 12);
      expect(report.deadCount).toBe(dead);
      for (let i = 0; i < N; i++) expect(report.firingFrequency[i]).toBeCloseTo(fires[i] / rows, 12);
    }
  });

  it('top-activating rows per latent with a bounded heap equal a full sort', () => {
    const M = 5;
    const { acc } = evaluateSae(p2, xs, rows, k, { batchRows: 7, topM: M });
    const codes = encodeSparse(p2, xs, rows, d, k);
    for (let i = 0; i < N; i++) {
      const all: [number, number][] = [];
      for (let r = 0; r < rows; r++)
        for (let j = 0; j < k; j++)
          if (codes.idx[r * k + j] === i && codes.val[r * k + j] > 1e-3) all.push([codes.val[r * k + j], r]);
      all.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      const top = acc.topRows(i);
      expect(Array.from(top.row)).toEqual(all.slice(0, M).map((a) => a[1]));
      expect(Array.from(top.val)).toEqual(all.slice(0, M).map((a) => a[0]));
    }
  });
});
