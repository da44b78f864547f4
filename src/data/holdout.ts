/**
 * The held-out split (HoldoutSplit). Rows are grouped into contiguous blocks of
 * `blockRows` rows; block i is held out iff floor((i+1)·f) > floor(i·f), which marks
 * exactly floor(nBlocks·f) blocks spread evenly through the dataset (every ~1/f-th
 * block). Blocks rather than single rows, because neighbouring rows are tokens of the
 * same document and would leak context between the splits; spread out rather than
 * the tail, because files are often ordered (by source, by time) and a tail would
 * be a different distribution. The split depends only on (rows, f, blockRows), not
 * on the seed, so runs with different seeds are evaluated on the same rows. The
 * training batcher (stream.ts) filters every row it reads through the split, so a
 * held-out row is never emitted for training.
 */

/** Default held-out block: ~1000 blocks per dataset so the fraction has 0.1% resolution, at most 1024 rows. */
export function defaultBlockRows(rows: number): number {
  return Math.max(1, Math.min(1024, Math.floor(rows / 1000)));
}

/** Deterministic held-out split of rows [0, rows) into train / held-out blocks (see file comment). */
export class HoldoutSplit {
  readonly rows: number;
  readonly fraction: number;
  readonly blockRows: number;
  readonly nBlocks: number;
  /** Number of held-out rows. */
  readonly heldOutRows: number;
  /** Number of training rows (rows - heldOutRows). */
  readonly trainRows: number;

  constructor(rows: number, fraction: number, blockRows = defaultBlockRows(rows)) {
    if (!(fraction >= 0 && fraction < 1))
      throw new RangeError(`held-out fraction must be in [0, 1), got ${fraction}`);
    if (!(Number.isInteger(blockRows) && blockRows > 0))
      throw new RangeError(`blockRows must be a positive integer, got ${blockRows}`);
    this.rows = rows;
    this.fraction = fraction;
    this.blockRows = blockRows;
    this.nBlocks = Math.ceil(rows / blockRows);
    let held = Math.floor(this.nBlocks * fraction) * blockRows;
    const last = this.nBlocks - 1;
    if (this.nBlocks > 0 && this.isBlockHeldOut(last)) held -= this.nBlocks * blockRows - rows; // partial last block
    this.heldOutRows = held;
    this.trainRows = rows - held;
  }

  isBlockHeldOut(block: number): boolean {
    return Math.floor((block + 1) * this.fraction) > Math.floor(block * this.fraction);
  }

  isHeldOut(row: number): boolean {
    return this.isBlockHeldOut(Math.floor(row / this.blockRows));
  }

  /** Training-row count in [start, end). O((end-start)/blockRows + 1). */
  trainRowsIn(start: number, end: number): number {
    let n = 0;
    for (let b = Math.floor(start / this.blockRows); b * this.blockRows < end; b++) {
      if (this.isBlockHeldOut(b)) continue;
      n += Math.min(end, (b + 1) * this.blockRows) - Math.max(start, b * this.blockRows);
    }
    return n;
  }

  /** Held-out row ranges [start, end) in file order, merged where blocks touch. */
  *heldOutRanges(): Generator<[number, number]> {
    if (this.fraction === 0) return;
    let cur: [number, number] | null = null;
    // Held-out blocks are ~1/f apart, so jump from one to the next instead of scanning all blocks.
    for (let k = 1; k <= Math.floor(this.nBlocks * this.fraction); k++) {
      // smallest block b with floor((b+1)f) >= k, i.e. the block where the k-th increment happens
      let b = Math.max(0, Math.ceil(k / this.fraction) - 1);
      while (b > 0 && Math.floor(b * this.fraction) >= k) b--;
      while (Math.floor((b + 1) * this.fraction) < k) b++;
      const s = b * this.blockRows;
      const e = Math.min(this.rows, s + this.blockRows);
      if (cur && cur[1] === s) cur[1] = e;
      else {
        if (cur) yield cur;
        cur = [s, e];
      }
    }
    if (cur) yield cur;
  }
}
