/**
 * Synthetic activations with planted ground truth, for testing that an SAE recovers
 * known features.
 *
 * Model: nFeatures unit directions u_i in R^d. Sample r is
 *     x_r = Σ_{i active in r} a_{r,i} u_i + ε,   ε ~ N(0, noiseStd² I)
 * where feature i is active independently with probability p_i and a_{r,i} > 0 is
 * heavy-tailed (exponential or lognormal).
 *
 * Row r is generated from its own Rng stream derived from (seed, r), so any row
 * range can be produced on demand (syntheticSource streams unlimited rows in O(chunk)
 * memory) and makeSynthetic(...).data equals syntheticSource(...).readRows(0, rows).
 *
 * Active sets are drawn in O(active) per row, not O(nFeatures), by Poissonization:
 * draw K ~ Poisson(Λ), Λ = Σ λ_i, then K features i.i.d. with P(i) = λ_i / Λ
 * (alias table). The number of draws of feature i is then Poisson(λ_i),
 * independently across features, so with λ_i = −ln(1 − p_i) feature i is active
 * (drawn at least once) with probability exactly p_i, independently.
 */
import { DataError } from './errors.ts';
import { Rng } from './rng.ts';
import { type ActivationSource, checkRowRange } from './source.ts';

export interface SyntheticOptions {
  /** Width of each vector. */
  d: number;
  /** Number of planted directions. */
  nFeatures: number;
  /** Rows to generate. */
  rows: number;
  seed?: number;
  /** Probability that each feature is active in a sample (same for all). */
  activeProb?: number;
  /** Expected number of active features per sample (Σ p_i); used if activeProb is unset. Default 8. */
  expectedActive?: number;
  /**
   * Zipf-like feature frequencies: p_i ∝ (i + 1)^−exponent, scaled so Σ p_i =
   * expectedActive (each p_i capped at 0.99). 0 = all equal. Default 0.
   */
  frequencyExponent?: number;
  /**
   * Shared component c in [0, 1): u_i = normalize(√(1−c)·g_i + √c·s) with g_i random
   * unit vectors and one shared unit s, giving pairwise cosines ≈ c. Default 0.
   */
  correlation?: number;
  /** Magnitude law of active coefficients. Default 'exponential'. */
  magnitude?: 'exponential' | 'lognormal';
  /** Mean of the exponential, or median (e^μ) of the lognormal. Default 1. */
  magnitudeScale?: number;
  /** σ of the lognormal's log. Default 1. */
  lognormalSigma?: number;
  /** Std of i.i.d. Gaussian noise per coordinate. Default 0. */
  noiseStd?: number;
}

/** Sparse coefficients in CSR form: row r has features feature[rowPtr[r] .. rowPtr[r+1]). */
interface SparseCoefficients {
  rowPtr: Uint32Array;
  feature: Uint32Array;
  value: Float32Array;
}

export interface SyntheticData {
  /** [rows, d] row-major. */
  data: Float32Array;
  /** [nFeatures, d] row-major unit vectors. */
  directions: Float32Array;
  /** Per-feature activation probability p_i [nFeatures]. */
  probabilities: Float64Array;
  coefficients?: SparseCoefficients;
}

/** Vose alias table for sampling index i with probability w_i / Σw. */
class AliasTable {
  private readonly prob: Float64Array;
  private readonly alias: Uint32Array;
  constructor(w: Float64Array) {
    const n = w.length;
    const sum = w.reduce((a, b) => a + b, 0);
    this.prob = new Float64Array(n);
    this.alias = new Uint32Array(n);
    const scaled = Float64Array.from(w, (x) => (x * n) / sum);
    const small: number[] = [];
    const large: number[] = [];
    scaled.forEach((p, i) => {
      (p < 1 ? small : large).push(i);
    });
    while (small.length && large.length) {
      const s = small.pop()!;
      const l = large.pop()!;
      this.prob[s] = scaled[s];
      this.alias[s] = l;
      scaled[l] = scaled[l] + scaled[s] - 1;
      (scaled[l] < 1 ? small : large).push(l);
    }
    for (const i of large) this.prob[i] = 1;
    for (const i of small) this.prob[i] = 1; // only rounding leftovers
  }
  sample(rng: Rng): number {
    const i = rng.nextInt(this.prob.length);
    return rng.nextFloat() < this.prob[i] ? i : this.alias[i];
  }
}

/** Everything derived from the options once: directions, probabilities, sampler. */
class SyntheticModel {
  readonly o: Required<SyntheticOptions>;
  readonly directions: Float32Array;
  readonly probabilities: Float64Array;
  private readonly lambdaTotal: number;
  private readonly alias: AliasTable;
  // Per-row scratch (rows are generated one at a time).
  private readonly seen: Int32Array;
  private stamp = 0;
  private readonly acc: Float64Array;

  constructor(opts: SyntheticOptions) {
    const o: Required<SyntheticOptions> = {
      seed: 0,
      activeProb: Number.NaN,
      expectedActive: 8,
      frequencyExponent: 0,
      correlation: 0,
      magnitude: 'exponential',
      magnitudeScale: 1,
      lognormalSigma: 1,
      noiseStd: 0,
      ...opts,
    };
    if (opts.activeProb === undefined) o.activeProb = Number.NaN;
    const name = 'synthetic';
    if (!(Number.isInteger(o.d) && o.d > 0))
      throw new DataError(name, `d must be a positive integer, got ${o.d}`);
    if (!(Number.isInteger(o.nFeatures) && o.nFeatures > 0))
      throw new DataError(name, `nFeatures must be a positive integer, got ${o.nFeatures}`);
    if (!(Number.isInteger(o.rows) && o.rows >= 0))
      throw new DataError(name, `rows must be a non-negative integer, got ${o.rows}`);
    if (!(o.correlation >= 0 && o.correlation < 1))
      throw new DataError(name, `correlation must be in [0, 1), got ${o.correlation}`);
    this.o = o;
    const { d, nFeatures } = o;

    // Directions from stream 0 of the seed.
    const rng = Rng.derive(o.seed, 0);
    const shared = new Float64Array(d);
    for (let k = 0; k < d; k++) shared[k] = rng.normal();
    normalize(shared);
    const a = Math.sqrt(1 - o.correlation);
    const b = Math.sqrt(o.correlation);
    this.directions = new Float32Array(nFeatures * d);
    const g = new Float64Array(d);
    for (let i = 0; i < nFeatures; i++) {
      for (let k = 0; k < d; k++) g[k] = rng.normal();
      normalize(g);
      for (let k = 0; k < d; k++) g[k] = a * g[k] + b * shared[k];
      normalize(g);
      for (let k = 0; k < d; k++) this.directions[i * d + k] = g[k];
    }

    // Frequencies.
    const p = new Float64Array(nFeatures);
    if (!Number.isNaN(o.activeProb)) {
      if (!(o.activeProb >= 0 && o.activeProb < 1))
        throw new DataError(name, `activeProb must be in [0, 1), got ${o.activeProb}`);
      p.fill(o.activeProb);
    } else {
      let s = 0;
      for (let i = 0; i < nFeatures; i++) s += p[i] = (i + 1) ** -o.frequencyExponent;
      for (let i = 0; i < nFeatures; i++) p[i] = Math.min(0.99, (p[i] * o.expectedActive) / s);
    }
    this.probabilities = p;
    const lambda = Float64Array.from(p, (x) => -Math.log1p(-x));
    this.lambdaTotal = lambda.reduce((x, y) => x + y, 0);
    this.alias = new AliasTable(this.lambdaTotal > 0 ? lambda : new Float64Array(nFeatures).fill(1));
    this.seen = new Int32Array(nFeatures);
    this.acc = new Float64Array(d);
  }

  /**
   * Writes row r into out[off .. off+d) and returns its active (feature, value) pairs
   * in draw order.
   */
  row(r: number, out: Float32Array, off: number, feats: number[], vals: number[]): void {
    const { d, noiseStd, magnitude, magnitudeScale, lognormalSigma } = this.o;
    const rng = Rng.derive(this.o.seed, 1, r);
    feats.length = 0;
    vals.length = 0;
    const K = this.lambdaTotal > 0 ? rng.poisson(this.lambdaTotal) : 0;
    this.stamp++;
    if (this.stamp === 0x7fffffff) {
      this.seen.fill(0);
      this.stamp = 1;
    }
    for (let k = 0; k < K; k++) {
      const i = this.alias.sample(rng);
      if (this.seen[i] === this.stamp) continue; // drawn twice: still one active feature
      this.seen[i] = this.stamp;
      feats.push(i);
    }
    const acc = this.acc;
    acc.fill(0);
    for (const i of feats) {
      const v =
        magnitude === 'lognormal'
          ? magnitudeScale * Math.exp(lognormalSigma * rng.normal())
          : magnitudeScale * rng.exponential();
      vals.push(v);
      const u = i * d;
      for (let k = 0; k < d; k++) acc[k] += v * this.directions[u + k];
    }
    if (noiseStd > 0) for (let k = 0; k < d; k++) acc[k] += noiseStd * rng.normal();
    for (let k = 0; k < d; k++) out[off + k] = acc[k];
  }
}

function normalize(v: Float64Array): void {
  let s = 0;
  for (let k = 0; k < v.length; k++) s += v[k] * v[k];
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  for (let k = 0; k < v.length; k++) v[k] *= inv;
}

/**
 * Generates a synthetic dataset in memory.
 * @param withCoefficients also return the sparse ground-truth coefficients (CSR).
 */
export function makeSynthetic(opts: SyntheticOptions, withCoefficients = false): SyntheticData {
  const m = new SyntheticModel(opts);
  const { rows, d } = m.o;
  const data = new Float32Array(rows * d);
  const feats: number[] = [];
  const vals: number[] = [];
  const rowPtr = new Uint32Array(rows + 1);
  const allF: number[] = [];
  const allV: number[] = [];
  for (let r = 0; r < rows; r++) {
    m.row(r, data, r * d, feats, vals);
    if (withCoefficients) {
      for (let j = 0; j < feats.length; j++) {
        allF.push(feats[j]);
        allV.push(vals[j]);
      }
      rowPtr[r + 1] = allF.length;
    }
  }
  const res: SyntheticData = { data, directions: m.directions, probabilities: m.probabilities };
  if (withCoefficients)
    res.coefficients = { rowPtr, feature: Uint32Array.from(allF), value: Float32Array.from(allV) };
  return res;
}

/** An ActivationSource that generates rows on demand; also exposes the planted directions. */
export interface SyntheticSource extends ActivationSource {
  /** [nFeatures, d] unit vectors. */
  readonly directions: Float32Array;
  readonly probabilities: Float64Array;
}

/** Streams a synthetic dataset of opts.rows rows without holding it: O(count·d) per read. */
export function syntheticSource(opts: SyntheticOptions): SyntheticSource {
  const m = new SyntheticModel(opts);
  const { rows, d, nFeatures, seed } = m.o;
  const name = `synthetic(d=${d}, n=${nFeatures}, seed=${seed})`;
  const feats: number[] = [];
  const vals: number[] = [];
  return {
    name,
    rows,
    d,
    dtype: 'float32',
    shape: [rows, d],
    byteSize: rows * d * 4,
    directions: m.directions,
    probabilities: m.probabilities,
    async readRows(start: number, count: number): Promise<Float32Array> {
      checkRowRange(name, rows, start, count);
      const out = new Float32Array(count * d);
      for (let r = 0; r < count; r++) m.row(start + r, out, r * d, feats, vals);
      return out;
    },
  };
}
