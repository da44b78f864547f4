/**
 * The Trainer's curve held to a bounded length. A run reads back a metric point every few steps, so
 * a long run's curve grew without bound (about 6–7 MB of points per 1B tokens at B = 4096). Once the
 * curve passes `max` points every other kept point is dropped and from then on only every `stride`-th
 * new point is kept (the stride doubles each time), so the curve still spans the whole run at even
 * spacing; the newest point is always the last element (the export and the page read it as "latest").
 * The UI's own series (src/store/series.ts) decimate the same way to far fewer points.
 */
const CURVE_MAX_POINTS = 16384;

export class BoundedCurve<T> {
  /** the kept points, in order; the last element is always the newest point */
  readonly points: T[] = [];
  private stride = 1;
  private seen = 0;
  /** whether the last element is the newest point kept only as the tail (not on the stride) */
  private extraTail = false;

  constructor(private readonly max = CURVE_MAX_POINTS) {
    if (!(max >= 2)) throw new Error(`BoundedCurve: max must be ≥ 2, got ${max}`);
  }

  push(p: T) {
    if (this.extraTail) this.points.pop();
    this.extraTail = this.seen % this.stride !== 0;
    this.seen++;
    this.points.push(p);
    if (this.points.length > this.max) {
      const tail = this.extraTail ? this.points.pop() : undefined;
      const kept = this.points.filter((_, i) => i % 2 === 0);
      this.points.length = 0;
      this.points.push(...kept);
      this.stride *= 2;
      if (tail !== undefined) this.points.push(tail);
    }
  }

  /** Starts again from a saved curve (a resumed checkpoint): its points are kept as they are. */
  reset(from: readonly T[] = []) {
    this.points.length = 0;
    this.stride = 1;
    this.seen = 0;
    this.extraTail = false;
    for (const p of from) this.push(p);
  }
}
