import { describe, expect, it } from 'vitest';
import { grid2d } from '../../src/gpu/pipelines';
import { encodeRef } from '../../src/reference/encode';

describe('grid2d', () => {
  it('keeps small counts 1-D and splits large ones within the limit, covering every workgroup', () => {
    expect(grid2d(10)).toEqual([10, 1]);
    for (const n of [65535, 65536, 1_000_003, 5_000_000]) {
      const [x, y] = grid2d(n);
      expect(x).toBeLessThanOrEqual(65535);
      expect(y).toBeLessThanOrEqual(65535);
      expect(x * y).toBeGreaterThanOrEqual(n);
      expect(x * (y - 1)).toBeLessThan(n);
    }
  });
});

describe('encodeRef', () => {
  it('computes (x - b_pre)·W_encᵀ + b_enc', () => {
    // B=2, d=2, N=3 worked by hand.
    const x = [1, 2, 3, 4];
    const b_pre = [1, 1];
    const W_enc = [1, 0, 0, 1, 1, 1];
    const b_enc = [0, 10, -1];
    expect([...encodeRef(x, b_pre, W_enc, b_enc, 2, 2, 3)]).toEqual([0, 11, 0, 2, 13, 4]);
  });
});
