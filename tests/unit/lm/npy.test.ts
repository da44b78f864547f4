import { describe, expect, it } from 'vitest';
import { decodeNpy, encodeNpy, fromHalfBits, npyHeader, toHalfArray, toHalfBits } from '../../../src/lm/npy';
import { fixture } from './helpers';

describe('npy', () => {
  it('writes v1 headers padded to 64 bytes that numpy accepts', () => {
    const h = npyHeader('<f4', [97651, 64]);
    expect(h.length % 64).toBe(0);
    const dict = new TextDecoder().decode(h.subarray(10));
    expect(dict).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(97651, 64\), \} *\n$/);
    expect(new TextDecoder().decode(npyHeader('<i4', [5]).subarray(10))).toContain("'shape': (5,)");
  });

  it('round-trips f4, i4 and f2', () => {
    const f = Float32Array.from([1.5, -2, 3.25, 0]);
    expect(Array.from(decodeNpy(encodeNpy('<f4', [2, 2], f)).data)).toEqual(Array.from(f));
    const i = Int32Array.from([1, -7, 2 ** 31 - 1]);
    const di = decodeNpy(encodeNpy('<i4', [3], i));
    expect(di.shape).toEqual([3]);
    expect(Array.from(di.data)).toEqual(Array.from(i));
    const hf = decodeNpy(encodeNpy('<f2', [4], toHalfArray(f)));
    expect(Array.from(hf.data, fromHalfBits)).toEqual(Array.from(f));
    expect(() => encodeNpy('<f4', [3], f)).toThrow(/3 elements/);
  });

  it('reads the numpy-written fixtures', () => {
    const r = fixture('stories260K_ref_resid.npy');
    expect(r.descr).toBe('<f4');
    expect(r.shape).toEqual([6, 128, 64]);
    expect(fixture('stories260K_ref_logits.npy').shape).toEqual([128, 512]);
  });

  it('converts to binary16 with round-to-nearest-even, subnormals and overflow', () => {
    expect(toHalfBits(1)).toBe(0x3c00);
    expect(toHalfBits(-2)).toBe(0xc000);
    expect(toHalfBits(65504)).toBe(0x7bff);
    expect(toHalfBits(65520)).toBe(0x7c00); // rounds up to Inf
    expect(toHalfBits(1e9)).toBe(0x7c00);
    expect(toHalfBits(2 ** -24)).toBe(0x0001);
    expect(toHalfBits(2 ** -25)).toBe(0x0000); // tie → even (0)
    expect(toHalfBits(3 * 2 ** -25)).toBe(0x0002); // 1.5 ulp → 2 (even)
    expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(toHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(Number.isNaN(fromHalfBits(toHalfBits(Number.NaN)))).toBe(true);
    for (const v of [0.1, -2.7, 7.0007, 1e-5, 12.9]) {
      expect(Math.abs(fromHalfBits(toHalfBits(v)) - v)).toBeLessThanOrEqual(
        Math.abs(v) * 2 ** -11 + 2 ** -25,
      );
    }
  });
});
