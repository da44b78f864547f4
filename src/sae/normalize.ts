/**
 * Input normalization, a choice stored with the model (docs/DESIGN.md §1):
 *   scalar  x_n = s·x with one s per dataset so that E‖x_n‖² = d (SAELens, sparsify)
 *   paper   x_n = (x − mean_row(x)) / ‖x − mean_row(x)‖ per token (paper §2.1)
 *   none    x_n = x
 * Every mode maps a normalized reconstruction back by x̂ = a_b·x̂_n + μ_b (a_b = rowScale), so the
 * error in raw units is a_b·(x̂_n − x_n); nMSE is always reported on the raw activations.
 */
import type { InputNorm } from './config';

/**
 * How the training inputs were derived from the raw activations x (one row, width d).
 *  - none:   u = x
 *  - scalar: u = x · scale, one scalar per dataset with E‖x · scale‖² = d
 *  - paper:  u = (x − μ(x)) / ‖x − μ(x)‖₂ with μ(x) the mean of the row's own d entries
 *            (the paper's per-token centering and scaling to unit norm); maps back as
 *            x̂ = û · ‖x − μ(x)‖ + μ(x).
 */
export type Normalization = { kind: 'none' } | { kind: 'scalar'; scale: number } | { kind: 'paper' };

export interface Normalizer {
  kind: InputNorm;
  /** scalar mode's s (1 otherwise) */
  scale: number;
}

/**
 * Normalizes rows of x [B, d] into out [B, d]; fills rowScale [B] (raw error = rowScale·normalized
 * error) and rowShift [B] (per-row mean, paper mode) so reconstructions can be mapped back.
 */
export function normalizeBatch(
  norm: Normalizer,
  x: Float32Array,
  d: number,
  out: Float32Array,
  rowScale: Float32Array,
  rowShift?: Float32Array,
) {
  const B = x.length / d;
  for (let b = 0; b < B; b++) {
    const o = b * d;
    if (norm.kind === 'paper') {
      let mu = 0;
      for (let c = 0; c < d; c++) mu += x[o + c];
      mu /= d;
      let s = 0;
      for (let c = 0; c < d; c++) s += (x[o + c] - mu) ** 2;
      const n = Math.sqrt(s);
      // A constant row has no direction: keep it at zero rather than dividing by zero.
      const inv = n > 0 ? 1 / n : 0;
      for (let c = 0; c < d; c++) out[o + c] = (x[o + c] - mu) * inv;
      rowScale[b] = n > 0 ? n : 1;
      if (rowShift) rowShift[b] = mu;
    } else {
      const s = norm.kind === 'scalar' ? norm.scale : 1;
      for (let c = 0; c < d; c++) out[o + c] = x[o + c] * s;
      rowScale[b] = 1 / s;
      if (rowShift) rowShift[b] = 0;
    }
  }
}

/** Maps normalized reconstructions back to raw units in place: x̂ = rowScale·x̂_n + rowShift. */
export function denormalizeInPlace(
  xn: Float32Array,
  d: number,
  rowScale: Float32Array,
  rowShift: Float32Array,
) {
  const B = xn.length / d;
  for (let b = 0; b < B; b++)
    for (let c = 0; c < d; c++) xn[b * d + c] = xn[b * d + c] * rowScale[b] + rowShift[b];
}

/** mean ‖x − mean x‖² over rows of x [n, d] (float64): the main loss's normalizing constant. */
export function centeredMeanSqNorm(x: Float32Array, d: number): number {
  const n = x.length / d;
  const mean = new Float64Array(d);
  for (let r = 0; r < n; r++) for (let c = 0; c < d; c++) mean[c] += x[r * d + c] / n;
  let s = 0;
  for (let r = 0; r < n; r++) for (let c = 0; c < d; c++) s += (x[r * d + c] - mean[c]) ** 2;
  return s / n;
}
