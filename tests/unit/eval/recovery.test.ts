import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/data/rng';
import { makeSynthetic } from '../../../src/data/synthetic';
import { chanceMaxCosine, decoderNeighbours, featureRecovery } from '../../../src/eval/recovery';
import { randomParams } from './helpers';

describe('featureRecovery', () => {
  const d = 16;
  const F = 32;
  const { directions } = makeSynthetic({ d, nFeatures: F, rows: 1, seed: 9 });

  it('≈ 1 when the decoder holds the true directions (among extra random rows, shuffled)', () => {
    const extra = randomParams(32, d, 11).W_dec;
    const N = F + 32;
    const W = new Float32Array(N * d);
    // latent 2f+1 = true direction f (scaled: rows need not be unit), latent 2f = random
    for (let f = 0; f < F; f++) {
      for (let c = 0; c < d; c++) {
        W[(2 * f + 1) * d + c] = 3 * directions[f * d + c];
        W[2 * f * d + c] = extra[f * d + c];
      }
    }
    const r = featureRecovery(W, N, directions, F, d);
    expect(r.meanMaxCos).toBeGreaterThan(0.99999);
    expect(r.fractionRecovered).toBe(1);
    for (let f = 0; f < F; f++) expect(r.bestLatent[f]).toBe(2 * f + 1);
    expect(r.sorted.length).toBe(F);
  });

  it('near the analytic chance level for a random decoder', () => {
    const N = 64;
    const chance = chanceMaxCosine(d, N);
    let mean = 0;
    const seeds = 8;
    for (let s = 0; s < seeds; s++) {
      const r = featureRecovery(randomParams(N, d, 100 + s).W_dec, N, directions, F, d);
      mean += r.meanMaxCos / seeds;
      expect(r.fractionRecovered).toBe(0);
      for (let f = 1; f < F; f++) expect(r.sorted[f]).toBeLessThanOrEqual(r.sorted[f - 1]);
    }
    expect(Math.abs(mean - chance)).toBeLessThan(0.02);
    expect(chance).toBeLessThan(0.75);
  });

  it('chanceMaxCosine: closed forms and Monte Carlo', () => {
    // d = 3: cos θ is uniform on [−1, 1], so E[max of n] = (n − 1)/(n + 1)
    expect(chanceMaxCosine(3, 3)).toBeCloseTo(0.5, 4);
    expect(chanceMaxCosine(3, 9)).toBeCloseTo(0.8, 4);
    // d = 2, n = 1: E[cos θ] = 0
    expect(chanceMaxCosine(2, 1)).toBeCloseTo(0, 4);
    // Monte Carlo, d = 8, n = 10
    const rng = new Rng(5);
    const trials = 4000;
    let acc = 0;
    for (let t = 0; t < trials; t++) {
      let best = -1;
      for (let j = 0; j < 10; j++) {
        let s = 0;
        let x0 = 0;
        for (let c = 0; c < 8; c++) {
          const v = rng.normal();
          if (c === 0) x0 = v;
          s += v * v;
        }
        best = Math.max(best, x0 / Math.sqrt(s));
      }
      acc += best;
    }
    expect(Math.abs(acc / trials - chanceMaxCosine(8, 10))).toBeLessThan(0.01);
  });
});

describe('decoderNeighbours', () => {
  it('finds the closest decoder rows by cosine, excluding the latent itself', () => {
    const d = 3;
    const W = Float32Array.from([1, 0, 0, 0, 1, 0, 0.9, 0.1, 0, -1, 0, 0, 0.5, 0.5, 0.5]);
    const nn = decoderNeighbours(W, 5, d, 0, 3);
    expect(Array.from(nn.latent)).toEqual([2, 4, 1]);
    expect(nn.cos[0]).toBeCloseTo(0.9 / Math.sqrt(0.82), 6);
    expect(nn.cos[2]).toBeCloseTo(0, 6);
  });
});
