/**
 * Sparse codes: the one intermediate every evaluation metric is computed from.
 *
 * A batch of `rows` activations x [rows, d] is encoded by the TopK SAE into
 *   idx [rows, k] Uint32   latent ids, per row sorted by value desc (ties → lower id)
 *   val [rows, k] Float32  relu(pre) at those ids (0 where the top-k value was ≤ 0)
 * and decoded back to x̂ [rows, d]. This module is the CPU (float32 storage, float64
 * arithmetic per dot product) version; the GPU step produces the same two arrays, so the
 * metric code downstream never needs to know which one made them.
 */
import { NONE } from '../reference/step.ts';
import { type Activation, isBatchCut, isDense } from '../sae/config.ts';
import type { ParamsF32 } from '../sae/step-buffers.ts';

/** Code entries per row kept for the threshold family (as the GPU forward, src/sae/step.ts DENSE_CODES_MAX). */
const DENSE_CODES_MAX = 512;

export { NONE };

/** TopK codes of a batch of rows. */
export interface SparseCodes {
  rows: number;
  k: number;
  /** [rows, k] latent ids (NONE only if k > N). */
  idx: Uint32Array;
  /** [rows, k] relu'd activations. */
  val: Float32Array;
}

/** Number of latents N and width d implied by params. */
export function paramShape(params: ParamsF32): { N: number; d: number } {
  const N = params.b_enc.length;
  const d = params.b_pre.length;
  if (params.W_enc.length !== N * d || params.W_dec.length !== N * d) {
    throw new Error(`params: W_enc ${params.W_enc.length} / W_dec ${params.W_dec.length} ≠ N·d = ${N}·${d}`);
  }
  return { N, d };
}

/**
 * CPU TopK encoder. pre = (x − b_pre)·W_encᵀ + b_enc, keep the k largest per row
 * (value desc, ties to the lower latent id, NaN lowest — the order of src/reference topkRef),
 * v = relu. Selection is a size-k min-heap per row, O(N log k), so pre [rows, N] is never
 * materialized beyond one row.
 * @param x [rows, d] row-major
 */
export function encodeSparse(
  params: ParamsF32,
  x: ArrayLike<number>,
  rows: number,
  d: number,
  k: number,
  activation: Activation = 'topk',
  /** BatchTopK: the learned inference threshold θ (TrainState.inferenceThreshold; −1 = not learned). */
  inferenceThreshold?: number,
): SparseCodes {
  const { N } = paramShape(params);
  if (isBatchCut(activation)) {
    if (inferenceThreshold === undefined)
      throw new Error('BatchTopK codes need the inference threshold learned in training');
    return encodeBatchTopK(params, x, rows, d, k, inferenceThreshold);
  }
  if (isDense(activation)) return encodeThreshold(params, x, rows, d, activation);
  if (params.b_pre.length !== d) throw new Error(`d = ${d} but b_pre has ${params.b_pre.length}`);
  if (x.length < rows * d) throw new Error(`x has ${x.length} values, need rows·d = ${rows * d}`);
  if (!(k >= 1)) throw new Error(`k must be ≥ 1, got ${k}`);
  const { W_enc, b_enc, b_pre } = params;
  const kk = Math.min(k, N);
  const idx = new Uint32Array(rows * k).fill(NONE);
  const val = new Float32Array(rows * k);
  const z = new Float64Array(d);
  const pre = new Float32Array(N);
  const heap = new Int32Array(kk);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < d; c++) z[c] = x[r * d + c] - b_pre[c];
    for (let n = 0; n < N; n++) {
      let acc = 0;
      const wo = n * d;
      for (let c = 0; c < d; c++) acc += z[c] * W_enc[wo + c];
      const p = Math.fround(acc + b_enc[n]);
      pre[n] = Number.isNaN(p) ? -Infinity : p;
    }
    const m = selectTopK(pre, N, kk, heap);
    for (let j = 0; j < m; j++) {
      idx[r * k + j] = heap[j];
      val[r * k + j] = Math.max(pre[heap[j]], 0);
    }
  }
  return { rows, k, idx, val };
}

/** Pre-activations of one row into pre [N] (float64 dot products, stored as f32 like the GPU). */
function preRow(
  params: ParamsF32,
  x: ArrayLike<number>,
  r: number,
  d: number,
  pre: Float32Array,
  z: Float64Array,
) {
  const { W_enc, b_enc, b_pre } = params;
  const N = b_enc.length;
  for (let c = 0; c < d; c++) z[c] = x[r * d + c] - b_pre[c];
  for (let n = 0; n < N; n++) {
    let acc = 0;
    const wo = n * d;
    for (let c = 0; c < d; c++) acc += z[c] * W_enc[wo + c];
    pre[n] = Math.fround(acc + b_enc[n]);
  }
}

/**
 * The threshold family (ReLU, ProLU, Gated, JumpReLU; shaders/activation.wgsl act_fwd): every
 * activation computed, the largest min(N, 512) per row kept as codes (value desc, ties → lower id).
 */
function encodeThreshold(
  params: ParamsF32,
  x: ArrayLike<number>,
  rows: number,
  d: number,
  activation: Activation,
): SparseCodes {
  const { b_enc, extra } = params;
  const N = b_enc.length;
  const needsExtra = activation === 'gated' || activation === 'jumprelu';
  if (needsExtra && (!extra || extra.length !== 2 * N))
    throw new Error(`${activation} SAE: per-latent parameters (extra [2N]) missing or of the wrong size`);
  const k = Math.min(N, DENSE_CODES_MAX);
  const idx = new Uint32Array(rows * k).fill(NONE);
  const val = new Float32Array(rows * k);
  const pre = new Float32Array(N);
  const act = new Float32Array(N);
  const z = new Float64Array(d);
  const heap = new Int32Array(k);
  for (let r = 0; r < rows; r++) {
    preRow(params, x, r, d, pre, z);
    for (let i = 0; i < N; i++) {
      const p = pre[i];
      let a = 0;
      if (activation === 'prolu') {
        const m = p - b_enc[i];
        a = m > 0 && p > 0 ? m : 0;
      } else if (activation === 'gated') {
        const mag = Math.exp(extra![i]) * (p - b_enc[i]) + extra![N + i];
        a = p > 0 ? Math.max(mag, 0) : 0;
      } else if (activation === 'jumprelu') a = p > Math.exp(extra![i]) ? p : 0;
      else a = Math.max(p, 0);
      act[i] = Number.isNaN(a) ? -Infinity : a;
    }
    const m = selectTopK(act, N, k, heap);
    for (let j = 0; j < m; j++) {
      idx[r * k + j] = heap[j];
      val[r * k + j] = Math.max(act[heap[j]], 0);
    }
  }
  return { rows, k, idx, val };
}

/**
 * BatchTopK at evaluation, per token (shaders/batch-topk.wgsl THETA_EVAL): each row's top
 * min(N, 4k, 512) candidates, kept where val > max(θ, 0) (θ < 0: not learned yet, every positive
 * candidate kept). No batch-level cut, so a row's code does not depend on the other rows.
 */
function encodeBatchTopK(
  params: ParamsF32,
  x: ArrayLike<number>,
  rows: number,
  d: number,
  k: number,
  theta: number,
): SparseCodes {
  const N = params.b_enc.length;
  const cap = Math.min(N, 4 * k, 512);
  const codes = encodeSparse(params, x, rows, d, cap, 'topk');
  const th = Math.max(theta, 0);
  for (let e = 0; e < codes.val.length; e++) if (!(codes.val[e] > th)) codes.val[e] = 0;
  return codes;
}

/**
 * Indices of the k largest entries of a[0..n) into out[0..k), sorted by (value desc, index asc).
 * "Worse" = smaller value, or equal value and larger index; the root of the min-heap is the worst
 * kept entry. Scanning in index order, an equal value never displaces a kept one (lower id wins).
 * @returns k
 */
export function selectTopK(a: ArrayLike<number>, n: number, k: number, out: Int32Array): number {
  const worse = (i: number, j: number) => a[i] < a[j] || (a[i] === a[j] && i > j);
  let size = 0;
  const siftDown = (pos: number) => {
    for (;;) {
      const l = 2 * pos + 1;
      if (l >= size) return;
      const r = l + 1;
      const w = r < size && worse(out[r], out[l]) ? r : l;
      if (!worse(out[w], out[pos])) return;
      const t = out[w];
      out[w] = out[pos];
      out[pos] = t;
      pos = w;
    }
  };
  for (let i = 0; i < n; i++) {
    if (size < k) {
      let pos = size++;
      out[pos] = i;
      while (pos > 0) {
        const parent = (pos - 1) >> 1;
        if (!worse(out[pos], out[parent])) break;
        const t = out[pos];
        out[pos] = out[parent];
        out[parent] = t;
        pos = parent;
      }
    } else if (worse(out[0], i)) {
      out[0] = i;
      siftDown(0);
    }
  }
  const sorted = Array.from(out.subarray(0, size)).sort((i, j) => a[j] - a[i] || i - j);
  out.set(sorted);
  return size;
}

/**
 * x̂ [rows, d] = Σ_j val[r,j]·W_dec[idx[r,j]] + b_pre (float32 output, float64 sums).
 * @param out optional destination of at least rows·d floats
 */
export function reconstruct(
  params: ParamsF32,
  codes: SparseCodes,
  d: number,
  out?: Float32Array,
): Float32Array {
  const { rows, k, idx, val } = codes;
  const { W_dec, b_pre } = params;
  const res = out ?? new Float32Array(rows * d);
  const acc = new Float64Array(d);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < d; c++) acc[c] = b_pre[c];
    for (let j = 0; j < k; j++) {
      const i = idx[r * k + j];
      const v = val[r * k + j];
      if (i === NONE || v === 0) continue;
      const o = i * d;
      for (let c = 0; c < d; c++) acc[c] += v * W_dec[o + c];
    }
    for (let c = 0; c < d; c++) res[r * d + c] = acc[c];
  }
  return res;
}

/** Concatenates code batches (same k) into one. */
export function concatCodes(parts: readonly SparseCodes[]): SparseCodes {
  if (parts.length === 0) return { rows: 0, k: 0, idx: new Uint32Array(0), val: new Float32Array(0) };
  const k = parts[0].k;
  let rows = 0;
  for (const p of parts) {
    if (p.k !== k) throw new Error(`concatCodes: k ${p.k} ≠ ${k}`);
    rows += p.rows;
  }
  const idx = new Uint32Array(rows * k);
  const val = new Float32Array(rows * k);
  let o = 0;
  for (const p of parts) {
    idx.set(p.idx.subarray(0, p.rows * k), o);
    val.set(p.val.subarray(0, p.rows * k), o);
    o += p.rows * k;
  }
  return { rows, k, idx, val };
}

/**
 * Codes regrouped by latent (compressed sparse columns): latent i's nonzero entries are
 * row[start[i] .. start[i+1]) with values val[...], rows ascending. Only entries with
 * val > threshold are kept. Built with a counting sort, O(rows·k + N).
 */
export interface LatentCsc {
  N: number;
  rows: number;
  /** [N + 1] */
  start: Uint32Array;
  /** [nnz] */
  row: Uint32Array;
  /** [nnz] */
  val: Float32Array;
}

export function codesByLatent(codes: SparseCodes, N: number, threshold = 0): LatentCsc {
  const { rows, k, idx, val } = codes;
  const count = new Uint32Array(N + 1);
  for (let e = 0; e < rows * k; e++) if (idx[e] !== NONE && val[e] > threshold) count[idx[e] + 1]++;
  for (let i = 0; i < N; i++) count[i + 1] += count[i];
  const start = count.slice();
  const nnz = start[N];
  const row = new Uint32Array(nnz);
  const v = new Float32Array(nnz);
  const fill = count; // reused as the write cursor per latent
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < k; j++) {
      const e = r * k + j;
      const i = idx[e];
      if (i === NONE || !(val[e] > threshold)) continue;
      const p = fill[i]++;
      row[p] = r;
      v[p] = val[e];
    }
  }
  return { N, rows, start, row, val: v };
}

/** Dense activations of one latent over all rows [rows] (0 where it did not fire). */
export function latentColumn(csc: LatentCsc, latent: number, out?: Float32Array): Float32Array {
  const col = out ?? new Float32Array(csc.rows);
  col.fill(0);
  for (let p = csc.start[latent]; p < csc.start[latent + 1]; p++) col[csc.row[p]] = csc.val[p];
  return col;
}

/**
 * Encodes x in batches and yields each batch's codes and reconstruction; the loop a GPU
 * backend replaces. Memory per batch: O(batch·(k + d)).
 */
export function* encodeBatches(
  params: ParamsF32,
  x: Float32Array | Float64Array,
  rows: number,
  d: number,
  k: number,
  batchRows = 1024,
): Generator<{ start: number; x: Float32Array | Float64Array; codes: SparseCodes; xhat: Float32Array }> {
  for (let s = 0; s < rows; s += batchRows) {
    const n = Math.min(batchRows, rows - s);
    const xb = x.subarray(s * d, (s + n) * d);
    const codes = encodeSparse(params, xb, n, d, k);
    yield { start: s, x: xb, codes, xhat: reconstruct(params, codes, d) };
  }
}
