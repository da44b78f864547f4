import { describe, expect, it } from 'vitest';
import { computeStats } from '../../../src/data/stats.ts';
import { Batcher } from '../../../src/data/stream.ts';
import { makeSynthetic, syntheticSource } from '../../../src/data/synthetic.ts';

describe('synthetic data', () => {
  it('is deterministic, and the streaming source yields the same rows', async () => {
    const o = { d: 16, nFeatures: 40, rows: 300, seed: 4, expectedActive: 3, noiseStd: 0.01 };
    const a = makeSynthetic(o, true);
    const b = makeSynthetic(o);
    expect(a.data).toEqual(b.data);
    expect(a.directions).toEqual(b.directions);
    const src = syntheticSource(o);
    expect(await src.readRows(0, 300)).toEqual(a.data);
    expect(await src.readRows(123, 7)).toEqual(a.data.subarray(123 * 16, 130 * 16));
    expect(makeSynthetic({ ...o, seed: 5 }).data).not.toEqual(a.data);
  });

  it('data = coefficients · directions exactly (no noise); directions are unit; coefficients > 0', () => {
    const o = { d: 8, nFeatures: 20, rows: 200, seed: 1, activeProb: 0.15, magnitude: 'lognormal' as const };
    const s = makeSynthetic(o, true);
    const c = s.coefficients!;
    for (let i = 0; i < 20; i++) {
      let n2 = 0;
      for (let k = 0; k < 8; k++) n2 += s.directions[i * 8 + k] ** 2;
      expect(n2).toBeCloseTo(1, 6);
    }
    for (let r = 0; r < 200; r++) {
      const x = new Float64Array(8);
      for (let j = c.rowPtr[r]; j < c.rowPtr[r + 1]; j++) {
        expect(c.value[j]).toBeGreaterThan(0);
        for (let k = 0; k < 8; k++) x[k] += c.value[j] * s.directions[c.feature[j] * 8 + k];
      }
      for (let k = 0; k < 8; k++) expect(s.data[r * 8 + k]).toBeCloseTo(x[k], 4);
    }
  });

  it('feature frequencies match p (uniform and Zipf) and activations are independent Bernoulli', () => {
    const rows = 20000;
    const s = makeSynthetic({ d: 4, nFeatures: 50, rows, seed: 2, activeProb: 0.1 }, true);
    const c = s.coefficients!;
    const counts = new Array(50).fill(0);
    for (const f of c.feature) counts[f]++;
    for (const n of counts) expect(Math.abs(n / rows - 0.1)).toBeLessThan(0.012);
    // mean number active per row = 50 * 0.1
    expect(c.feature.length / rows).toBeCloseTo(5, 1);

    const z = makeSynthetic(
      { d: 4, nFeatures: 100, rows, seed: 3, expectedActive: 4, frequencyExponent: 1 },
      true,
    );
    const zc = new Array(100).fill(0);
    for (const f of z.coefficients!.feature) zc[f]++;
    for (const i of [0, 1, 9, 49]) expect(zc[i] / rows).toBeCloseTo(z.probabilities[i], 1);
    expect(zc[0]).toBeGreaterThan(5 * zc[20]);
  });

  it('correlation parameter sets pairwise cosines of the directions', () => {
    const cos = (corr: number) => {
      const s = makeSynthetic({ d: 256, nFeatures: 30, rows: 0, seed: 6, correlation: corr });
      let sum = 0;
      let n = 0;
      for (let i = 0; i < 30; i++)
        for (let j = i + 1; j < 30; j++) {
          let dot = 0;
          for (let k = 0; k < 256; k++) dot += s.directions[i * 256 + k] * s.directions[j * 256 + k];
          sum += dot;
          n++;
        }
      return sum / n;
    };
    expect(Math.abs(cos(0))).toBeLessThan(0.02);
    expect(cos(0.3)).toBeCloseTo(0.3, 1);
  });

  it('noise has the requested std; exponential magnitudes have mean magnitudeScale', () => {
    const s = makeSynthetic({ d: 32, nFeatures: 10, rows: 2000, seed: 7, activeProb: 0, noiseStd: 0.5 });
    let v = 0;
    for (const x of s.data) v += x * x;
    expect(Math.sqrt(v / s.data.length)).toBeCloseTo(0.5, 1);
    const e = makeSynthetic(
      { d: 2, nFeatures: 10, rows: 5000, seed: 8, activeProb: 0.3, magnitudeScale: 2 },
      true,
    );
    const vals = e.coefficients!.value;
    expect(vals.reduce((a, b) => a + b, 0) / vals.length).toBeCloseTo(2, 1);
  });

  it('works as a streaming source for the batcher and stats', async () => {
    const src = syntheticSource({ d: 8, nFeatures: 16, rows: 1000, seed: 9 });
    const st = await computeStats(src, undefined, { chunkRows: 128 });
    expect(st.count).toBe(1000);
    const b = new Batcher(src, { chunkRows: 100, shuffleRows: 300, seed: 1 });
    const x = await b.nextBatch(64);
    expect(x.length).toBe(64 * 8);
    const want = await src.readRows(b.lastRowIds[0], 1);
    expect(x.subarray(0, 8)).toEqual(want);
  });
});
