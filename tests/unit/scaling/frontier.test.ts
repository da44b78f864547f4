import { describe, expect, it } from 'vitest';
import {
  compareAtEqualL0,
  interpolateAtL0,
  overlapL0,
  paretoFront,
  paretoMask,
} from '../../../src/scaling/frontier';

const P = (l0: number, nmse: number, id = `${l0}`) => ({ l0, nmse, id });

describe('paretoFront', () => {
  it('keeps the non-dominated points, sorted by L0 with nMSE strictly decreasing', () => {
    const pts = [P(32, 0.1), P(8, 0.3), P(16, 0.35), P(4, 0.5), P(64, 0.12), P(16, 0.2), P(128, 0.05)];
    expect(paretoFront(pts).map((p) => [p.l0, p.nmse])).toEqual([
      [4, 0.5],
      [8, 0.3],
      [16, 0.2],
      [32, 0.1],
      [128, 0.05],
    ]);
    expect(paretoMask(pts)).toEqual([true, true, false, true, false, true, true]);
  });
  it('equal L0: the lower nMSE wins; exact duplicates keep one; non-finite and L0 ≤ 0 are dropped', () => {
    expect(paretoFront([P(8, 0.3, 'a'), P(8, 0.2, 'b'), P(8, 0.2, 'c')]).map((p) => p.id)).toEqual(['b']);
    expect(
      paretoFront([P(0, 0.1), P(Number.NaN, 0.1), P(4, Number.NaN), P(4, 0.4)]).map((p) => p.l0),
    ).toEqual([4]);
    expect(paretoFront([])).toEqual([]);
  });
});

describe('interpolateAtL0', () => {
  const front = [P(4, 0.4), P(16, 0.2), P(64, 0.1)];
  it('is exact at the points and linear in log L0 between them', () => {
    expect(interpolateAtL0(front, 4)).toBeCloseTo(0.4, 15);
    expect(interpolateAtL0(front, 16)).toBeCloseTo(0.2, 15);
    expect(interpolateAtL0(front, 8)).toBeCloseTo(0.3, 12); // log-midpoint of 4 and 16
    expect(interpolateAtL0(front, 32)).toBeCloseTo(0.15, 12);
    const x = 4 * 4 ** 0.25; // a quarter of the way in log
    expect(interpolateAtL0(front, x)).toBeCloseTo(0.35, 12);
  });
  it('is null outside the range and for an empty frontier; one point is defined only there', () => {
    expect(interpolateAtL0(front, 3.99)).toBeNull();
    expect(interpolateAtL0(front, 64.01)).toBeNull();
    expect(interpolateAtL0([], 8)).toBeNull();
    expect(interpolateAtL0([P(8, 0.2)], 8)).toBe(0.2);
    expect(interpolateAtL0([P(8, 0.2)], 9)).toBeNull();
  });
});

describe('compareAtEqualL0', () => {
  it('reports nMSE_a / nMSE_b at the measured L0s inside the overlap', () => {
    const topk = [P(4, 0.4), P(16, 0.2), P(64, 0.1)];
    const relu = [P(8, 0.6), P(32, 0.3), P(200, 0.2)];
    expect(overlapL0(relu, topk)).toEqual([8, 64]);
    const c = compareAtEqualL0(relu, topk, { a: 'relu', b: 'topk' });
    expect(c.overlap).toEqual([8, 64]);
    expect(c.points.map((p) => p.l0)).toEqual([8, 16, 32, 64]);
    // at 8: relu 0.6, topk 0.3 → 2; at 16: relu 0.45, topk 0.2 → 2.25; at 32: 0.3 / 0.15 = 2
    expect(c.points[0].ratio).toBeCloseTo(2, 12);
    expect(c.points[1].nmse_a).toBeCloseTo(0.45, 12);
    expect(c.points[1].ratio).toBeCloseTo(2.25, 12);
    expect(c.points[2].ratio).toBeCloseTo(2, 12);
    // at 64: relu interpolated between 32 (0.3) and 200 (0.2)
    const w = Math.log(64 / 32) / Math.log(200 / 32);
    expect(c.points[3].nmse_a).toBeCloseTo(0.3 + w * (0.2 - 0.3), 12);
    expect(c.geomeanRatio).toBeGreaterThan(1.9);
    expect(c.summary).toMatch(/^relu vs topk at equal L0 \(8–64\): nMSE_relu \/ nMSE_topk = L0 8: 2,/);
  });
  it('uses only the Pareto points (a dominated run does not bend the frontier)', () => {
    const a = [P(4, 0.4), P(8, 0.9), P(16, 0.2)];
    const c = compareAtEqualL0(a, [P(8, 0.3)], { a: 'a', b: 'b' });
    expect(c.points).toHaveLength(1);
    expect(c.points[0].nmse_a).toBeCloseTo(0.3, 12);
    expect(c.points[0].ratio).toBeCloseTo(1, 12);
  });
  it('no overlap: null range, no points, and says so', () => {
    const c = compareAtEqualL0([P(100, 0.1), P(200, 0.05)], [P(4, 0.3), P(16, 0.2)], {
      a: 'relu',
      b: 'topk',
    });
    expect(c.overlap).toBeNull();
    expect(c.points).toEqual([]);
    expect(c.geomeanRatio).toBeNull();
    expect(c.summary).toBe('relu vs topk at equal L0: no overlap (relu: L0 100–200; topk: L0 4–16)');
    expect(compareAtEqualL0([], [P(4, 0.3)], { a: 'x', b: 'y' }).summary).toMatch(/x: no finished runs/);
  });
});
