/**
 * Initialization (docs/DESIGN.md §1 / paper A.1, openai/sparse_autoencoder train.py):
 * random unit decoder rows; tied encoder W_enc = W_dec (same latent-major rows); b_enc = 0;
 * b_pre = geometric median (Weiszfeld) of a data sample; then the released code's rescaling of the
 * encoder so that reconstructions of random unit inputs (around b_pre) have unit norm on average.
 */
import { Rng } from '../data/rng';
import type { ActivationSource } from '../data/source';
import { Batcher } from '../data/stream';
import { encodeRef } from '../reference/encode';
import { decodeRef, topkRef } from '../reference/step';
import { defaultExtra, hasExtra, isDense, type ResolvedConfig } from './config';
import { centeredMeanSqNorm, type Normalizer, normalizeBatch } from './normalize';
import type { ParamsF32 } from './step-buffers';

/**
 * Geometric median of rows [n, d] by Weiszfeld's iteration (float64), starting from the mean.
 * Stops when the point moves less than tol·(1 + ‖point‖).
 */
function geometricMedian(x: ArrayLike<number>, n: number, d: number, iters = 100, tol = 1e-7): Float64Array {
  const y = new Float64Array(d);
  for (let r = 0; r < n; r++) for (let c = 0; c < d; c++) y[c] += x[r * d + c] / n;
  const next = new Float64Array(d);
  for (let it = 0; it < iters; it++) {
    next.fill(0);
    let wsum = 0;
    for (let r = 0; r < n; r++) {
      let dist = 0;
      for (let c = 0; c < d; c++) dist += (x[r * d + c] - y[c]) ** 2;
      // A point on top of the estimate gets a large but finite weight (the usual Weiszfeld guard).
      const w = 1 / Math.max(Math.sqrt(dist), 1e-12);
      wsum += w;
      for (let c = 0; c < d; c++) next[c] += w * x[r * d + c];
    }
    let move = 0;
    let norm = 0;
    for (let c = 0; c < d; c++) {
      next[c] /= wsum;
      move += (next[c] - y[c]) ** 2;
      norm += next[c] ** 2;
      y[c] = next[c];
    }
    if (Math.sqrt(move) < tol * (1 + Math.sqrt(norm))) break;
  }
  return y;
}

/**
 * Initial parameters. `sample` is a batch of normalized training rows [n, d] (for b_pre).
 */
export function initParams(cfg: ResolvedConfig, sample: Float32Array, rng: Rng): ParamsF32 {
  const { d, nLatents: N, k } = cfg;
  const n = sample.length / d;
  const W_dec = new Float32Array(N * d);
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let c = 0; c < d; c++) {
      const v = rng.normal();
      W_dec[i * d + c] = v;
      s += v * v;
    }
    const inv = 1 / Math.sqrt(s);
    for (let c = 0; c < d; c++) W_dec[i * d + c] *= inv;
  }
  let W_enc: Float32Array;
  if (cfg.tiedInit) W_enc = W_dec.slice();
  else {
    // Untied ablation: an independent random encoder (PyTorch nn.Linear's default, U(±1/√d)).
    W_enc = new Float32Array(N * d);
    const bound = 1 / Math.sqrt(d);
    for (let o = 0; o < N * d; o++) W_enc[o] = (2 * rng.nextFloat() - 1) * bound;
  }
  const b_pre = new Float32Array(d);
  if (cfg.bPreInit === 'geomedian') b_pre.set(geometricMedian(sample, n, d));
  else if (cfg.bPreInit === 'mean') {
    for (let r = 0; r < n; r++) for (let c = 0; c < d; c++) b_pre[c] += sample[r * d + c] / n;
  }
  const b_enc = new Float32Array(N);

  // Encoder rescaling of the released code: probe with random unit vectors around b_pre.
  const probes = Math.min(64, Math.max(8, Math.floor(2e8 / (N * d + 1))));
  const xp = new Float64Array(probes * d);
  for (let r = 0; r < probes; r++) {
    let s = 0;
    for (let c = 0; c < d; c++) {
      const v = rng.normal();
      xp[r * d + c] = v;
      s += v * v;
    }
    for (let c = 0; c < d; c++) xp[r * d + c] = xp[r * d + c] / Math.sqrt(s) + b_pre[c];
  }
  const pre = encodeRef(xp, b_pre, W_enc, b_enc, probes, d, N);
  // The threshold family starts out as a ReLU over every latent (θ ≈ 0, r_mag = b_mag = 0).
  const kk = isDense(cfg.activation) ? N : k;
  const top = topkRef(pre, probes, N, kk);
  const recon = decodeRef(top.idx, top.val, W_dec, null, probes, d, kk);
  let mean = 0;
  for (let r = 0; r < probes; r++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += recon[r * d + c] ** 2;
    mean += Math.sqrt(s) / probes;
  }
  if (mean > 0 && Number.isFinite(mean)) for (let o = 0; o < W_enc.length; o++) W_enc[o] /= mean;
  const params: ParamsF32 = { W_enc, b_enc, W_dec, b_pre };
  if (hasExtra(cfg.activation)) params.extra = defaultExtra(cfg);
  return params;
}

/**
 * A fresh run's start from a sample of up to 4096 normalized training rows (its own seeded stream, so
 * training batches are unaffected): the initial parameters (initParams) and the loss scale
 * 1/(B·c), c the sample's centered mean squared norm (docs/DESIGN.md §1 Inputs and normalization).
 */
export async function initFromData(
  cfg: ResolvedConfig,
  source: ActivationSource,
  norm: Normalizer,
): Promise<{ params: ParamsF32; lossScale: number }> {
  const { d } = cfg;
  const sampler = new Batcher(source, {
    seed: cfg.seed + 0x5eed,
    heldOutFraction: cfg.evalFrac,
    nonFinite: 'skip',
    shuffleRows: 16384,
  });
  const n = Math.min(4096, sampler.trainRows);
  const raw = await sampler.nextBatch(n);
  const sample = new Float32Array(n * d);
  normalizeBatch(norm, raw, d, sample, new Float32Array(n));
  const c = centeredMeanSqNorm(sample, d);
  const lossScale = 1 / (cfg.batchSize * (c > 0 ? c : 1));
  return { params: initParams(cfg, sample, new Rng(cfg.seed)), lossScale };
}
