/**
 * What a training run reports: the live curve's points, an evaluation on held-out rows, the run's
 * status. The trainer produces them; the worker protocol carries them to the page and the CLI.
 */

/** One point of the live curves, averaged over the steps since the previous point. */
export interface MetricPoint {
  step: number;
  tokens: number;
  loss: number;
  auxLoss: number;
  /** nMSE on raw activations: Σ‖x̂ − x‖² / Σ‖x − mean x‖² over the batches of this point */
  nmse: number;
  l0: number;
  /** latents dead by the deadTokens rule / N */
  deadFraction: number;
  tokensPerS: number;
  lr: number;
  gradNorm: number;
  /** Threshold family: the sparsity penalty term λ·L1 (λ·L0 for JumpReLU), mean over the point's steps. */
  penalty?: number;
  /** BatchTopK: the batch threshold τ (normalized units), mean over the point's steps. */
  batchThreshold?: number;
}

export interface EvalResult {
  tokens: number;
  rows: number;
  nmse: number;
  explainedVariance: number;
  l0: number;
  /** never fired on the evaluated rows */
  deadFractionEval: number;
  /** dead by the deadTokens rule during training */
  deadFractionRule: number;
  /** Matryoshka: held-out nMSE of each inner prefix (config.matryoshkaWidths minus the last), narrowest first */
  prefixNmse?: number[];
  /** the weights evaluated: the EMA of the weights (cfg.ema, as the paper evaluates) or the weights themselves */
  weights: 'ema' | 'live';
}

export type RunStatus =
  | 'idle'
  | 'preparing'
  | 'running'
  | 'paused'
  | 'stopping'
  | 'done'
  | 'stopped'
  | 'failed';
