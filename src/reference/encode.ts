/**
 * Float64 twin of shaders/encode.wgsl.
 * x [B, d], b_pre [d], W_enc [N, d], b_enc [N] → pre [B, N].
 */
export function encodeRef(
  x: ArrayLike<number>,
  b_pre: ArrayLike<number>,
  W_enc: ArrayLike<number>,
  b_enc: ArrayLike<number>,
  B: number,
  d: number,
  N: number,
): Float64Array {
  const pre = new Float64Array(B * N);
  const z = new Float64Array(d);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < d; c++) z[c] = x[b * d + c] - b_pre[c];
    for (let n = 0; n < N; n++) {
      let acc = 0;
      const wo = n * d;
      for (let c = 0; c < d; c++) acc += z[c] * W_enc[wo + c];
      pre[b * N + n] = acc + b_enc[n];
    }
  }
  return pre;
}
