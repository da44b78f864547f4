/**
 * The CPU kernels of the llama2.c forward pass (forward.ts), each as run.c computes it: RMSNorm,
 * matmul against (out, in) row-major weights, and RoPE's pairwise rotation. Activations are
 * float32 or float64 arrays (Llama's dtype); weights stay float32; sums run in JS doubles.
 */

/** Activations: Float32Array (dtype 'f32') or Float64Array (dtype 'f64'). */
type Acts = Float32Array | Float64Array;

const RMS_NORM_EPS = 1e-5;

/**
 * out[t] = weight[wOff…] ⊙ x[t] / sqrt(mean(x[t]²) + eps), for T rows of width n.
 * (run.c: o = weight · (ss · x), ss = 1/sqrt(Σx²/n + eps))
 */
export function rmsnorm(out: Acts, x: Acts, weight: Float32Array, wOff: number, T: number, n: number): void {
  for (let t = 0; t < T; t++) {
    const o = t * n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[o + i] * x[o + i];
    const inv = 1 / Math.sqrt(ss / n + RMS_NORM_EPS);
    for (let i = 0; i < n; i++) out[o + i] = weight[wOff + i] * (inv * x[o + i]);
  }
}

/**
 * out[outOff + t·nOut + o] = Σ_i x[t·nIn + i] · W[wOff + o·nIn + i]
 * i.e. Y[T, nOut] = X[T, nIn] · Wᵀ with W stored (out, in) row-major, as run.c's matmul.
 */
export function matmul(
  out: Acts,
  outOff: number,
  x: Acts,
  W: Float32Array,
  wOff: number,
  T: number,
  nIn: number,
  nOut: number,
): void {
  // Four output rows per pass share each load of x (≈2× faster in V8 than one dot at a time);
  // the sums are still plain left-to-right dot products, identical to the one-row loop.
  const nOut4 = nOut - (nOut % 4);
  for (let t = 0; t < T; t++) {
    const xOff = t * nIn;
    const yOff = outOff + t * nOut;
    let o = 0;
    for (; o < nOut4; o += 4) {
      const r0 = wOff + o * nIn;
      const r1 = r0 + nIn;
      const r2 = r1 + nIn;
      const r3 = r2 + nIn;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      for (let i = 0; i < nIn; i++) {
        const xi = x[xOff + i];
        a0 += xi * W[r0 + i];
        a1 += xi * W[r1 + i];
        a2 += xi * W[r2 + i];
        a3 += xi * W[r3 + i];
      }
      out[yOff + o] = a0;
      out[yOff + o + 1] = a1;
      out[yOff + o + 2] = a2;
      out[yOff + o + 3] = a3;
    }
    for (; o < nOut; o++) {
      const rOff = wOff + o * nIn;
      let acc = 0;
      for (let i = 0; i < nIn; i++) acc += x[xOff + i] * W[rOff + i];
      out[yOff + o] = acc;
    }
  }
}

/**
 * RoPE on one row of width n (n/headSize heads): in each head, pair (2j, 2j+1)
 * is rotated by the angle whose cos/sin are table[tOff + j].
 */
export function rotate(
  v: Acts,
  off: number,
  n: number,
  cos: Float64Array,
  sin: Float64Array,
  tOff: number,
  headSize: number,
): void {
  for (let i = 0; i < n; i += 2) {
    const j = (i % headSize) >> 1;
    const c = cos[tOff + j];
    const s = sin[tOff + j];
    const v0 = v[off + i];
    const v1 = v[off + i + 1];
    v[off + i] = v0 * c - v1 * s;
    v[off + i + 1] = v0 * s + v1 * c;
  }
}
