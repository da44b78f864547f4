/**
 * Reading logits [T, V] (row-major, one row per position): softmax, next-token negative
 * log-likelihood, mean KL between two models' logits, and the argmax of a row. Float64 throughout.
 */

/** log Σ exp(row) and the row's max, for a row of `logits` at `off` with width V. */
function logSumExp(logits: ArrayLike<number>, off: number, V: number): number {
  let m = -Infinity;
  for (let v = 0; v < V; v++) if (logits[off + v] > m) m = logits[off + v];
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(logits[off + v] - m);
  return m + Math.log(s);
}

/** softmax of one logits row, in float64. */
export function softmaxRow(logits: ArrayLike<number>, row: number, V: number): Float64Array {
  const off = row * V;
  const lse = logSumExp(logits, off, V);
  const p = new Float64Array(V);
  for (let v = 0; v < V; v++) p[v] = Math.exp(logits[off + v] - lse);
  return p;
}

export interface NllResult {
  /** Σ_t −log p(tokens[t+1] | ≤ t) */
  sum: number;
  /** Number of predicted tokens (T − 1). */
  count: number;
  /** sum / count (NaN when count is 0). */
  mean: number;
}

/**
 * Next-token negative log-likelihood (nats): row t of logits [T, V] predicts tokens[t+1].
 * Return sum and count so callers can pool windows.
 */
export function nextTokenNll(logits: ArrayLike<number>, tokens: ArrayLike<number>, V: number): NllResult {
  const T = tokens.length;
  let sum = 0;
  for (let t = 0; t + 1 < T; t++) sum += logSumExp(logits, t * V, V) - logits[t * V + tokens[t + 1]];
  const count = Math.max(0, T - 1);
  return { sum, count, mean: sum / count };
}

/**
 * Mean over rows of KL(P ‖ Q) = Σ_v p_v (log p_v − log q_v), with P = softmax(logitsP)
 * (usually the clean model) and Q = softmax(logitsQ) (the patched model). Both [T, V].
 */
export function meanKl(logitsP: ArrayLike<number>, logitsQ: ArrayLike<number>, T: number, V: number): number {
  let total = 0;
  for (let t = 0; t < T; t++) {
    const off = t * V;
    const lseP = logSumExp(logitsP, off, V);
    const lseQ = logSumExp(logitsQ, off, V);
    let kl = 0;
    for (let v = 0; v < V; v++) {
      const logp = logitsP[off + v] - lseP;
      const logq = logitsQ[off + v] - lseQ;
      kl += Math.exp(logp) * (logp - logq);
    }
    total += kl;
  }
  return total / T;
}

/** Index of the largest entry of a logits row (first on ties). */
export function argmaxRow(logits: ArrayLike<number>, row: number, V: number): number {
  const off = row * V;
  let best = 0;
  for (let v = 1; v < V; v++) if (logits[off + v] > logits[off + best]) best = v;
  return best;
}
