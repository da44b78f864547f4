/** End to end on planted data: an oracle SAE (W_enc = W_dec = the true directions) through every metric. */
import { describe, expect, it } from 'vitest';
import { makeSynthetic } from '../../../src/data/synthetic';
import { codesByLatent, concatCodes, encodeBatches } from '../../../src/eval/codes';
import { EvalAccumulator } from '../../../src/eval/metrics';
import { probeLoss } from '../../../src/eval/probe';
import { featureRecovery } from '../../../src/eval/recovery';

describe('oracle SAE on synthetic data', () => {
  const d = 32;
  const F = 24;
  const rows = 600;
  const syn = makeSynthetic({ d, nFeatures: F, rows, seed: 3, expectedActive: 2 }, true);
  const params = {
    W_enc: syn.directions.slice(),
    W_dec: syn.directions.slice(),
    b_enc: new Float32Array(F),
    b_pre: new Float32Array(d),
  };

  it('recovers every feature, reconstructs well, and its latents probe the ground truth', () => {
    const rec = featureRecovery(params.W_dec, F, syn.directions, F, d);
    expect(rec.fractionRecovered).toBe(1);

    const mean = new Float64Array(d);
    for (let r = 0; r < rows; r++) for (let c = 0; c < d; c++) mean[c] += syn.data[r * d + c] / rows;
    const acc = new EvalAccumulator({ N: F, d, mean, topM: 4 });
    const parts = [];
    for (const b of encodeBatches(params, syn.data, rows, d, 4, 128)) {
      acc.add(b.x, b.codes, b.xhat);
      parts.push(b.codes);
    }
    const rep = acc.report();
    expect(rep.rows).toBe(rows);
    expect(rep.explainedVariance).toBeGreaterThan(0.5);
    expect(rep.nmse).toBeLessThan(0.5);
    expect(rep.deadCount).toBe(0);

    // task: "feature 5 is active" (from the planted coefficients) → latent 5 is the best probe
    const { rowPtr, feature } = syn.coefficients as NonNullable<typeof syn.coefficients>;
    const y = new Uint8Array(rows);
    for (let r = 0; r < rows; r++)
      for (let p = rowPtr[r]; p < rowPtr[r + 1]; p++) if (feature[p] === 5) y[r] = 1;
    const pr = probeLoss(codesByLatent(concatCodes(parts), F), F, [y], { x: syn.data, d });
    expect(pr.tasks[0].bestLatent).toBe(5);
    // not near 0: exponential magnitudes make some true activations tiny, and cross-talk between
    // non-orthogonal directions makes latent 5 fire weakly on other rows
    expect(pr.tasks[0].loss).toBeLessThan(0.6 * pr.tasks[0].constantLoss);
    expect(pr.tasks[0].rawLoss).toBeLessThan(pr.tasks[0].constantLoss);
  });
});
