import { describe, expect, it } from 'vitest';
import { adamScalars, l1At, lrAt, resolveConfig } from '../../src/sae/config';

describe('config defaults (paper / released code)', () => {
  it('derives lr, kAux and deadTokens from their rules', () => {
    const c = resolveConfig({ d: 768, nLatents: 2 ** 16, tokens: 1e9 });
    expect(c.lr).toBeCloseTo(2e-4 / 2, 12); // 2e-4 / sqrt(2^16 / 2^14)
    expect(c.kAux).toBe(384); // min(512, d/2)
    expect(c.deadTokens).toBe(10_000_000); // min(10M, tokens/10)
    expect(resolveConfig({ d: 64, tokens: 1e5 }).deadTokens).toBe(10_000);
    expect(c.eps).toBe(6.25e-10);
    expect(c.auxCoef).toBe(1 / 32);
  });

  it('refuses impossible values with a message naming the field', () => {
    expect(() => resolveConfig({ d: 64, k: 0 })).toThrow(/k must be/);
    expect(() => resolveConfig({ d: 64, nLatents: 16, k: 32 })).toThrow(/k must be/);
    expect(() => resolveConfig({ d: 64, lr: 2 })).toThrow(/lr must be/);
    expect(() => resolveConfig({ d: 64, batchSize: 0 })).toThrow(/batchSize/);
  });
});

describe('learning-rate schedule and Adam bias correction', () => {
  const c = resolveConfig({
    d: 8,
    nLatents: 64,
    k: 4,
    batchSize: 10,
    tokens: 1000,
    lr: 1e-3,
    lrWarmupSteps: 10,
    lrDecaySteps: 20,
  });
  it('warms up linearly, stays constant, decays linearly to the last step', () => {
    expect(lrAt(c, 1)).toBeCloseTo(1e-4, 12);
    expect(lrAt(c, 10)).toBeCloseTo(1e-3, 12);
    expect(lrAt(c, 50)).toBeCloseTo(1e-3, 12);
    expect(lrAt(c, 81)).toBeCloseTo(1e-3, 12); // 100 steps; decay covers 81..100
    expect(lrAt(c, 91)).toBeCloseTo(1e-3 * (10 / 20), 12);
    expect(lrAt(c, 100)).toBeCloseTo(1e-3 / 20, 12);
  });
  it('folds bias correction into the step size as PyTorch Adam does', () => {
    const { stepSize, bc2 } = adamScalars(c, 1, 1e-3);
    expect(stepSize).toBeCloseTo(1e-3 / 0.1, 12);
    expect(bc2).toBeCloseTo(1 / 0.001, 9);
  });
});

describe('activation variants in the config', () => {
  it('resolves per-activation defaults', () => {
    const relu = resolveConfig({ d: 64, nLatents: 256, activation: 'relu' });
    expect(relu.unitNormDecoder).toBe(false);
    expect(relu.gradProjection).toBe(false);
    expect(relu.kAux).toBe(0);
    expect(relu.auxk).toBe(false);
    const jump = resolveConfig({ d: 64, nLatents: 256, activation: 'jumprelu' });
    expect(jump.unitNormDecoder).toBe(true);
    expect(jump.jumpBandwidth).toBeCloseTo(1e-3 * 8);
    expect(jump.jumpInitThreshold).toBeCloseTo(1e-3 * 8);
    const btk = resolveConfig({ d: 64, nLatents: 256, k: 8, activation: 'batchtopk' });
    expect(btk.batchTopKCap).toBe(32);
    expect(btk.auxk).toBe(true);
  });

  it('Multi-TopK takes the AuxK region (ranks k..4k−1) and turns AuxK off', () => {
    const m = resolveConfig({ d: 64, nLatents: 256, k: 8, multiTopK: true });
    expect(m.kAux).toBe(24);
    expect(m.auxk).toBe(false);
    expect(resolveConfig({ d: 64, nLatents: 20, k: 8, multiTopK: true }).kAux).toBe(12);
    expect(() => resolveConfig({ d: 64, nLatents: 4096, k: 200, multiTopK: true })).toThrow(
      /k must be ≤ 128/,
    );
    // Only the TopK activation has a Multi-TopK form.
    expect(resolveConfig({ d: 64, nLatents: 256, activation: 'relu', multiTopK: true }).multiTopK).toBe(
      false,
    );
  });

  it('warms the sparsity coefficient up linearly over l1WarmupFrac of the steps', () => {
    const c = resolveConfig({
      d: 8,
      nLatents: 16,
      batchSize: 10,
      tokens: 1000,
      activation: 'relu',
      l1Coef: 2,
      l1WarmupFrac: 0.1,
    });
    expect(l1At(c, 1)).toBeCloseTo(0.2);
    expect(l1At(c, 5)).toBeCloseTo(1);
    expect(l1At(c, 10)).toBeCloseTo(2);
    expect(l1At(c, 90)).toBeCloseTo(2);
    expect(l1At({ ...c, l1WarmupFrac: 0 }, 1)).toBe(2);
  });

  it('rejects bad variant settings', () => {
    expect(() => resolveConfig({ d: 8, nLatents: 16, k: 4, activation: 'softmax' as never })).toThrow(
      /activation must be/,
    );
    expect(() => resolveConfig({ d: 8, nLatents: 16, k: 4, l1Coef: -1 })).toThrow(/l1Coef/);
    expect(() =>
      resolveConfig({ d: 8, nLatents: 64, k: 8, activation: 'batchtopk', batchTopKCap: 4 }),
    ).toThrow(/batchTopKCap/);
    expect(() => resolveConfig({ d: 8, nLatents: 16, k: 4, jumpBandwidth: 0 })).toThrow(/jumpBandwidth/);
  });
});

describe('Matryoshka widths', () => {
  it('default N/64, N/16, N/4, N; one level [N] for every other activation', () => {
    expect(resolveConfig({ d: 8, nLatents: 4096, activation: 'matryoshka' }).matryoshkaWidths).toEqual([
      64, 256, 1024, 4096,
    ]);
    // Small N: levels below one latent and repeats are dropped.
    expect(resolveConfig({ d: 8, nLatents: 32, k: 4, activation: 'matryoshka' }).matryoshkaWidths).toEqual([
      2, 8, 32,
    ]);
    expect(resolveConfig({ d: 8, nLatents: 64, k: 4, matryoshkaWidths: [8, 64] }).matryoshkaWidths).toEqual([
      64,
    ]);
  });
  it('refuses widths that do not nest up to N', () => {
    const bad = (w: number[], re: RegExp) =>
      expect(() =>
        resolveConfig({ d: 8, nLatents: 64, k: 4, activation: 'matryoshka', matryoshkaWidths: w }),
      ).toThrow(re);
    bad([8, 32], /must end at nLatents = 64/);
    bad([32, 8, 64], /strictly increasing/);
    bad([0, 64], /strictly increasing positive/);
    bad([1.5, 64], /strictly increasing positive integers/);
    bad([1, 2, 3, 4, 5, 6, 7, 8, 64], /1 to 8 widths/);
  });
});
