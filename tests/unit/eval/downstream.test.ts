import { describe, expect, it } from 'vitest';
import { encodeSparse } from '../../../src/eval/codes';
import {
  ablationEffectSparsity,
  ablationSparsity,
  downstreamLoss,
  type SaeOnRaw,
  saeReconstructor,
} from '../../../src/eval/downstream';
import { type FloatArray, Llama } from '../../../src/lm/forward';
import { nextTokenNll } from '../../../src/lm/logits';
import { encode } from '../../../src/lm/tokenizer';
import { stories, text } from '../lm/helpers';

const T = 64;
const LAYER = 2;

/**
 * An SAE that reconstructs exactly: N = 2d latents ±e_c (encoder = decoder), k = d. For each
 * coordinate exactly one of ±e_c has pre = |x_c| ≥ 0, so the top d are those and x̂ = x.
 */
function identitySae(d: number, inputScale: number): SaeOnRaw {
  const W = new Float32Array(2 * d * d);
  for (let c = 0; c < d; c++) {
    W[2 * c * d + c] = 1;
    W[(2 * c + 1) * d + c] = -1;
  }
  return {
    params: { W_enc: W, W_dec: W.slice(), b_enc: new Float32Array(2 * d), b_pre: new Float32Array(d) },
    k: d,
    inputScale,
  };
}

describe('downstream loss on stories260K', () => {
  const { ckpt, tok } = stories();
  const model = new Llama(ckpt);
  const ids = encode(tok, text().slice(0, 2000));
  // two BOS-led windows of 64 tokens
  const windows = [ids.subarray(0, T), Int32Array.from([1, ...ids.subarray(T, 2 * T - 1)])];
  const d = model.config.dim;

  it('splicing the exact residual: ΔL = 0, fraction recovered 1, KL 0', () => {
    const r = downstreamLoss(model, windows, LAYER, (x) => x.slice());
    expect(r.tokens).toBe(2 * (T - 1));
    expect(Math.abs(r.deltaLoss)).toBeLessThan(1e-6);
    expect(r.fractionRecovered).toBeCloseTo(1, 6);
    expect(r.kl).toBeLessThan(1e-9);
    expect(r.zeroLoss).toBeGreaterThan(r.cleanLoss + 0.1);
    // clean loss equals a direct computation
    let sum = 0;
    for (const w of windows) sum += nextTokenNll(model.run(w).logits as FloatArray, w, 512).sum;
    expect(r.cleanLoss).toBeCloseTo(sum / r.tokens, 9);
  });

  it('a zero reconstruction recovers nothing', () => {
    const r = downstreamLoss(model, windows, LAYER, (_x, n, dd) => new Float32Array(n * dd));
    expect(r.fractionRecovered).toBeCloseTo(0, 9);
    expect(r.deltaLoss).toBeCloseTo(r.zeroLoss - r.cleanLoss, 9);
    expect(r.kl).toBeGreaterThan(0.01);
  });

  it('an exact SAE (with an input scale) spliced through encodeSparse recovers everything', () => {
    const sae = identitySae(d, 0.5);
    const r = downstreamLoss(model, windows.slice(0, 1), LAYER, saeReconstructor(sae));
    expect(r.fractionRecovered).toBeCloseTo(1, 6);
  });

  it('ablation sparsity: effective number of affected (token, logit) pairs', () => {
    // hand case: a constant row shift is removed by the median; [0,0,2,−2] has (4)²/8 = 2
    const delta = Float64Array.from([5, 5, 5, 5, 0, 0, 2, -2]);
    const s = ablationEffectSparsity(delta, 2, 4);
    expect(s.count).toBeCloseTo(2, 12);
    expect(s.fraction).toBeCloseTo(2 / 8, 12);
    expect(ablationEffectSparsity(new Float64Array(8), 2, 4).count).toBe(0);

    const sae = identitySae(d, 1);
    const w = windows[0].subarray(0, 24);
    // latents active at the first non-BOS row of the window
    const resid = model.run(w, { resid: [LAYER], logits: false }).resid.get(LAYER) as FloatArray;
    const codes = encodeSparse(sae.params, Float32Array.from(resid.subarray(d, 2 * d)), 1, d, d);
    const latents = [codes.idx[0], codes.idx[1]];
    const r = ablationSparsity(model, [w], LAYER, sae, { latents, positionsPerLatent: 1 });
    expect(Array.from(r.latents)).toEqual(latents);
    expect(Array.from(r.positions)).toEqual([1, 1]);
    for (let j = 0; j < 2; j++) {
      expect(r.effectiveCount[j]).toBeGreaterThanOrEqual(1);
      expect(r.effectiveCount[j]).toBeLessThanOrEqual(23 * 512);
      expect(r.effectiveFraction[j]).toBeGreaterThan(0);
      expect(r.effectiveFraction[j]).toBeLessThanOrEqual(1);
    }
  });
});
