/**
 * The trainer's held-out evaluation (docs/DESIGN.md §1 Metrics): the evaluation rows through the GPU
 * forward batch by batch (evalBatches), the gate that puts the EMA weights in the parameters' place
 * while an evaluation runs (EvalWeightsGate), and the metrics of those batches (heldOutEval). The run
 * panel, metrics.json, sweeps and the worker's full evaluation all read the rows this way.
 */

import type { ActivationSource } from '../data/source';
import type { ActivationStats } from '../data/stats';
import { Batcher } from '../data/stream';
import { readBytes } from '../gpu/buffers';
import { isDense, type ResolvedConfig } from './config';
import { type CodesBatch, MetricsAccumulator } from './metrics';
import { denormalizeInPlace, type Normalizer, normalizeBatch } from './normalize';
import type { EvalResult } from './results';
import type { GpuSae } from './step';

/** One batch of evaluation rows through the GPU forward (evalBatches). */
export interface EvalBatch {
  /** [n, d] raw rows */
  x: Float32Array;
  /** [n] their rows in the dataset */
  rowIds: Float64Array;
  /** [n, codesK] the forward's codes (val 0: inactive) */
  codes: CodesBatch;
  /** [n, d] raw reconstructions */
  xHat: Float32Array;
  /** threshold family: [n] each row's count of nonzero activations (the codes keep the 512 largest) */
  rowL0?: Float32Array;
  /** Matryoshka: [G − 1, n, d] raw reconstructions by each inner prefix of the dictionary */
  xInner?: Float32Array;
}

/** What an evaluation reads: a trainer's model, data and normalization. */
export interface EvalInputs {
  readonly cfg: ResolvedConfig;
  readonly sae: GpuSae;
  readonly source: ActivationSource;
  readonly stats: ActivationStats;
  readonly norm: Normalizer;
}

/**
 * Held while an evaluation has the EMA weights in the parameter buffers, or a snapshot copies the
 * state in rounds (trainer-checkpoint.ts takeSnapshot): the trainer submits no training step and
 * takes no state snapshot until it is released.
 */
export class EvalWeightsGate {
  private held: Promise<void> | null = null;

  constructor(private readonly sae: GpuSae) {}

  /** true while an evaluation holds the EMA weights in the parameters' place */
  get busy(): boolean {
    return this.held !== null;
  }

  /** Resolves when no evaluation holds the EMA weights in the parameters' place. */
  async untilFree(): Promise<void> {
    while (this.held) await this.held;
  }

  /** Holds the gate until `work` settles (taken at once: the caller has just started it). */
  hold(work: Promise<unknown>): void {
    const held: Promise<void> = work.then(
      () => {},
      () => {},
    );
    this.held = held;
    held.then(() => {
      if (this.held === held) this.held = null;
    });
  }

  /**
   * Runs `fn` with the weights evaluations report on in the parameter buffers, so the one forward
   * pass evaluates them: with cfg.ema the EMA weights are copied in on the GPU and the parameters
   * copied back after; other evaluations wait their turn.
   */
  async run<T>(fn: (weights: 'ema' | 'live') => Promise<T>): Promise<T> {
    if (!this.sae.cfg.ema) return fn('live');
    await this.untilFree();
    let release = () => {};
    this.held = new Promise<void>((r) => {
      release = r;
    });
    let restore: (() => void) | null = null;
    try {
      restore = this.sae.swapInEma();
      return await fn('ema');
    } finally {
      restore?.();
      this.held = null;
      release();
    }
  }
}

/**
 * The evaluation rows through the GPU forward, batch by batch: the held-out rows in file order (or,
 * with no held-out split, the first maxRows finite rows), at most maxRows, B per batch; the last
 * batch holds the rest and runs through the forward as those rows alone (GpuSae.forward(n): no
 * padding rows in BatchTopK's selection, no stale row scale). Reads the parameters in place: run
 * inside EvalWeightsGate.run for the reported weights. `checkGpu` runs after each read-back and
 * throws if a GPU error surfaced, so nothing computed after a fault is yielded.
 */
export async function* evalBatches(
  ev: EvalInputs,
  maxRows: number,
  checkGpu: () => Promise<void>,
): AsyncGenerator<EvalBatch> {
  const { d, batchSize: B, evalFrac } = ev.cfg;
  const sae = ev.sae;
  const k = sae.codesK;
  const dense = isDense(ev.cfg.activation);
  const inner = ev.cfg.matryoshkaWidths.length - 1;
  const xn = new Float32Array(B * d);
  const rowScale = new Float32Array(B);
  const rowShift = new Float32Array(B);
  const split = new Batcher(ev.source, { heldOutFraction: evalFrac, nonFinite: 'skip', shuffleRows: 1 });
  const batches =
    split.split.heldOutRows > 0 ? split.heldOutBatches(B, maxRows) : fileOrderBatches(ev.source, B, maxRows);
  for await (const batch of batches) {
    const n = batch.rowIds.length;
    if (n === 0) continue;
    const x = batch.data.subarray(0, n * d);
    const scale = rowScale.subarray(0, n);
    const shift = rowShift.subarray(0, n);
    normalizeBatch(ev.norm, x, d, xn.subarray(0, n * d), scale, shift);
    sae.writeBatch(xn.subarray(0, n * d), scale);
    sae.forward(n);
    // The copies are submitted now, right behind the forward pass, so a training step submitted
    // while they are awaited (a live run's full evaluation) cannot come between.
    const [xb, ib, vb, sb, inb] = await Promise.all([
      readBytes(sae.device, sae.b.xHat, n * d * 4),
      readBytes(sae.device, sae.b.idxAll, n * k * 4),
      readBytes(sae.device, sae.b.valAll, n * k * 4),
      dense ? readBytes(sae.device, sae.b.rowStats, n * 16) : null,
      // Matryoshka's inner prefixes: the forward's decode wrote them as [G − 1, n, d].
      inner > 0 ? readBytes(sae.device, sae.b.xInner, inner * n * d * 4) : null,
    ]);
    await checkGpu();
    const xHat = new Float32Array(xb);
    denormalizeInPlace(xHat, d, scale, shift);
    const codes = { rows: n, k, idx: new Uint32Array(ib), val: new Float32Array(vb) };
    const stats = sb ? new Float32Array(sb) : null;
    const rowL0 = stats ? Float32Array.from({ length: n }, (_, b) => stats[b * 4 + 2]) : undefined;
    const xInner = inb ? new Float32Array(inb) : undefined;
    if (xInner)
      for (let h = 0; h < inner; h++)
        denormalizeInPlace(xInner.subarray(h * n * d, (h + 1) * n * d), d, scale, shift);
    yield { x, rowIds: batch.rowIds.subarray(0, n), codes, xHat, rowL0, xInner };
  }
}

/** Without a held-out split: the first maxRows rows in file order (the finite ones), B at a time. */
async function* fileOrderBatches(source: ActivationSource, B: number, maxRows: number) {
  const d = source.d;
  for (let s = 0; s < Math.min(maxRows, source.rows); s += B) {
    const n = Math.min(B, maxRows - s, source.rows - s);
    const x = await source.readRows(s, n);
    const keep: number[] = [];
    for (let r = 0; r < n; r++) {
      let ok = true;
      for (let c = 0; c < d && ok; c++) ok = Number.isFinite(x[r * d + c]);
      if (ok) keep.push(r);
    }
    const data = new Float32Array(keep.length * d);
    for (let j = 0; j < keep.length; j++) data.set(x.subarray(keep[j] * d, (keep[j] + 1) * d), j * d);
    yield { data, rowIds: Float64Array.from(keep, (r) => s + r) };
  }
}

/**
 * Held-out metrics on raw activations (src/sae/metrics.ts: nMSE about the dataset mean, explained
 * variance, L0, the fraction never fired on these rows) of the weights evaluations report on (the
 * EMA weights with cfg.ema), and the dead fraction by the deadTokens rule. `tokens()`: the tokens
 * trained so far, read when the metrics are done (a run without EMA may step on meanwhile).
 */
export async function heldOutEval(
  ev: EvalInputs,
  gate: EvalWeightsGate,
  maxRows: number,
  tokens: () => number,
  checkGpu: () => Promise<void>,
): Promise<EvalResult> {
  const { nLatents: N } = ev.cfg;
  const acc = new MetricsAccumulator({
    N,
    d: ev.cfg.d,
    mean: ev.stats.mean,
    fireThreshold: ev.cfg.fireThreshold,
    innerLevels: ev.cfg.matryoshkaWidths.length - 1,
  });
  const weights = await gate.run(async (w) => {
    for await (const b of evalBatches(ev, maxRows, checkGpu))
      acc.add(b.x, b.codes, b.xHat, b.rowL0, b.xInner);
    return w;
  });
  const m = acc.metrics();
  const since = await ev.sae.readU32('tokensSince', N);
  let deadRule = 0;
  for (let i = 0; i < N; i++) if (since[i] > ev.cfg.deadTokens) deadRule++;
  return {
    tokens: tokens(),
    rows: m.rows,
    nmse: m.nmse,
    explainedVariance: m.explainedVariance,
    l0: m.l0,
    deadFractionEval: m.neverFiredFraction,
    deadFractionRule: deadRule / N,
    ...(m.prefixNmse ? { prefixNmse: m.prefixNmse } : {}),
    weights,
  };
}
