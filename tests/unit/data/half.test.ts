import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32,
  decodeBf16,
  decodeF16,
  encodeBf16,
  encodeF16,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
} from '../../../src/data/half.ts';
import { Rng } from '../../../src/data/rng.ts';

/** Reference: value of half h computed in float64 from the definition. */
function halfValue(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? Number.NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -24;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Reference rounding: nearest half by exhaustive search over the finite halves (ties to even). */
function refF32ToF16(x: number): number {
  x = Math.fround(x);
  if (Number.isNaN(x)) return 0x7e00;
  const neg = x < 0 || Object.is(x, -0);
  const a = Math.abs(x);
  if (a >= 65520) return (neg ? 0x8000 : 0) | 0x7c00; // 65504 + half ulp(32) rounds up to inf
  let lo = 0;
  let hi = 0x7bff;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (halfValue(mid) <= a) lo = mid;
    else hi = mid - 1;
  }
  let h = lo;
  if (h < 0x7bff) {
    const d0 = a - halfValue(h);
    const d1 = halfValue(h + 1) - a;
    if (d1 < d0 || (d1 === d0 && (h & 1) === 1)) h++;
  }
  return (neg ? 0x8000 : 0) | h;
}

describe('float16', () => {
  it('decodes all 65536 patterns exactly and re-encodes them to themselves', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const out = new Float32Array(65536);
    decodeF16(all, out);
    for (let h = 0; h < 65536; h++) {
      const v = halfValue(h);
      if (Number.isNaN(v)) {
        expect(Number.isNaN(out[h])).toBe(true);
        expect(Number.isNaN(f16BitsToF32(h))).toBe(true);
        // NaN re-encodes to a NaN (quiet bit set), sign kept
        const r = f32ToF16Bits(out[h]);
        expect(r & 0x7c00).toBe(0x7c00);
        expect(r & 0x3ff).not.toBe(0);
        expect(r & 0x8000).toBe(h & 0x8000);
      } else {
        if (!Object.is(out[h], v)) throw new Error(`half ${h.toString(16)} decoded to ${out[h]}, want ${v}`);
        expect(f16BitsToF32(h)).toBe(v);
        if (f32ToF16Bits(v) !== h)
          throw new Error(`half ${h.toString(16)} re-encoded to ${f32ToF16Bits(v).toString(16)}`);
      }
    }
  });

  it('rounds to nearest even like the reference on random, tie and edge values', () => {
    const rng = new Rng(1);
    const xs: number[] = [
      0,
      -0,
      1,
      -1,
      65504,
      65519.99,
      65520,
      70000,
      -70000,
      2 ** -24,
      2 ** -25,
      2 ** -25 * 1.0001,
      2 ** -26,
      6.1e-5,
      6.097e-5,
      1e-30,
    ];
    // exact ties between neighbouring halves
    for (const h of [1, 2, 0x3ff, 0x400, 0x3c00, 0x3c01, 0x7bfe])
      xs.push((halfValue(h) + halfValue(h + 1)) / 2);
    for (let i = 0; i < 20000; i++) xs.push((rng.nextFloat() - 0.5) * 2 ** (rng.nextInt(44) - 28));
    for (const x of xs) {
      const got = f32ToF16Bits(x);
      const want = refF32ToF16(x);
      if (got !== want) throw new Error(`f16(${x}) = ${got.toString(16)}, want ${want.toString(16)}`);
    }
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
    expect(f32ToF16Bits(-Infinity)).toBe(0xfc00);
    expect(f32ToF16Bits(Number.NaN) & 0x7fff).toBeGreaterThan(0x7c00);
  });

  it('bulk encode/decode round trip', () => {
    const x = Float32Array.from([1.5, -2.25, 1e-7, 3e5, Number.NaN, -0]);
    const back = new Float32Array(x.length);
    decodeF16(encodeF16(x), back);
    expect(Array.from(back)).toEqual([1.5, -2.25, 2 * 2 ** -24, Infinity, Number.NaN, -0]);
  });
});

describe('bfloat16', () => {
  it('round trip of every pattern, rounding ties to even, NaN/Inf/subnormal', () => {
    for (let h = 0; h < 65536; h++) {
      const v = bf16BitsToF32(h);
      if (Number.isNaN(v)) expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(v)))).toBe(true);
      else expect(f32ToBf16Bits(v)).toBe(h);
    }
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie -> even (down)
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie -> even (up)
    expect(f32ToBf16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81); // above tie
    expect(f32ToBf16Bits(3.4e38)).toBe(0x7f80); // rounds past max -> inf
    expect(f32ToBf16Bits(-Infinity)).toBe(0xff80);
    expect(bf16BitsToF32(0x0001)).toBe(2 ** -133); // subnormal
    const back = new Float32Array(3);
    decodeBf16(encodeBf16([Math.PI, -1e-40, 65504]), back);
    expect(Array.from(back)).toEqual([3.140625, bf16BitsToF32(f32ToBf16Bits(-1e-40)), 65536]);
  });
});
