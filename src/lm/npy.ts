/**
 * Minimal .npy (format version 1.0) writer and reader for the LM pipeline:
 * little-endian '<f4', '<f2', '<i4', C order only. The full-featured reader for
 * user data lives in src/data; this one exists so src/lm, its tests and the
 * extraction CLI have no dependency on it.
 *
 * Header: "\x93NUMPY" 0x01 0x00, uint16 header length, then an ASCII dict
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (n, d), }` padded with
 * spaces and a final '\n' so that the data starts at a multiple of 64 bytes.
 */

export type NpyDescr = '<f4' | '<f2' | '<i4';

export interface NpyArray {
  descr: NpyDescr;
  shape: number[];
  /** Float32Array for '<f4', Int32Array for '<i4', Uint16Array (raw half bits) for '<f2'. */
  data: Float32Array | Int32Array | Uint16Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** The header bytes (magic … '\n') for an array; its length is a multiple of 64. */
export function npyHeader(descr: NpyDescr, shape: readonly number[]): Uint8Array {
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const unpadded = 10 + dict.length + 1;
  dict += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  if (dict.length > 0xffff) throw new Error('npy header too long for format 1.0');
  const out = new Uint8Array(10 + dict.length);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  out[8] = dict.length & 0xff;
  out[9] = dict.length >> 8;
  for (let i = 0; i < dict.length; i++) out[10 + i] = dict.charCodeAt(i);
  return out;
}

/** Whole .npy file for a typed array (the host is assumed little endian, as every WebGPU host is). */
export function encodeNpy(
  descr: NpyDescr,
  shape: readonly number[],
  data: Float32Array | Int32Array | Uint16Array,
): Uint8Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length)
    throw new Error(`npy: shape (${shape.join(', ')}) has ${n} elements but data has ${data.length}`);
  const header = npyHeader(descr, shape);
  const out = new Uint8Array(header.length + data.byteLength);
  out.set(header, 0);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), header.length);
  return out;
}

/** Parses a v1/v2 .npy with descr '<f4', '<f2' or '<i4' in C order. */
export function decodeNpy(buf: ArrayBuffer | ArrayBufferView, name = 'npy'): NpyArray {
  const bytes =
    buf instanceof Uint8Array
      ? buf
      : ArrayBuffer.isView(buf)
        ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
        : new Uint8Array(buf);
  for (let i = 0; i < 6; i++)
    if (bytes[i] !== MAGIC[i]) throw new Error(`${name}: not a .npy file (bad magic)`);
  const major = bytes[6];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  let dict = '';
  for (let i = 0; i < headerLen; i++) dict += String.fromCharCode(bytes[start + i]);
  const descr = /'descr':\s*'([^']+)'/.exec(dict)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(dict)?.[1];
  const shapeStr = /'shape':\s*\(([^)]*)\)/.exec(dict)?.[1];
  if (descr !== '<f4' && descr !== '<i4' && descr !== '<f2')
    throw new Error(`${name}: unsupported dtype ${descr}`);
  if (fortran !== 'False') throw new Error(`${name}: fortran_order arrays are not supported`);
  if (shapeStr === undefined) throw new Error(`${name}: no shape in header`);
  const shape = shapeStr
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLen;
  const itemSize = descr === '<f2' ? 2 : 4;
  if (bytes.byteLength - dataStart !== n * itemSize) {
    throw new Error(
      `${name}: ${bytes.byteLength - dataStart} data bytes for shape (${shape.join(', ')}) of ${descr}`,
    );
  }
  // Copy so the result is aligned regardless of the source buffer's offset.
  // (Buffer.prototype.slice would return a view into node's shared pool, hence the explicit copy.)
  const copy = new Uint8Array(n * itemSize);
  copy.set(bytes.subarray(dataStart));
  const raw = copy.buffer;
  const data =
    descr === '<f4' ? new Float32Array(raw) : descr === '<i4' ? new Int32Array(raw) : new Uint16Array(raw);
  return { descr, shape, data };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE binary16 bits of a float, round to nearest even; overflow → ±Inf, NaN kept. */
export function toHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // Subnormal half (or zero): shift the implicit-1 mantissa right, rounding to nearest even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rem > mid || (rem === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and may reach Inf).
  return sign | (half + (rem > 0x1000 || (rem === 0x1000 && half & 1) ? 1 : 0));
}

/** Float value of IEEE binary16 bits. */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Float32 → binary16 bits, elementwise. */
export function toHalfArray(a: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = toHalfBits(a[i]);
  return out;
}
