/**
 * The page's curve store when a run goes back to a checkpoint (the worker's recovery from a lost GPU
 * device resends the curve up to the checkpoint, then repeats the steps since): the repeated steps
 * replace the old points and evaluations instead of doubling the curve.
 */
import { describe, expect, it } from 'vitest';
import { pushEval, pushPoints, resetSeries, seriesSnapshot } from '../../../src/store/series';
import type { EvalResult, MetricPoint } from '../../../src/worker/protocol';

const B = 256;
const point = (step: number, loss = step): MetricPoint =>
  ({
    step,
    tokens: step * B,
    loss,
    auxLoss: 0,
    nmse: 1,
    l0: 8,
    deadFraction: 0,
    tokensPerS: 1,
    lr: 1e-3,
  }) as MetricPoint;
const evalAt = (step: number) => ({ tokens: step * B, nmse: 1 }) as EvalResult;

describe('series: a run rewound to a checkpoint', () => {
  it('drops the points and evaluations from the first repeated step on', () => {
    resetSeries();
    for (let s = 2; s <= 20; s += 2) pushPoints([point(s)]);
    pushEval(evalAt(8));
    pushEval(evalAt(18));
    // device lost after step 21; the checkpoint was step 16: the curve up to 16 comes again, then 18…
    pushPoints([2, 4, 6, 8, 10, 12, 14, 16].map((s) => point(s)));
    pushPoints([point(18, 100)]);
    const snap = seriesSnapshot();
    expect(snap.points.map((p) => p.step)).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18]);
    expect(snap.points.at(-1)?.loss).toBe(100);
    expect(snap.latest?.step).toBe(18);
    // the evaluation at step 8 is before the checkpoint and stays; the one at 18 was of abandoned steps
    expect(snap.evals.map((e) => e.tokens / B)).toEqual([8]);
  });

  it('a run that only moves forward keeps every point', () => {
    resetSeries();
    for (let s = 2; s <= 10; s += 2) pushPoints([point(s)]);
    expect(seriesSnapshot().points.map((p) => p.step)).toEqual([2, 4, 6, 8, 10]);
  });
});
