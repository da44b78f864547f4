/**
 * The per-step uniform of a config (pure: no GPU objects, usable in node): entries per row, flags and
 * the StepParams bytes (layout in src/gpu/step-params.ts).
 */
import { STEP_FLAGS, type StepParamValues, writeStepParams } from '../gpu/step-params';
import { adamScalars, isBatchCut, isDense, l1Scale, type ResolvedConfig } from './config';
import { METRIC_SLOTS } from './plan';

/**
 * Entries per row in the main region: k (TopK, Multi-TopK), the per-row candidate cap (BatchTopK),
 * N (the threshold family: the loss counts L0 over the dense activations).
 */
export function kRow(c: ResolvedConfig): number {
  if (isBatchCut(c.activation)) return c.batchTopKCap;
  if (isDense(c.activation)) return c.nLatents;
  return c.k;
}

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
