import { describe, expect, it } from 'vitest';
import { BoundedCurve } from '../../../src/sae/bounded-curve';

describe('BoundedCurve', () => {
  it('keeps every point while under the bound', () => {
    const c = new BoundedCurve<number>(8);
    for (let i = 0; i < 8; i++) c.push(i);
    expect(c.points).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('stays within max + 1 over a long run, evenly spaced, the first and the newest point kept', () => {
    const c = new BoundedCurve<number>(100);
    for (let i = 0; i < 100_000; i++) {
      c.push(i);
      expect(c.points.length).toBeLessThanOrEqual(101);
      expect(c.points.at(-1)).toBe(i);
    }
    const body = c.points.slice(0, -1);
    expect(body[0]).toBe(0);
    const gaps = new Set(body.slice(1).map((p, j) => p - body[j]));
    // One stride for the whole kept body: a power of two.
    expect(gaps.size).toBe(1);
    const stride = [...gaps][0];
    expect(Math.log2(stride) % 1).toBe(0);
    expect(body.length).toBeGreaterThan(50);
    // The body covers the run: its last kept point is within one stride of the end.
    expect(100_000 - 1 - body.at(-1)!).toBeLessThanOrEqual(stride);
  });

  it('reset() starts from a saved curve', () => {
    const c = new BoundedCurve<number>(4);
    c.reset([10, 11, 12]);
    c.push(13);
    expect(c.points).toEqual([10, 11, 12, 13]);
    c.push(14);
    expect(c.points.length).toBeLessThanOrEqual(5);
    expect(c.points.at(-1)).toBe(14);
    expect(c.points[0]).toBe(10);
  });
});
