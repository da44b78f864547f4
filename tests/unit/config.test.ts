import { describe, expect, it } from 'vitest';
import { adamScalars, lrAt, resolveConfig } from '../../src/sae/config';

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
