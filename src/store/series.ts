/**
 * High-rate training curves, kept outside React state. The worker sends metric points many times a
 * second; they land here in plain arrays (decimated to ≤ MAX_POINTS per series by keeping every other
 * point once over budget) and a version counter. Charts read a snapshot at most a few times a second
 * through useSeries().
 */
import { useEffect, useState } from 'react';
import type { EvalResult, MetricPoint } from '../worker/protocol';

const MAX_POINTS = 500;

export interface SeriesSnapshot {
  version: number;
  points: MetricPoint[];
  evals: EvalResult[];
  latest: MetricPoint | null;
  /** points received since the run started (before decimation) */
  received: number;
}

let points: MetricPoint[] = [];
let evals: EvalResult[] = [];
let latest: MetricPoint | null = null;
let stride = 1;
let received = 0;
let version = 0;
const listeners = new Set<() => void>();

function bump() {
  version++;
  for (const l of listeners) l();
}

/** Appends points; keeps every `stride`-th one and halves the array when it exceeds MAX_POINTS. */
export function pushPoints(ps: MetricPoint[]) {
  // A run that went back to a checkpoint (device loss) repeats steps: its points from there on
  // replace the old ones instead of doubling the curve.
  if (ps.length && latest && ps[0].step <= latest.step) {
    const from = ps[0];
    // the batch is the curve up to the checkpoint: evaluations past its end were of abandoned steps
    const upTo = ps[ps.length - 1].tokens;
    points = points.filter((p) => p.step < from.step);
    evals = evals.filter((e) => e.tokens <= upTo);
    latest = points.at(-1) ?? null;
  }
  for (const p of ps) {
    if (!Number.isFinite(p.tokens)) continue;
    if (received % stride === 0) points.push(p);
    received++;
    latest = p;
    if (points.length > MAX_POINTS) {
      points = points.filter((_, i) => i % 2 === 0);
      stride *= 2;
    }
  }
  if (ps.length) bump();
}

/** Replaces the curve (e.g. the full curve sent with train-done), decimated to the budget. */
export function replacePoints(ps: MetricPoint[]) {
  if (!ps.length) return;
  const keepLatest = latest;
  points = [];
  stride = 1;
  received = 0;
  latest = null;
  pushPoints(ps);
  const after = latest as MetricPoint | null;
  if (keepLatest && (!after || keepLatest.tokens > after.tokens)) latest = keepLatest;
}

export function pushEval(e: EvalResult) {
  evals = [...evals, e];
  bump();
}

export function resetSeries() {
  points = [];
  evals = [];
  latest = null;
  stride = 1;
  received = 0;
  bump();
}

export function seriesSnapshot(): SeriesSnapshot {
  return { version, points, evals, latest, received };
}

function subscribeSeries(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

/**
 * A snapshot of the series, refreshed at most every `intervalMs` (default 300 ms ≈ 3 Hz) and only
 * when something changed. Arrays are copied so that charts see new identities.
 */
export function useSeries(intervalMs = 300): SeriesSnapshot {
  const [snap, setSnap] = useState<SeriesSnapshot>(() => ({ ...seriesSnapshot(), points: [...points] }));
  useEffect(() => {
    let seen = -1;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let last = 0;
    const flush = () => {
      timer = null;
      last = performance.now();
      if (version === seen) return;
      seen = version;
      setSnap({ version, points: [...points], evals: [...evals], latest, received });
    };
    const unsub = subscribeSeries(() => {
      if (timer) return;
      const wait = Math.max(0, intervalMs - (performance.now() - last));
      timer = setTimeout(flush, wait);
    });
    flush();
    return () => {
      unsub();
      if (timer) clearTimeout(timer);
    };
  }, [intervalMs]);
  return snap;
}
