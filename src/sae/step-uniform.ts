/**
 * The uniforms of a step (pure: no GPU objects, usable in node): flags, the StepParams
 * bytes of a training step and of the evaluation forward (layout in src/gpu/step-params.ts), and the
 * MicroBatch uniform.
 */
import { STEP_FLAGS, type StepParamValues, writeStepParams } from '../gpu/step-params';
import { METRIC_SLOTS } from './buffer-names';
import { adamScalars, isBatchCut, kRow, l1Scale, type ResolvedConfig } from './config';
import type { BufferPlan } from './plan';

/** StepParams.flags of a config. */
export function stepFlags(c: ResolvedConfig): number {
  const F = STEP_FLAGS;
  return (
    (c.gradProjection ? F.PROJECT : 0) |
    (c.clipGrad ? F.CLIP : 0) |
    (c.auxk ? F.AUXK : 0) |
    (c.multiTopK || c.activation === 'gated' ? F.RECON_AUX : 0) |
    (c.multiTopK ? F.MULTI : 0)
  );
}

/**
 * Whether step t (1-based) updates BatchTopK's running inference threshold θ: from step
 * batchTopKThresholdStart + 1 on (docs/DESIGN.md §8).
 */
const thetaUpdates = (c: ResolvedConfig, t: number) =>
  isBatchCut(c.activation) && t > c.batchTopKThresholdStart;

/**
 * The StepParams uniform of step t (src/gpu/step-params.ts). lossScale = 1 / (B·c);
 * `l1` is the sparsity coefficient λ of this step (after warm-up); `over` replaces fields
 * (the evaluation forward's k and flags).
 */
export function stepParamsBytes(
  c: ResolvedConfig,
  t: number,
  lr: number,
  lossScale: number,
  l1 = c.l1Coef,
  over: Partial<StepParamValues> = {},
): ArrayBuffer {
  const { stepSize, bc2 } = adamScalars(c, t, lr);
  const gated = c.activation === 'gated';
  return writeStepParams({
    B: c.batchSize,
    d: c.d,
    N: c.nLatents,
    k: kRow(c),
    kAux: c.kAux,
    deadTokens: Math.min(c.deadTokens, 0xffffffff),
    flags: stepFlags(c) | (thetaUpdates(c, t) ? STEP_FLAGS.THETA_UPDATE : 0),
    lr,
    beta1: c.beta1,
    beta2: c.beta2,
    oneMinusBeta1: 1 - c.beta1,
    oneMinusBeta2: 1 - c.beta2,
    oneMinusEmaDecay: 1 - c.emaDecay,
    eps: c.eps,
    stepSize,
    bc2,
    lossScale,
    auxCoef: c.multiTopK ? 1 / 8 : gated ? 1 : c.auxCoef,
    fireThreshold: c.fireThreshold,
    clipNorm: c.clipNorm,
    emaDecay: c.emaDecay,
    slot: (t - 1) % METRIC_SLOTS,
    l1Scale: l1Scale(c, lossScale, l1),
    bandwidth: c.jumpBandwidth,
    kBatch: c.batchSize * c.k,
    thetaBeta: c.batchTopKThresholdBeta,
    oneMinusThetaBeta: 1 - c.batchTopKThresholdBeta,
    ...over,
  });
}

/**
 * The StepParams of the evaluation forward over `rows` rows (GpuSae.forward): B = rows, `k` entries per
 * row when given (the codes pass), no metrics; BatchTopK evaluates per token: each row keeps its
 * candidates above the learned θ (THETA_EVAL: no batch-level cut, so no row's code depends on the
 * others; docs/DESIGN.md §8).
 */
export function forwardParamsBytes(c: ResolvedConfig, rows: number, k?: number): ArrayBuffer {
  const theta = isBatchCut(c.activation) ? STEP_FLAGS.THETA_EVAL : 0;
  return stepParamsBytes(c, 1, c.lr, 1, c.l1Coef, {
    B: rows,
    ...(k === undefined ? {} : { k }),
    kBatch: rows * c.k,
    flags: stepFlags(c) | STEP_FLAGS.NO_METRICS | theta,
  });
}

/**
 * MicroBatch uniform of micro-batch m (shaders/common.wgsl): its rows (`rows` of them, default all);
 * the forward sums fires from the first micro-batch up, the backward its sums from the last one down.
 */
export function microBatchBytes(
  plan: Pick<BufferPlan, 'microBatches'>,
  m: number,
  rows = plan.microBatches[m].n,
): Uint32Array<ArrayBuffer> {
  const last = plan.microBatches.length - 1;
  return new Uint32Array([plan.microBatches[m].row0, rows, m > 0 ? 1 : 0, m < last ? 1 : 0]);
}
