/**
 * The runner versions of downstream loss and ablation sparsity (src/eval/lm-runner.ts, used by the
 * worker on the WGSL forward) against the synchronous CPU versions of src/eval/downstream.ts, and
 * the ablation-sparsity measure on constructed changes whose answer is known.
 */
import { describe, expect, it } from 'vitest';
import { encodeSparse } from '../../../src/eval/codes';
import {
  ablationEffectSparsity,
  ablationSparsity,
  downstreamLoss,
  type SaeOnRaw,
  saeReconstructor,
} from '../../../src/eval/downstream';
import {
  ablationSparsityOn,
  cpuRunner,
  downstreamLossOn,
  encodeRows,
  log10Histogram,
  quantiles,
  rowsReconstructor,
} from '../../../src/eval/lm-runner';
import { reconstructRaw } from '../../../src/io/forward';
import { type FloatArray, Llama } from '../../../src/lm/forward';
import { encode } from '../../../src/lm/tokenizer';
import { stories, text } from '../lm/helpers';

/** A random TopK SAE (seeded), decoder rows unit norm, encoder = decoder (tied). */
function randomSae(N: number, d: number, k: number, inputScale: number, seed = 1): SaeOnRaw {
  let s = seed >>> 0;
  const u = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
  const W = new Float32Array(N * d);
  for (let i = 0; i < N; i++) {
    let n = 0;
    for (let c = 0; c < d; c++) {
      W[i * d + c] = u();
      n += W[i * d + c] ** 2;
    }
    for (let c = 0; c < d; c++) W[i * d + c] /= Math.sqrt(n);
  }
  return {
    params: { W_enc: W.slice(), W_dec: W, b_enc: new Float32Array(N), b_pre: new Float32Array(d) },
    k,
    inputScale,
  };
}

describe('ablation sparsity: the (L1/L2)² measure on known cases', () => {
  const V = 64;
  const T = 4;
  it('a change of one logit at one position counts 1 (the sparsest): fraction 1/(T·V)', () => {
    const delta = new Float64Array(T * V);
    delta[2 * V + 17] = -3.5;
    const s = ablationEffectSparsity(delta, T, V);
    expect(s.count).toBeCloseTo(1, 12);
    expect(s.fraction).toBeCloseTo(1 / (T * V), 12);
  });
  it('m equal-magnitude changes count m', () => {
    const delta = new Float64Array(T * V);
    for (let j = 0; j < 5; j++) delta[j * 7] = j % 2 ? 2 : -2; // 5 logits of row 0, median 0
    expect(ablationEffectSparsity(delta, T, V).count).toBeCloseTo(5, 12);
  });
  it('every logit moving by the same magnitude (signs balanced per row) is maximal: T·V, fraction 1', () => {
    const delta = Float64Array.from({ length: T * V }, (_, e) => (e % 2 ? 0.7 : -0.7));
    const s = ablationEffectSparsity(delta, T, V);
    expect(s.count).toBeCloseTo(T * V, 9);
    expect(s.fraction).toBeCloseTo(1, 12);
  });
  it('a constant shift of a row (no change in the softmax) counts nothing', () => {
    const delta = new Float64Array(T * V).fill(4.2);
    expect(ablationEffectSparsity(delta, T, V)).toEqual({ count: 0, fraction: 0 });
    // a shift on top of one moved logit still counts 1
    const d2 = new Float64Array(T * V).fill(1);
    d2[3] = 6;
    expect(ablationEffectSparsity(d2, T, V).count).toBeCloseTo(1, 12);
  });
  it('dense random changes sit in between, well above sparse ones', () => {
    let s = 7;
    const r = () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 4294967296 - 0.5;
    };
    const delta = Float64Array.from({ length: T * V }, r);
    const f = ablationEffectSparsity(delta, T, V).fraction;
    expect(f).toBeGreaterThan(0.5); // uniform noise: (E|x|)²/E x² = 3/4
    expect(f).toBeLessThan(1);
  });
  it('quantiles and the log10 histogram', () => {
    expect(quantiles([3, 1, 2, 4], [0, 0.5, 1])).toEqual([1, 2.5, 4]);
    expect(quantiles([], [0.5])[0]).toBeNaN();
    const h = log10Histogram([0.001, 0.01, 0.5, 1, 0], -4, 0, 4);
    expect(h.edges).toEqual([-4, -3, -2, -1, 0]);
    expect(h.counts).toEqual([0, 1, 1, 2]); // 0 is skipped; 1 (log 0) falls in the last bin
  });
});

describe('runner versions on the CPU model equal the synchronous ones (stories260K)', () => {
  const { ckpt, tok } = stories();
  const model = new Llama(ckpt);
  const ids = encode(tok, text().slice(0, 3000));
  const windows = [ids.subarray(0, 40), Int32Array.from([1, ...ids.subarray(40, 72)])];
  const d = model.config.dim;
  const LAYER = 2;
  const sae = randomSae(96, d, 6, 1.6);

  it('downstream loss', async () => {
    const want = downstreamLoss(model, windows, LAYER, saeReconstructor(sae));
    const got = await downstreamLossOn(cpuRunner(new Llama(ckpt)), windows, LAYER, saeReconstructor(sae));
    for (const key of ['cleanLoss', 'splicedLoss', 'zeroLoss', 'kl', 'fractionRecovered'] as const)
      expect(got[key]).toBeCloseTo(want[key], 9);
    expect(got.tokens).toBe(want.tokens);
    expect(got.splicedLoss).toBeGreaterThan(got.cleanLoss);
  });

  it('ablation sparsity: same latents, positions and measures', async () => {
    const resid = model.run(windows[0], { resid: [LAYER], logits: false }).resid.get(LAYER) as FloatArray;
    const xs = Float32Array.from(resid.subarray(d, 4 * d), (v) => v * 1.6);
    const codes = encodeSparse(sae.params, xs, 3, d, sae.k);
    const latents = [...new Set(Array.from(codes.idx))].slice(0, 4);
    const opts = { latents, positionsPerLatent: 2, futureTokens: 8 };
    const want = ablationSparsity(model, windows, LAYER, sae, opts);
    const got = await ablationSparsityOn(cpuRunner(new Llama(ckpt)), windows, LAYER, { sae }, opts);
    expect(Array.from(got.latents)).toEqual(Array.from(want.latents).sort((a, b) => a - b));
    const order = Array.from(got.latents, (i) => Array.from(want.latents).indexOf(i));
    order.forEach((w, j) => {
      expect(got.positions[j]).toBe(want.positions[w]);
      expect(got.effectiveCount[j]).toBeCloseTo(want.effectiveCount[w], 6);
      expect(got.effectiveFraction[j]).toBeGreaterThan(0);
      expect(got.effectiveFraction[j]).toBeLessThanOrEqual(1);
    });
  });

  it('ablation sparsity samples among active latents only', async () => {
    const r = await ablationSparsityOn(
      cpuRunner(model),
      windows,
      LAYER,
      { sae },
      { sample: 5, seed: 3, positionsPerLatent: 1 },
    );
    expect(r.latents.length).toBe(5);
    expect(r.activeLatents).toBeGreaterThanOrEqual(5);
    expect(Array.from(r.positions)).toEqual([1, 1, 1, 1, 1]);
    // forwards: one residual pass per window, one baseline per window with ablations, one per ablation
    expect(r.forwards).toBeGreaterThanOrEqual(2 + 1 + 5);
  });

  it("the paper's per-row normalization wraps saeEncodeRaw and maps back to raw units", () => {
    const s = { sae: randomSae(32, d, 4, 1), perRow: true };
    const x = Float32Array.from({ length: 3 * d }, (_, i) => Math.sin(i) * 3 + 1);
    const { xhat, rawScale } = encodeRows(s, x, 3, d);
    // the float64 semantics of the 'paper' normalization (src/io/forward.ts)
    const want = reconstructRaw(s.sae.params, 4, { kind: 'paper' }, x);
    for (let i = 0; i < want.length; i++) expect(xhat[i]).toBeCloseTo(want[i], 4);
    for (let r = 0; r < 3; r++) expect(rawScale[r]).toBeGreaterThan(1);
    expect(rowsReconstructor(s)(x, 3, d)).toEqual(xhat);
  });
});
