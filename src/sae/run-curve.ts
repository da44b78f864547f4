/**
 * The training curve from the metric ring (docs/DESIGN.md §1 Metrics): each submitted step's
 * Σ‖x_raw − μ‖² is kept until its metrics are read back, then the read-back steps become one
 * MetricPoint (means of the ring's values, nMSE as Σ rawSe / Σ‖x_raw − μ‖², throughput since the
 * last read-back). The first step whose loss is not finite is remembered for the NaN report.
 */

import { isBatchCut, isDense, lrAt, type ResolvedConfig } from './config';
import type { MetricPoint } from './results';
import type { StepMetrics } from './step-buffers';

export class RunCurve {
  /** the last step whose metrics were read back */
  lastRead: number;
  /** tokens per second over the last read-back interval */
  tokensPerS = 0;
  /** the first step whose loss (or AuxK loss) was not finite, null while there is none */
  diverged: { step: number; value: number } | null = null;
  private lastTime = performance.now();
  /** each submitted step's Σ‖x − μ‖², until its metrics are read back (then dropped: bounded) */
  private readonly denoms = new Map<number, number>();

  constructor(
    private readonly cfg: ResolvedConfig,
    /** [d] the dataset mean μ */
    private readonly mean: Float64Array,
    startStep: number,
  ) {
    this.lastRead = startStep;
  }

  /** Restarts the throughput clock (after a pause or an evaluation, which are not training time). */
  restartClock() {
    this.lastTime = performance.now();
  }

  /** Records the raw batch [B, d] of the step submitted as `step` (1-based) for its nMSE. */
  submitted(step: number, raw: Float32Array) {
    const { d, batchSize: B } = this.cfg;
    const mu = this.mean;
    let den = 0;
    for (let b = 0; b < B; b++) for (let c = 0; c < d; c++) den += (raw[b * d + c] - mu[c]) ** 2;
    this.denoms.set(step - 1, den);
  }

  /**
   * The point of the steps lastRead+1 … upTo, from their ring values `ms` (one per step, in order);
   * sets `diverged` when one of them has a non-finite loss.
   */
  point(ms: StepMetrics[], upTo: number): MetricPoint {
    const { batchSize: B, nLatents: N, activation } = this.cfg;
    const now = performance.now();
    const lastRead = this.lastRead;
    this.tokensPerS = ((upTo - lastRead) * B) / Math.max(1e-3, (now - this.lastTime) / 1000);
    this.lastTime = now;
    let rawSe = 0;
    let den = 0;
    const mean = (f: (m: StepMetrics) => number) => ms.reduce((a, m) => a + f(m), 0) / ms.length;
    ms.forEach((m, i) => {
      rawSe += m.rawSe;
      den += this.denoms.get(lastRead + i) ?? 0;
      this.denoms.delete(lastRead + i);
    });
    const point: MetricPoint = {
      step: upTo,
      tokens: upTo * B,
      loss: mean((m) => m.loss),
      auxLoss: mean((m) => m.auxLoss),
      nmse: den > 0 ? rawSe / den : Number.NaN,
      l0: mean((m) => m.l0),
      deadFraction: ms[ms.length - 1].deadCount / N,
      tokensPerS: this.tokensPerS,
      lr: lrAt(this.cfg, upTo),
      gradNorm: mean((m) => m.gradNorm),
    };
    if (isDense(activation)) point.penalty = mean((m) => m.extra);
    if (isBatchCut(activation)) point.batchThreshold = mean((m) => m.extra);
    this.lastRead = upTo;
    const bad = ms.findIndex((m) => !Number.isFinite(m.loss) || !Number.isFinite(m.auxLoss));
    if (bad >= 0) {
      const value = Number.isFinite(ms[bad].loss) ? ms[bad].auxLoss : ms[bad].loss;
      this.diverged = { step: upTo - ms.length + bad + 1, value };
    }
    return point;
  }
}
