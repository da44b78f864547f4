/**
 * The one definition of the held-out reconstruction and sparsity metrics. The run panel, metrics.json
 * and sweep records (Trainer.evaluate) and the evaluation panel and eval.json (src/worker/evaluate.ts,
 * through src/eval's EvalAccumulator, which extends this class) all stream the same batches
 * (Trainer.evalBatches: raw x, the GPU forward's codes and x̂) through this accumulator, so the same
 * SAE on the same rows gets the same numbers, bit for bit, wherever they are shown.
 *
 * Over the evaluated rows b and dimensions c, with e = x̂ − x (raw activations) and μ the dataset mean:
 *   nMSE = Σ_b ‖x̂_b − x_b‖² / Σ_b ‖x_b − μ‖²
 *     The paper's normalized MSE (Gao et al. 2024 §2.1: the MSE divided by the error of always
 *     predicting the mean activation) and the released code's training loss (openai/sparse_autoencoder
 *     train.py: mse_scale = 1 / mean ‖x − μ‖², μ the mean of a fixed sample, not of each batch). μ is
 *     the dataset's mean (ActivationStats.mean), the same one the training curve's per-step nMSE
 *     divides by, so the curve and the held-out value are on one scale. Not openai's loss.py
 *     `normalized_mean_squared_error` (per-token ‖x̂ − x‖² / ‖x‖², uncentered): that one changes with a
 *     constant offset of the activations, which residual streams have.
 *   EV = 1 − Σ_c Var_b(e_c) / Σ_c Var_b(x_c)  (variances over the evaluated rows, divided by their count)
 *     Differs from 1 − nMSE by the residual's mean and by the rows' own mean vs μ.
 *   L0 = mean over rows of #{latents with a value > 0} (the paper's L0: nonzero latents; the training
 *     curve counts the same, shaders/loss.wgsl). A zero code entry (BatchTopK's cut, relu) is not active.
 *     The threshold family's codes keep a row's 512 largest values; its L0 comes from the forward's
 *     full per-row count instead (rowL0), so it is never truncated.
 *   Matryoshka: prefix nMSE_h = Σ_b ‖x̂_h,b − x_b‖² / Σ_b ‖x_b − μ‖² for each inner width m_h, x̂_h the
 *     reconstruction by the first m_h latents alone (the forward's xInner); the full width's is nMSE.
 *   A latent fires on a row when its value > fireThreshold (1e-3: the paper's and the released code's
 *     "activates", the training dead counter's test): never-fired fraction = latents that fired on none
 *     of the evaluated rows / N; firing frequency = rows it fired on / rows.
 * Sums are float64, row by row in row order (so how rows are split into batches cannot change them),
 * about μ (no catastrophic cancellation when the activations have a large common offset).
 */
import { NONE } from '../reference/step';

/** Rows evaluated at most by default (run panel, metrics.json, evaluation panel, eval.json alike). */
export const EVAL_MAX_ROWS = 16384;

/** Codes of a batch: [rows, k] latent ids (NONE: empty) and values (the forward's codes). */
export interface CodesBatch {
  rows: number;
  k: number;
  idx: Uint32Array;
  val: Float32Array;
}

export interface MetricsOptions {
  /** Latents. */
  N: number;
  /** Width. */
  d: number;
  /** [d] the dataset mean μ (the nMSE baseline). */
  mean: ArrayLike<number>;
  /** A latent fires when its value exceeds this (the config's fireThreshold). */
  fireThreshold: number;
  /** Matryoshka: inner prefixes (G − 1) whose reconstructions each batch brings (add's xInner); 0 otherwise. */
  innerLevels?: number;
}

/** The metrics every report shares (see the file comment for the formulas). */
export interface ReconMetrics {
  rows: number;
  nmse: number;
  explainedVariance: number;
  l0: number;
  /** Latents that never fired on the evaluated rows. */
  neverFired: number;
  neverFiredFraction: number;
  /** Matryoshka: nMSE of each inner prefix, narrowest first (the full width's is nmse); absent otherwise. */
  prefixNmse?: number[];
}

export class MetricsAccumulator {
  readonly N: number;
  readonly d: number;
  readonly fireThreshold: number;
  private readonly mu: Float64Array;
  private rowsSeen = 0;
  private active = 0;
  /** [d] Σ (x − μ), Σ (x − μ)², Σ e, Σ e² with e = x̂ − x. */
  private readonly sx: Float64Array;
  private readonly sxx: Float64Array;
  private readonly se: Float64Array;
  private readonly see: Float64Array;
  /** [N] rows each latent fired on. */
  protected readonly fireCount: Float64Array;
  /** [G − 1] Σ ‖x̂_h − x‖² of the inner prefixes. */
  private readonly seeInner: Float64Array;

  constructor(opts: MetricsOptions) {
    this.N = opts.N;
    this.d = opts.d;
    this.fireThreshold = opts.fireThreshold;
    if (opts.mean.length !== opts.d) throw new Error(`mean has ${opts.mean.length} entries, d = ${opts.d}`);
    this.mu = Float64Array.from(opts.mean);
    this.sx = new Float64Array(this.d);
    this.sxx = new Float64Array(this.d);
    this.se = new Float64Array(this.d);
    this.see = new Float64Array(this.d);
    this.fireCount = new Float64Array(this.N);
    this.seeInner = new Float64Array(opts.innerLevels ?? 0);
  }

  get rows(): number {
    return this.rowsSeen;
  }

  /**
   * Adds one batch. Rows get global ids rowsSeen … rowsSeen + codes.rows − 1 (see onFire).
   * @param x [rows, d] raw inputs
   * @param codes their codes [rows, k]
   * @param xhat [rows, d] raw reconstructions
   * @param rowL0 [rows] each row's count of nonzero latents, when the codes may hold fewer than all
   *   of them (the threshold family keeps the 512 largest per row); L0 is then counted from these
   * @param xInner [G − 1, rows, d] raw reconstructions of the inner prefixes (Matryoshka)
   */
  add(
    x: ArrayLike<number>,
    codes: CodesBatch,
    xhat: ArrayLike<number>,
    rowL0?: ArrayLike<number>,
    xInner?: ArrayLike<number>,
  ): void {
    const { rows, k, idx, val } = codes;
    const d = this.d;
    if (x.length < rows * d || xhat.length < rows * d) throw new Error('x / xhat shorter than rows·d');
    const L = this.seeInner.length;
    if (L > 0) {
      if (!xInner || xInner.length < L * rows * d) throw new Error(`xInner shorter than ${L}·rows·d`);
      for (let h = 0; h < L; h++)
        for (let o = 0; o < rows * d; o++) this.seeInner[h] += (xInner[h * rows * d + o] - x[o]) ** 2;
    }
    const mu = this.mu;
    for (let r = 0; r < rows; r++) {
      const o = r * d;
      for (let c = 0; c < d; c++) {
        const xc = x[o + c] - mu[c];
        const e = xhat[o + c] - x[o + c];
        this.sx[c] += xc;
        this.sxx[c] += xc * xc;
        this.se[c] += e;
        this.see[c] += e * e;
      }
    }
    if (rowL0) {
      if (rowL0.length < rows) throw new Error('rowL0 shorter than rows');
      for (let r = 0; r < rows; r++) this.active += rowL0[r];
    } else for (let e = 0; e < rows * k; e++) if (idx[e] !== NONE && val[e] > 0) this.active++;
    const th = this.fireThreshold;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < k; j++) {
        const i = idx[r * k + j];
        const v = val[r * k + j];
        if (i === NONE || !(v > th)) continue;
        this.fireCount[i]++;
        this.onFire(i, v, this.rowsSeen + r);
      }
    }
    this.rowsSeen += rows;
  }

  /** Called for each (latent, value, global row) that fires; subclasses keep more per latent. */
  protected onFire(_i: number, _v: number, _row: number): void {}

  metrics(): ReconMetrics {
    const n = this.rowsSeen;
    let num = 0;
    let den = 0;
    let varX = 0;
    let varE = 0;
    for (let c = 0; c < this.d; c++) {
      num += this.see[c];
      den += this.sxx[c];
      // n·Var(x_c) = Σ(x−μ)² − (Σ(x−μ))²/n, and the same for e
      varX += this.sxx[c] - (this.sx[c] * this.sx[c]) / n;
      varE += this.see[c] - (this.se[c] * this.se[c]) / n;
    }
    let never = 0;
    for (let i = 0; i < this.N; i++) if (this.fireCount[i] === 0) never++;
    return {
      rows: n,
      nmse: num / den,
      explainedVariance: 1 - varE / varX,
      l0: n > 0 ? this.active / n : 0,
      neverFired: never,
      neverFiredFraction: never / this.N,
      ...(this.seeInner.length > 0 ? { prefixNmse: Array.from(this.seeInner, (s) => s / den) } : {}),
    };
  }
}
