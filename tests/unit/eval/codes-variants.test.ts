import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/data/rng';
import { encodeSparse, NONE, reconstruct } from '../../../src/eval/codes';
import type { ParamsF32 } from '../../../src/sae/step-buffers';

const N = 24;
const d = 6;
const rows = 10;

function params(seed: number): ParamsF32 {
  const r = new Rng(seed);
  const f = (n: number, s: number) => Float32Array.from({ length: n }, () => r.normal() * s);
  return { W_enc: f(N * d, 0.5), b_enc: f(N, 0.2), W_dec: f(N * d, 0.5), b_pre: f(d, 0.1) };
}

/** pre [rows, N] in float64. */
function preOf(p: ParamsF32, x: Float32Array) {
  const out: number[][] = [];
  for (let r = 0; r < rows; r++) {
    const row: number[] = [];
    for (let i = 0; i < N; i++) {
      let acc = p.b_enc[i];
      for (let c = 0; c < d; c++) acc += (x[r * d + c] - p.b_pre[c]) * p.W_enc[i * d + c];
      row.push(acc);
    }
    out.push(row);
  }
  return out;
}

/** The codes as a dense [rows][N] map, checking ids are distinct and in range. */
function dense(c: ReturnType<typeof encodeSparse>) {
  const m = Array.from({ length: c.rows }, () => new Array<number>(N).fill(0));
  for (let r = 0; r < c.rows; r++)
    for (let j = 0; j < c.k; j++) {
      const i = c.idx[r * c.k + j];
      if (i === NONE) continue;
      expect(i).toBeLessThan(N);
      expect(m[r][i]).toBe(0);
      m[r][i] = c.val[r * c.k + j];
    }
  return m;
}

describe('encodeSparse for the activation variants', () => {
  const p = params(1);
  const x = Float32Array.from({ length: rows * d }, (_, o) => Math.sin(o * 1.7) * 2);
  const pre = preOf(p, x);

  it('ReLU keeps every positive pre-activation', () => {
    const m = dense(encodeSparse(p, x, rows, d, 4, 'relu'));
    for (let r = 0; r < rows; r++)
      for (let i = 0; i < N; i++) expect(m[r][i]).toBeCloseTo(Math.max(pre[r][i], 0), 5);
  });

  it('ProLU keeps m = pre − b_enc where m > 0 and pre > 0', () => {
    const m = dense(encodeSparse(p, x, rows, d, 4, 'prolu'));
    let active = 0;
    for (let r = 0; r < rows; r++)
      for (let i = 0; i < N; i++) {
        const mm = pre[r][i] - p.b_enc[i];
        const want = mm > 0 && pre[r][i] > 0 ? mm : 0;
        if (want > 0) active++;
        expect(m[r][i]).toBeCloseTo(want, 5);
      }
    expect(active).toBeGreaterThan(0);
  });

  it('JumpReLU zeroes pre-activations at or below the threshold and keeps the rest unshrunk', () => {
    const q = { ...p, extra: new Float32Array(2 * N).fill(Math.log(0.5), 0, N) };
    const m = dense(encodeSparse(q, x, rows, d, 4, 'jumprelu'));
    let cut = 0;
    for (let r = 0; r < rows; r++)
      for (let i = 0; i < N; i++) {
        const want = pre[r][i] > 0.5 ? pre[r][i] : 0;
        if (pre[r][i] > 0 && pre[r][i] <= 0.5) cut++;
        expect(m[r][i]).toBeCloseTo(want, 5);
      }
    expect(cut).toBeGreaterThan(0);
  });

  it('Gated: gate from pre > 0, magnitude from e^r·(pre − b_gate) + b_mag', () => {
    const extra = new Float32Array(2 * N);
    for (let i = 0; i < N; i++) {
      extra[i] = 0.3 * Math.cos(i);
      extra[N + i] = 0.2 * Math.sin(i);
    }
    const m = dense(encodeSparse({ ...p, extra }, x, rows, d, 4, 'gated'));
    for (let r = 0; r < rows; r++)
      for (let i = 0; i < N; i++) {
        const mag = Math.exp(extra[i]) * (pre[r][i] - p.b_enc[i]) + extra[N + i];
        expect(m[r][i]).toBeCloseTo(pre[r][i] > 0 ? Math.max(mag, 0) : 0, 5);
      }
    expect(() => encodeSparse(p, x, rows, d, 4, 'gated')).toThrow(/per-latent parameters/);
  });

  it('BatchTopK evaluates per token: each row keeps its top min(N, 4k, 512) candidates above θ', () => {
    const k = 3;
    const all = pre
      .flat()
      .map((v) => Math.max(v, 0))
      .sort((a, b) => b - a);
    // θ as a batch cut of these rows would set it: the (rows·k)-th largest activation.
    const theta = all[rows * k - 1];
    const c = encodeSparse(p, x, rows, d, k, 'batchtopk', theta);
    const m = dense(c);
    const cap = Math.min(N, 4 * k);
    const perRow = m.map((row) => row.filter((v) => v > 0).length);
    for (let r = 0; r < rows; r++) {
      const top = new Set(
        pre[r]
          .map((v, i) => [v, i])
          .sort((a, b) => b[0] - a[0] || a[1] - b[1])
          .slice(0, cap)
          .map((e) => e[1]),
      );
      // strictly above θ (the θ-valued entry itself is dropped, as JumpReLU's pre > threshold)
      for (let i = 0; i < N; i++)
        expect(m[r][i]).toBeCloseTo(top.has(i) && pre[r][i] > theta ? pre[r][i] : 0, 5);
    }
    // rows get different counts (not a per-row TopK), about k on average
    expect(new Set(perRow).size).toBeGreaterThan(1);
    expect(perRow.reduce((a, b) => a + b, 0)).toBe(rows * k - 1);
    // θ < 0 (not learned yet): every positive candidate passes
    const early = dense(encodeSparse(p, x, rows, d, k, 'batchtopk', -1));
    for (let r = 0; r < rows; r++)
      expect(early[r].filter((v) => v > 0).length).toBe(Math.min(cap, pre[r].filter((v) => v > 0).length));
    expect(() => encodeSparse(p, x, rows, d, k, 'batchtopk')).toThrow(/inference threshold/);
    // And the reconstruction is the decoder applied to exactly those codes.
    const xh = reconstruct(p, c, d);
    let want = p.b_pre[0];
    for (let i = 0; i < N; i++) want += m[0][i] * p.W_dec[i * d];
    expect(xh[0]).toBeCloseTo(want, 4);
  });

  it("BatchTopK: a row's code is the same evaluated alone or with other rows", () => {
    const k = 3;
    const theta = 0.4;
    const withOthers = encodeSparse(p, x, rows, d, k, 'batchtopk', theta);
    const K = withOthers.k;
    let active = 0;
    for (let r = 0; r < rows; r++) {
      const alone = encodeSparse(p, x.subarray(r * d, (r + 1) * d), 1, d, k, 'batchtopk', theta);
      expect(Array.from(alone.idx)).toEqual(Array.from(withOthers.idx.subarray(r * K, (r + 1) * K)));
      expect(Array.from(alone.val)).toEqual(Array.from(withOthers.val.subarray(r * K, (r + 1) * K)));
      active += alone.val.filter((v) => v > 0).length;
    }
    // the check is not vacuous: rows have codes, and a batch-level cut would have given others
    expect(active).toBeGreaterThan(0);
    const firstAlone = encodeSparse(p, x.subarray(0, d), 1, d, k, 'batchtopk', theta);
    expect(firstAlone.val.filter((v) => v > 0).length).not.toBe(k);
  });
});
