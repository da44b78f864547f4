/**
 * A .npy written row by row to a byte sink (a file in the browser's private file system, or memory
 * where there is none) without ever holding the whole array: the page's LM extraction streams its
 * rows through it (src/worker/extract-output.ts).
 *
 * The header is reserved at a fixed length before the row count is known and rewritten in place at
 * the end (as the CLI's extract does with node's fs). Rows are gathered into one preallocated chunk
 * of at most `chunkRows` rows and written a chunk at a time, so the writer holds one chunk whatever
 * the array's length, and the sink sees few large writes (each OPFS write is a call into the browser
 * process) rather than one per window.
 */
import { f32ToF16Bits } from './half';
import { npyHeaderBytes } from './npy';
import type { OpfsFile } from './opfs';
import { byteSwapInPlace, HOST_LITTLE_ENDIAN } from './source';

/** Where a streamed file's bytes go. */
export interface ByteSink {
  /** writes `bytes` at byte offset `at` (the end of what is written, or over an earlier write) */
  write(bytes: Uint8Array, at: number): Promise<void>;
  /** finishes the file and returns it, readable in chunks (an OPFS File is backed by disk) */
  close(): Promise<Blob>;
  /** drops what was written (a cancelled or failed extraction) */
  abort(): Promise<void>;
}

/** Header bytes reserved before the row count is known: room for a 16-digit count (then rewritten). */
const HEADER_BYTES = 128;

/** Element types written here, numpy's descr for each. */
export type NpyRowDtype = '<f4' | '<f2' | '<i4';

/**
 * A sink on an OPFS file through createWritable (Chromium, Firefox, Safari 17+): writes go to a swap
 * file on disk that replaces the file on close, and abort() discards it, so a cancelled extraction
 * never leaves a partial file under the name.
 */
export async function opfsSink(h: OpfsFile): Promise<ByteSink> {
  if (!h.createWritable) throw new Error('OPFS file handles here do not support createWritable');
  const w = (await h.createWritable()) as Awaited<ReturnType<NonNullable<OpfsFile['createWritable']>>> & {
    write(p: { type: 'write'; position: number; data: BufferSource }): Promise<void>;
  };
  return {
    write: (bytes, at) => w.write({ type: 'write', position: at, data: bytes as Uint8Array<ArrayBuffer> }),
    async close() {
      await w.close();
      return h.getFile();
    },
    async abort() {
      await w.abort?.().catch(() => {});
    },
  };
}

/**
 * A sink in memory (no private file system here): the parts are kept as written and become one Blob
 * on close. A write at an earlier offset must replace one earlier part exactly (the header).
 */
export function memorySink(): ByteSink {
  const parts: Uint8Array[] = [];
  const offsets: number[] = [];
  let end = 0;
  return {
    async write(bytes, at) {
      if (at === end) {
        parts.push(bytes.slice());
        offsets.push(at);
        end += bytes.length;
        return;
      }
      const i = offsets.indexOf(at);
      if (i < 0 || parts[i].length !== bytes.length)
        throw new RangeError(`memorySink: a write at ${at} must append or replace one earlier write`);
      parts[i] = bytes.slice();
    },
    async close() {
      return new Blob(parts as Uint8Array<ArrayBuffer>[]);
    },
    async abort() {
      parts.length = 0;
    },
  };
}

/**
 * Rows of `width` elements appended to a .npy of shape [rows, width] (or [rows] when `width` is 1
 * and `vector`), `descr` as stored; float32 input is rounded to float16 for '<f2' (ties to even).
 */
export class NpyRowWriter {
  /** rows written to the sink so far (not counting the chunk being filled) */
  private flushed = 0;
  /** rows in the chunk being filled */
  private pending = 0;
  private readonly chunk: Float32Array | Uint16Array | Int32Array;
  private readonly rowBytes: number;
  private started = false;

  /**
   * @param chunkRows most rows held before they are written (≥ 1)
   * @param vector shape [rows] rather than [rows, 1] (token ids, positions)
   */
  constructor(
    private readonly sink: ByteSink,
    private readonly descr: NpyRowDtype,
    private readonly width: number,
    readonly chunkRows: number,
    private readonly vector = false,
  ) {
    if (!(Number.isInteger(width) && width >= 1)) throw new RangeError(`row width ${width}`);
    if (!(Number.isInteger(chunkRows) && chunkRows >= 1)) throw new RangeError(`chunk of ${chunkRows} rows`);
    const n = chunkRows * width;
    this.chunk =
      descr === '<f4' ? new Float32Array(n) : descr === '<f2' ? new Uint16Array(n) : new Int32Array(n);
    this.rowBytes = width * this.chunk.BYTES_PER_ELEMENT;
  }

  /** Rows written or held so far. */
  get rows(): number {
    return this.flushed + this.pending;
  }

  private header(rows: number): Uint8Array {
    const shape = this.vector ? [rows] : [rows, this.width];
    const h = npyHeaderBytes(this.descr, shape, HEADER_BYTES);
    if (h.length !== HEADER_BYTES) throw new Error(`npy header of ${h.length} bytes, not ${HEADER_BYTES}`);
    return h;
  }

  /** Appends `values.length / width` rows (row-major); full chunks are written before this returns. */
  async append(values: Float32Array | Int32Array): Promise<void> {
    if (!this.started) {
      this.started = true;
      await this.sink.write(this.header(1e15), 0); // a placeholder count of the final header's length
    }
    const w = this.width;
    if (values.length % w !== 0) throw new RangeError(`${values.length} values are not rows of ${w}`);
    const rows = values.length / w;
    for (let r = 0; r < rows; ) {
      const take = Math.min(rows - r, this.chunkRows - this.pending);
      const src = values.subarray(r * w, (r + take) * w);
      const at = this.pending * w;
      if (this.chunk instanceof Uint16Array)
        for (let i = 0; i < src.length; i++) this.chunk[at + i] = f32ToF16Bits(src[i]);
      else this.chunk.set(src, at);
      this.pending += take;
      r += take;
      if (this.pending === this.chunkRows) await this.flush();
    }
  }

  private async flush(): Promise<void> {
    if (this.pending === 0) return;
    const bytes = new Uint8Array(this.chunk.buffer, 0, this.pending * this.rowBytes);
    // .npy data is little-endian; typed arrays are host order
    if (!HOST_LITTLE_ENDIAN) byteSwapInPlace(bytes, this.chunk.BYTES_PER_ELEMENT);
    await this.sink.write(bytes, HEADER_BYTES + this.flushed * this.rowBytes);
    this.flushed += this.pending;
    this.pending = 0;
  }

  /** Writes the last chunk and the header with the final row count; returns the file. */
  async finish(): Promise<Blob> {
    if (!this.started) await this.sink.write(this.header(0), 0);
    await this.flush();
    await this.sink.write(this.header(this.flushed), 0);
    return this.sink.close();
  }

  /** Drops the file (its sink discards what was written). */
  abort(): Promise<void> {
    return this.sink.abort();
  }
}

/** Rows per chunk so that one chunk of `rowBytes`-byte rows stays within `budget` bytes (≥ 1 row). */
export function chunkRowsFor(rowBytes: number, budget = 4 << 20): number {
  return Math.max(1, Math.floor(budget / rowBytes));
}
