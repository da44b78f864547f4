/**
 * IEEE binary16 (float16) and bfloat16 <-> float32 conversion.
 *
 * Scalar helpers work on raw 16-bit patterns (numbers 0..65535). Bulk helpers work
 * on typed arrays and are what the readers use: f16 decode goes through a 64K-entry
 * lookup table (256 KB, built once on first use) because a table read is several
 * times faster than the branchy bit manipulation in a JS loop.
 *
 * Rounding float32 -> half is round-to-nearest, ties-to-even (what numpy's
 * `astype(np.float16)` and torch's `.half()` / `.bfloat16()` do). NaN stays NaN
 * (quieted, sign kept), +-Inf stays +-Inf, values past the half range overflow to
 * +-Inf, tiny values become subnormals or signed zero.
 */

// Scratch views for bit casts of one float32.
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 bit pattern (as a uint32 number) of `x` after rounding it to float32. */
function f32Bits(x: number): number {
  f32Scratch[0] = x;
  return u32Scratch[0];
}

/** The float32 whose bit pattern is `bits`. */
function bitsToF32(bits: number): number {
  u32Scratch[0] = bits >>> 0;
  return f32Scratch[0];
}

/**
 * Rounds `x` (first to float32, as a GPU would hold it) to the nearest binary16 and
 * returns its 16-bit pattern. Ties go to even.
 */
export function f32ToF16Bits(x: number): number {
  const b = f32Bits(x);
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) {
    // Inf stays Inf; NaN keeps its top payload bits and is forced quiet (bit 9).
    return mant === 0 ? sign | 0x7c00 : sign | 0x7c00 | 0x200 | (mant >>> 13);
  }
  const e = exp - 127 + 15; // exponent in half's bias
  if (e >= 0x1f) return sign | 0x7c00; // >= 2^16: overflow even before rounding
  if (e <= 0) {
    // Result is a half subnormal m * 2^-24 (or zero). m = full >> (14 - e), where
    // full is the 24-bit significand with its implicit 1.
    if (e < -10) return sign; // below 2^-25: rounds to zero (2^-25 exactly is a tie -> even = 0)
    const full = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let m = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (m & 1) !== 0)) m++; // m may carry to 0x400 = smallest normal
    return sign | m;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // Carry out of the mantissa increments the exponent, and 0x7bff + 1 = 0x7c00 = Inf: both correct.
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++;
  return h;
}

/** float32 bit pattern of the binary16 `h` (exact: every half is a float32). */
function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // Inf / NaN (payload kept)
  if (exp !== 0) return (sign | ((exp - 15 + 127) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0; // signed zero
  // Subnormal: normalize. value = mant * 2^-24.
  let m = mant;
  let e = -14;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | ((e + 127) << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** Value of the binary16 bit pattern `h`. */
export function f16BitsToF32(h: number): number {
  return bitsToF32(f16BitsToF32Bits(h & 0xffff));
}

/** bfloat16 bit pattern of `x` (rounded to float32 first), round-to-nearest-even; NaN stays (quiet) NaN. */
export function f32ToBf16Bits(x: number): number {
  const b = f32Bits(x);
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return ((b >>> 16) | 0x40) & 0xffff;
  // Adding 0x7fff plus the lsb of the kept half rounds to nearest with ties to even;
  // overflow of the largest finite values correctly lands on Inf.
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Value of the bfloat16 bit pattern `h` (exact). */
export function bf16BitsToF32(h: number): number {
  return bitsToF32((h & 0xffff) << 16);
}

let f16Table: Float32Array | null = null;

/** 65536-entry table: f16Table[h] = value of half h. Built lazily, 256 KB. */
function getF16Table(): Float32Array {
  if (f16Table === null) {
    const bits = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) bits[h] = f16BitsToF32Bits(h);
    f16Table = new Float32Array(bits.buffer);
  }
  return f16Table;
}

/**
 * Decodes binary16 patterns `src[i]` into `out[outOffset + i]`.
 * @param src   [n] half bit patterns (host byte order)
 * @param out   float32 destination with room for n values from outOffset
 */
export function decodeF16(src: Uint16Array, out: Float32Array, outOffset = 0): void {
  const t = getF16Table();
  const n = src.length;
  for (let i = 0; i < n; i++) out[outOffset + i] = t[src[i]];
}

/**
 * Decodes bfloat16 patterns into float32: a bfloat16 is the top half of a float32,
 * so this is a shift through a uint32 view of `out`.
 */
export function decodeBf16(src: Uint16Array, out: Float32Array, outOffset = 0): void {
  const o = new Uint32Array(out.buffer, out.byteOffset + outOffset * 4, src.length);
  const n = src.length;
  for (let i = 0; i < n; i++) o[i] = src[i] << 16;
}

/** Encodes float32 values as binary16 patterns, [n] -> [n]. */
export function encodeF16(src: Float32Array | readonly number[]): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]);
  return out;
}

/** Encodes float32 values as bfloat16 patterns, [n] -> [n]. */
export function encodeBf16(src: Float32Array | readonly number[]): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToBf16Bits(src[i]);
  return out;
}
