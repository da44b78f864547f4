/**
 * Reconstruction and sparsity metrics, streamed batch by batch from
 * (x [rows, d], codes {idx, val} [rows, k], x̂ [rows, d]).
 *
 * nMSE, explained variance, L0 and the never-fired count are src/sae/metrics.ts's (one definition,
 * shared with the trainer's evaluation; formulas there and in the README). On top of them this keeps
 * per-latent activation sums and maxima, and the top-activating rows per latent in one bounded
 * min-heap per latent (size M), so memory is O(N·M) however many rows stream through.
 */
import { MetricsAccumulator } from '../sae/metrics.ts';
import type { SparseCodes } from './codes.ts';

/** A latent "fires" on a row when its value exceeds this (DESIGN §1, same as the training dead counter). */
export const FIRE_THRESHOLD = 1e-3;

export interface AccumulatorOptions {
  /** Latents. */
  N: number;
  /** Width. */
  d: number;
  /** [d] the dataset mean μ, nMSE's baseline (src/sae/metrics.ts). */
  mean: ArrayLike<number>;
  /** Default FIRE_THRESHOLD. */
  fireThreshold?: number;
  /** Top-activating rows kept per latent (0 = none). Default 0. */
  topM?: number;
  /** Matryoshka: inner prefixes whose reconstructions add() receives (src/sae/metrics.ts). */
  innerLevels?: number;
}

export interface DensityHistogram {
  /** [bins + 1] bin edges in log10(firing frequency). */
  edges: Float64Array;
  /** [bins] latents per bin (fired at least once). */
  counts: Uint32Array;
  /** Latents that never fired (log10 0 = −∞, counted apart). */
  neverFired: number;
}

export interface EvalReport {
  rows: number;
  /** Σ‖x̂ − x‖² / Σ‖x − μ‖², μ the dataset mean given to the accumulator. */
  nmse: number;
  /** 1 − Σ_c Var(x̂_c − x_c) / Σ_c Var(x_c), variances over the evaluated rows. */
  explainedVariance: number;
  /** Matryoshka: nMSE of each inner prefix of the dictionary, narrowest first. */
  prefixNmse?: number[];
  /** Mean number of latents per row with a value > 0. */
  l0: number;
  /** Latents that never fired (value > fireThreshold) on the evaluated rows. */
  deadCount: number;
  deadFraction: number;
  /** [N] fraction of rows on which each latent fired. */
  firingFrequency: Float64Array;
  /** [N] mean value over the rows where it fired (NaN when it never fired). */
  meanActWhenActive: Float64Array;
  /** [N] largest value seen (0 when it never fired). */
  maxAct: Float32Array;
  density: DensityHistogram;
}

/** Streams batches; call report() at any time. */
export class EvalAccumulator extends MetricsAccumulator {
  readonly topM: number;
  /** [N] */
  private readonly actSum: Float64Array;
  private readonly actMax: Float32Array;
  /** [N, M] min-heaps (root = smallest kept value) of values and their global rows; [N] sizes. */
  private readonly heapVal: Float32Array;
  private readonly heapRow: Uint32Array;
  private readonly heapSize: Uint32Array;

  constructor(opts: AccumulatorOptions) {
    super({
      N: opts.N,
      d: opts.d,
      mean: opts.mean,
      fireThreshold: opts.fireThreshold ?? FIRE_THRESHOLD,
      innerLevels: opts.innerLevels,
    });
    this.topM = opts.topM ?? 0;
    this.actSum = new Float64Array(this.N);
    this.actMax = new Float32Array(this.N);
    this.heapVal = new Float32Array(this.N * this.topM);
    this.heapRow = new Uint32Array(this.N * this.topM);
    this.heapSize = new Uint32Array(this.topM > 0 ? this.N : 0);
  }

  /** Per fire of add(): rows get global ids in the order added (used by topRows). */
  protected override onFire(i: number, v: number, row: number): void {
    this.actSum[i] += v;
    if (v > this.actMax[i]) this.actMax[i] = v;
    if (this.topM > 0) this.pushTop(i, v, row);
  }

  /** Keeps the M largest (value, row) of latent i; on equal values the earlier row stays. */
  private pushTop(i: number, v: number, row: number): void {
    const M = this.topM;
    const base = i * M;
    const hv = this.heapVal;
    const hr = this.heapRow;
    let size = this.heapSize[i];
    let pos: number;
    if (size < M) {
      pos = size++;
      this.heapSize[i] = size;
      // sift up
      while (pos > 0) {
        const parent = (pos - 1) >> 1;
        if (hv[base + parent] <= v) break;
        hv[base + pos] = hv[base + parent];
        hr[base + pos] = hr[base + parent];
        pos = parent;
      }
      hv[base + pos] = v;
      hr[base + pos] = row;
      return;
    }
    if (!(v > hv[base])) return;
    // replace the root and sift down
    pos = 0;
    for (;;) {
      const l = 2 * pos + 1;
      if (l >= size) break;
      const r = l + 1;
      const c = r < size && hv[base + r] < hv[base + l] ? r : l;
      if (hv[base + c] >= v) break;
      hv[base + pos] = hv[base + c];
      hr[base + pos] = hr[base + c];
      pos = c;
    }
    hv[base + pos] = v;
    hr[base + pos] = row;
  }

  /** Latent i's top-activating rows so far, sorted by value desc (then row asc). */
  topRows(i: number): { row: Uint32Array; val: Float32Array } {
    if (this.topM === 0) throw new Error('topRows: accumulator was created with topM = 0');
    const n = this.heapSize[i];
    const base = i * this.topM;
    const order = Array.from({ length: n }, (_, j) => j).sort(
      (a, b) =>
        this.heapVal[base + b] - this.heapVal[base + a] || this.heapRow[base + a] - this.heapRow[base + b],
    );
    return {
      row: Uint32Array.from(order, (j) => this.heapRow[base + j]),
      val: Float32Array.from(order, (j) => this.heapVal[base + j]),
    };
  }

  report(densityBins = 40): EvalReport {
    const m = this.metrics();
    const n = m.rows;
    const firingFrequency = new Float64Array(this.N);
    const meanActWhenActive = new Float64Array(this.N);
    for (let i = 0; i < this.N; i++) {
      firingFrequency[i] = n > 0 ? this.fireCount[i] / n : 0;
      meanActWhenActive[i] = this.fireCount[i] > 0 ? this.actSum[i] / this.fireCount[i] : Number.NaN;
    }
    return {
      rows: n,
      nmse: m.nmse,
      explainedVariance: m.explainedVariance,
      ...(m.prefixNmse ? { prefixNmse: m.prefixNmse } : {}),
      l0: m.l0,
      deadCount: m.neverFired,
      deadFraction: m.neverFiredFraction,
      firingFrequency,
      meanActWhenActive,
      maxAct: this.actMax.slice(),
      density: densityHistogram(firingFrequency, { bins: densityBins, rows: n }),
    };
  }
}

/**
 * Histogram of log10(firing frequency) over latents that fired; latents with frequency 0 are
 * counted in neverFired. Default range [floor(log10(1/rows)), 0] (the smallest nonzero frequency
 * on `rows` rows is 1/rows), or [−8, 0] without rows.
 */
export function densityHistogram(
  freq: ArrayLike<number>,
  opts: { bins?: number; lo?: number; hi?: number; rows?: number } = {},
): DensityHistogram {
  const bins = opts.bins ?? 40;
  const hi = opts.hi ?? 0;
  const lo = opts.lo ?? (opts.rows && opts.rows > 1 ? Math.floor(Math.log10(1 / opts.rows)) : -8);
  const edges = Float64Array.from({ length: bins + 1 }, (_, b) => lo + ((hi - lo) * b) / bins);
  const counts = new Uint32Array(bins);
  let neverFired = 0;
  for (let i = 0; i < freq.length; i++) {
    if (!(freq[i] > 0)) {
      neverFired++;
      continue;
    }
    const t = (Math.log10(freq[i]) - lo) / (hi - lo);
    counts[Math.min(bins - 1, Math.max(0, Math.floor(t * bins)))]++;
  }
  return { edges, counts, neverFired };
}

export interface ActivationHistogram {
  latent: number;
  /** [bins + 1] */
  edges: Float64Array;
  /** [bins] rows per value bin, among rows where the latent fired. */
  counts: Uint32Array;
  /** Rows where it fired / did not. */
  fired: number;
  notFired: number;
}

/**
 * Histogram of one latent's values over the rows where it fired (value > threshold), in `bins`
 * equal bins on [0, max]. max defaults to the largest value found (one extra pass).
 */
export function activationHistogram(
  batches: readonly SparseCodes[],
  latent: number,
  opts: { bins?: number; max?: number; threshold?: number } = {},
): ActivationHistogram {
  const bins = opts.bins ?? 32;
  const th = opts.threshold ?? FIRE_THRESHOLD;
  let max = opts.max ?? 0;
  if (opts.max === undefined) {
    for (const b of batches)
      for (let e = 0; e < b.rows * b.k; e++) if (b.idx[e] === latent && b.val[e] > max) max = b.val[e];
  }
  const edges = Float64Array.from({ length: bins + 1 }, (_, j) => (max * j) / bins);
  const counts = new Uint32Array(bins);
  let fired = 0;
  let rows = 0;
  for (const b of batches) {
    rows += b.rows;
    for (let e = 0; e < b.rows * b.k; e++) {
      if (b.idx[e] !== latent || !(b.val[e] > th)) continue;
      fired++;
      const t = max > 0 ? b.val[e] / max : 0;
      counts[Math.min(bins - 1, Math.max(0, Math.floor(t * bins)))]++;
    }
  }
  return { latent, edges, counts, fired, notFired: rows - fired };
}
