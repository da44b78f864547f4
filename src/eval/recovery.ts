/**
 * Feature recovery against planted ground truth (synthetic data, src/data/synthetic.ts) and
 * decoder-geometry queries.
 *
 * For each true direction u_f [d] the score is max_i cos(u_f, W_dec[i]) over decoder rows. The
 * cosine is signed: TopK latents are non-negative, so a decoder row pointing along −u_f cannot
 * represent positive multiples of u_f and should not count as recovering it.
 */

export interface RecoveryResult {
  /** [F] best cosine per true direction. */
  maxCos: Float64Array;
  /** [F] decoder row achieving it. */
  bestLatent: Uint32Array;
  meanMaxCos: number;
  /** Fraction of true directions with maxCos ≥ threshold. */
  fractionRecovered: number;
  threshold: number;
  /** [F] maxCos sorted descending (the recovery curve to plot). */
  sorted: Float64Array;
}

/** Row norms of a [n, d] matrix (0 rows get norm 1 so their cosines come out 0). */
function rowNorms(m: ArrayLike<number>, n: number, d: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += m[i * d + c] * m[i * d + c];
    out[i] = s > 0 ? Math.sqrt(s) : 1;
  }
  return out;
}

/**
 * @param W_dec [N, d] decoder rows (need not be unit; they are normalized here)
 * @param directions [F, d] ground-truth directions
 * @param threshold cosine counted as "recovered" (default 0.9)
 */
export function featureRecovery(
  W_dec: ArrayLike<number>,
  N: number,
  directions: ArrayLike<number>,
  F: number,
  d: number,
  threshold = 0.9,
): RecoveryResult {
  if (W_dec.length !== N * d || directions.length !== F * d) {
    throw new Error('featureRecovery: shape mismatch');
  }
  const nd = rowNorms(W_dec, N, d);
  const nu = rowNorms(directions, F, d);
  const maxCos = new Float64Array(F).fill(-Infinity);
  const bestLatent = new Uint32Array(F);
  for (let f = 0; f < F; f++) {
    const uo = f * d;
    for (let i = 0; i < N; i++) {
      const wo = i * d;
      let dot = 0;
      for (let c = 0; c < d; c++) dot += directions[uo + c] * W_dec[wo + c];
      const cos = dot / (nd[i] * nu[f]);
      if (cos > maxCos[f]) {
        maxCos[f] = cos;
        bestLatent[f] = i;
      }
    }
  }
  let sum = 0;
  let hit = 0;
  for (let f = 0; f < F; f++) {
    sum += maxCos[f];
    if (maxCos[f] >= threshold) hit++;
  }
  const sorted = maxCos.slice().sort().reverse();
  return {
    maxCos,
    bestLatent,
    meanMaxCos: F > 0 ? sum / F : Number.NaN,
    fractionRecovered: F > 0 ? hit / F : Number.NaN,
    threshold,
    sorted,
  };
}

/**
 * Expected max cosine between a fixed unit vector and n independent uniformly random unit
 * vectors in R^d: the chance level of meanMaxCos for a random decoder.
 *
 * With θ the angle to the fixed vector, its density is ∝ sin^{d−2} θ on [0, π]; with
 * F(t) = P(cos θ ≤ t), E[max] = 1 − ∫_{−1}^{1} F(t)^n dt = 1 − ∫_0^π F(cos θ)^n sin θ dθ.
 * Integrated numerically in θ (midpoint rule, no endpoint singularity for any d ≥ 2).
 */
export function chanceMaxCosine(d: number, n: number, grid = 20000): number {
  if (d < 2) throw new Error('chanceMaxCosine needs d ≥ 2');
  const h = Math.PI / grid;
  // Cell masses from θ = π (cos = −1) up to θ = 0, in log space to survive large d.
  const logm = new Float64Array(grid);
  let mx = -Infinity;
  for (let j = 0; j < grid; j++) {
    const theta = Math.PI - (j + 0.5) * h;
    logm[j] = (d - 2) * Math.log(Math.sin(theta));
    if (logm[j] > mx) mx = logm[j];
  }
  let total = 0;
  const m = new Float64Array(grid);
  for (let j = 0; j < grid; j++) {
    m[j] = Math.exp(logm[j] - mx);
    total += m[j];
  }
  let cdf = 0;
  let integral = 0;
  for (let j = 0; j < grid; j++) {
    const theta = Math.PI - (j + 0.5) * h;
    const Fmid = (cdf + m[j] / 2) / total; // F at the cell's midpoint
    cdf += m[j];
    integral += Fmid ** n * Math.sin(theta) * h;
  }
  return 1 - integral;
}

/**
 * The n latents whose decoder rows are closest (by cosine) to latent `latent`'s, excluding itself.
 * @param W_dec [N, d]
 */
export function decoderNeighbours(
  W_dec: ArrayLike<number>,
  N: number,
  d: number,
  latent: number,
  n: number,
): { latent: Uint32Array; cos: Float64Array } {
  const norms = rowNorms(W_dec, N, d);
  const cos = new Float64Array(N);
  const o = latent * d;
  for (let i = 0; i < N; i++) {
    let dot = 0;
    for (let c = 0; c < d; c++) dot += W_dec[o + c] * W_dec[i * d + c];
    cos[i] = dot / (norms[i] * norms[latent]);
  }
  const order = Array.from({ length: N }, (_, i) => i)
    .filter((i) => i !== latent)
    .sort((a, b) => cos[b] - cos[a] || a - b)
    .slice(0, n);
  return { latent: Uint32Array.from(order), cos: Float64Array.from(order, (i) => cos[i]) };
}
