import { describe, expect, it } from 'vitest';
import { estimateTime, proposeBudget, WATCHABLE_SECONDS } from '../../../src/ui/estimate';

const swiftshader = {
  vendor: 'google',
  architecture: 'swiftshader',
  device: '',
  description: '',
  isFallbackAdapter: true,
  features: [],
  limits: {},
} as never;

describe('proposeBudget', () => {
  const cfg = { d: 64, nLatents: 4096, batchSize: 4096, tokens: 100_000_000 };

  it('offers whole batches that take about two minutes at the estimate’s own rate', () => {
    const time = estimateTime(cfg, null, swiftshader);
    const p = proposeBudget(cfg, time, swiftshader)!;
    expect(p).not.toBeNull();
    expect(p.tokens % cfg.batchSize).toBe(0);
    expect(p.tokens).toBeGreaterThan(0);
    expect(p.seconds).toBeLessThanOrEqual(WATCHABLE_SECONDS);
    // one more batch would pass the target (unless one step alone is longer)
    expect(p.seconds + time.stepSeconds).toBeGreaterThan(WATCHABLE_SECONDS);
    expect(p.reason).toMatch(/emulates the GPU/);
    expect(p.reason).toMatch(/assumed/);
  });

  it('uses the measured speed when a run measured one', () => {
    const measured = { tokensPerS: 1000, d: 64, nLatents: 4096 } as never;
    const time = estimateTime(cfg, measured, swiftshader);
    const p = proposeBudget(cfg, time, swiftshader)!;
    // 1000 tokens/s → 120 s ≈ 120k tokens, in whole batches of 4096
    expect(p.tokens).toBe(Math.floor(120_000 / 4096) * 4096);
    expect(p.reason).toMatch(/measured/);
  });

  it('offers nothing when the run is short already', () => {
    const short = { ...cfg, tokens: 8192 };
    expect(proposeBudget(short, estimateTime(short, null, swiftshader), swiftshader)).toBeNull();
  });

  it('keeps at least one batch when a step alone is longer than the target', () => {
    const big = { d: 768, nLatents: 131072, batchSize: 4096, tokens: 1e9 };
    const p = proposeBudget(big, estimateTime(big, null, swiftshader), swiftshader)!;
    expect(p.tokens).toBe(4096);
  });
});
