/** Small random SAEs and data for the eval tests. */
import { Rng } from '../../../src/data/rng';
import type { ParamsF32 } from '../../../src/sae/step-buffers';

/** Random SAE: unit decoder rows, W_enc = W_dec (tied), small biases. */
export function randomParams(N: number, d: number, seed = 1): ParamsF32 {
  const rng = new Rng(seed);
  const W_dec = new Float32Array(N * d);
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let c = 0; c < d; c++) {
      const v = rng.normal();
      W_dec[i * d + c] = v;
      s += v * v;
    }
    for (let c = 0; c < d; c++) W_dec[i * d + c] /= Math.sqrt(s);
  }
  return {
    W_enc: W_dec.slice(),
    b_enc: Float32Array.from({ length: N }, () => 0.1 * rng.normal()),
    W_dec,
    b_pre: Float32Array.from({ length: d }, () => 0.1 * rng.normal()),
  };
}

export function randomRows(rows: number, d: number, seed = 2, offset = 0): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: rows * d }, () => offset + rng.normal());
}
