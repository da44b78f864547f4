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
  /** staging a snapshot may hold at once (default SNAPSHOT_STAGING_BYTES; tests: small, to force rounds) */
  stagingBytes?: number;
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
 * Staging a snapshot may hold at once (ours). A state up to this size is copied in one submission
 * while steps go on; a larger one in rounds of at most this many bytes, each copied, mapped, read
 * and freed before the next, with steps held meanwhile (takeSnapshot). Without a bound the staging
 * doubles the state on the GPU: a 6 GiB state beside its 8 GiB plan took SwiftShader's GPU process
 * down (device lost) at its first checkpoint (d = 4096, N = 65536, 2026-12-02).
 */
const SNAPSHOT_STAGING_BYTES = 256 * 2 ** 20;

/** The tensors of a snapshot and their element counts, in the order they are copied. */
function snapshotTensors(sae: GpuSae): [TensorName, number][] {
  const { nLatents: N, ema } = sae.cfg;
  const n = paramSizes(sae.cfg);
  const names: [TensorName, number][] = [];
  for (const prefix of ['', 'm_', 'v_', ...(ema ? (['ema_'] as const) : [])] as const)
    for (const p of paramNames(sae.cfg)) names.push([`${prefix}${p}`, n[p]]);
  names.push(['tokensSince', N], ['firesTotal', N]);
  // BatchTopK's inference threshold θ is tau[1] (training state, saved with the checkpoint).
  if (isBatchCut(sae.cfg.activation)) names.push(['tau', 2]);
  return names;
}

/** Bytes of a snapshot of `sae`'s training state. */
function snapshotBytes(sae: GpuSae): number {
  return snapshotTensors(sae).reduce((a, [, count]) => a + 4 * count, 0);
}

/** One copy of a snapshot: `bytes` of GPU buffer `src` from `srcOffset` into tensor `t` at `dstOffset`. */
interface Piece {
  t: number;
  src: GPUBuffer;
  srcOffset: number;
  dstOffset: number;
  bytes: number;
}

/**
 * Copies every piece of training state (params, Adam moments, EMA, dead counters) to the host. Up to
 * `budget` bytes in all, in ONE submission: the snapshot is of the step submitted last even if more
 * steps are submitted while the copies are mapped. Past `budget`, in rounds of at most `budget` bytes
 * of staging, which is consistent only if no step is submitted until the promise settles: use
 * takeSnapshot, which holds them. A sharded tensor is read shard by shard (as a whole it can be
 * larger than any buffer the device allocates, src/gpu/limits.ts).
 */
export function snapshotState(sae: GpuSae, budget = SNAPSHOT_STAGING_BYTES): Promise<TrainState> {
  const names = snapshotTensors(sae);
  const pieces: Piece[] = [];
  names.forEach(([name, count], t) => {
    const elems = sae.segmentElems(name, count);
    let o = 0;
    sae.segments(name).forEach((src, i) => {
      const segBytes = 4 * Math.min(elems[i], count - o);
      for (let at = 0; at < segBytes; at += budget) {
        const bytes = Math.min(budget, segBytes - at);
        pieces.push({ t, src, srcOffset: at, dstOffset: 4 * o + at, bytes });
      }
      o += Math.max(0, segBytes / 4);
    });
  });
  // Rounds of pieces: each holds at most `budget` bytes of staging (all of them in one when they fit).
  const rounds: Piece[][] = [[]];
  let held = 0;
  for (const p of pieces) {
    if (held + p.bytes > budget && rounds[rounds.length - 1].length) {
      rounds.push([]);
      held = 0;
    }
    rounds[rounds.length - 1].push(p);
    held += p.bytes;
  }
  const dev = sae.device;
  const stage = (round: Piece[], r: number) => {
    const enc = dev.createCommandEncoder({ label: `checkpoint-snapshot#${r}` });
    const staging = round.map((p) => {
      const buf = dev.createBuffer({
        label: `snapshot:${names[p.t][0]}@${p.dstOffset}`,
        size: p.bytes,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      enc.copyBufferToBuffer(p.src, p.srcOffset, buf, 0, p.bytes);
      return buf;
    });
    dev.queue.submit([enc.finish()]);
    return staging;
  };
  // The first round is submitted now, before any later step.
  let staging: GPUBuffer[] = stage(rounds[0], 0);
  return (async () => {
    const out = names.map(([, count]) => new Uint8Array(4 * count));
    try {
      for (let r = 0; r < rounds.length; r++) {
        if (r > 0) staging = stage(rounds[r], r);
        // One buffer mapped at a time, freed once copied: the host holds the state once, not twice.
        for (let i = 0; i < staging.length; i++) {
          const p = rounds[r][i];
          await staging[i].mapAsync(GPUMapMode.READ);
          out[p.t].set(new Uint8Array(staging[i].getMappedRange()), p.dstOffset);
          staging[i].destroy();
        }
      }
      const byName = new Map(names.map(([name], t) => [name as string, out[t].buffer]));
      const grab = (prefix: string) => {
        const o = {} as ParamsF32;
        for (const p of paramNames(sae.cfg)) o[p] = new Float32Array(byName.get(`${prefix}${p}`)!);
        return o;
      };
      return {
        params: grab(''),
        m: grab('m_'),
        v: grab('v_'),
        ema: sae.cfg.ema ? grab('ema_') : null,
        tokensSince: new Uint32Array(byName.get('tokensSince')!),
        firesTotal: new Uint32Array(byName.get('firesTotal')!),
        ...(isBatchCut(sae.cfg.activation)
          ? { inferenceThreshold: new Float32Array(byName.get('tau')!)[1] }
          : {}),
      };
    } finally {
      for (const b of staging) b.destroy();
    }
  })();
}

/**
 * A snapshot of the training state that no step can tear: one submission when it fits the staging
 * budget, else rounds with `gate` held (no step, evaluation or other snapshot) until it settles.
 */
export function takeSnapshot(
  sae: GpuSae,
  gate: EvalWeightsGate,
  budget = SNAPSHOT_STAGING_BYTES,
): Promise<TrainState> {
  const state = snapshotState(sae, budget);
  if (snapshotBytes(sae) > budget) gate.hold(state);
  return state;
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
    const state = takeSnapshot(this.src.sae, this.gate, c.stagingBytes);
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
