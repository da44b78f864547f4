/**
 * Evaluation library: sparse codes → metrics. Pure TS (worker or node). The row-heavy part
 * (encodeSparse / reconstruct per batch) is the piece a GPU backend replaces; every metric
 * consumes only {x, codes, x̂} batches or the per-latent CSC built from codes.
 */
import type { ParamsF32 } from '../sae/step-buffers.ts';
import { encodeBatches, paramShape } from './codes.ts';
import { EvalAccumulator, type EvalReport } from './metrics.ts';

export * from './codes.ts';
export * from './dashboard.ts';
export * from './downstream.ts';
export * from './explain.ts';
export * from './metrics.ts';
export * from './probe.ts';
export * from './recovery.ts';

/**
 * Encodes x [rows, d] in batches with the CPU encoder and streams them through an accumulator.
 * @returns the report and the accumulator (for topRows)
 */
export function evaluateSae(
  params: ParamsF32,
  x: Float32Array,
  rows: number,
  k: number,
  opts: { batchRows?: number; topM?: number; fireThreshold?: number; mean?: ArrayLike<number> } = {},
): { report: EvalReport; acc: EvalAccumulator } {
  const { N, d } = paramShape(params);
  // nMSE's baseline μ: the dataset mean when given, else the mean of these rows (they are the dataset).
  const mean = opts.mean ?? rowMean(x, rows, d);
  const acc = new EvalAccumulator({ N, d, mean, topM: opts.topM, fireThreshold: opts.fireThreshold });
  for (const b of encodeBatches(params, x, rows, d, k, opts.batchRows)) acc.add(b.x, b.codes, b.xhat);
  return { report: acc.report(), acc };
}

/** [d] float64 mean of x [rows, d]. */
function rowMean(x: Float32Array, rows: number, d: number): Float64Array {
  const m = new Float64Array(d);
  for (let r = 0; r < rows; r++) for (let c = 0; c < d; c++) m[c] += x[r * d + c];
  for (let c = 0; c < d; c++) m[c] /= rows;
  return m;
}
