/**
 * The two ways a training run ends on a GPU failure (thrown by Trainer.run, read by the worker's
 * recovery): the device was lost, or a GPU error no error scope caught surfaced. Both say the step
 * and the last checkpoint a resume can start from.
 */

import { GpuError } from '../gpu/device';

/** The GPU device was lost mid-run; `lastCheckpointStep` says where a resume can start (null: none saved). */
export class DeviceLostError extends Error {
  constructor(
    readonly reason: string,
    detail: string,
    readonly step: number,
    readonly lastCheckpointStep: number | null,
  ) {
    super(
      `GPU device lost at step ${step} (${reason}${detail ? `: ${detail}` : ''}); ${lastCheckpointStep === null ? 'no checkpoint was saved yet' : `last checkpoint: step ${lastCheckpointStep}`}`,
    );
    this.name = 'DeviceLostError';
  }
}

/**
 * A GPU error (validation, out-of-memory, internal) that no error scope caught surfaced during the
 * run: the run stopped before reporting anything computed after it. The last checkpoint is kept.
 */
export class GpuRunError extends GpuError {
  constructor(
    kind: string,
    detail: string,
    readonly step: number,
    readonly lastCheckpointStep: number | null,
  ) {
    super(
      `training (noticed at step ${step})`,
      kind,
      detail,
      `GPU ${kind} during training (noticed at step ${step}), the run stopped; ${lastCheckpointStep === null ? 'no checkpoint was saved' : `last checkpoint kept: step ${lastCheckpointStep}`}: ${detail}`,
    );
    this.name = 'GpuRunError';
  }
}
