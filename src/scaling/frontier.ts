/**
 * The MSE–L0 frontier of a method (pure math, no DOM, no node APIs): the Pareto set of its runs
 * (no other run has both lower-or-equal L0 and lower-or-equal nMSE), piecewise-linear
 * interpolation of nMSE in log L0 along that set, and the comparison of two methods at equal L0
 * (e.g. ReLU+L1 against TopK: the ratio nMSE_relu / nMSE_topk where both frontiers are defined).
 */

export interface FrontierPoint {
  /** mean number of active latents per token (held-out) */
  l0: number;
  /** held-out normalized MSE */
  nmse: number;
  /** run id, carried through */
  id?: string;
}

const usable = (p: FrontierPoint) => Number.isFinite(p.l0) && p.l0 > 0 && Number.isFinite(p.nmse);

/** Usable points (finite, L0 > 0) sorted by L0, ties by nMSE. */
export function sortByL0<P extends FrontierPoint>(points: readonly P[]): P[] {
  return points.filter(usable).sort((a, b) => a.l0 - b.l0 || a.nmse - b.nmse);
}

/**
 * The Pareto set (lower L0 and lower nMSE are better), sorted by L0 ascending, so nMSE is strictly
 * decreasing along it. A point is kept unless another has L0 ≤ and nMSE ≤ with one of them
 * strictly smaller; of exact duplicates the first is kept. Non-finite points and L0 ≤ 0 are dropped.
 */
export function paretoFront<P extends FrontierPoint>(points: readonly P[]): P[] {
  const out: P[] = [];
  let best = Number.POSITIVE_INFINITY;
  for (const p of sortByL0(points)) {
    // Sorted by L0 then nMSE: p is dominated iff an earlier point already reached nMSE ≤ p's.
    if (p.nmse < best) {
      out.push(p);
      best = p.nmse;
    }
  }
  return out;
}

/** Whether each point is on the Pareto set of `points` (same order as the input). */
export function paretoMask(points: readonly FrontierPoint[]): boolean[] {
  const front = new Set<FrontierPoint>(paretoFront(points));
  return points.map((p) => front.has(p));
}

/**
 * nMSE at `l0` on the frontier, piecewise-linear in log L0 between consecutive points (sorted by
 * L0); exact at a point; null outside [min L0, max L0] or when the frontier is empty.
 */
export function interpolateAtL0(front: readonly FrontierPoint[], l0: number): number | null {
  const pts = sortByL0(front);
  if (!pts.length || !(l0 > 0)) return null;
  const lo = pts[0].l0;
  const hi = pts[pts.length - 1].l0;
  const eps = 1e-12 * hi;
  if (l0 < lo - eps || l0 > hi + eps) return null;
  if (pts.length === 1) return pts[0].nmse;
  const x = Math.log(Math.min(hi, Math.max(lo, l0)));
  for (let i = 1; i < pts.length; i++) {
    const a = pts[i - 1];
    const b = pts[i];
    if (l0 > b.l0 + eps) continue;
    const xa = Math.log(a.l0);
    const xb = Math.log(b.l0);
    if (xb === xa) return Math.min(a.nmse, b.nmse);
    const w = (x - xa) / (xb - xa);
    return a.nmse + w * (b.nmse - a.nmse);
  }
  return pts[pts.length - 1].nmse;
}

/** The L0 interval where both frontiers are defined, or null when they do not overlap. */
export function overlapL0(a: readonly FrontierPoint[], b: readonly FrontierPoint[]): [number, number] | null {
  const pa = sortByL0(a);
  const pb = sortByL0(b);
  if (!pa.length || !pb.length) return null;
  const lo = Math.max(pa[0].l0, pb[0].l0);
  const hi = Math.min(pa[pa.length - 1].l0, pb[pb.length - 1].l0);
  return lo <= hi ? [lo, hi] : null;
}

interface EqualL0Point {
  l0: number;
  /** nMSE of method a / b interpolated at this L0 */
  nmse_a: number;
  nmse_b: number;
  /** nmse_a / nmse_b */
  ratio: number;
}

export interface EqualL0Comparison {
  a: string;
  b: string;
  /** the common L0 range, null when the frontiers do not overlap */
  overlap: [number, number] | null;
  /** the measured L0 values of either frontier inside the overlap (and its ends), ascending */
  points: EqualL0Point[];
  /** geometric mean of the ratios (null without overlap) */
  geomeanRatio: number | null;
  /** one line for people */
  summary: string;
}

/**
 * Compares method a with method b at equal L0: both Pareto frontiers are interpolated (log L0 →
 * nMSE, piecewise-linear) at every measured L0 of either frontier inside the common range (the
 * range's ends included), and the ratio nMSE_a / nMSE_b is reported there. Ratio > 1: a is worse.
 */
export function compareAtEqualL0(
  a: readonly FrontierPoint[],
  b: readonly FrontierPoint[],
  names: { a: string; b: string },
): EqualL0Comparison {
  const fa = paretoFront(a);
  const fb = paretoFront(b);
  const overlap = overlapL0(fa, fb);
  if (!overlap) {
    const range = (f: FrontierPoint[]) =>
      f.length ? `L0 ${fmt(f[0].l0)}–${fmt(f[f.length - 1].l0)}` : 'no finished runs';
    return {
      a: names.a,
      b: names.b,
      overlap: null,
      points: [],
      geomeanRatio: null,
      summary: `${names.a} vs ${names.b} at equal L0: no overlap (${names.a}: ${range(fa)}; ${names.b}: ${range(fb)})`,
    };
  }
  const [lo, hi] = overlap;
  const xs = [...new Set([lo, hi, ...fa.map((p) => p.l0), ...fb.map((p) => p.l0)])]
    .filter((x) => x >= lo && x <= hi)
    .sort((x, y) => x - y);
  const points: EqualL0Point[] = [];
  for (const l0 of xs) {
    const na = interpolateAtL0(fa, l0);
    const nb = interpolateAtL0(fb, l0);
    if (na === null || nb === null) continue;
    points.push({ l0, nmse_a: na, nmse_b: nb, ratio: nb > 0 ? na / nb : Number.NaN });
  }
  const finite = points.filter((p) => Number.isFinite(p.ratio) && p.ratio > 0);
  const geomeanRatio = finite.length
    ? Math.exp(finite.reduce((s, p) => s + Math.log(p.ratio), 0) / finite.length)
    : null;
  const list = points.map((p) => `L0 ${fmt(p.l0)}: ${fmt(p.ratio)}`).join(', ');
  return {
    a: names.a,
    b: names.b,
    overlap,
    points,
    geomeanRatio,
    summary: `${names.a} vs ${names.b} at equal L0 (${fmt(lo)}–${fmt(hi)}): nMSE_${names.a} / nMSE_${names.b} = ${list}${geomeanRatio !== null ? ` (geometric mean ${fmt(geomeanRatio)})` : ''}`,
  };
}

const fmt = (v: number) => (Number.isFinite(v) ? String(Number(v.toPrecision(3))) : String(v));
