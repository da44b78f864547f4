/**
 * Downstream evaluation of an SAE spliced into a llama2.c model (src/lm/forward.ts).
 *
 * Downstream loss (Gao et al. 2024 §4.1): the next-token cross-entropy of the model when the
 * residual stream at one index is replaced by the SAE's reconstruction, compared with the clean
 * model and with the residual zero-ablated there:
 *     ΔL = L_sae − L_clean,  fraction recovered = (L_zero − L_sae) / (L_zero − L_clean),
 * plus KL(clean ‖ spliced) of the next-token distributions.
 *
 * "Layer" means the residual index used by src/lm/extract for site 'resid' (0 = embeddings,
 * l + 1 = after block l), i.e. exactly where the SAE's training rows were read.
 *
 * BOS: by default the position-0 row is left clean in every run (spliced and zero-ablated alike).
 * extract drops BOS rows from SAE training data (their activation is a fixed, very large-norm
 * outlier), so the SAE was never asked to reconstruct it; replacing it would measure an
 * out-of-distribution input rather than the SAE.
 */
import type { FloatArray, Llama } from '../lm/forward.ts';
import { meanKl, nextTokenNll } from '../lm/logits.ts';
import type { Activation } from '../sae/config.ts';
import type { ParamsF32 } from '../sae/step-buffers.ts';
import { encodeSparse, paramShape, reconstruct, type SparseCodes } from './codes.ts';

/** Maps raw residual rows x [T, d] to their reconstruction [T, d] (raw units). */
export type Reconstructor = (x: Float32Array, T: number, d: number) => Float32Array;

/**
 * An SAE applied to raw activations: the SAE sees x·inputScale (the dataset normalization
 * stored with the model, DESIGN §1) and its reconstruction is mapped back by 1/inputScale.
 */
export interface SaeOnRaw {
  params: ParamsF32;
  k: number;
  /** The SAE's activation (default TopK); see src/eval/codes.ts encodeSparse. */
  activation?: Activation;
  /** Default 1. */
  inputScale?: number;
  /** BatchTopK: the learned inference threshold θ (see encodeSparse). */
  inferenceThreshold?: number;
}

/** Codes of raw rows (in the SAE's normalized space) and the raw-unit reconstruction. */
export function saeEncodeRaw(
  sae: SaeOnRaw,
  x: Float32Array,
  T: number,
): { codes: SparseCodes; xhat: Float32Array } {
  const { d } = paramShape(sae.params);
  const s = sae.inputScale ?? 1;
  const xs = s === 1 ? x : Float32Array.from(x.subarray(0, T * d), (v) => v * s);
  const codes = encodeSparse(sae.params, xs, T, d, sae.k, sae.activation, sae.inferenceThreshold);
  const xhat = reconstruct(sae.params, codes, d);
  if (s !== 1) for (let i = 0; i < xhat.length; i++) xhat[i] /= s;
  return { codes, xhat };
}

/** The Reconstructor of an SAE. */
export function saeReconstructor(sae: SaeOnRaw): Reconstructor {
  return (x, T) => saeEncodeRaw(sae, x, T).xhat;
}

export interface DownstreamOptions {
  /** Leave row 0 (BOS) of each window untouched. Default true. */
  keepBos?: boolean;
}

export interface DownstreamResult {
  /** Predicted tokens pooled over windows. */
  tokens: number;
  /** Mean next-token NLL (nats) of the clean, spliced and zero-ablated model. */
  cleanLoss: number;
  splicedLoss: number;
  zeroLoss: number;
  /** splicedLoss − cleanLoss. */
  deltaLoss: number;
  /** (zero − spliced) / (zero − clean): 1 = as good as clean, 0 = as bad as ablating the residual. */
  fractionRecovered: number;
  /** Mean over all rows of KL(softmax clean ‖ softmax spliced) (nats). */
  kl: number;
}

/** Residual hook that overwrites rows [from, T) with f(rows). */
function replaceRows(d: number, keepBos: boolean, f: (rows: Float32Array, n: number) => ArrayLike<number>) {
  return (x: FloatArray, T: number, startPos: number) => {
    const from = keepBos && startPos === 0 ? 1 : 0;
    const n = T - from;
    if (n <= 0) return;
    const rows = Float32Array.from(x.subarray(from * d, T * d));
    const out = f(rows, n);
    for (let i = 0; i < n * d; i++) x[from * d + i] = out[i];
  };
}

/**
 * Downstream loss of a reconstruction spliced at residual index `layer`.
 * @param windows token windows (each usually starting with BOS), each run from position 0
 */
export function downstreamLoss(
  model: Llama,
  windows: readonly ArrayLike<number>[],
  layer: number,
  recon: Reconstructor,
  opts: DownstreamOptions = {},
): DownstreamResult {
  const { dim: d, vocabSize: V } = model.config;
  const keepBos = opts.keepBos ?? true;
  const splice = replaceRows(d, keepBos, (rows, n) => recon(rows, n, d));
  const zero = replaceRows(d, keepBos, (_rows, n) => new Float32Array(n * d));
  const tally = lossTally(V);
  for (const tokens of windows) {
    const lc = model.run(tokens).logits as FloatArray;
    const ls = model.run(tokens, { interventions: [{ index: layer, fn: splice }] }).logits as FloatArray;
    const lz = model.run(tokens, { interventions: [{ index: layer, fn: zero }] }).logits as FloatArray;
    tally.add(tokens, lc, ls, lz);
  }
  return tally.result();
}

/**
 * Running sums of {@link downstreamLoss}: per window the clean (lc), spliced (ls) and zero-ablated
 * (lz) logits [T, V]; the result averages next-token losses over tokens and KL(clean ‖ spliced) over
 * positions.
 */
export function lossTally(V: number) {
  let count = 0;
  let clean = 0;
  let spliced = 0;
  let zeroed = 0;
  let klSum = 0;
  let klRows = 0;
  return {
    add(tokens: ArrayLike<number>, lc: FloatArray, ls: FloatArray, lz: FloatArray) {
      const T = tokens.length;
      const nc = nextTokenNll(lc, tokens, V);
      count += nc.count;
      clean += nc.sum;
      spliced += nextTokenNll(ls, tokens, V).sum;
      zeroed += nextTokenNll(lz, tokens, V).sum;
      klSum += meanKl(lc, ls, T, V) * T;
      klRows += T;
    },
    result(): DownstreamResult {
      const cleanLoss = clean / count;
      const splicedLoss = spliced / count;
      const zeroLoss = zeroed / count;
      return {
        tokens: count,
        cleanLoss,
        splicedLoss,
        zeroLoss,
        deltaLoss: splicedLoss - cleanLoss,
        fractionRecovered: (zeroLoss - splicedLoss) / (zeroLoss - cleanLoss),
        kl: klSum / klRows,
      };
    },
  };
}

/**
 * Sparsity of one ablation effect, as in §4.5: Δ [T', V] holds the logit changes at the ablated
 * position and every later position of the window (T' rows). Per row the median of Δ over the
 * vocabulary is subtracted first, because adding a constant to all logits of a row leaves the
 * softmax unchanged and should not count as an effect. The flattened vector's (‖Δ‖₁/‖Δ‖₂)² is
 * returned: it equals m when Δ has m equal-magnitude nonzeros and 1 when a single logit moves,
 * i.e. an "effective number of affected (token, logit) pairs", between 1 and T'·V. Δ is
 * modified in place.
 * @returns { count: (‖Δ‖₁/‖Δ‖₂)², fraction: count / (T'·V) } (both 0 when Δ = 0)
 */
export function ablationEffectSparsity(
  delta: Float64Array,
  rows: number,
  V: number,
): { count: number; fraction: number } {
  const tmp = new Float64Array(V);
  let l1 = 0;
  let l2 = 0;
  for (let t = 0; t < rows; t++) {
    const o = t * V;
    tmp.set(delta.subarray(o, o + V));
    tmp.sort();
    const med = V % 2 ? tmp[(V - 1) / 2] : 0.5 * (tmp[V / 2 - 1] + tmp[V / 2]);
    for (let v = 0; v < V; v++) {
      const x = delta[o + v] - med;
      delta[o + v] = x;
      l1 += Math.abs(x);
      l2 += x * x;
    }
  }
  if (!(l2 > 0)) return { count: 0, fraction: 0 };
  const count = (l1 * l1) / l2;
  return { count, fraction: count / (rows * V) };
}

export interface AblationOptions {
  /** Latents to ablate (e.g. a random sample of live latents). */
  latents: readonly number[];
  /** Positions (where the latent is active) ablated per latent, taken in window order. Default 2. */
  positionsPerLatent?: number;
  /** Leave BOS rows clean (and never ablate there). Default true. */
  keepBos?: boolean;
  /**
   * T: logit changes are concatenated over the ablated position and the next T − 1 (cut at the
   * window's end), the paper's "set of T future tokens". Default 16, so that the normalized
   * fraction does not depend on where in a long window the latent fired.
   */
  futureTokens?: number;
}

export interface AblationResult {
  /** Latents that were active somewhere in the windows (others have no effect to measure). */
  latents: Uint32Array;
  /** [latents] mean over ablated positions of (‖Δ‖₁/‖Δ‖₂)². */
  effectiveCount: Float64Array;
  /** [latents] mean of the same divided by T'·V (fraction of (token, logit) pairs affected). */
  effectiveFraction: Float64Array;
  /** [latents] positions ablated. */
  positions: Uint32Array;
  /** Means over latents. */
  meanEffectiveCount: number;
  meanEffectiveFraction: number;
}

/**
 * Ablation sparsity (§4.5). With the SAE spliced at `layer` (baseline logits L_s), for each
 * sampled latent i and each chosen position p where it is active with value v, rerun with the
 * reconstruction at row p replaced by x̂_p − v·W_dec[i] (raw units: ÷ inputScale), and measure
 * Δ = logits − L_s over rows p … min(p + futureTokens, T) − 1 (earlier rows cannot change: attention
 * is causal) with ablationEffectSparsity. Cost: one forward pass per (latent, position).
 */
export function ablationSparsity(
  model: Llama,
  windows: readonly ArrayLike<number>[],
  layer: number,
  sae: SaeOnRaw,
  opts: AblationOptions,
): AblationResult {
  const { dim: d, vocabSize: V } = model.config;
  const { N } = paramShape(sae.params);
  if (d !== sae.params.b_pre.length) {
    throw new Error(`SAE width ${sae.params.b_pre.length} ≠ model dim ${d}`);
  }
  const keepBos = opts.keepBos ?? true;
  const perLatent = opts.positionsPerLatent ?? 2;
  const future = opts.futureTokens ?? 16;
  const scale = sae.inputScale ?? 1;
  const sums = effectSums();
  const nPos = new Map<number, number>();
  for (const i of opts.latents) {
    if (!(i >= 0 && i < N)) throw new Error(`latent ${i} outside 0..${N - 1}`);
    nPos.set(i, 0);
  }
  for (const tokens of windows) {
    const T = tokens.length;
    const from = keepBos ? 1 : 0;
    const resid = model.run(tokens, { resid: [layer], logits: false }).resid.get(layer) as FloatArray;
    const rows = Float32Array.from(resid.subarray(from * d, T * d));
    const n = T - from;
    if (n <= 0) continue;
    const { codes, xhat } = saeEncodeRaw(sae, rows, n);
    const spliceWith = (patch: ((out: Float32Array) => void) | null) => (x: FloatArray, TT: number) => {
      const out = patch ? xhat.slice() : xhat;
      if (patch) patch(out);
      for (let j = 0; j < (TT - from) * d; j++) x[from * d + j] = out[j];
    };
    const base = model.run(tokens, { interventions: [{ index: layer, fn: spliceWith(null) }] })
      .logits as FloatArray;
    for (const i of opts.latents) {
      for (let r = 0; r < n && (nPos.get(i) as number) < perLatent; r++) {
        let v = 0;
        for (let j = 0; j < codes.k; j++) {
          const e = r * codes.k + j;
          if (codes.idx[e] === i) v = codes.val[e];
        }
        if (!(v > 0)) continue;
        const c = v / scale;
        const wo = i * d;
        const patch = (out: Float32Array) => {
          for (let q = 0; q < d; q++) out[r * d + q] -= c * sae.params.W_dec[wo + q];
        };
        const abl = model.run(tokens, { interventions: [{ index: layer, fn: spliceWith(patch) }] })
          .logits as FloatArray;
        const p = r + from; // window position of the ablated row
        sums.add(i, ablationEffect(abl, base, p, Math.min(future, T - p), V));
        nPos.set(i, (nPos.get(i) as number) + 1);
      }
    }
  }
  return sums.means(opts.latents, nPos);
}

/**
 * {@link ablationEffectSparsity} of Δ = ablated − baseline logits [T, V] over `rows` positions from
 * window position p.
 */
export function ablationEffect(
  abl: FloatArray,
  base: FloatArray,
  p: number,
  rows: number,
  V: number,
): { count: number; fraction: number } {
  const delta = new Float64Array(rows * V);
  for (let e = 0; e < rows * V; e++) delta[e] = abl[p * V + e] - base[p * V + e];
  return ablationEffectSparsity(delta, rows, V);
}

/** Sums of ablation effects per latent; `means` divides by the positions ablated (nPos). */
export function effectSums() {
  const sumCount = new Map<number, number>();
  const sumFrac = new Map<number, number>();
  return {
    add(i: number, m: { count: number; fraction: number }) {
      sumCount.set(i, (sumCount.get(i) ?? 0) + m.count);
      sumFrac.set(i, (sumFrac.get(i) ?? 0) + m.fraction);
    },
    /** Per-latent means over the latents (in this order) with at least one position ablated. */
    means(latents: readonly number[], nPos: ReadonlyMap<number, number>): AblationResult {
      const active = latents.filter((i) => (nPos.get(i) as number) > 0);
      const per = (sums: Map<number, number>) =>
        Float64Array.from(active, (i) => (sums.get(i) as number) / (nPos.get(i) as number));
      const effectiveCount = per(sumCount);
      const effectiveFraction = per(sumFrac);
      const mean = (a: Float64Array) => (a.length ? a.reduce((s, v) => s + v, 0) / a.length : Number.NaN);
      return {
        latents: Uint32Array.from(active),
        effectiveCount,
        effectiveFraction,
        positions: Uint32Array.from(active, (i) => nPos.get(i) as number),
        meanEffectiveCount: mean(effectiveCount),
        meanEffectiveFraction: mean(effectiveFraction),
      };
    },
  };
}
