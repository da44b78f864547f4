import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/data/rng';
import { codesByLatent, NONE, type SparseCodes } from '../../../src/eval/codes';
import { logitEffects, logitLens, quantileBands, valueAt, valueHistogram } from '../../../src/eval/dashboard';
import { activationHistogram } from '../../../src/eval/metrics';

/** 6 rows, k = 2, N = 3; an empty slot (NONE) and a kept zero value among them. */
function smallCodes(): SparseCodes {
  const idx = Uint32Array.from([0, 1, 0, 2, 1, NONE, 0, 1, 2, 0, 1, 2]);
  const val = Float32Array.from([0.5, 0.2, 1.0, 0.0005, 0.7, 0, 2.0, 0, 0.3, 1.5, 0.4, 0.9]);
  return { rows: 6, k: 2, idx, val };
}

describe('valueHistogram: the nonzero activations of a latent', () => {
  it('a hand-computed case: values at or below the fire threshold are left out, max in the last bin', () => {
    const h = valueHistogram([0.5, 0, 1, 2, 0.0005], { bins: 4, threshold: 1e-3 });
    expect(Array.from(h.edges)).toEqual([0, 0.5, 1, 1.5, 2]);
    expect(Array.from(h.counts)).toEqual([0, 1, 1, 1]);
    expect(h.fired).toBe(3);
  });
  it('equals activationHistogram over the codes, for every latent, from the CSC column alone', () => {
    const codes = smallCodes();
    const csc = codesByLatent(codes, 3, 0);
    for (let i = 0; i < 3; i++) {
      const col = csc.val.subarray(csc.start[i], csc.start[i + 1]);
      const a = activationHistogram([codes], i, { bins: 5 });
      const b = valueHistogram(col, { bins: 5 });
      expect(Array.from(b.counts)).toEqual(Array.from(a.counts));
      expect(Array.from(b.edges)).toEqual(Array.from(a.edges));
      expect(b.fired).toBe(a.fired);
    }
  });
});

describe('valueAt: a latent on one row', () => {
  it('finds the value by binary search, 0 where the latent is not in the row', () => {
    const csc = codesByLatent(smallCodes(), 3, 0);
    // latent 0 sits in rows 0 (0.5), 1 (1.0), 3 (2.0), 4 (1.5)
    expect([0, 1, 2, 3, 4, 5].map((r) => valueAt(csc, 0, r))).toEqual([0.5, 1, 0, 2, 1.5, 0]);
    // latent 2: rows 1 (0.0005), 4 (0.3), 5 (0.9)
    expect(valueAt(csc, 2, 1)).toBeCloseTo(0.0005, 7);
    expect([valueAt(csc, 2, 0), valueAt(csc, 2, 3)]).toEqual([0, 0]);
    expect(valueAt(csc, 2, 5)).toBeCloseTo(0.9, 6);
  });
});

describe('quantileBands: contexts from each activation band', () => {
  // rows 0..7, values; ranked ascending: r0 .1, r4 .2, r2 .3, r6 .4, r7 .5, r3 .6, r5 .7, r1 .8
  const rows = [0, 1, 2, 3, 4, 5, 6, 7];
  const values = [0.1, 0.8, 0.3, 0.6, 0.2, 0.7, 0.4, 0.5];
  it('4 bands of 2: each band is its quarter of the ranks, picks sorted by value desc', () => {
    const b = quantileBands(rows, values, { bands: 4, perBand: 2, seed: 1 });
    expect(b.map((x) => [x.qLo, x.qHi, x.lo, x.hi, x.count])).toEqual([
      [0, 0.25, 0.1, 0.2, 2],
      [0.25, 0.5, 0.3, 0.4, 2],
      [0.5, 0.75, 0.5, 0.6, 2],
      [0.75, 1, 0.7, 0.8, 2],
    ]);
    expect(b[3].picks).toEqual([
      { row: 1, value: 0.8 },
      { row: 5, value: 0.7 },
    ]);
    expect(b[0].picks.map((p) => p.row)).toEqual([4, 0]);
  });
  it('rows in `exclude` are picked only when the band has no others', () => {
    const b = quantileBands(rows, values, { bands: 4, perBand: 1, seed: 3, exclude: new Set([1]) });
    expect(b[3].picks).toEqual([{ row: 5, value: 0.7 }]);
    const all = quantileBands(rows, values, { bands: 4, perBand: 2, seed: 3, exclude: new Set([1, 5]) });
    expect(all[3].picks.map((p) => p.row)).toEqual([1, 5]);
  });
  it('draws from the right band, the same rows for a seed and latent, others for another seed', () => {
    const rng = new Rng(9);
    const n = 1000;
    const r = Array.from({ length: n }, (_, j) => j * 3);
    const v = Array.from({ length: n }, () => rng.nextFloat());
    const sorted = v.slice().sort((a, c) => a - c);
    const a = quantileBands(r, v, { bands: 5, perBand: 6, seed: 7, latent: 2 });
    expect(a.reduce((s, x) => s + x.count, 0)).toBe(n);
    a.forEach((band, j) => {
      expect(band.count).toBe(200);
      expect(band.lo).toBe(sorted[j * 200]);
      expect(band.hi).toBe(sorted[j * 200 + 199]);
      expect(band.picks).toHaveLength(6);
      for (const p of band.picks) {
        expect(p.value).toBeGreaterThanOrEqual(band.lo);
        expect(p.value).toBeLessThanOrEqual(band.hi);
        expect(v[p.row / 3]).toBe(p.value);
      }
      expect(new Set(band.picks.map((p) => p.row)).size).toBe(6);
    });
    expect(quantileBands(r, v, { bands: 5, perBand: 6, seed: 7, latent: 2 })).toEqual(a);
    expect(quantileBands(r, v, { bands: 5, perBand: 6, seed: 8, latent: 2 })).not.toEqual(a);
    expect(quantileBands(r, v, { bands: 5, perBand: 6, seed: 7, latent: 3 })).not.toEqual(a);
  });
  it('a latent that never fired: empty bands', () => {
    const b = quantileBands([], [], { bands: 3 });
    expect(b.map((x) => [x.count, x.picks.length])).toEqual([
      [0, 0],
      [0, 0],
      [0, 0],
    ]);
  });
});

describe('logitEffects: W_dec row → final norm → unembedding', () => {
  it('a hand-computed case (RMSNorm weight, then U)', () => {
    // U [3, 2], w = [2, 1], dir = [1, −1]: w ⊙ dir = [2, −1], e = U·[2, −1] = [2, −1, 1]
    const U = Float32Array.from([1, 0, 0, 1, 1, 1]);
    const lens = logitLens({ kind: 'rms', weight: Float32Array.from([2, 1]) }, U, 3, 2);
    const e = logitEffects(lens, [1, -1], 3, (t) => `t${t}`);
    expect(e.up.map((x) => [x.token, x.piece, x.value])).toEqual([
      [0, 't0', 2],
      [2, 't2', 1],
      [1, 't1', -1],
    ]);
    expect(e.down.map((x) => x.token)).toEqual([1, 2, 0]);
  });
  it('LayerNorm centers the direction first: [3, 1] acts as [1, −1]', () => {
    const U = Float32Array.from([1, 0, 0, 1, 1, 1]);
    const lens = logitLens({ kind: 'layernorm', weight: Float32Array.from([2, 1]) }, U, 3, 2);
    expect(logitEffects(lens, [3, 1], 1).up.map((x) => [x.token, x.value])).toEqual([[0, 2]]);
    expect(logitEffects(lens, [3, 1], 1).down.map((x) => [x.token, x.value])).toEqual([[1, -1]]);
  });
  it('equals the direct matrix product U·(w ⊙ (u − mean u)) on random weights, top and bottom in order', () => {
    const rng = new Rng(11);
    const V = 53;
    const d = 7;
    const U = Float32Array.from({ length: V * d }, () => rng.normal());
    const w = Float32Array.from({ length: d }, () => 0.5 + rng.nextFloat());
    const u = Array.from({ length: d }, () => rng.normal());
    for (const kind of ['rms', 'layernorm'] as const) {
      const mean = kind === 'layernorm' ? u.reduce((a, x) => a + x, 0) / d : 0;
      const direct = Array.from({ length: V }, (_, t) => {
        let s = 0;
        for (let j = 0; j < d; j++) s += U[t * d + j] * w[j] * (u[j] - mean);
        return s;
      });
      const order = direct.map((_, t) => t).sort((a, b) => direct[b] - direct[a]);
      const e = logitEffects(logitLens({ kind, weight: w }, U, V, d), u, 8);
      expect(e.up.map((x) => x.token)).toEqual(order.slice(0, 8));
      expect(e.down.map((x) => x.token)).toEqual(order.slice(-8).reverse());
      for (const x of [...e.up, ...e.down]) expect(x.value).toBeCloseTo(direct[x.token], 10);
    }
  });
  it('refuses a norm or unembedding of the wrong shape', () => {
    const U = new Float32Array(6);
    expect(() => logitLens({ kind: 'rms', weight: new Float32Array(3) }, U, 3, 2)).toThrow(/expected d = 2/);
    expect(() => logitLens({ kind: 'rms', weight: new Float32Array(2) }, U, 4, 2)).toThrow(/expected 4·2/);
  });
});
