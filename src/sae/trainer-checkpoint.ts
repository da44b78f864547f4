/**
 * The trainer's checkpoints (docs/DESIGN.md §10): saves (a snapshot of the whole training state
 * taken in one GPU submission while steps go on, checked for NaN / Inf, serialized and written in
 * the background, one save at a time, on a step or wall-time schedule and on pause / stop / end),
 * and what the trainer keeps in them to resume exactly (TrainerCheckpointExtra, checked on resume).
 */

import type { ActivationSource } from '../data/source';
import type { BatcherState } from '../data/stream';
import type { TensorName } from './buffer-names';
import type { CheckpointStore } from './checkpoint';
import { type Checkpoint, type CheckpointData, serializeCheckpoint } from './checkpoint-format';
import { isBatchCut } from './config';
import type { EvalWeightsGate } from './evaluation';
import type { GpuSae } from './step';
import { type ParamsF32, paramNames, paramSizes, type TrainState } from './step-buffers';
import type { KernelChoice } from './step-host';

/** Where and how often the trainer saves checkpoints. */
export interface CheckpointOptions {
  store: CheckpointStore;
  runId: string;
  /** save every this many steps (rounded up to a metrics read-back); 0 or absent: by time only */
  everySteps?: number;
  /** save when this many seconds of wall time have passed since the last save (default 120; 0: off) */
  everySeconds?: number;
}

/** What a checkpoint's `extra` holds for resuming the trainer exactly. */
export interface TrainerCheckpointExtra {
  batcher: BatcherState;
  lossScale: number;
  kernels: KernelChoice;
  totalSteps: number;
  dataset: { name: string; rows: number; d: number };
}

/**
 * The data-stream position and loss scale a resume restores from the checkpoint's `extra`; throws
 * when the checkpoint has none (it cannot be resumed exactly) or was taken on another dataset.
 */
export function resumePoint(
  ck: Checkpoint,
  source: ActivationSource,
): { batcher: BatcherState; lossScale: number } {
  const ex = ck.extra as Partial<TrainerCheckpointExtra> | undefined;
  if (!ex?.batcher || typeof ex.lossScale !== 'number')
    throw new Error(`checkpoint step ${ck.step} has no data-stream position: it cannot be resumed exactly`);
  if (ex.dataset && (ex.dataset.rows !== source.rows || ex.dataset.d !== source.d))
    throw new Error(
      `checkpoint was taken on ${ex.dataset.name} (${ex.dataset.rows} rows × ${ex.dataset.d}); the open dataset is ${source.name} (${source.rows} rows × ${source.d})`,
    );
  return { batcher: ex.batcher, lossScale: ex.lossScale };
}

/**
 * Copies every piece of training state (params, Adam moments, EMA, dead counters) into staging
 * buffers in ONE submission, so the snapshot is of the step submitted last even if more steps are
 * submitted while the copies are mapped. Returns the promise of the mapped data; training goes on.
 */
export function snapshotState(sae: GpuSae): Promise<TrainState> {
  const { nLatents: N, ema } = sae.cfg;
  const n = paramSizes(sae.cfg);
  const tensors = paramNames(sae.cfg);
  const names: [TensorName, number][] = [];
  for (const prefix of ['', 'm_', 'v_', ...(ema ? (['ema_'] as const) : [])] as const)
    for (const p of tensors) names.push([`${prefix}${p}`, n[p]]);
  names.push(['tokensSince', N], ['firesTotal', N]);
  // BatchTopK's inference threshold θ is tau[1] (training state, saved with the checkpoint).
  const batchTopK = isBatchCut(sae.cfg.activation);
  if (batchTopK) names.push(['tau', 2]);
  const dev = sae.device;
  const enc = dev.createCommandEncoder({ label: 'checkpoint-snapshot' });
  // One staging buffer per segment, in latent order: a sharded tensor as a whole can be larger than
  // any buffer the device allocates (src/gpu/limits.ts); each of its shards fits one by the plan.
  const staging = names.map(([name, count]) => {
    const elems = sae.segmentElems(name, count);
    const parts: GPUBuffer[] = [];
    let o = 0;
    sae.segments(name).forEach((seg, i) => {
      const n = Math.min(elems[i], count - o);
      if (n <= 0) return;
      const buf = dev.createBuffer({
        label: `snapshot:${name}#${i}`,
        size: n * 4,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      enc.copyBufferToBuffer(seg, 0, buf, 0, n * 4);
      parts.push(buf);
      o += n;
    });
    return parts;
  });
  dev.queue.submit([enc.finish()]);
  return (async () => {
    try {
      const out = new Map<string, ArrayBuffer>();
      for (let i = 0; i < names.length; i++) {
        const whole = new Uint8Array(names[i][1] * 4);
        let o = 0;
        // One part mapped at a time, released once copied: the host holds the state once, not twice.
        for (const part of staging[i]) {
          await part.mapAsync(GPUMapMode.READ);
          whole.set(new Uint8Array(part.getMappedRange()), o);
          o += part.size;
          part.destroy();
        }
        out.set(names[i][0], whole.buffer);
      }
      const grab = (prefix: string) => {
        const o = {} as ParamsF32;
        for (const p of tensors) o[p] = new Float32Array(out.get(`${prefix}${p}`)!);
        return o;
      };
      return {
        params: grab(''),
        m: grab('m_'),
        v: grab('v_'),
        ema: ema ? grab('ema_') : null,
        tokensSince: new Uint32Array(out.get('tokensSince')!),
        firesTotal: new Uint32Array(out.get('firesTotal')!),
        ...(batchTopK ? { inferenceThreshold: new Float32Array(out.get('tau')!)[1] } : {}),
      };
    } finally {
      for (const parts of staging) for (const b of parts) b.destroy();
    }
  })();
}

/** The first tensor of a state snapshot holding NaN or Inf (parameters, moments, EMA), or null. */
function nonFiniteTensor(st: TrainState): string | null {
  for (const [prefix, group] of [
    ['', st.params],
    ['m_', st.m],
    ['v_', st.v],
    ['ema_', st.ema],
  ] as const) {
    if (!group) continue;
    for (const [name, a] of Object.entries(group) as [string, Float32Array | undefined][])
      if (a) for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return `${prefix}${name}`;
  }
  return null;
}

/** What the saver reads off its trainer when a save starts. */
export interface CheckpointSource {
  readonly sae: GpuSae;
  /** the last submitted step */
  step(): number;
  /** false after a GPU fault or on a lost device: the GPU state may hold anything, never save it */
  canSave(): boolean;
  /** everything but the GPU state, captured now (data position, curve, config, normalization) */
  record(step: number): Omit<CheckpointData, 'state'>;
  onCheckpoint?: (info: { runId: string; step: number; size?: number; error?: string }) => void;
}

/** One trainer's checkpoint saves: at most one in flight, periodic ones at metrics read-backs. */
export class CheckpointSaver {
  /** step of the last checkpoint saved (or restored), null when none */
  lastStep: number | null = null;
  /** the save in flight, null when none */
  saving: Promise<void> | null = null;
  /** performance.now() of the last save's start (or of the run's start) */
  lastTime = performance.now();

  constructor(
    private readonly opts: CheckpointOptions | undefined,
    private readonly src: CheckpointSource,
    private readonly gate: EvalWeightsGate,
  ) {}

  /**
   * Starts a checkpoint of the state after the last submitted step: the GPU copies are queued
   * now, the batcher position and curve captured now; mapping, serializing and writing happen in
   * the background. One save at a time: while one is in flight this returns it (unless `force`,
   * which waits for it and then saves the current step).
   */
  save(force = false): Promise<void> | null {
    const c = this.opts;
    // Never save a state the GPU may have computed after a fault (or on a lost device).
    if (!c || !this.src.canSave()) return null;
    // Never snapshot while an evaluation has the EMA weights in the parameters' place.
    if (this.gate.busy) return this.gate.untilFree().then(() => this.save(force) ?? undefined);
    if (this.saving && !force) return this.saving;
    if (this.saving)
      return this.saving.then(() =>
        this.lastStep === this.src.step() ? undefined : (this.save(true) ?? undefined),
      );
    const step = this.src.step();
    this.lastTime = performance.now();
    const state = snapshotState(this.src.sae);
    state.catch(() => {});
    const record = this.src.record(step);
    const p = (async () => {
      try {
        const snap = await state;
        // A diverging run can hold non-finite parameters one read-back before its loss shows it:
        // such a state is never saved, so the last checkpoint stays a good one.
        const bad = nonFiniteTensor(snap);
        if (bad)
          throw new Error(`checkpoint of step ${step} not saved: ${bad} holds NaN or Inf (the run diverged)`);
        const info = await c.store.save(c.runId, step, serializeCheckpoint({ ...record, state: snap }));
        this.lastStep = step;
        this.src.onCheckpoint?.({ runId: c.runId, step, size: info.size });
      } catch (e) {
        this.src.onCheckpoint?.({ runId: c.runId, step, error: e instanceof Error ? e.message : String(e) });
      } finally {
        this.saving = null;
      }
    })();
    this.saving = p;
    return p;
  }

  /** Periodic checkpoint, at a metrics read-back (so the saved curve is complete up to the step). */
  maybeSave(t: number) {
    const c = this.opts;
    if (!c || this.saving) return;
    const bySteps = (c.everySteps ?? 0) > 0 && t - (this.lastStep ?? 0) >= c.everySteps!;
    const secs = c.everySeconds ?? 120;
    const byTime = secs > 0 && performance.now() - this.lastTime >= secs * 1000;
    if (bySteps || byTime) this.save();
  }
}
