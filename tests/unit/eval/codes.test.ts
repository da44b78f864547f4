import { describe, expect, it } from 'vitest';
import {
  codesByLatent,
  concatCodes,
  encodeSparse,
  latentColumn,
  reconstruct,
  selectTopK,
} from '../../../src/eval/codes';
import { encodeRef } from '../../../src/reference/encode';
import { decodeRef, topkRef } from '../../../src/reference/step';
import { randomParams, randomRows } from './helpers';

describe('encodeSparse / reconstruct', () => {
  const N = 48;
  const d = 12;
  const k = 5;
  const rows = 30;
  const params = randomParams(N, d, 3);
  const x = randomRows(rows, d, 4);

  it('matches the float64 reference encoder + topkRef and decodeRef', () => {
    const codes = encodeSparse(params, x, rows, d, k);
    const pre = encodeRef(x, params.b_pre, params.W_enc, params.b_enc, rows, d, N);
    const ref = topkRef(pre, rows, N, k);
    expect(Array.from(codes.idx)).toEqual(Array.from(ref.idx));
    for (let e = 0; e < rows * k; e++) expect(codes.val[e]).toBeCloseTo(ref.val[e], 5);
    const xhat = reconstruct(params, codes, d);
    const xref = decodeRef(ref.idx, ref.val, params.W_dec, params.b_pre, rows, d, k);
    for (let e = 0; e < rows * d; e++) expect(xhat[e]).toBeCloseTo(xref[e], 5);
  });

  it('breaks ties toward the lower latent id and clamps negatives to 0', () => {
    const a = Float64Array.from([1, 3, 2, 3, 3, -1, Number.NEGATIVE_INFINITY]);
    const out = new Int32Array(4);
    selectTopK(a, a.length, 4, out);
    expect(Array.from(out)).toEqual([1, 3, 4, 2]);
    // a 1-d SAE with identical latents 0..3: all tie, the lowest ids win; b_enc makes values negative
    const p = {
      W_enc: Float32Array.from([1, 1, 1, 1]),
      b_enc: Float32Array.from([-5, -5, -5, -5]),
      W_dec: Float32Array.from([1, 1, 1, 1]),
      b_pre: Float32Array.from([0]),
    };
    const c = encodeSparse(p, Float32Array.from([2]), 1, 1, 2);
    expect(Array.from(c.idx)).toEqual([0, 1]);
    expect(Array.from(c.val)).toEqual([0, 0]);
  });

  it('regroups codes by latent (CSC) and concatenates batches', () => {
    const a = encodeSparse(params, x.subarray(0, 10 * d), 10, d, k);
    const b = encodeSparse(params, x.subarray(10 * d), rows - 10, d, k);
    const all = concatCodes([a, b]);
    const whole = encodeSparse(params, x, rows, d, k);
    expect(Array.from(all.idx)).toEqual(Array.from(whole.idx));
    const csc = codesByLatent(whole, N);
    for (let i = 0; i < N; i++) {
      const col = latentColumn(csc, i);
      for (let r = 0; r < rows; r++) {
        let v = 0;
        for (let j = 0; j < k; j++) if (whole.idx[r * k + j] === i) v = whole.val[r * k + j];
        expect(col[r]).toBe(v);
      }
    }
  });
});
