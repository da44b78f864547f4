/**
 * Input normalization folded into (and out of) exported weights, and the transpose between our
 * latent-major layout and the tools' ones.
 *
 * Our SAE is trained on u = normalize(x) (see forward.ts). An export must work on what its tool
 * feeds it, so the normalization is folded into the weights where a tool cannot express it. With y
 * the exported model's input and u = c·y:
 *
 *   pre = (c·y − b_pre)·W_encᵀ + b_enc = (y − b_pre/c)·(c·W_enc)ᵀ + b_enc
 *   ŷ   = û / c = Σ v·(W_dec / c) + b_pre / c
 *
 * so W_enc' = c·W_enc, b_enc' = b_enc, W_dec' = W_dec / c, b_dec' = b_pre / c — exactly SAELens's
 * own `fold_activation_norm_scaling_factor`, after which SAELens sets normalize_activations
 * "none". The cases:
 *   - scalar (u = s·x): c = s; the export takes RAW activations, normalize_activations "none".
 *     With `foldScalar: false` the weights stay as trained and the cfg says
 *     "expected_average_only_in"; SAELens 6 does not rescale inputs at inference for that (it
 *     folds a factor only for its registered pretrained SAEs), so the caller multiplies inputs by
 *     sae_lab.normalization.scale; the exact scale is recorded in both cases.
 *   - paper (u = (x − μ)/‖x − μ‖ per token): a per-token factor cannot be folded into weights.
 *     SAELens ("layer_norm") and openai (`normalize=True`) both apply LN(x) = (x − μ)/(std + 1e-5)
 *     with the unbiased std, i.e. LN(x) ≈ sqrt(d − 1)·u (up to that ε), and map back as
 *     ŷ·std + μ. So c = 1/sqrt(d − 1) is folded and the tool's own per-token normalization does
 *     the rest; the result differs from ours only by the ε in the denominator.
 *   - none: c = 1, weights written as trained (bit-identical).
 * Every export records c in its `sae_lab` block (sae-files.ts), so import unfolds it exactly.
 */
import type { ParamsF32 } from '../sae/step-buffers.ts';
import type { Normalization } from './forward.ts';

/** What the exported model is fed: raw x, x·scale, or the tool's LayerNorm of x. */
export type InputRule = 'raw' | 'scaled' | 'layer_norm';

/**
 * The factor c with u = c·y (u: our training input, y: the exported model's input).
 */
export function foldFactor(
  norm: Normalization,
  d: number,
  foldScalar: boolean,
): { c: number; input: InputRule } {
  switch (norm.kind) {
    case 'none':
      return { c: 1, input: 'raw' };
    case 'scalar':
      if (!(norm.scale > 0) || !Number.isFinite(norm.scale))
        throw new RangeError(`export: scalar normalization needs a positive finite scale, got ${norm.scale}`);
      return foldScalar ? { c: norm.scale, input: 'raw' } : { c: 1, input: 'scaled' };
    case 'paper':
      if (d < 2) throw new RangeError('export: per-token normalization needs d ≥ 2');
      return { c: 1 / Math.sqrt(d - 1), input: 'layer_norm' };
  }
}

/**
 * Folds c into the weights (see the file comment): W_enc·c, W_dec/c, b_pre/c. c = 1 returns the
 * same arrays (no copy, bit-identical). Computed in float64, rounded once to float32.
 */
export function foldParams(p: ParamsF32, c: number): ParamsF32 {
  if (c === 1) return p;
  return {
    W_enc: p.W_enc.map((w) => w * c),
    b_enc: p.b_enc,
    W_dec: p.W_dec.map((w) => w / c),
    b_pre: p.b_pre.map((w) => w / c),
    // W_enc·(u − b_pre) is unchanged by the fold, so the per-latent parameters are too.
    ...(p.extra ? { extra: p.extra } : {}),
  };
}

/** Inverse of foldParams. */
export function unfoldParams(p: ParamsF32, c: number): ParamsF32 {
  if (c === 1) return p;
  return {
    W_enc: p.W_enc.map((w) => w / c),
    b_enc: p.b_enc,
    W_dec: p.W_dec.map((w) => w * c),
    b_pre: p.b_pre.map((w) => w * c),
    ...(p.extra ? { extra: p.extra } : {}),
  };
}

/** [rows, cols] row-major → [cols, rows] row-major. */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = a[base + c];
  }
  return out;
}
