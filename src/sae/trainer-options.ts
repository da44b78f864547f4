/**
 * What a Trainer is given (hooks, options, the config it resolves) and what its run returns.
 */

import type { AutotuneReport } from './autotune';
import type { Checkpoint } from './checkpoint-format';
import type { ResolvedConfig, SaeConfig } from './config';
import { resolveConfig } from './config';
import type { Normalizer } from './normalize';
import type { EvalResult, MetricPoint, RunStatus } from './results';
import type { KernelChoice } from './step-host';
import type { CheckpointOptions } from './trainer-checkpoint';

/** Called by the run as it goes (the worker forwards each to the page). */
export interface TrainerHooks {
  onMetrics?: (points: MetricPoint[]) => void;
  onEval?: (r: EvalResult) => void;
  onStatus?: (s: RunStatus, message?: string) => void;
  onNaN?: (step: number, message: string) => void;
  /** after initialization and autotuning, before the first step */
  onStarted?: (info: { kernels: KernelChoice; autotune: AutotuneReport | null }) => void;
  /** after each checkpoint save (or failed save: `error` is one line for the user) */
  onCheckpoint?: (info: { runId: string; step: number; size?: number; error?: string }) => void;
}

/** The config a Trainer runs: the checkpoint's wins over `config` when resuming, so the run continues exactly. */
export function trainerConfig(
  config: Partial<SaeConfig>,
  d: number,
  resumeFrom?: Checkpoint,
): ResolvedConfig {
  if (resumeFrom && resumeFrom.config.d !== d)
    throw new Error(`checkpoint is for d=${resumeFrom.config.d}, the dataset has d=${d}`);
  return resolveConfig({ ...config, ...(resumeFrom?.config ?? {}), d });
}

export interface TrainerOptions {
  kernels?: Partial<KernelChoice>;
  /** evaluate every this many tokens (0: only at the end) */
  evalEveryTokens?: number;
  /** held-out rows evaluated at most (default EVAL_MAX_ROWS, as the evaluation panel) */
  evalMaxRows?: number;
  nonFinite?: 'skip' | 'stop';
  /** time the kernel variants at start-up (skipped for variants given in `kernels`); names the adapter for the cache */
  autotuneAdapter?: string | null;
  /** save checkpoints periodically and on pause / stop / end */
  checkpoints?: CheckpointOptions;
  /**
   * Continue a run from a checkpoint taken by this trainer: its config, kernels, normalization,
   * parameters and optimizer state, step, data position and curve are restored, so the run goes on
   * bit-for-bit as if it had never stopped (same data and adapter).
   */
  resumeFrom?: Checkpoint;
  /** input normalization to use instead of the dataset statistics' (imported models) */
  normalization?: Normalizer;
  /**
   * TEST HOOK, never set by a normal run: right after submitting this step, record a genuinely invalid
   * GPU command outside any error scope (injectGpuFault), so the run's uncapturederror path is
   * exercised by a real validation error (CLI --inject-gpu-error, page ?inject-gpu-error=STEP).
   */
  injectGpuErrorAtStep?: number;
  /**
   * TEST HOOK, never set by a normal run: right after submitting this step, destroy the GPU device,
   * so device loss mid-run (and the worker's recovery from the last checkpoint) is exercised for real
   * (CLI --lose-device, page ?lose-device=STEP). A checkpoint save in flight finishes first.
   */
  loseDeviceAtStep?: number;
}

export interface TrainResult {
  status: 'done' | 'stopped' | 'failed';
  steps: number;
  tokens: number;
  final: EvalResult & { tokensPerS: number };
  curve: MetricPoint[];
}
