/**
 * The one-pass statistics scan over an ActivationSource (mean, E‖x‖², centered variance, scale,
 * non-finite rows) that normalization is computed from, and the 'stop' policy's check on it.
 */
import { DataError } from './errors.ts';
import type { HoldoutSplit } from './holdout.ts';
import { defaultChunkRows, rowIsFinite } from './rows.ts';
import type { ActivationSource } from './source.ts';

/** Result of computeStats. Means are over the finite rows counted. */
export interface ActivationStats {
  /** Finite rows included. */
  count: number;
  /** Rows read (finite + non-finite). */
  rowsRead: number;
  d: number;
  /** Mean vector [d]. */
  mean: Float64Array;
  /** E‖x‖². */
  meanSqNorm: number;
  /** E‖x − mean‖² (total variance). */
  meanSqNormCentered: number;
  /** Scalar s with E‖s·x‖² = d: sqrt(d / E‖x‖²). */
  scale: number;
  /** Largest |x_k| seen. */
  maxAbs: number;
  /** Rows containing NaN or Inf (excluded from the statistics above). */
  nonFiniteRows: number;
  /** First (up to 10) such row indices. */
  firstNonFinite: number[];
}

export interface StatsOptions {
  /** Rows per read. Default defaultChunkRows(d). */
  chunkRows?: number;
  /** Read only about this many rows, as evenly spaced chunks (a sample). Default: all. */
  maxRows?: number;
  /** If given, rows held out by this split are not counted. */
  split?: HoldoutSplit;
  /** Checked between chunks. */
  signal?: AbortSignal;
}

/**
 * One streaming pass computing the dataset statistics used for normalization.
 * Mean and centered variance are merged chunk by chunk (Chan et al.) in float64,
 * which stays accurate when the mean is large relative to the spread (residual
 * streams often have a few huge-mean dimensions). Memory: one chunk + O(d).
 * @param onProgress called after each chunk with (rowsRead, rowsToRead).
 * One function because the two passes over a chunk and the merge share the chunk's state.
 */
export async function computeStats(
  source: ActivationSource,
  onProgress?: (done: number, total: number) => void,
  opts: StatsOptions = {},
): Promise<ActivationStats> {
  const d = source.d;
  const chunkRows = Math.max(1, Math.floor(opts.chunkRows ?? defaultChunkRows(d)));
  const nChunks = Math.ceil(source.rows / chunkRows);
  // Which chunks to read: all, or an evenly spaced subset for a sample.
  let chunkList: number[];
  if (opts.maxRows !== undefined && opts.maxRows < source.rows) {
    const want = Math.max(1, Math.ceil(opts.maxRows / chunkRows));
    chunkList = Array.from({ length: want }, (_, i) => Math.floor((i * nChunks) / want));
  } else {
    chunkList = Array.from({ length: nChunks }, (_, i) => i);
  }
  const rowsOf = (c: number): [number, number] => [c * chunkRows, Math.min(source.rows, (c + 1) * chunkRows)];
  const total = chunkList.reduce((a, c) => a + rowsOf(c)[1] - rowsOf(c)[0], 0);

  const mean = new Float64Array(d);
  let m2 = 0; // Σ‖x − mean‖² over counted rows
  let sumSq = 0;
  let n = 0;
  let maxAbs = 0;
  let rowsRead = 0;
  let bad = 0;
  const firstBad: number[] = [];
  const cmean = new Float64Array(d);
  const split = opts.split && opts.split.fraction > 0 ? opts.split : undefined;

  let next: Promise<Float32Array> | null =
    chunkList.length > 0 ? source.readRows(...startCount(rowsOf(chunkList[0]))) : null;
  for (let ci = 0; ci < chunkList.length; ci++) {
    if (opts.signal?.aborted) throw new DOMException('computeStats aborted', 'AbortError');
    const [s, e] = rowsOf(chunkList[ci]);
    const x = await next!;
    // Overlap the next read with this chunk's arithmetic.
    next = ci + 1 < chunkList.length ? source.readRows(...startCount(rowsOf(chunkList[ci + 1]))) : null;
    next?.catch(() => {});
    const cnt = e - s;
    // Pass 1: chunk mean over counted rows.
    cmean.fill(0);
    let nb = 0;
    const use = new Uint8Array(cnt);
    for (let r = 0; r < cnt; r++) {
      if (split?.isHeldOut(s + r)) continue;
      if (!rowIsFinite(x, r, d)) {
        bad++;
        if (firstBad.length < 10) firstBad.push(s + r);
        continue;
      }
      use[r] = 1;
      nb++;
      const o = r * d;
      let sq = 0;
      for (let k = 0; k < d; k++) {
        const v = x[o + k];
        cmean[k] += v;
        sq += v * v;
        const a = v < 0 ? -v : v;
        if (a > maxAbs) maxAbs = a;
      }
      sumSq += sq;
    }
    rowsRead += cnt;
    if (nb > 0) {
      for (let k = 0; k < d; k++) cmean[k] /= nb;
      // Pass 2: chunk M2 around the chunk mean.
      let cm2 = 0;
      for (let r = 0; r < cnt; r++) {
        if (!use[r]) continue;
        const o = r * d;
        for (let k = 0; k < d; k++) {
          const t = x[o + k] - cmean[k];
          cm2 += t * t;
        }
      }
      // Chan merge of (n, mean, m2) with (nb, cmean, cm2).
      const nt = n + nb;
      let dd = 0;
      for (let k = 0; k < d; k++) {
        const delta = cmean[k] - mean[k];
        dd += delta * delta;
        mean[k] += (delta * nb) / nt;
      }
      m2 += cm2 + (dd * n * nb) / nt;
      n = nt;
    }
    onProgress?.(rowsRead, total);
  }
  const meanSqNorm = n > 0 ? sumSq / n : Number.NaN;
  return {
    count: n,
    rowsRead,
    d,
    mean,
    meanSqNorm,
    meanSqNormCentered: n > 0 ? m2 / n : Number.NaN,
    scale: n > 0 && meanSqNorm > 0 ? Math.sqrt(d / meanSqNorm) : Number.NaN,
    maxAbs,
    nonFiniteRows: bad,
    firstNonFinite: firstBad,
  };
}

function startCount([s, e]: [number, number]): [number, number] {
  return [s, e - s];
}

/**
 * Throws a DataError naming the file and the first offending rows if `stats` saw
 * any NaN/Inf rows (for the 'stop' policy before training starts).
 */
export function assertFinite(source: ActivationSource, stats: ActivationStats): void {
  if (stats.nonFiniteRows === 0) return;
  const first = stats.firstNonFinite[0];
  const loc = source.locate ? source.locate(first) : { file: source.name, row: first };
  throw new DataError(
    loc.file,
    `${stats.nonFiniteRows} row(s) contain NaN or Inf, first at row ${loc.row} (rows ${stats.firstNonFinite.join(', ')}${stats.nonFiniteRows > stats.firstNonFinite.length ? ', …' : ''} of the dataset)`,
  );
}
