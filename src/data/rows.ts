/**
 * Per-row helpers shared by the batcher (stream.ts) and the statistics scan (stats.ts): the
 * non-finite policy, the finiteness test and its error, and the default read size.
 */
import { DataError } from './errors.ts';
import type { ActivationSource } from './source.ts';

export type NonFinitePolicy = 'skip' | 'stop';

/** True if all d values of row `r` of `x` are finite (x*0 is NaN exactly for NaN and ±Inf). */
export function rowIsFinite(x: Float32Array, r: number, d: number): boolean {
  let s = 0;
  const o = r * d;
  for (let k = 0; k < d; k++) s += x[o + k] * 0;
  return s === 0;
}

export function nonFiniteError(source: ActivationSource, row: number): DataError {
  const loc = source.locate ? source.locate(row) : { file: source.name, row };
  return new DataError(
    loc.file,
    `row ${loc.row} contains NaN or Inf (non-finite policy 'stop'; choose 'skip' to drop such rows)`,
  );
}

/**
 * Rows per read so that one read is about 4 MB of float32: large enough that per-slice
 * overhead is negligible, small enough that chunk order still shuffles finely and a
 * read never stalls a training step for long.
 */
export function defaultChunkRows(d: number): number {
  return Math.max(16, Math.min(65536, Math.round((4 << 20) / (d * 4))));
}
