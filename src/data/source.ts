/**
 * The one interface every activation reader produces, the float decoding shared by
 * all readers, and sharding (several files of the same width as one dataset).
 *
 * A source is a matrix of `rows` activation vectors of width `d`. Reading is lazy:
 * `readRows` slices the underlying Blob, so memory is proportional to the rows
 * asked for, never to the file.
 */

import { DataError, fmtBytes } from './errors.ts';
import { decodeBf16, decodeF16 } from './half.ts';

/** Float element types a reader can convert to float32. */
export type FloatDtype = 'float32' | 'float16' | 'bfloat16' | 'float64';

export const FLOAT_ITEMSIZE: Record<FloatDtype, number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
};

export interface ActivationSource {
  /** File name (or "a.npy + 3 more" for shards); used in error messages. */
  readonly name: string;
  /** Number of activation vectors (for 3-D files: batch * seq). */
  readonly rows: number;
  /** Width of each vector (model dimension). */
  readonly d: number;
  /** Element type as stored: 'float32' | 'float16' | 'bfloat16' | 'float64' (or 'mixed' for shards). */
  readonly dtype: string;
  /** Shape as stored in the file, e.g. [batch, seq, d]; [rows, d] for raw and shards. */
  readonly shape: number[];
  /** Bytes of stored tensor data (rows * d * itemsize), not counting headers. */
  readonly byteSize: number;
  /**
   * Reads rows [start, start + count) converted to float32, row-major.
   * @returns Float32Array of count * d values.
   */
  readRows(start: number, count: number): Promise<Float32Array>;
  /** Maps a row index to the file holding it and the row inside that file (for messages). */
  locate?(row: number): { file: string; row: number };
}

export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reverses the byte order of every `itemsize`-byte element of `bytes`, in place. */
export function byteSwapInPlace(bytes: Uint8Array, itemsize: number): void {
  const n = bytes.length - (bytes.length % itemsize);
  for (let i = 0; i < n; i += itemsize) {
    for (let a = i, b = i + itemsize - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

/**
 * Converts `count` elements of `dtype` stored in `buf` (which the caller owns and
 * which starts at an offset aligned to the itemsize) to float32 in `out` at `outOffset`.
 * `littleEndian` is the file's byte order; a mismatch with the host is fixed by
 * swapping `buf` in place first (why the caller must own it).
 */
export function decodeFloats(
  buf: ArrayBuffer,
  byteOffset: number,
  count: number,
  dtype: FloatDtype,
  littleEndian: boolean,
  out: Float32Array,
  outOffset = 0,
): void {
  const size = FLOAT_ITEMSIZE[dtype];
  if (littleEndian !== HOST_LITTLE_ENDIAN)
    byteSwapInPlace(new Uint8Array(buf, byteOffset, count * size), size);
  switch (dtype) {
    case 'float32':
      out.set(new Float32Array(buf, byteOffset, count), outOffset);
      return;
    case 'float64': {
      const src = new Float64Array(buf, byteOffset, count);
      for (let i = 0; i < count; i++) out[outOffset + i] = src[i];
      return;
    }
    case 'float16':
      decodeF16(new Uint16Array(buf, byteOffset, count), out, outOffset);
      return;
    case 'bfloat16':
      decodeBf16(new Uint16Array(buf, byteOffset, count), out, outOffset);
      return;
  }
}

/** Checks that [start, start+count) lies in [0, rows); programming errors are RangeErrors. */
export function checkRowRange(name: string, rows: number, start: number, count: number): void {
  if (
    !Number.isInteger(start) ||
    !Number.isInteger(count) ||
    start < 0 ||
    count < 0 ||
    start + count > rows
  ) {
    throw new RangeError(`${name}: rows [${start}, ${start + count}) out of range [0, ${rows})`);
  }
}

/**
 * Validates a claimed [rows, d] layout against the bytes actually present, before
 * any allocation. Throws a DataError naming the file when the header promises more
 * than the file holds.
 */
export function checkDataFits(
  file: string,
  shapeText: string,
  elements: number,
  itemsize: number,
  available: number,
): number {
  const need = elements * itemsize;
  if (!Number.isSafeInteger(elements) || !Number.isSafeInteger(need)) {
    throw new DataError(file, `shape ${shapeText} is impossibly large (corrupt header?)`);
  }
  if (need > available) {
    throw new DataError(
      file,
      `shape ${shapeText} needs ${fmtBytes(need)} of data but the file holds ${fmtBytes(available)} after the header (truncated file?)`,
    );
  }
  return need;
}

/**
 * A lazy source over a contiguous row-major [rows, d] block of `dtype` at
 * `dataOffset` in `blob`. Each readRows is one Blob slice.
 */
export function contiguousSource(p: {
  blob: Blob;
  name: string;
  dataOffset: number;
  rows: number;
  d: number;
  dtype: FloatDtype;
  littleEndian: boolean;
  shape: number[];
}): ActivationSource {
  const { blob, name, dataOffset, rows, d, dtype, littleEndian } = p;
  const itemsize = FLOAT_ITEMSIZE[dtype];
  const rowBytes = d * itemsize;
  return {
    name,
    rows,
    d,
    dtype,
    shape: p.shape,
    byteSize: rows * rowBytes,
    async readRows(start: number, count: number): Promise<Float32Array> {
      checkRowRange(name, rows, start, count);
      if (count === 0) return new Float32Array(0);
      const a = dataOffset + start * rowBytes;
      const buf = await blob.slice(a, a + count * rowBytes).arrayBuffer();
      if (buf.byteLength !== count * rowBytes) {
        throw new DataError(name, `short read at row ${start}: file changed or truncated while reading`);
      }
      // float32 in host order: the fresh slice buffer already is the result (no copy).
      if (dtype === 'float32' && littleEndian === HOST_LITTLE_ENDIAN) return new Float32Array(buf);
      const out = new Float32Array(count * d);
      decodeFloats(buf, 0, count * d, dtype, littleEndian, out);
      return out;
    },
  };
}

/**
 * Concatenates sources of the same width into one dataset; row r of the result is
 * row r - offset[i] of shard i. One source is returned unchanged.
 * @throws DataError naming the first shard whose width differs.
 */
export function openShards(sources: readonly ActivationSource[]): ActivationSource {
  if (sources.length === 0) throw new DataError('(no files)', 'no activation files given');
  if (sources.length === 1) return sources[0];
  const d = sources[0].d;
  for (const s of sources) {
    if (s.d !== d) {
      throw new DataError(
        s.name,
        `width d=${s.d} differs from d=${d} of ${sources[0].name}; all shards of a dataset must have the same width`,
      );
    }
  }
  const offsets: number[] = [0];
  for (const s of sources) offsets.push(offsets[offsets.length - 1] + s.rows);
  const rows = offsets[offsets.length - 1];
  const dtypes = new Set(sources.map((s) => s.dtype));
  const name = `${sources[0].name} + ${sources.length - 1} more`;

  /** Index of the shard holding row r (binary search over offsets). */
  const shardOf = (r: number): number => {
    let lo = 0;
    let hi = sources.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (offsets[mid] <= r) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };

  return {
    name,
    rows,
    d,
    dtype: dtypes.size === 1 ? sources[0].dtype : 'mixed',
    shape: [rows, d],
    byteSize: sources.reduce((a, s) => a + s.byteSize, 0),
    async readRows(start: number, count: number): Promise<Float32Array> {
      checkRowRange(name, rows, start, count);
      const out = new Float32Array(count * d);
      let r = start;
      const end = start + count;
      while (r < end) {
        const i = shardOf(r);
        const local = r - offsets[i];
        const n = Math.min(end, offsets[i + 1]) - r;
        out.set(await sources[i].readRows(local, n), (r - start) * d);
        r += n;
      }
      return out;
    },
    locate(row: number) {
      const i = shardOf(row);
      const inner = sources[i].locate;
      return inner
        ? inner.call(sources[i], row - offsets[i])
        : { file: sources[i].name, row: row - offsets[i] };
    },
  };
}
