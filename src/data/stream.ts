/**
 * Streaming over an ActivationSource: a shuffling batcher that skips the held-out split
 * (holdout.ts). Memory is bounded by the shuffle buffer plus the chunks in flight,
 * independent of the file size. The statistics scan is in stats.ts.
 */
import { DataError } from './errors.ts';
import { defaultBlockRows, HoldoutSplit } from './holdout.ts';
import { Rng } from './rng.ts';
import { defaultChunkRows, type NonFinitePolicy, nonFiniteError, rowIsFinite } from './rows.ts';
import type { ActivationSource } from './source.ts';

export interface BatcherOptions {
  /** Rows per Blob read. Default defaultChunkRows(d): about 4 MB of float32 per read. */
  chunkRows?: number;
  /** Shuffle buffer capacity in rows (raised to chunkRows if smaller). Default: 256 MB of float32 rows. */
  shuffleRows?: number;
  /** Chunk reads kept in flight ahead of use. Default 2. */
  prefetch?: number;
  /** Seed for chunk order and in-buffer sampling. Default 0. */
  seed?: number;
  /** Fraction of rows held out (never emitted for training). Default 0. */
  heldOutFraction?: number;
  /** Held-out block size in rows. Default defaultBlockRows(rows). */
  heldOutBlockRows?: number;
  /** What to do with rows containing NaN/Inf. Default 'stop'. */
  nonFinite?: NonFinitePolicy;
}

interface LoadedChunk {
  data: Float32Array;
  rowIds: Float64Array;
  count: number;
  /** Non-finite rows dropped (policy 'skip'); counted when the chunk is consumed, not read. */
  skippedRows: number[];
}

interface InflightChunk {
  /** Chunk index (what to re-read when restoring a saved state). */
  index: number;
  chunk: Promise<LoadedChunk>;
  /** Read pass (epoch) this chunk belongs to. */
  pass: number;
  /** True for the last chunk of its pass. */
  last: boolean;
}

/** A Batcher's position (getState / setState); JSON-serializable. */
export interface BatcherState {
  version: 1;
  rows: number;
  d: number;
  chunkRows: number;
  capacity: number;
  orderRng: number[];
  sampleRng: number[];
  order: number[];
  cursor: number;
  schedPass: number;
  inflight: { index: number; pass: number; last: boolean }[];
  /** shuffle-buffer row ids in buffer order: base64 of little-endian float64 */
  bufIds: string;
  bufPass: number;
  bufPassComplete: boolean;
  emitted: number;
  completed: number;
  finiteInFirstPass: number;
  skipped: number;
  firstSkipped: number[];
}

function encodeIds(ids: Float64Array): string {
  const b = new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
  let s = '';
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

function decodeIds(s: string): Float64Array {
  const bin = atob(s);
  const out = new Float64Array(bin.length / 8);
  const b = new Uint8Array(out.buffer);
  for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
  return out;
}

/**
 * Shuffling batcher. Each epoch visits the training chunks in a fresh random order
 * (from the seeded Rng); chunk rows enter a shuffle buffer, and each emitted row is
 * drawn uniformly from the buffer, which is topped up a chunk at a time. Epochs are
 * exact: the buffer drains before the next epoch's first chunk enters it, so every
 * training row (that passes the non-finite policy) is emitted exactly once per epoch.
 * The output stream is a deterministic function of (source, options): reads are
 * awaited in a fixed order, so I/O timing cannot change it.
 *
 * Memory: min(shuffleRows, rows)·d floats (+ row ids) plus `prefetch` chunks of chunkRows·d.
 */
export class Batcher {
  readonly source: ActivationSource;
  readonly d: number;
  readonly split: HoldoutSplit;
  readonly chunkRows: number;
  readonly capacity: number;
  readonly policy: NonFinitePolicy;
  /** Chunk order and in-buffer sampling use separate streams, so how far ahead reads
   * are scheduled (prefetch) cannot shift the sampling sequence. */
  private readonly orderRng: Rng;
  private readonly sampleRng: Rng;
  private readonly prefetchDepth: number;

  /** Training chunk indices with at least one training row. */
  private readonly chunks: Uint32Array;
  private order: Uint32Array;
  private cursor = 0;
  /** Pass index of the chunks being scheduled. */
  private schedPass = 0;
  private inflight: InflightChunk[] = [];

  private readonly buf: Float32Array;
  private readonly bufIds: Float64Array;
  private count = 0;
  /** Pass the rows in the buffer belong to, and whether its last chunk is in. */
  private bufPass = 0;
  private bufPassComplete = false;

  private emitted = 0;
  private completed = 0;
  private finiteInFirstPass = 0;
  private skipped = 0;
  private readonly firstSkippedRows: number[] = [];
  private lastIds: Float64Array = new Float64Array(0);

  constructor(source: ActivationSource, opts: BatcherOptions = {}) {
    this.source = source;
    this.d = source.d;
    this.chunkRows = Math.max(1, Math.floor(opts.chunkRows ?? defaultChunkRows(this.d)));
    this.capacity = Math.max(this.chunkRows, Math.floor(opts.shuffleRows ?? (256 << 20) / (this.d * 4)));
    this.prefetchDepth = Math.max(1, Math.floor(opts.prefetch ?? 2));
    this.policy = opts.nonFinite ?? 'stop';
    this.orderRng = Rng.derive(opts.seed ?? 0, 0);
    this.sampleRng = Rng.derive(opts.seed ?? 0, 1);
    this.split = new HoldoutSplit(
      source.rows,
      opts.heldOutFraction ?? 0,
      opts.heldOutBlockRows ?? defaultBlockRows(source.rows),
    );
    if (this.split.trainRows === 0)
      throw new DataError(source.name, 'no training rows left after the held-out split');
    const nChunks = Math.ceil(source.rows / this.chunkRows);
    const keep: number[] = [];
    for (let c = 0; c < nChunks; c++) {
      if (
        this.split.fraction === 0 ||
        this.split.trainRowsIn(c * this.chunkRows, Math.min(source.rows, (c + 1) * this.chunkRows)) > 0
      ) {
        keep.push(c);
      }
    }
    this.chunks = Uint32Array.from(keep);
    this.order = this.orderRng.shuffle(this.chunks.slice());
    // The buffer only ever holds rows of one pass, so it needs no more rows than the source has: the
    // demo's 40,960 × 64 rows took 10 MB, not 256 MB (bench --only soak). The logical capacity, which
    // decides when a chunk is taken, is unchanged: the same stream and the same saved state.
    const rows = Math.min(this.capacity, source.rows);
    this.buf = new Float32Array(rows * this.d);
    this.bufIds = new Float64Array(rows);
  }

  /** Training rows per epoch before dropping non-finite rows. */
  get trainRows(): number {
    return this.split.trainRows;
  }

  /** Complete epochs emitted (every training row emitted `epoch` times so far). */
  get epoch(): number {
    return this.completed;
  }

  /** Total rows emitted so far. */
  get rowsEmitted(): number {
    return this.emitted;
  }

  /** Rows dropped under the 'skip' policy (counted each time they are read). */
  get skippedRows(): number {
    return this.skipped;
  }

  /** Distinct row indices (up to 10, in read order) dropped as non-finite. */
  get firstSkipped(): readonly number[] {
    return this.firstSkippedRows;
  }

  /** Source row index of each row of the last batch (for token lookups). */
  get lastRowIds(): Float64Array {
    return this.lastIds;
  }

  /** Reads one chunk and keeps its training, (policy-)finite rows. */
  private async load(chunk: number): Promise<LoadedChunk> {
    const d = this.d;
    const start = chunk * this.chunkRows;
    const n = Math.min(this.source.rows, start + this.chunkRows) - start;
    const data = await this.source.readRows(start, n);
    const rowIds = new Float64Array(n);
    const skippedRows: number[] = [];
    let w = 0;
    for (let r = 0; r < n; r++) {
      const row = start + r;
      if (this.split.fraction > 0 && this.split.isHeldOut(row)) continue;
      if (!rowIsFinite(data, r, d)) {
        if (this.policy === 'stop') throw nonFiniteError(this.source, row);
        skippedRows.push(row);
        continue;
      }
      if (w !== r) data.copyWithin(w * d, r * d, (r + 1) * d);
      rowIds[w++] = row;
    }
    return { data, rowIds, count: w, skippedRows };
  }

  /** Starts reads for upcoming chunks, continuing into the next epoch's order if needed. */
  private fillPrefetch(): void {
    while (this.inflight.length < this.prefetchDepth) {
      if (this.cursor === this.order.length) {
        this.order = this.orderRng.shuffle(this.chunks.slice());
        this.cursor = 0;
        this.schedPass++;
      }
      const index = this.order[this.cursor++];
      const chunk = this.load(index);
      chunk.catch(() => {}); // surfaced when awaited; avoid unhandled-rejection noise meanwhile
      this.inflight.push({ index, chunk, pass: this.schedPass, last: this.cursor === this.order.length });
    }
  }

  /** Awaits the oldest in-flight chunk and appends it to the buffer. */
  private async appendChunk(): Promise<void> {
    const f = this.inflight.shift()!;
    const c = await f.chunk;
    this.fillPrefetch();
    const d = this.d;
    for (const row of c.skippedRows) {
      this.skipped++;
      if (this.firstSkippedRows.length < 10 && !this.firstSkippedRows.includes(row))
        this.firstSkippedRows.push(row);
    }
    this.buf.set(c.data.subarray(0, c.count * d), this.count * d);
    this.bufIds.set(c.rowIds.subarray(0, c.count), this.count);
    this.count += c.count;
    this.bufPass = f.pass;
    this.bufPassComplete = f.last;
    if (this.count === 0 && f.last) {
      // The epoch's last chunk had no usable rows and the buffer is already empty.
      this.completed = f.pass + 1;
      this.bufPassComplete = false;
    }
    if (f.pass === 0) {
      this.finiteInFirstPass += c.count;
      if (f.last && this.finiteInFirstPass === 0) {
        throw new DataError(this.source.name, `all ${this.split.trainRows} training rows contain NaN or Inf`);
      }
    }
  }

  /**
   * Next batch of B training rows, drawn from the shuffle buffer.
   * @param out optional [B*d] array to fill and return. Reusing one matters for
   *            speed: a fresh multi-MB array costs a page fault per 4 KB on first write.
   * @returns Float32Array [B, d] row-major. Row ids are in `lastRowIds`.
   */
  async nextBatch(B: number, out?: Float32Array): Promise<Float32Array> {
    const d = this.d;
    if (out && out.length < B * d)
      throw new RangeError(`nextBatch: out has ${out.length} floats, need ${B * d}`);
    out ??= new Float32Array(B * d);
    const ids = new Float64Array(B);
    for (let i = 0; i < B; i++) {
      // Top up: take the next chunk whenever it fits and belongs to the buffer's epoch,
      // or whenever the buffer is empty. Each take is awaited at a point fixed by
      // `count`, hence deterministic.
      for (;;) {
        this.fillPrefetch();
        const next = this.inflight[0];
        const fits = this.count + this.chunkRows <= this.capacity && next.pass === this.bufPass;
        if (this.count > 0 && !fits) break;
        await this.appendChunk();
      }
      const j = this.sampleRng.nextInt(this.count);
      out.set(this.buf.subarray(j * d, (j + 1) * d), i * d);
      ids[i] = this.bufIds[j];
      const last = this.count - 1;
      if (j !== last) {
        this.buf.copyWithin(j * d, last * d, (last + 1) * d);
        this.bufIds[j] = this.bufIds[last];
      }
      this.count = last;
      this.emitted++;
      if (this.count === 0 && this.bufPassComplete) {
        this.completed = this.bufPass + 1;
        this.bufPassComplete = false;
      }
    }
    this.lastIds = ids;
    return out;
  }

  /**
   * Where the stream is, as plain JSON-able data, taken synchronously between batches: chunk
   * order and cursor, epoch counters, both RNG states, the chunks scheduled ahead (by index), and
   * the shuffle buffer as its source row ids in buffer order (the rows are re-read on restore).
   * A Batcher built with the same source and options and given this state by setState() emits
   * exactly the batches this one would have emitted next.
   */
  getState(): BatcherState {
    return {
      version: 1,
      rows: this.source.rows,
      d: this.d,
      chunkRows: this.chunkRows,
      capacity: this.capacity,
      orderRng: this.orderRng.getState(),
      sampleRng: this.sampleRng.getState(),
      order: Array.from(this.order),
      cursor: this.cursor,
      schedPass: this.schedPass,
      inflight: this.inflight.map((f) => ({ index: f.index, pass: f.pass, last: f.last })),
      bufIds: encodeIds(this.bufIds.subarray(0, this.count)),
      bufPass: this.bufPass,
      bufPassComplete: this.bufPassComplete,
      emitted: this.emitted,
      completed: this.completed,
      finiteInFirstPass: this.finiteInFirstPass,
      skipped: this.skipped,
      firstSkipped: [...this.firstSkippedRows],
    };
  }

  /**
   * Restores a state from getState() into this Batcher (same source and options, nothing read
   * from it yet): re-reads the buffered rows, one read per chunk touched, and re-schedules the
   * chunks that were in flight.
   * @throws Error when the state was taken with another source shape or chunk/buffer size
   */
  async setState(s: BatcherState): Promise<void> {
    if (s.version !== 1) throw new Error(`batcher state version ${s.version} is not supported`);
    if (s.rows !== this.source.rows || s.d !== this.d)
      throw new Error(
        `batcher state is for a dataset of ${s.rows} rows × ${s.d}, not ${this.source.rows} × ${this.d}`,
      );
    if (s.chunkRows !== this.chunkRows || s.capacity !== this.capacity)
      throw new Error(
        `batcher state has chunkRows ${s.chunkRows} / capacity ${s.capacity}, this batcher ${this.chunkRows} / ${this.capacity}`,
      );
    if (this.emitted !== 0 || this.inflight.length !== 0) throw new Error('setState needs a fresh Batcher');
    const ids = decodeIds(s.bufIds);
    if (ids.length > this.capacity) throw new Error('batcher state: buffer larger than capacity');
    // Re-read the buffered rows, grouped by chunk.
    const d = this.d;
    const byChunk = new Map<number, number[]>();
    for (let i = 0; i < ids.length; i++) {
      const c = Math.floor(ids[i] / this.chunkRows);
      const l = byChunk.get(c);
      if (l) l.push(i);
      else byChunk.set(c, [i]);
    }
    for (const [c, slots] of byChunk) {
      const start = c * this.chunkRows;
      const n = Math.min(this.source.rows, start + this.chunkRows) - start;
      const data = await this.source.readRows(start, n);
      for (const i of slots) {
        const r = ids[i] - start;
        this.buf.set(data.subarray(r * d, (r + 1) * d), i * d);
      }
    }
    this.bufIds.set(ids);
    this.count = ids.length;
    this.orderRng.setState(s.orderRng);
    this.sampleRng.setState(s.sampleRng);
    this.order = Uint32Array.from(s.order);
    this.cursor = s.cursor;
    this.schedPass = s.schedPass;
    this.bufPass = s.bufPass;
    this.bufPassComplete = s.bufPassComplete;
    this.emitted = s.emitted;
    this.completed = s.completed;
    this.finiteInFirstPass = s.finiteInFirstPass;
    this.skipped = s.skipped;
    this.firstSkippedRows.length = 0;
    this.firstSkippedRows.push(...s.firstSkipped);
    this.inflight = s.inflight.map((f) => {
      const chunk = this.load(f.index);
      chunk.catch(() => {});
      return { index: f.index, chunk, pass: f.pass, last: f.last };
    });
  }

  /** Held-out row ranges [start, end) in file order. */
  heldOutRanges(): Generator<[number, number]> {
    return this.split.heldOutRanges();
  }

  /**
   * Held-out rows in file order, as batches of up to `batchRows` rows (the last may
   * be shorter). Non-finite rows follow the policy (dropped or thrown).
   * @yields { data: Float32Array [n, d], rowIds: Float64Array [n] }
   */
  async *heldOutBatches(
    batchRows: number,
    maxRows = Infinity,
  ): AsyncGenerator<{ data: Float32Array; rowIds: Float64Array }> {
    const d = this.d;
    let data = new Float32Array(batchRows * d);
    let rowIds = new Float64Array(batchRows);
    let n = 0;
    let total = 0;
    for (const [s, e] of this.split.heldOutRanges()) {
      for (let a = s; a < e && total < maxRows; a += this.chunkRows) {
        const cnt = Math.min(e, a + this.chunkRows) - a;
        const x = await this.source.readRows(a, cnt);
        for (let r = 0; r < cnt && total < maxRows; r++) {
          if (!rowIsFinite(x, r, d)) {
            if (this.policy === 'stop') throw nonFiniteError(this.source, a + r);
            continue;
          }
          data.set(x.subarray(r * d, (r + 1) * d), n * d);
          rowIds[n++] = a + r;
          total++;
          if (n === batchRows) {
            yield { data, rowIds };
            data = new Float32Array(batchRows * d);
            rowIds = new Float64Array(batchRows);
            n = 0;
          }
        }
      }
    }
    if (n > 0) yield { data: data.slice(0, n * d), rowIds: rowIds.slice(0, n) };
  }

  /** Up to `maxRows` held-out rows in file order as one [n, d] array (an evaluation set). */
  async readHeldOut(maxRows: number): Promise<Float32Array> {
    const parts: Float32Array[] = [];
    for await (const b of this.heldOutBatches(Math.min(maxRows, 8192), maxRows)) parts.push(b.data);
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}
