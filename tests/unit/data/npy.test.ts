import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeF16, f16BitsToF32 } from '../../../src/data/half.ts';
import { decodeNpy, npyHeaderBytes, writeNpy } from '../../../src/data/npy.ts';

const lmFixture = (name: string) =>
  decodeNpy(readFileSync(resolve(__dirname, '../../fixtures/lm', name)), name);

describe('npy', () => {
  it('writes v1 headers padded to 64 bytes that numpy accepts', () => {
    const h = npyHeaderBytes('<f4', [97651, 64]);
    expect(h.length % 64).toBe(0);
    const dict = new TextDecoder().decode(h.subarray(10));
    expect(dict).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(97651, 64\), \} *\n$/);
    expect(new TextDecoder().decode(npyHeaderBytes('<i4', [5]).subarray(10))).toContain("'shape': (5,)");
  });

  it('round-trips f4, i4 and f2', () => {
    const f = Float32Array.from([1.5, -2, 3.25, 0]);
    expect(Array.from(decodeNpy(writeNpy(f, [2, 2])).data)).toEqual(Array.from(f));
    const i = Int32Array.from([1, -7, 2 ** 31 - 1]);
    const di = decodeNpy(writeNpy(i, [3]));
    expect(di.descr).toBe('<i4');
    expect(di.shape).toEqual([3]);
    expect(Array.from(di.data)).toEqual(Array.from(i));
    const hf = decodeNpy(writeNpy(encodeF16(f), [4]));
    expect(hf.descr).toBe('<f2');
    expect(Array.from(hf.data, f16BitsToF32)).toEqual(Array.from(f));
    expect(() => writeNpy(f, [3])).toThrow(/3 elements/);
  });

  it('reads the numpy-written fixtures whole', () => {
    const r = lmFixture('stories260K_ref_resid.npy');
    expect(r.descr).toBe('<f4');
    expect(r.shape).toEqual([6, 128, 64]);
    expect(lmFixture('stories260K_ref_logits.npy').shape).toEqual([128, 512]);
  });

  it('refuses what it cannot read whole', () => {
    const f8 = npyHeaderBytes('<f8', [2]);
    const withData = new Uint8Array(f8.length + 16);
    withData.set(f8);
    expect(() => decodeNpy(withData, 'x.npy')).toThrow(/^x.npy: dtype <f8/);
    const cut = writeNpy(Float32Array.from([1, 2]), [2]).subarray(0, npyHeaderBytes('<f4', [2]).length + 6);
    expect(() => decodeNpy(cut, 'y.npy')).toThrow(
      /^y.npy: 6 data bytes for shape \(2,\) of <f4 \(8 expected\)/,
    );
  });
});
