/**
 * NumPy .npy reader (format versions 1.0, 2.0, 3.0) and a small writer: the one .npy code of the
 * project (activation files, the LM extractor's output, the test fixtures).
 *
 * Layout (numpy/lib/format.py): magic "\x93NUMPY", major, minor, header length
 * (uint16 LE for v1, uint32 LE for v2/v3), then an ASCII (v3: UTF-8) Python dict
 * literal {'descr': '<f4', 'fortran_order': False, 'shape': (n, d), } padded so the
 * data starts on a 16/64-byte boundary, then the raw array bytes.
 *
 * openNpy reads only the header up front; rows are Blob slices read on demand. decodeNpy reads a
 * whole small array already in memory.
 */
import { DataError, fmtShape } from './errors.ts';
import {
  type ActivationSource,
  byteSwapInPlace,
  checkDataFits,
  checkRowRange,
  contiguousSource,
  decodeFloats,
  FLOAT_ITEMSIZE,
  type FloatDtype,
  HOST_LITTLE_ENDIAN,
} from './source.ts';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Parsed .npy header. `descr` is numpy's dtype string, e.g. '<f4', '|u1', '>i8'. */
export interface NpyHeader {
  version: [number, number];
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  /** Byte offset of the array data from the start of the .npy bytes. */
  dataOffset: number;
}

/** Kind of element a descr denotes, with byte order resolved. */
export interface NpyDtype {
  kind: 'f' | 'i' | 'u' | 'b' | 'other';
  itemsize: number;
  littleEndian: boolean;
}

/** True if the first bytes are the .npy magic. */
export function isNpyMagic(b: Uint8Array): boolean {
  return b.length >= 6 && MAGIC.every((m, i) => b[i] === m);
}

/** Splits a numpy descr such as '<f4' / '>i8' / '|u1' / 'float32' into kind, size, byte order. */
export function parseDescr(descr: string): NpyDtype {
  const m = /^([<>|=]?)([fiub])(\d+)$/.exec(descr);
  if (!m) return { kind: 'other', itemsize: 0, littleEndian: true };
  // '=' means native, which numpy never writes to files; treat it and '|' as little-endian.
  return { kind: m[2] as NpyDtype['kind'], itemsize: Number(m[3]), littleEndian: m[1] !== '>' };
}

/**
 * Parses the header from the first bytes of a .npy file.
 * @param head  at least the first 10 bytes; if the header is longer, `needMore` is
 *              returned with the total header size so the caller can read more.
 */
export function parseNpyHeader(head: Uint8Array, file: string): NpyHeader | { needMore: number } {
  if (head.length === 0) throw new DataError(file, 'file is empty (0 bytes)');
  if (!isNpyMagic(head)) {
    throw new DataError(
      file,
      `not a .npy file: wrong magic bytes ${hexPrefix(head)} (expected 93 4e 55 4d 50 59 = \\x93NUMPY)`,
    );
  }
  if (head.length < 10) throw new DataError(file, `truncated .npy header (${head.length} bytes)`);
  const major = head[6];
  const minor = head[7];
  let headerLen: number;
  let start: number;
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (head.length < 12) throw new DataError(file, `truncated .npy header (${head.length} bytes)`);
    headerLen = dv.getUint32(8, true);
    start = 12;
  } else {
    throw new DataError(file, `unsupported .npy format version ${major}.${minor} (know 1.0, 2.0, 3.0)`);
  }
  const dataOffset = start + headerLen;
  if (head.length < dataOffset) return { needMore: dataOffset };
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(head.subarray(start, dataOffset));
  return { version: [major, minor], dataOffset, ...parseHeaderDict(text, file) };
}

/** Parses the Python dict literal of a .npy header (the three keys numpy writes). */
function parseHeaderDict(text: string, file: string): Pick<NpyHeader, 'descr' | 'fortranOrder' | 'shape'> {
  const bad = (what: string): DataError =>
    new DataError(file, `malformed .npy header (${what}): ${JSON.stringify(text.trim().slice(0, 120))}`);
  const t = text.trim();
  if (!t.startsWith('{')) throw bad('not a dict');
  let descr: string;
  const dm = /['"]descr['"]\s*:\s*(['"])(.*?)\1/.exec(t);
  if (dm) descr = dm[2];
  else if (/['"]descr['"]\s*:\s*\[/.test(t)) descr = 'structured';
  else throw bad("no 'descr'");
  const fm = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(t);
  if (!fm) throw bad("no 'fortran_order'");
  const sm = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(t);
  if (!sm) throw bad("no 'shape'");
  const shape: number[] = [];
  for (const part of sm[1].split(',')) {
    const p = part.trim().replace(/L$/, ''); // Python 2 longs: (10L, 3L)
    if (p === '') continue;
    if (!/^\d+$/.test(p)) throw bad(`shape entry '${p}'`);
    shape.push(Number(p));
  }
  return { descr, fortranOrder: fm[1] === 'True', shape };
}

function hexPrefix(b: Uint8Array): string {
  return Array.from(b.subarray(0, 6), (x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** Reads and parses the header of a .npy stored in `blob` (reads only the header bytes). */
export async function readNpyHeader(blob: Blob, file: string): Promise<NpyHeader> {
  if (blob.size === 0) throw new DataError(file, 'file is empty (0 bytes)');
  let head = new Uint8Array(await blob.slice(0, Math.min(blob.size, 4096)).arrayBuffer());
  let h = parseNpyHeader(head, file);
  if ('needMore' in h) {
    if (h.needMore > blob.size) {
      throw new DataError(
        file,
        `truncated .npy header: header claims ${h.needMore} bytes, file has ${blob.size}`,
      );
    }
    head = new Uint8Array(await blob.slice(0, h.needMore).arrayBuffer());
    h = parseNpyHeader(head, file);
    if ('needMore' in h) throw new DataError(file, 'malformed .npy header length');
  }
  return h;
}

/** Maps a float descr to our dtype name; explains why anything else can't be activations. */
function activationDtype(descr: string, file: string): { dtype: FloatDtype; littleEndian: boolean } {
  const dt = parseDescr(descr);
  if (dt.kind === 'f') {
    const dtype = ({ 2: 'float16', 4: 'float32', 8: 'float64' } as Record<number, FloatDtype>)[dt.itemsize];
    if (dtype) return { dtype, littleEndian: dt.littleEndian };
    throw new DataError(file, `float dtype ${descr} is not supported (use float16, float32 or float64)`);
  }
  if (dt.kind === 'i' || dt.kind === 'u' || dt.kind === 'b') {
    throw new DataError(
      file,
      `dtype ${descr} is ${dt.kind === 'b' ? 'boolean' : 'integer'}, not float activations (token ids belong in a sidecar file)`,
    );
  }
  if (descr === '|O' || descr === 'O') {
    throw new DataError(
      file,
      'dtype object (|O) holds pickled Python objects, not activations; save a float array',
    );
  }
  if (descr === 'structured')
    throw new DataError(file, 'structured (record) dtype is not an activation matrix');
  throw new DataError(file, `dtype ${descr} is not a float type this reader supports`);
}

/**
 * Turns a numpy shape into [rows, d]: [n, d] -> (n, d); [b, s, d] -> (b*s, d).
 * Anything else is refused with a message saying what to do.
 */
function rowsAndWidth(shape: readonly number[], file: string): [number, number] {
  if (shape.length === 2) return [shape[0], shape[1]];
  if (shape.length === 3) return [shape[0] * shape[1], shape[2]];
  if (shape.length === 1) {
    throw new DataError(
      file,
      `1-D array of shape ${fmtShape(shape)}: activations must be 2-D [rows, d] or 3-D [batch, seq, d] (for a flat dump, reshape it or open it as raw with a width)`,
    );
  }
  throw new DataError(
    file,
    `${shape.length}-D array of shape ${fmtShape(shape)}: expected 2-D [rows, d] or 3-D [batch, seq, d]`,
  );
}

/**
 * Opens a .npy of float activations lazily.
 * 2-D [n, d] or 3-D [batch, seq, d] (flattened to rows batch*seq); C order, or
 * Fortran order for 2-D (each readRows then does d column slices, so it is slow on
 * large files: np.ascontiguousarray before saving avoids that).
 */
export async function openNpy(blob: Blob, file: string): Promise<ActivationSource> {
  const h = await readNpyHeader(blob, file);
  const { dtype, littleEndian } = activationDtype(h.descr, file);
  const [rows, d] = rowsAndWidth(h.shape, file);
  const itemsize = FLOAT_ITEMSIZE[dtype];
  const need = checkDataFits(file, fmtShape(h.shape), rows * d, itemsize, blob.size - h.dataOffset);
  // np.save writes exactly the array after the header. More bytes than the shape needs mean the
  // header is not the one written with the data (an edited shape, descr or header length would
  // otherwise read as a different, silently wrong matrix), so they are refused too.
  if (blob.size - h.dataOffset !== need) {
    throw new DataError(
      file,
      `${blob.size - h.dataOffset} bytes after the header, but shape ${fmtShape(h.shape)} of ${h.descr} needs exactly ${need}: corrupt header or extra data`,
    );
  }
  if (rows === 0 || d === 0) throw new DataError(file, `array of shape ${fmtShape(h.shape)} has no data`);
  if (!h.fortranOrder || rows === 1 || d === 1) {
    // With one row or one column, Fortran and C order are the same bytes.
    return contiguousSource({
      blob,
      name: file,
      dataOffset: h.dataOffset,
      rows,
      d,
      dtype,
      littleEndian,
      shape: h.shape,
    });
  }
  if (h.shape.length !== 2) {
    throw new DataError(
      file,
      `Fortran-order ${h.shape.length}-D array is not supported; save np.ascontiguousarray(x) instead`,
    );
  }
  return fortranSource(blob, file, h.dataOffset, rows, d, dtype, littleEndian, h.shape);
}

/**
 * Fortran-order [n, d]: column j is the contiguous run of n elements at j*n. Reading
 * rows [s, s+c) gathers c elements from each of the d columns and transposes.
 * Columns are fetched in parallel groups to overlap the per-slice latency.
 */
function fortranSource(
  blob: Blob,
  name: string,
  dataOffset: number,
  rows: number,
  d: number,
  dtype: FloatDtype,
  littleEndian: boolean,
  shape: number[],
): ActivationSource {
  const itemsize = FLOAT_ITEMSIZE[dtype];
  const GROUP = 64;
  return {
    name,
    rows,
    d,
    dtype,
    shape,
    byteSize: rows * d * itemsize,
    async readRows(start: number, count: number): Promise<Float32Array> {
      checkRowRange(name, rows, start, count);
      const out = new Float32Array(count * d);
      if (count === 0) return out;
      const col = new Float32Array(count);
      for (let j0 = 0; j0 < d; j0 += GROUP) {
        const j1 = Math.min(d, j0 + GROUP);
        const bufs = await Promise.all(
          Array.from({ length: j1 - j0 }, (_, k) => {
            const a = dataOffset + ((j0 + k) * rows + start) * itemsize;
            return blob.slice(a, a + count * itemsize).arrayBuffer();
          }),
        );
        for (let k = 0; k < bufs.length; k++) {
          decodeFloats(bufs[k], 0, count, dtype, littleEndian, col);
          const j = j0 + k;
          for (let i = 0; i < count; i++) out[i * d + j] = col[i];
        }
      }
      return out;
    },
  };
}

/**
 * The header bytes of a version-1.0 .npy (magic, length, dict, padding) for data
 * that follows it: lets large files be written in pieces (benchmarks, CLI export and extract).
 * @param descr numpy dtype string, e.g. '<f4', '<f2', '<i4'
 * @param minBytes the header is at least this long (a multiple of 64 keeps it exact)
 */
export function npyHeaderBytes(descr: string, shape: readonly number[], minBytes = 0): Uint8Array {
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${fmtShape(shape)}, }`;
  // numpy pads with spaces and a final newline so magic+len+header is a multiple of 64; minBytes
  // lets a header written before the row count was known be rewritten in place at the same length.
  const total = Math.ceil((10 + Math.max(dict.length + 1, minBytes - 10)) / 64) * 64;
  dict = dict.padEnd(total - 10 - 1, ' ') + '\n';
  const headerLen = dict.length;
  if (headerLen > 65535) throw new RangeError('npyHeaderBytes: header too long for format 1.0');
  const out = new Uint8Array(10 + headerLen);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, headerLen, true);
  for (let i = 0; i < headerLen; i++) out[10 + i] = dict.charCodeAt(i);
  return out;
}

/** The dtypes writeNpy writes and decodeNpy reads, by typed array. */
type NpyData = Float32Array | Int32Array | Uint16Array;
const descrOf = (data: NpyData): NpyArray['descr'] =>
  data instanceof Float32Array ? '<f4' : data instanceof Int32Array ? '<i4' : '<f2';

/**
 * Serializes an array as a version-1.0 .npy (C order).
 * @param data  row-major values; Float32Array -> '<f4', Int32Array -> '<i4', Uint16Array (binary16
 *              bit patterns, half.ts encodeF16) -> '<f2'
 * @param shape numpy shape; its product must equal data.length
 */
export function writeNpy(data: NpyData, shape: readonly number[]): Uint8Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length)
    throw new RangeError(`writeNpy: shape ${fmtShape(shape)} has ${n} elements, data has ${data.length}`);
  const header = npyHeaderBytes(descrOf(data), shape);
  const out = new Uint8Array(header.length + data.byteLength);
  out.set(header, 0);
  // Data bytes in little-endian; typed arrays are host order, so swap on a BE host.
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), header.length);
  if (!HOST_LITTLE_ENDIAN) byteSwapInPlace(out.subarray(header.length), data.BYTES_PER_ELEMENT);
  return out;
}

/** A whole array read by decodeNpy. */
export interface NpyArray {
  descr: '<f4' | '<i4' | '<f2';
  shape: number[];
  /** Float32Array for '<f4', Int32Array for '<i4', Uint16Array (binary16 bit patterns) for '<f2'. */
  data: NpyData;
}

/**
 * Reads a whole .npy held in memory (v1/v2/v3; '<f4', '<i4' or '<f2'; C order) into a fresh,
 * aligned typed array: for small arrays such as the test fixtures and the extractor's output.
 */
export function decodeNpy(buf: ArrayBuffer | ArrayBufferView, file = 'npy'): NpyArray {
  const bytes = ArrayBuffer.isView(buf)
    ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
    : new Uint8Array(buf);
  const h = parseNpyHeader(bytes, file);
  if ('needMore' in h) {
    throw new DataError(
      file,
      `truncated .npy header: header claims ${h.needMore} bytes, file has ${bytes.length}`,
    );
  }
  const { descr, shape } = h;
  if (descr !== '<f4' && descr !== '<i4' && descr !== '<f2')
    throw new DataError(file, `dtype ${descr}: decodeNpy reads '<f4', '<i4' and '<f2'`);
  if (h.fortranOrder && shape.length > 1)
    throw new DataError(file, 'Fortran-order arrays are not supported here');
  const itemsize = descr === '<f2' ? 2 : 4;
  const need = shape.reduce((a, b) => a * b, 1) * itemsize;
  if (bytes.length - h.dataOffset !== need) {
    throw new DataError(
      file,
      `${bytes.length - h.dataOffset} data bytes for shape ${fmtShape(shape)} of ${descr} (${need} expected)`,
    );
  }
  // A copy, so the result is aligned wherever the bytes sit (node's Buffers share a pool).
  const copy = new Uint8Array(need);
  copy.set(bytes.subarray(h.dataOffset));
  if (!HOST_LITTLE_ENDIAN) byteSwapInPlace(copy, itemsize);
  const data =
    descr === '<f4'
      ? new Float32Array(copy.buffer)
      : descr === '<i4'
        ? new Int32Array(copy.buffer)
        : new Uint16Array(copy.buffer);
  return { descr, shape, data };
}
