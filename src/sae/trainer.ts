/**
 * The training loop: streams batches from an ActivationSource, normalizes them, runs GpuSae steps
 * without waiting on the GPU each step (metrics are read back every cfg.metricsEvery steps), reports
 * curves, evaluates on the held-out split, and obeys pause / resume / stop. Runs in the worker
 * (page and CLI alike) and in the GPU tests.
 */

import { Rng } from '../data/rng';
import type { ActivationSource } from '../data/source';
import type { ActivationStats } from '../data/stats';
import { Batcher, type BatcherState } from '../data/stream';
import { readBytes } from '../gpu/buffers';
import { GpuError, gpuErrorKind, injectGpuFault, withErrorScopes } from '../gpu/device';
import { type AutotuneReport, autotune } from './autotune';
import type { CheckpointStore } from './checkpoint';
import { type Checkpoint, serializeCheckpoint } from './checkpoint-format';
import { isBatchCut, isDense, lrAt, type ResolvedConfig, resolveConfig, type SaeConfig } from './config';
import { initParams } from './init';
import { type CodesBatch, EVAL_MAX_ROWS, MetricsAccumulator } from './metrics';
import { centeredMeanSqNorm, denormalizeInPlace, type Normalizer, normalizeBatch } from './normalize';
import type { TensorName } from './plan';
import type { EvalResult, MetricPoint, RunStatus } from './results';
import {
  DEFAULT_KERNELS,
  GpuSae,
  type KernelChoice,
  type ParamsF32,
  paramNames,
  paramSizes,
  type StepMetrics,
  type TrainState,
} from './step';

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

/** Where and how often the trainer saves checkpoints. */
export interface CheckpointOptions {
  store: CheckpointStore;
  runId: string;
  /** save every this many steps (rounded up to a metrics read-back); 0 or absent: by time only */
  everySteps?: number;
  /** save when this many seconds of wall time have passed since the last save (default 120; 0: off) */
  everySeconds?: number;
}

/** What a checkpoint's `extra` holds for resuming this trainer exactly. */
export interface TrainerCheckpointExtra {
  batcher: BatcherState;
  lossScale: number;
  kernels: KernelChoice;
  totalSteps: number;
  dataset: { name: string; rows: number; d: number };
}

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

/**
 * Copies every piece of training state (params, Adam moments, EMA, dead counters) into staging
 * buffers in ONE submission, so the snapshot is of the step submitted last even if more steps are
 * submitted while the copies are mapped. Returns the promise of the mapped data; training goes on.
 */
function snapshotState(sae: GpuSae): Promise<TrainState> {
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
  // One staging buffer per tensor; a sharded tensor's shards are copied into it in latent order.
  const staging = names.map(([name, count]) => {
    const buf = dev.createBuffer({
      label: `snapshot:${name}`,
      size: count * 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const elems = sae.segmentElems(name, count);
    let o = 0;
    sae.segments(name).forEach((seg, i) => {
      const n = Math.min(elems[i], count - o) * 4;
      if (n > 0) enc.copyBufferToBuffer(seg, 0, buf, o * 4, n);
      o += n / 4;
    });
    return buf;
  });
  dev.queue.submit([enc.finish()]);
  return (async () => {
    try {
      await Promise.all(staging.map((b) => b.mapAsync(GPUMapMode.READ)));
      const out = new Map<string, ArrayBuffer>();
      for (let i = 0; i < names.length; i++) out.set(names[i][0], staging[i].getMappedRange().slice(0));
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
      for (const b of staging) b.destroy();
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

/** One batch of evaluation rows through the GPU forward (Trainer.evalBatches). */
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

export class Trainer {
  readonly cfg: ResolvedConfig;
  readonly sae: GpuSae;
  readonly norm: Normalizer;
  readonly totalSteps: number;
  kernels: KernelChoice;
  private readonly batcher: Batcher;
  private paused = false;
  private stopped = false;
  private wake: (() => void) | null = null;
  private lossScale = 1;
  readonly curve: MetricPoint[] = [];
  step = 0;
  /** step of the last checkpoint saved (or restored), null when none */
  lastCheckpointStep: number | null = null;
  private saving: Promise<void> | null = null;
  private lastCheckpointTime = performance.now();
  private prepared = false;
  private lost: { reason: string; message: string } | null = null;
  /**
   * Held while an evaluation has the EMA weights in the parameter buffers (withEvalWeights): no
   * training step is submitted and no state snapshot taken until it is released.
   */
  private evalGate: Promise<void> | null = null;
  /** the first GPU error no scope caught (uncapturederror), null while there is none */
  gpuFault: { kind: string; message: string } | null = null;
  private readonly onUncaptured = (ev: Event) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    if (this.gpuFault) return;
    this.gpuFault = { kind: gpuErrorKind(err), message: err.message };
    this.wake?.();
  };

  constructor(
    readonly device: GPUDevice,
    readonly source: ActivationSource,
    readonly stats: ActivationStats,
    config: Partial<SaeConfig>,
    private readonly hooks: TrainerHooks = {},
    private readonly opts: TrainerOptions = {},
  ) {
    const ck = opts.resumeFrom;
    const ckExtra = ck?.extra as Partial<TrainerCheckpointExtra> | undefined;
    // Resuming: the checkpoint's config and kernels win, so the run continues exactly.
    this.cfg = trainerConfig(config, source.d, ck);
    this.kernels = { ...DEFAULT_KERNELS, ...opts.kernels, ...(ckExtra?.kernels ?? {}) };
    const ckScale = ck?.normalization?.kind === 'scalar' ? ck.normalization.scale : undefined;
    this.norm = opts.normalization ?? {
      kind: this.cfg.inputNorm,
      scale: this.cfg.inputNorm === 'scalar' ? (ckScale ?? stats.scale) : 1,
    };
    this.batcher = new Batcher(source, {
      seed: this.cfg.seed,
      heldOutFraction: this.cfg.evalFrac,
      nonFinite: opts.nonFinite ?? 'skip',
    });
    this.totalSteps = Math.max(1, Math.ceil(this.cfg.tokens / this.cfg.batchSize));
    this.sae = new GpuSae(device, this.cfg, this.kernels);
    // device.lost settles only if the device is lost: a reaction holding `this` would keep every
    // Trainer built on this device (batcher, curve, pipelines) alive until then (bench --only soak).
    const self = new WeakRef(this);
    device.lost.then((info) => {
      const t = self.deref();
      if (!t) return;
      t.lost = { reason: info.reason, message: info.message };
      t.wake?.();
    });
    device.addEventListener('uncapturederror', this.onUncaptured);
  }

  /** Throws the GPU error that surfaced (uncapturederror), if one did. */
  private throwIfGpuFault() {
    if (this.gpuFault)
      throw new GpuRunError(this.gpuFault.kind, this.gpuFault.message, this.step, this.lastCheckpointStep);
  }

  /**
   * After an await on the GPU: let error events already on their way be dispatched, then throw
   * the GPU error if one surfaced, so nothing computed after a fault is reported.
   */
  private async checkGpu() {
    await new Promise((r) => setTimeout(r, 0));
    this.throwIfGpuFault();
  }

  /**
   * A trainer holding given parameters (e.g. an imported SAE) on `source`, ready for evaluate()
   * and full evaluation (not for run(): the loss scale of a fresh run is not computed).
   */
  static withParams(
    device: GPUDevice,
    source: ActivationSource,
    stats: ActivationStats,
    config: Partial<SaeConfig>,
    params: ParamsF32,
    opts: TrainerOptions = {},
  ): Trainer {
    const t = new Trainer(device, source, stats, config, {}, opts);
    t.sae.setState({ params });
    t.prepared = true;
    return t;
  }

  /** The data position, as saved in checkpoints. */
  get dataPosition() {
    return { epoch: this.batcher.epoch, rowsEmitted: this.batcher.rowsEmitted };
  }

  /**
   * Starts a checkpoint of the state after the last submitted step: the GPU copies are queued
   * now, the batcher position and curve captured now; mapping, serializing and writing happen in
   * the background. One save at a time: while one is in flight this returns it (unless `force`,
   * which waits for it and then saves the current step).
   */
  checkpoint(force = false): Promise<void> | null {
    const c = this.opts.checkpoints;
    // Never save a state the GPU may have computed after a fault (or on a lost device).
    if (!c || this.lost || this.gpuFault) return null;
    // Never snapshot while an evaluation has the EMA weights in the parameters' place.
    if (this.evalGate) return this.untilEvalDone().then(() => this.checkpoint(force) ?? undefined);
    if (this.saving && !force) return this.saving;
    if (this.saving)
      return this.saving.then(() =>
        this.lastCheckpointStep === this.step ? undefined : (this.checkpoint(true) ?? undefined),
      );
    const step = this.step;
    this.lastCheckpointTime = performance.now();
    const state = snapshotState(this.sae);
    state.catch(() => {});
    const extra: TrainerCheckpointExtra = {
      batcher: this.batcher.getState(),
      lossScale: this.lossScale,
      kernels: this.kernels,
      totalSteps: this.totalSteps,
      dataset: { name: this.source.name, rows: this.source.rows, d: this.source.d },
    };
    const metrics = this.curve.slice();
    const data = this.dataPosition;
    const rng = [...extra.batcher.orderRng, ...extra.batcher.sampleRng];
    const p = (async () => {
      try {
        const snap = await state;
        // A diverging run can hold non-finite parameters one read-back before its loss shows it:
        // such a state is never saved, so the last checkpoint stays a good one.
        const bad = nonFiniteTensor(snap);
        if (bad)
          throw new Error(`checkpoint of step ${step} not saved: ${bad} holds NaN or Inf (the run diverged)`);
        const bytes = serializeCheckpoint({
          runId: c.runId,
          step,
          tokens: step * this.cfg.batchSize,
          config: this.cfg,
          data,
          rng,
          metrics,
          normalization:
            this.norm.kind === 'scalar'
              ? { kind: 'scalar', scale: this.norm.scale }
              : { kind: this.norm.kind },
          state: snap,
          extra: extra as unknown as Record<string, unknown>,
        });
        const info = await c.store.save(c.runId, step, bytes);
        this.lastCheckpointStep = step;
        this.hooks.onCheckpoint?.({ runId: c.runId, step, size: info.size });
      } catch (e) {
        this.hooks.onCheckpoint?.({
          runId: c.runId,
          step,
          error: e instanceof Error ? e.message : String(e),
        });
      } finally {
        this.saving = null;
      }
    })();
    this.saving = p;
    return p;
  }

  /** Periodic checkpoint, at a metrics read-back (so the saved curve is complete up to the step). */
  private maybeCheckpoint(t: number) {
    const c = this.opts.checkpoints;
    if (!c || this.saving) return;
    const bySteps = (c.everySteps ?? 0) > 0 && t - (this.lastCheckpointStep ?? 0) >= c.everySteps!;
    const secs = c.everySeconds ?? 120;
    const byTime = secs > 0 && performance.now() - this.lastCheckpointTime >= secs * 1000;
    if (bySteps || byTime) this.checkpoint();
  }

  private deviceLostError(): DeviceLostError {
    return new DeviceLostError(
      this.lost?.reason ?? 'unknown',
      this.lost?.message ?? '',
      this.step,
      this.lastCheckpointStep,
    );
  }

  /** A failure while the device is (or within half a second turns out to be) lost becomes a DeviceLostError. */
  private async asDeviceLoss(e: unknown): Promise<unknown> {
    for (let i = 0; i < 10 && !this.lost; i++) await new Promise((r) => setTimeout(r, 50));
    return this.lost ? this.deviceLostError() : e;
  }

  pause() {
    this.paused = true;
  }
  resume() {
    this.paused = false;
    this.wake?.();
  }
  stop() {
    this.stopped = true;
    this.paused = false;
    this.wake?.();
  }

  /** Initial parameters from a sample of training rows (its own stream, so training batches are unaffected). */
  private async initialize() {
    const { d } = this.cfg;
    const sampler = new Batcher(this.source, {
      seed: this.cfg.seed + 0x5eed,
      heldOutFraction: this.cfg.evalFrac,
      nonFinite: 'skip',
      shuffleRows: 16384,
    });
    const n = Math.min(4096, sampler.trainRows);
    const raw = await sampler.nextBatch(n);
    const sample = new Float32Array(n * d);
    normalizeBatch(this.norm, raw, d, sample, new Float32Array(n));
    const c = centeredMeanSqNorm(sample, d);
    this.lossScale = 1 / (this.cfg.batchSize * (c > 0 ? c : 1));
    const params = initParams(this.cfg, sample, new Rng(this.cfg.seed));
    this.sae.setState({ params });
  }

  /**
   * Initial parameters (fresh run) or the checkpoint's state (resume). Called by run(); callable
   * before it (tests) and idempotent.
   */
  async prepare(): Promise<void> {
    if (this.prepared) return;
    this.prepared = true;
    const ck = this.opts.resumeFrom;
    if (!ck) {
      await this.initialize();
      return;
    }
    const ex = ck.extra as Partial<TrainerCheckpointExtra> | undefined;
    if (!ex?.batcher || typeof ex.lossScale !== 'number')
      throw new Error(`checkpoint step ${ck.step} has no data-stream position: it cannot be resumed exactly`);
    if (ex.dataset && (ex.dataset.rows !== this.source.rows || ex.dataset.d !== this.source.d))
      throw new Error(
        `checkpoint was taken on ${ex.dataset.name} (${ex.dataset.rows} rows × ${ex.dataset.d}); the open dataset is ${this.source.name} (${this.source.rows} rows × ${this.source.d})`,
      );
    this.sae.setState(ck.state);
    await this.batcher.setState(ex.batcher);
    this.lossScale = ex.lossScale;
    this.step = ck.step;
    this.lastCheckpointStep = ck.step;
    this.curve.length = 0;
    this.curve.push(...(ck.metrics as MetricPoint[]));
  }

  async run(): Promise<TrainResult> {
    try {
      return await this.runLoop();
    } catch (e) {
      const err = await this.asDeviceLoss(e);
      // A save already under way finishes (it began before the fault was noticed); none starts.
      if (!(err instanceof DeviceLostError)) await this.saving?.catch(() => {});
      throw err;
    } finally {
      this.device.removeEventListener('uncapturederror', this.onUncaptured);
    }
  }

  private async runLoop(): Promise<TrainResult> {
    const { d, batchSize: B, metricsEvery } = this.cfg;
    const resuming = !!this.opts.resumeFrom;
    this.hooks.onStatus?.(
      'preparing',
      resuming ? `resuming from checkpoint step ${this.opts.resumeFrom!.step}` : undefined,
    );
    // Start-up runs inside error scopes: a GPU error there names its phase and ends the run.
    await withErrorScopes(
      this.device,
      resuming ? 'restoring the checkpoint state (setState)' : 'initializing the parameters (setState)',
      () => this.prepare(),
    );
    const startStep = this.step;
    let tuned: AutotuneReport | null = null;
    if (this.opts.autotuneAdapter && !this.opts.kernels && !resuming) {
      this.hooks.onStatus?.('preparing', 'autotuning kernels');
      const adapter = this.opts.autotuneAdapter;
      tuned = await withErrorScopes(this.device, 'autotuning the kernels', () => autotune(this.sae, adapter));
      this.kernels = this.sae.kernels;
    }
    this.throwIfGpuFault();
    this.hooks.onStarted?.({ kernels: this.kernels, autotune: tuned });
    // A resumed run's curve so far goes out first, so the page's plots continue rather than restart.
    if (resuming && this.curve.length) this.hooks.onMetrics?.(this.curve.slice());
    this.hooks.onStatus?.('running');
    const raw = new Float32Array(B * d);
    const xn = new Float32Array(B * d);
    const rowScale = new Float32Array(B);
    const mu = this.stats.mean;
    /** each submitted step's Σ‖x − μ‖², until its metrics are read back (then dropped: bounded) */
    const denoms = new Map<number, number>();
    let lastRead = startStep;
    let lastTime = performance.now();
    this.lastCheckpointTime = lastTime;
    let lastEvalTokens = startStep * B;
    let tokensPerS = 0;
    const evalEvery = this.opts.evalEveryTokens ?? 0;
    let status: TrainResult['status'] = 'done';
    /** the first step whose loss was not finite, reported (onNaN) once the last save has settled */
    let diverged = null as { step: number; value: number } | null;

    const readBack = async (upTo: number) => {
      const ms: StepMetrics[] = await this.sae.readMetrics(lastRead, upTo);
      await this.checkGpu();
      const now = performance.now();
      const steps = upTo - lastRead;
      tokensPerS = (steps * B) / Math.max(1e-3, (now - lastTime) / 1000);
      lastTime = now;
      let rawSe = 0;
      let den = 0;
      const mean = (f: (m: StepMetrics) => number) => ms.reduce((a, m) => a + f(m), 0) / ms.length;
      ms.forEach((m, i) => {
        rawSe += m.rawSe;
        den += denoms.get(lastRead + i) ?? 0;
        denoms.delete(lastRead + i);
      });
      const last = ms[ms.length - 1];
      const point: MetricPoint = {
        step: upTo,
        tokens: upTo * B,
        loss: mean((m) => m.loss),
        auxLoss: mean((m) => m.auxLoss),
        nmse: den > 0 ? rawSe / den : Number.NaN,
        l0: mean((m) => m.l0),
        deadFraction: last.deadCount / this.cfg.nLatents,
        tokensPerS,
        lr: lrAt(this.cfg, upTo),
        gradNorm: mean((m) => m.gradNorm),
      };
      if (isDense(this.cfg.activation)) point.penalty = mean((m) => m.extra);
      if (isBatchCut(this.cfg.activation)) point.batchThreshold = mean((m) => m.extra);
      lastRead = upTo;
      this.curve.push(point);
      this.hooks.onMetrics?.([point]);
      if (!ms.every((m) => Number.isFinite(m.loss) && Number.isFinite(m.auxLoss))) {
        const bad = ms.findIndex((m) => !Number.isFinite(m.loss) || !Number.isFinite(m.auxLoss));
        const value = Number.isFinite(ms[bad].loss) ? ms[bad].auxLoss : ms[bad].loss;
        diverged = { step: lastRead - ms.length + bad + 1, value };
        return false;
      }
      return true;
    };

    for (let t = startStep + 1; t <= this.totalSteps; t++) {
      await this.untilEvalDone();
      if (this.lost) throw this.deviceLostError();
      this.throwIfGpuFault();
      if (this.paused) {
        if (t - 1 > lastRead && !(await readBack(t - 1))) {
          status = 'failed';
          break;
        }
        // Save on pause: the user may close the tab next.
        if (!this.stopped) await this.checkpoint(true);
        this.hooks.onStatus?.('paused');
        while (this.paused && !this.lost && !this.gpuFault) await new Promise<void>((r) => (this.wake = r));
        if (this.lost) throw this.deviceLostError();
        this.throwIfGpuFault();
        lastTime = performance.now();
        if (!this.stopped) this.hooks.onStatus?.('running');
      }
      if (this.stopped) {
        status = 'stopped';
        break;
      }
      await this.batcher.nextBatch(B, raw);
      // An evaluation may have swapped the EMA weights in during the await: no step until it is done
      // (nothing awaits between here and the step's submission).
      await this.untilEvalDone();
      normalizeBatch(this.norm, raw, d, xn, rowScale);
      let den = 0;
      for (let b = 0; b < B; b++) for (let c = 0; c < d; c++) den += (raw[b * d + c] - mu[c]) ** 2;
      denoms.set(t - 1, den);
      if (t === startStep + 1)
        // The first step runs inside error scopes (it waits for the GPU once).
        await withErrorScopes(this.device, `the first training step (step ${t})`, () => {
          this.sae.writeBatch(xn, rowScale);
          this.sae.step(t, lrAt(this.cfg, t), this.lossScale);
        });
      else {
        this.sae.writeBatch(xn, rowScale);
        this.sae.step(t, lrAt(this.cfg, t), this.lossScale);
      }
      this.step = t;
      // Test hook: a real invalid command, outside any scope (the first step's scope is closed).
      if (t === this.opts.injectGpuErrorAtStep) injectGpuFault(this.device, `injected-fault@${t}`);
      // Test hook: the device is lost for real (its lost promise resolves, pending work fails). A save
      // already under way may finish first, so which checkpoint the recovery finds does not depend on
      // how fast the machine writes it.
      if (t === this.opts.loseDeviceAtStep) {
        await this.saving?.catch(() => {});
        this.device.destroy();
      }
      if (t % metricsEvery === 0 || t === this.totalSteps) {
        if (!(await readBack(t))) {
          status = 'failed';
          break;
        }
        if (t < this.totalSteps) this.maybeCheckpoint(t);
      }
      if (evalEvery > 0 && t * B - lastEvalTokens >= evalEvery && t < this.totalSteps) {
        lastEvalTokens = t * B;
        const r = await this.evaluate();
        await this.checkGpu();
        this.hooks.onEval?.(r);
        lastTime = performance.now();
      }
    }
    if (this.step > lastRead && status !== 'failed') {
      if (!(await readBack(this.step))) status = 'failed';
    }
    if (this.lost) throw this.deviceLostError();
    await this.checkGpu();
    // Save on stop and at the end (never a NaN state); wait for it, the run is over.
    if (status !== 'failed') await this.checkpoint(true);
    else await this.saving;
    if (diverged) {
      const kept =
        this.lastCheckpointStep === null
          ? 'no checkpoint was saved'
          : `the last good checkpoint (step ${this.lastCheckpointStep}) is kept`;
      this.hooks.onNaN?.(
        diverged.step,
        `loss became ${diverged.value} at step ${diverged.step}, the run stopped; ${kept}: lower the learning rate, enable gradient clipping, or check the data for huge values`,
      );
    }
    const final = { ...(await this.evaluate()), tokensPerS };
    await this.checkGpu();
    this.hooks.onEval?.(final);
    this.hooks.onStatus?.(status);
    return { status, steps: this.step, tokens: this.step * B, final, curve: this.curve };
  }

  /** Resolves when no evaluation holds the EMA weights in the parameters' place. */
  private async untilEvalDone() {
    while (this.evalGate) await this.evalGate;
  }

  /** The weights evaluations report on: the EMA weights when the run keeps them (cfg.ema), as the paper evaluates. */
  get evalWeights(): 'ema' | 'live' {
    return this.cfg.ema ? 'ema' : 'live';
  }

  /**
   * Runs `fn` with the weights evaluations report on (evalWeights) in the parameter buffers, so the one
   * forward pass evaluates them: with cfg.ema the EMA weights are copied in on the GPU and the
   * parameters copied back after; meanwhile no training step is submitted, no checkpoint or export
   * snapshot is taken, and other evaluations wait their turn.
   */
  async withEvalWeights<T>(fn: (weights: 'ema' | 'live') => Promise<T>): Promise<T> {
    if (!this.cfg.ema) return fn('live');
    await this.untilEvalDone();
    let release = () => {};
    this.evalGate = new Promise<void>((r) => {
      release = r;
    });
    let restore: (() => void) | null = null;
    try {
      restore = this.sae.swapInEma();
      return await fn('ema');
    } finally {
      restore?.();
      this.evalGate = null;
      release();
    }
  }

  /**
   * The evaluation rows through the GPU forward, batch by batch, as every evaluation reads them (this
   * trainer's evaluate(), the worker's full evaluation): the held-out rows in file order (or, with no
   * held-out split, the first maxRows finite rows), at most maxRows, B per batch; the last batch
   * holds the rest and runs through the forward as those rows alone (GpuSae.forward(n): no padding
   * rows in BatchTopK's selection, no stale row scale). Reads the parameters in place: wrap in
   * withEvalWeights for the reported weights.
   */
  async *evalBatches(maxRows = this.opts.evalMaxRows ?? EVAL_MAX_ROWS): AsyncGenerator<EvalBatch> {
    const { d, batchSize: B, evalFrac } = this.cfg;
    const sae = this.sae;
    const k = sae.codesK;
    const dense = isDense(this.cfg.activation);
    const inner = this.cfg.matryoshkaWidths.length - 1;
    const xn = new Float32Array(B * d);
    const rowScale = new Float32Array(B);
    const rowShift = new Float32Array(B);
    const split = new Batcher(this.source, { heldOutFraction: evalFrac, nonFinite: 'skip', shuffleRows: 1 });
    const batches =
      split.split.heldOutRows > 0 ? split.heldOutBatches(B, maxRows) : this.fileOrderBatches(B, maxRows);
    for await (const batch of batches) {
      const n = batch.rowIds.length;
      if (n === 0) continue;
      const x = batch.data.subarray(0, n * d);
      normalizeBatch(
        this.norm,
        x,
        d,
        xn.subarray(0, n * d),
        rowScale.subarray(0, n),
        rowShift.subarray(0, n),
      );
      sae.writeBatch(xn.subarray(0, n * d), rowScale.subarray(0, n));
      sae.forward(n);
      // The three copies are submitted now, right behind the forward pass, so a training step
      // submitted while they are awaited (a live run's full evaluation) cannot come between.
      const [xb, ib, vb, sb, inb] = await Promise.all([
        readBytes(sae.device, sae.b.xHat, n * d * 4),
        readBytes(sae.device, sae.b.idxAll, n * k * 4),
        readBytes(sae.device, sae.b.valAll, n * k * 4),
        dense ? readBytes(sae.device, sae.b.rowStats, n * 16) : null,
        // Matryoshka's inner prefixes: the forward's decode wrote them as [G − 1, n, d].
        inner > 0 ? readBytes(sae.device, sae.b.xInner, inner * n * d * 4) : null,
      ]);
      await this.checkGpu();
      const xHat = new Float32Array(xb);
      denormalizeInPlace(xHat, d, rowScale.subarray(0, n), rowShift.subarray(0, n));
      const codes = { rows: n, k, idx: new Uint32Array(ib), val: new Float32Array(vb) };
      const stats = sb ? new Float32Array(sb) : null;
      const rowL0 = stats ? Float32Array.from({ length: n }, (_, b) => stats[b * 4 + 2]) : undefined;
      const xInner = inb ? new Float32Array(inb) : undefined;
      if (xInner)
        for (let h = 0; h < inner; h++)
          denormalizeInPlace(
            xInner.subarray(h * n * d, (h + 1) * n * d),
            d,
            rowScale.subarray(0, n),
            rowShift.subarray(0, n),
          );
      yield { x, rowIds: batch.rowIds.subarray(0, n), codes, xHat, rowL0, xInner };
    }
  }

  /** Without a held-out split: the first maxRows rows in file order (the finite ones), B at a time. */
  private async *fileOrderBatches(B: number, maxRows: number) {
    const { source } = this;
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
   * EMA weights with cfg.ema), and the dead fraction by the deadTokens rule. The evaluation panel's
   * numbers come from the same batches through the same accumulator.
   */
  async evaluate(maxRows = this.opts.evalMaxRows ?? EVAL_MAX_ROWS): Promise<EvalResult> {
    const { nLatents: N, batchSize: B } = this.cfg;
    const acc = new MetricsAccumulator({
      N,
      d: this.cfg.d,
      mean: this.stats.mean,
      fireThreshold: this.cfg.fireThreshold,
      innerLevels: this.cfg.matryoshkaWidths.length - 1,
    });
    const weights = await this.withEvalWeights(async (w) => {
      for await (const b of this.evalBatches(maxRows)) acc.add(b.x, b.codes, b.xHat, b.rowL0, b.xInner);
      return w;
    });
    const m = acc.metrics();
    const since = await this.sae.readU32('tokensSince', N);
    let deadRule = 0;
    for (let i = 0; i < N; i++) if (since[i] > this.cfg.deadTokens) deadRule++;
    return {
      tokens: this.step * B,
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

  destroy() {
    this.device.removeEventListener('uncapturederror', this.onUncaptured);
    this.sae.destroy();
  }

  /**
   * Current parameters (and the EMA, moments) and dead counters, consistent even while steps are being
   * submitted; waits while an evaluation has the EMA weights in the parameters' place.
   */
  async snapshot(): Promise<TrainState> {
    await this.untilEvalDone();
    return snapshotState(this.sae);
  }
}
