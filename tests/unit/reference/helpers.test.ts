/**
 * The scalar helpers the float64 reference takes from the engine (src/sae/config.ts: adamScalars,
 * isDense, l1At, l1Scale; lrAt and totalSteps, which its callers use for lr and λ), with expected
 * values worked out by hand, edges included; and Adam as refStep applies it, against PyTorch's
 * formula written out here (so the reference's update, which the GPU tests compare against, is
 * itself checked).
 */
import { describe, expect, it } from 'vitest';
import { cloneParams, newRefState, type Params } from '../../../src/reference/state';
import { refStep } from '../../../src/reference/step';
import {
  adamScalars,
  hasExtra,
  isDense,
  l1At,
  l1Scale,
  lrAt,
  resolveConfig,
  type SaeConfig,
  totalSteps,
} from '../../../src/sae/config';

/** 1000 tokens / 10 rows = 100 steps. */
const base = (over: Partial<SaeConfig> = {}) =>
  resolveConfig({ d: 8, nLatents: 16, k: 4, batchSize: 10, tokens: 1000, lr: 1e-3, ...over });

const close = (got: number, want: number) =>
  expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-15 * Math.max(1, Math.abs(want)));

describe('activation families', () => {
  it('isDense: only the TopK family runs sparse; hasExtra: Gated and JumpReLU', () => {
    expect(isDense('topk')).toBe(false);
    expect(isDense('batchtopk')).toBe(false);
    for (const a of ['relu', 'prolu', 'gated', 'jumprelu'] as const) expect(isDense(a)).toBe(true);
    for (const a of ['topk', 'batchtopk', 'relu', 'prolu'] as const) expect(hasExtra(a)).toBe(false);
    expect(hasExtra('gated')).toBe(true);
    expect(hasExtra('jumprelu')).toBe(true);
  });
});

describe('totalSteps', () => {
  it('is ceil(tokens / batchSize), at least 1', () => {
    expect(totalSteps(base())).toBe(100);
    expect(totalSteps(base({ tokens: 1001 }))).toBe(101); // a partial last batch is a step
    expect(totalSteps(base({ tokens: 5 }))).toBe(1);
  });
});

describe('adamScalars: stepSize = lr / (1 − β1^t), bc2 = 1 / (1 − β2^t)', () => {
  const c = base();
  it('step 1: 1 − 0.9 = 0.1 and 1 − 0.999 = 0.001', () => {
    const s = adamScalars(c, 1, 1e-3);
    close(s.stepSize, 1e-2);
    expect(Math.abs(s.bc2 - 1000)).toBeLessThan(1e-9); // 1 / (1 − 0.999) rounds in float64
  });
  it('steps 2 and 3: 1 − 0.81 = 0.19, 1 − 0.998001 = 0.001999; 1 − 0.729 = 0.271, 0.002997001', () => {
    const s2 = adamScalars(c, 2, 1e-3);
    expect(s2.stepSize).toBeCloseTo(1e-3 / 0.19, 15);
    expect(Math.abs(s2.bc2 * 0.001999 - 1)).toBeLessThan(1e-12);
    const s3 = adamScalars(c, 3, 2e-3);
    expect(s3.stepSize).toBeCloseTo(2e-3 / 0.271, 15);
    expect(Math.abs(s3.bc2 * 0.002997001 - 1)).toBeLessThan(1e-12);
  });
  it('late steps: the corrections vanish (0.9^10000 = 0, 0.999^10000 = 4.517e-5)', () => {
    const s = adamScalars(c, 10_000, 1e-3);
    close(s.stepSize, 1e-3);
    expect(s.bc2).toBeCloseTo(1 / (1 - 4.5173345977e-5), 12);
  });
  it('β1 = 0 has no first-moment correction; the step size scales with lr', () => {
    close(adamScalars(base({ beta1: 0 }), 1, 1e-3).stepSize, 1e-3);
    close(adamScalars(c, 1, 0).stepSize, 0);
  });
});

describe('lrAt: linear warm-up, then linear decay over the last lrDecaySteps', () => {
  it('no warm-up, no decay: constant, at any t', () => {
    const c = base();
    for (const t of [0, 1, 50, 100, 101]) close(lrAt(c, t), 1e-3);
  });
  it('warm-up of 10: t/10 of lr, from 0 at t = 0 to lr at t = 10, then constant', () => {
    const c = base({ lrWarmupSteps: 10 });
    close(lrAt(c, 0), 0);
    close(lrAt(c, 1), 1e-4);
    close(lrAt(c, 5), 5e-4);
    close(lrAt(c, 9), 9e-4);
    close(lrAt(c, 10), 1e-3);
    close(lrAt(c, 11), 1e-3);
    close(lrAt(c, 100), 1e-3);
  });
  it('decay of 20 over 100 steps: full through t = 81, (101 − t)/20 after, 0 past the end', () => {
    const c = base({ lrDecaySteps: 20 });
    close(lrAt(c, 80), 1e-3);
    close(lrAt(c, 81), 1e-3); // 20 steps left: 20/20
    close(lrAt(c, 82), 1e-3 * (19 / 20));
    close(lrAt(c, 91), 1e-3 * (10 / 20));
    close(lrAt(c, 100), 1e-3 / 20); // the last step
    close(lrAt(c, 101), 0);
    close(lrAt(c, 150), 0); // clamped, not negative
  });
  it('warm-up and decay overlapping (10 steps, both 10): the product', () => {
    const c = base({ tokens: 100, lrWarmupSteps: 10, lrDecaySteps: 10 });
    close(lrAt(c, 1), 1e-4 * (10 / 10));
    close(lrAt(c, 5), 5e-4 * (6 / 10));
    close(lrAt(c, 10), 1e-3 * (1 / 10));
  });
  it('decay longer than the run starts below lr; a one-step run (tokens < batch) decays at once', () => {
    close(lrAt(base({ lrDecaySteps: 200 }), 1), 1e-3 * (100 / 200));
    close(lrAt(base({ tokens: 5, lrDecaySteps: 5 }), 1), 1e-3 / 5);
    // tokens not a multiple of the batch: 101 steps, so t = 101 is the last step.
    close(lrAt(base({ tokens: 1001, lrDecaySteps: 20 }), 101), 1e-3 / 20);
  });
});

describe('l1At: λ warms up linearly over round(l1WarmupFrac · steps) steps', () => {
  const c = base({ activation: 'relu', l1Coef: 2, l1WarmupFrac: 0.05 }); // 5 warm-up steps
  it('0 at t = 0, t/5 of λ, λ from the end of the warm-up on', () => {
    close(l1At(c, 0), 0);
    close(l1At(c, 1), 0.4);
    close(l1At(c, 3), 1.2);
    close(l1At(c, 5), 2);
    close(l1At(c, 6), 2);
    close(l1At(c, 100), 2);
  });
  it('rounding of the warm-up length: 0.4 steps → none, 0.5 → 1, 5.05 → 5; all steps', () => {
    close(l1At({ ...c, l1WarmupFrac: 0.004 }, 1), 2);
    close(l1At({ ...c, l1WarmupFrac: 0.004 }, 0), 2); // no warm-up: λ even at t = 0
    close(l1At({ ...c, l1WarmupFrac: 0.005 }, 0), 0);
    close(l1At({ ...c, l1WarmupFrac: 0.005 }, 1), 2);
    close(l1At(base({ activation: 'relu', l1Coef: 2, l1WarmupFrac: 0.05, tokens: 1010 }), 1), 0.4);
    close(l1At({ ...c, l1WarmupFrac: 1 }, 50), 1);
    close(l1At({ ...c, l1WarmupFrac: 1 }, 100), 2);
  });
  it('l1Coef 0 stays 0', () => {
    close(l1At({ ...c, l1Coef: 0 }, 3), 0);
  });
});

describe('l1Scale: λ per token on the normalized-MSE scale', () => {
  it('L1 family: λ / (B·√c) with c = 1 / (B·lossScale)', () => {
    // B = 16, c = 4: lossScale = 1/64, λ / (16·2) = λ / 32.
    for (const activation of ['relu', 'prolu', 'gated'] as const) {
      const c = resolveConfig({ d: 8, nLatents: 16, batchSize: 16, activation });
      close(l1Scale(c, 1 / 64, 0.7), 0.7 / 32);
      close(l1Scale(c, 1 / 16, 0.7), 0.7 / 16); // c = 1
      close(l1Scale(c, 1 / 64, 0), 0);
    }
  });
  it('JumpReLU (L0, unitless): λ / B, whatever the loss scale', () => {
    const c = resolveConfig({ d: 8, nLatents: 16, batchSize: 16, activation: 'jumprelu' });
    close(l1Scale(c, 1 / 64, 0.7), 0.7 / 16);
    close(l1Scale(c, 123, 0.7), 0.7 / 16);
  });
});

describe("refStep's update is PyTorch's Adam (bias-corrected, eps outside the root), after clipping, then EMA", () => {
  const d = 4;
  const N = 8;
  const B = 6;
  const r = (n: number, s: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(1.7 * i + s) * 0.7);
  const theta: Params = { W_enc: r(N * d, 1), b_enc: r(N, 2), W_dec: r(N * d, 3), b_pre: r(d, 4) };
  for (const clipGrad of [false, true]) {
    it(`two steps, ${clipGrad ? 'clipped to 0.05' : 'no clipping'}, EMA 0.9`, () => {
      // No projection, no renormalization: θ₁ − θ₀ is Adam's step alone.
      const cfg = resolveConfig({
        d,
        nLatents: N,
        k: 2,
        kAux: 2,
        batchSize: B,
        lr: 3e-3,
        unitNormDecoder: false,
        gradProjection: false,
        clipGrad,
        clipNorm: 0.05,
        ema: true,
        emaDecay: 0.9,
      });
      const st = newRefState(cloneParams(theta), N, true);
      const m = { W_enc: [], b_enc: [], W_dec: [], b_pre: [] } as unknown as Record<keyof Params, number[]>;
      const v = { W_enc: [], b_enc: [], W_dec: [], b_pre: [] } as unknown as Record<keyof Params, number[]>;
      const ema = cloneParams(theta);
      const names = ['W_enc', 'b_enc', 'W_dec', 'b_pre'] as const;
      for (let t = 1; t <= 2; t++) {
        const before = cloneParams(st.params);
        const x = r(B * d, 10 + t);
        const out = refStep(st, x, new Float64Array(B).fill(1), cfg, 1 / B, cfg.lr);
        let sq = 0;
        for (const n of names) for (const g of out.grads[n]) sq += g * g;
        const norm = Math.sqrt(sq);
        expect(out.gradNorm).toBeCloseTo(norm, 14);
        const clip = clipGrad ? Math.min(1, 0.05 / norm) : 1;
        if (clipGrad) expect(clip).toBeLessThan(1); // the case clips
        let moved = 0;
        for (const n of names) {
          const g = out.grads[n];
          for (let o = 0; o < g.length; o++) {
            const gc = g[o] * clip;
            m[n][o] = 0.9 * (m[n][o] ?? 0) + 0.1 * gc;
            v[n][o] = 0.999 * (v[n][o] ?? 0) + 0.001 * gc * gc;
            const mHat = m[n][o] / (1 - 0.9 ** t);
            const vHat = v[n][o] / (1 - 0.999 ** t);
            const want = -(cfg.lr * mHat) / (Math.sqrt(vHat) + cfg.eps);
            const got = st.params[n][o] - before[n][o];
            expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-12 * Math.abs(want) + 1e-17);
            if (want !== 0) moved++;
            ema[n][o] = 0.9 * ema[n][o] + 0.1 * st.params[n][o];
            expect(Math.abs(st.ema![n][o] - ema[n][o])).toBeLessThanOrEqual(1e-15);
          }
        }
        expect(moved).toBeGreaterThan(20);
      }
    });
  }
});
