/**
 * A plain CPU TopK forward pass on RAW activations, through the model's input normalization.
 *
 * This is the semantics an exported model must keep: whatever layout and folding an export
 * uses, applying the exported SAE (with its tool's own normalization rule) to a raw activation
 * must give the same x̂ as `reconstructRaw` on our weights. Tests compare both sides with it,
 * and it documents in code what each `Normalization` means.
 */
import type { Activation } from '../sae/config.ts';
import type { Normalization } from '../sae/normalize.ts';
import type { ParamsF32 } from '../sae/step-buffers.ts';

export type { Normalization };

/**
 * TopK SAE forward in float64 on already-normalized inputs.
 * @param p  our latent-major params: W_enc [N, d], b_enc [N], W_dec [N, d], b_pre [d]
 * @param k  active latents per row
 * @param u  [B, d] inputs, row-major
 * @returns  [B, d] reconstructions û = Σ_j v_j · W_dec[idx_j] + b_pre with v = relu(topk(pre))
 */
export function topkForward(p: ParamsF32, k: number, u: ArrayLike<number>): Float64Array {
  const d = p.b_pre.length;
  const N = p.b_enc.length;
  const B = u.length / d;
  const out = new Float64Array(B * d);
  const z = new Float64Array(d);
  const pre = new Float64Array(N);
  const order = new Int32Array(N);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < d; j++) z[j] = u[b * d + j] - p.b_pre[j];
    for (let i = 0; i < N; i++) {
      let s = p.b_enc[i];
      const row = i * d;
      for (let j = 0; j < d; j++) s += z[j] * p.W_enc[row + j];
      pre[i] = s;
      order[i] = i;
    }
    // Full sort is fine at reference sizes; ties broken by lower index (as a stable sort would).
    const idx = Array.from(order).sort((a, c) => pre[c] - pre[a] || a - c);
    for (let j = 0; j < d; j++) out[b * d + j] = p.b_pre[j];
    for (let t = 0; t < Math.min(k, N); t++) {
      const i = idx[t];
      const v = Math.max(0, pre[i]);
      if (v === 0) continue;
      const row = i * d;
      for (let j = 0; j < d; j++) out[b * d + j] += v * p.W_dec[row + j];
    }
  }
  return out;
}

/**
 * Latent activations of one row from its pre-activations, per activation (float64):
 *  - topk: relu of the k largest
 *  - batchtopk (per token at inference, as exported): of the min(N, 4k, 512) largest, those above
 *    max(θ, 0), θ the inference threshold learned in training (`inferenceThreshold`)
 *  - relu: relu(pre)
 *  - prolu (Taggart 2024): m·[m > 0]·[m + b_enc > 0] with m = pre − b_enc
 *  - gated (Rajamanoharan et al. 2024a): [pre > 0] · relu(exp(r_mag)·m + b_mag), m = pre − b_enc
 *    (b_enc is the gate's bias), r_mag = extra[0, N), b_mag = extra[N, 2N)
 *  - jumprelu: pre·[pre > exp(log_threshold)], log_threshold = extra[0, N)
 */
function activate(
  pre: Float64Array,
  p: ParamsF32,
  activation: Activation,
  k: number,
  out: Float64Array = new Float64Array(pre.length),
  inferenceThreshold?: number,
): Float64Array {
  const N = pre.length;
  const e = p.extra;
  if (
    (activation === 'gated' || activation === 'jumprelu') &&
    (!e || e.length < (activation === 'gated' ? 2 * N : N))
  )
    throw new RangeError(`${activation} needs params.extra [2N]`);
  switch (activation) {
    case 'topk':
    case 'batchtopk':
    case 'matryoshka': {
      out.fill(0);
      const idx = Array.from({ length: N }, (_, i) => i).sort((a, c) => pre[c] - pre[a] || a - c);
      if (activation === 'topk') {
        for (let t = 0; t < Math.min(k, N); t++) out[idx[t]] = Math.max(0, pre[idx[t]]);
        return out;
      }
      if (inferenceThreshold === undefined)
        throw new RangeError('batchtopk needs the inference threshold learned in training');
      const th = Math.max(0, inferenceThreshold);
      for (let t = 0; t < Math.min(N, 4 * k, 512); t++) if (pre[idx[t]] > th) out[idx[t]] = pre[idx[t]];
      return out;
    }
    case 'relu':
      for (let i = 0; i < N; i++) out[i] = Math.max(0, pre[i]);
      return out;
    case 'prolu':
      for (let i = 0; i < N; i++) {
        const m = pre[i] - p.b_enc[i];
        out[i] = m > 0 && pre[i] > 0 ? m : 0;
      }
      return out;
    case 'gated':
      for (let i = 0; i < N; i++) {
        const m = pre[i] - p.b_enc[i];
        out[i] =
          pre[i] > 0 ? Math.max(0, Math.exp((e as Float32Array)[i]) * m + (e as Float32Array)[N + i]) : 0;
      }
      return out;
    case 'jumprelu':
      for (let i = 0; i < N; i++) out[i] = pre[i] > Math.exp((e as Float32Array)[i]) ? pre[i] : 0;
      return out;
  }
}

/**
 * Forward pass of any activation in float64 on normalized inputs (see `activate`).
 * @returns [B, d] reconstructions û = Σ_i a_i · W_dec[i] + b_pre
 */
function saeForward(
  p: ParamsF32,
  activation: Activation,
  k: number,
  u: ArrayLike<number>,
  inferenceThreshold?: number,
): Float64Array {
  if (activation === 'topk') return topkForward(p, k, u);
  const d = p.b_pre.length;
  const N = p.b_enc.length;
  const B = u.length / d;
  const out = new Float64Array(B * d);
  const pre = new Float64Array(N);
  const a = new Float64Array(N);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < N; i++) {
      let s = p.b_enc[i];
      for (let j = 0; j < d; j++) s += (u[b * d + j] - p.b_pre[j]) * p.W_enc[i * d + j];
      pre[i] = s;
    }
    activate(pre, p, activation, k, a, inferenceThreshold);
    for (let j = 0; j < d; j++) out[b * d + j] = p.b_pre[j];
    for (let i = 0; i < N; i++) {
      if (a[i] === 0) continue;
      for (let j = 0; j < d; j++) out[b * d + j] += a[i] * p.W_dec[i * d + j];
    }
  }
  return out;
}

/**
 * Reconstructs raw activations: normalize each row, run the SAE, map x̂ back to raw units.
 * @param x [B, d] raw activations
 * @param activation default 'topk'
 * @param inferenceThreshold BatchTopK's learned θ (required for it)
 * @returns [B, d] raw reconstructions (float64)
 */
export function reconstructRaw(
  p: ParamsF32,
  k: number,
  norm: Normalization,
  x: ArrayLike<number>,
  activation: Activation = 'topk',
  inferenceThreshold?: number,
): Float64Array {
  const d = p.b_pre.length;
  const B = x.length / d;
  const fwd = (u: ArrayLike<number>) => saeForward(p, activation, k, u, inferenceThreshold);
  if (norm.kind === 'none') return fwd(x);
  if (norm.kind === 'scalar') {
    const u = Float64Array.from(x, (v) => v * norm.scale);
    return fwd(u).map((v) => v / norm.scale);
  }
  const u = new Float64Array(B * d);
  const mu = new Float64Array(B);
  const len = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let m = 0;
    for (let j = 0; j < d; j++) m += x[b * d + j];
    m /= d;
    let ss = 0;
    for (let j = 0; j < d; j++) ss += (x[b * d + j] - m) ** 2;
    const l = Math.sqrt(ss);
    mu[b] = m;
    len[b] = l;
    for (let j = 0; j < d; j++) u[b * d + j] = l > 0 ? (x[b * d + j] - m) / l : 0;
  }
  const uh = fwd(u);
  for (let b = 0; b < B; b++) for (let j = 0; j < d; j++) uh[b * d + j] = uh[b * d + j] * len[b] + mu[b];
  return uh;
}

/** From the trainer's `{ kind, scale }` (src/sae/normalize.ts Normalizer, scale 1 unless scalar). */
export function toNormalization(n: { kind: 'scalar' | 'paper' | 'none'; scale: number }): Normalization {
  return n.kind === 'scalar' ? { kind: 'scalar', scale: n.scale } : { kind: n.kind };
}
