/**
 * The training loop: streams batches from an ActivationSource, normalizes them, runs GpuSae steps
 * without waiting on the GPU each step (metrics are read back every cfg.metricsEvery steps, the
 * curve built by run-curve.ts), reports curves, evaluates on the held-out split (evaluation.ts),
 * saves checkpoints (trainer-checkpoint.ts), and obeys pause / resume / stop. Runs in the worker
 * (page and CLI alike) and in the GPU tests.
 */

import type { ActivationSource } from '../data/source';
import type { ActivationStats } from '../data/stats';
import { Batcher } from '../data/stream';
import { gpuErrorKind, injectGpuFault, withErrorScopes } from '../gpu/device';
import { type AutotuneReport, autotune } from './autotune';
import { BoundedCurve } from './bounded-curve';
import type { CheckpointData } from './checkpoint-format';
import { lrAt, type ResolvedConfig, type SaeConfig } from './config';
import { type EvalBatch, EvalWeightsGate, evalBatches, heldOutEval } from './evaluation';
import { initFromData } from './init';
import { EVAL_MAX_ROWS } from './metrics';
import { type Normalizer, normalizeBatch } from './normalize';
import type { EvalResult, MetricPoint } from './results';
import { RunCurve } from './run-curve';
import { DeviceLostError, GpuRunError } from './run-errors';
import { GpuSae } from './step';
import type { ParamsF32, TrainState } from './step-buffers';
import { DEFAULT_KERNELS, type KernelChoice } from './step-host';
import {
  CheckpointSaver,
  resumePoint,
  type TrainerCheckpointExtra,
  takeSnapshot,
} from './trainer-checkpoint';
import { type TrainerHooks, type TrainerOptions, type TrainResult, trainerConfig } from './trainer-options';

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
  /** The run's metric points, bounded (bounded-curve.ts: past 16384 points it keeps every other one). */
  private readonly curveBuf = new BoundedCurve<MetricPoint>();
  get curve(): MetricPoint[] {
    return this.curveBuf.points;
  }
  step = 0;
  private prepared = false;
  private lost: { reason: string; message: string } | null = null;
  /** held while an evaluation has the EMA weights in the parameter buffers (withEvalWeights) */
  private readonly evalGate: EvalWeightsGate;
  private readonly saver: CheckpointSaver;
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
    this.evalGate = new EvalWeightsGate(this.sae);
    this.saver = new CheckpointSaver(
      opts.checkpoints,
      {
        sae: this.sae,
        step: () => this.step,
        canSave: () => !this.lost && !this.gpuFault,
        record: (step) => this.checkpointRecord(step),
        onCheckpoint: (info) => this.hooks.onCheckpoint?.(info),
      },
      this.evalGate,
    );
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
      throw new GpuRunError(this.gpuFault.kind, this.gpuFault.message, this.step, this.saver.lastStep);
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
   * Starts a checkpoint of the state after the last submitted step (CheckpointSaver.save: in the
   * background, one at a time; `force` waits for the one in flight and then saves the current step).
   */
  checkpoint(force = false): Promise<void> | null {
    return this.saver.save(force);
  }

  /** Everything a checkpoint holds but the GPU state, captured now (`step`: the last submitted). */
  private checkpointRecord(step: number): Omit<CheckpointData, 'state'> {
    const extra: TrainerCheckpointExtra = {
      batcher: this.batcher.getState(),
      lossScale: this.lossScale,
      kernels: this.kernels,
      totalSteps: this.totalSteps,
      dataset: { name: this.source.name, rows: this.source.rows, d: this.source.d },
    };
    return {
      runId: this.opts.checkpoints?.runId,
      step,
      tokens: step * this.cfg.batchSize,
      config: this.cfg,
      data: this.dataPosition,
      rng: [...extra.batcher.orderRng, ...extra.batcher.sampleRng],
      metrics: this.curve.slice(),
      normalization:
        this.norm.kind === 'scalar' ? { kind: 'scalar', scale: this.norm.scale } : { kind: this.norm.kind },
      extra: extra as unknown as Record<string, unknown>,
    };
  }

  private deviceLostError(): DeviceLostError {
    return new DeviceLostError(
      this.lost?.reason ?? 'unknown',
      this.lost?.message ?? '',
      this.step,
      this.saver.lastStep,
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

  /**
   * Initial parameters (fresh run) or the checkpoint's state (resume). Called by run(); callable
   * before it (tests) and idempotent.
   */
  async prepare(): Promise<void> {
    if (this.prepared) return;
    this.prepared = true;
    const ck = this.opts.resumeFrom;
    if (!ck) {
      const init = await initFromData(this.cfg, this.source, this.norm);
      this.lossScale = init.lossScale;
      this.sae.setState({ params: init.params });
      return;
    }
    const ex = resumePoint(ck, this.source);
    this.sae.setState(ck.state);
    await this.batcher.setState(ex.batcher);
    this.lossScale = ex.lossScale;
    this.step = ck.step;
    this.saver.lastStep = ck.step;
    this.curveBuf.reset(ck.metrics as MetricPoint[]);
  }

  async run(): Promise<TrainResult> {
    try {
      return await this.runLoop();
    } catch (e) {
      const err = await this.asDeviceLoss(e);
      // A save already under way finishes (it began before the fault was noticed); none starts.
      if (!(err instanceof DeviceLostError)) await this.saver.saving?.catch(() => {});
      throw err;
    } finally {
      this.device.removeEventListener('uncapturederror', this.onUncaptured);
    }
  }

  /** Initial or restored state and autotuning, inside error scopes (a GPU error there names its phase). */
  private async startUp() {
    const resuming = !!this.opts.resumeFrom;
    this.hooks.onStatus?.(
      'preparing',
      resuming ? `resuming from checkpoint step ${this.opts.resumeFrom!.step}` : undefined,
    );
    await withErrorScopes(
      this.device,
      resuming ? 'restoring the checkpoint state (setState)' : 'initializing the parameters (setState)',
      () => this.prepare(),
    );
    let tuned: AutotuneReport | null = null;
    if (this.opts.autotuneAdapter && !this.opts.kernels && !resuming) {
      this.hooks.onStatus?.('preparing', 'autotuning kernels');
      const adapter = this.opts.autotuneAdapter;
      // Its stages in the run's status: seconds to tens of seconds on a software adapter.
      const progress = (what: string) => this.hooks.onStatus?.('preparing', `autotuning kernels: ${what}`);
      tuned = await withErrorScopes(this.device, 'autotuning the kernels', () =>
        autotune(this.sae, adapter, undefined, progress, this.totalSteps),
      );
      this.kernels = this.sae.kernels;
    }
    this.throwIfGpuFault();
    this.hooks.onStarted?.({ kernels: this.kernels, autotune: tuned });
    // A resumed run's curve so far goes out first, so the page's plots continue rather than restart.
    if (resuming && this.curve.length) this.hooks.onMetrics?.(this.curve.slice());
    this.hooks.onStatus?.('running');
  }

  private async runLoop(): Promise<TrainResult> {
    const { d, batchSize: B, metricsEvery } = this.cfg;
    await this.startUp();
    const startStep = this.step;
    const batch = {
      raw: new Float32Array(B * d),
      xn: new Float32Array(B * d),
      rowScale: new Float32Array(B),
    };
    const curve = new RunCurve(this.cfg, this.stats.mean, startStep);
    this.saver.lastTime = performance.now();
    let lastEvalTokens = startStep * B;
    const evalEvery = this.opts.evalEveryTokens ?? 0;
    let status: TrainResult['status'] = 'done';
    for (let t = startStep + 1; t <= this.totalSteps; t++) {
      await this.evalGate.untilFree();
      if (this.lost) throw this.deviceLostError();
      this.throwIfGpuFault();
      if (this.paused && !(await this.pauseHere(t - 1, curve))) {
        status = 'failed';
        break;
      }
      if (this.stopped) {
        status = 'stopped';
        break;
      }
      await this.submitStep(t, t === startStep + 1, batch, curve);
      if (t % metricsEvery === 0 || t === this.totalSteps) {
        if (!(await this.readBack(curve, t))) {
          status = 'failed';
          break;
        }
        if (t < this.totalSteps) this.saver.maybeSave(t);
      }
      if (evalEvery > 0 && t * B - lastEvalTokens >= evalEvery && t < this.totalSteps) {
        lastEvalTokens = t * B;
        const r = await this.evaluate();
        await this.checkGpu();
        this.hooks.onEval?.(r);
        curve.restartClock();
      }
    }
    return this.finish(status, curve);
  }

  /**
   * Paused before step `last` + 1: reads back the steps so far, saves (the user may close the tab
   * next) and waits for resume or stop. False when the read-back found the loss diverged.
   */
  private async pauseHere(last: number, curve: RunCurve): Promise<boolean> {
    if (last > curve.lastRead && !(await this.readBack(curve, last))) return false;
    if (!this.stopped) await this.checkpoint(true);
    this.hooks.onStatus?.('paused');
    while (this.paused && !this.lost && !this.gpuFault) await new Promise<void>((r) => (this.wake = r));
    if (this.lost) throw this.deviceLostError();
    this.throwIfGpuFault();
    curve.restartClock();
    if (!this.stopped) this.hooks.onStatus?.('running');
    return true;
  }

  /** Reads the next batch ([B, d] raw, normalized into xn) and submits step t; `first`: of this run. */
  private async submitStep(
    t: number,
    first: boolean,
    { raw, xn, rowScale }: { raw: Float32Array; xn: Float32Array; rowScale: Float32Array },
    curve: RunCurve,
  ) {
    await this.batcher.nextBatch(this.cfg.batchSize, raw);
    // An evaluation may have swapped the EMA weights in during the await: no step until it is done
    // (nothing awaits between here and the step's submission).
    await this.evalGate.untilFree();
    normalizeBatch(this.norm, raw, this.cfg.d, xn, rowScale);
    curve.submitted(t, raw);
    if (first)
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
      await this.saver.saving?.catch(() => {});
      this.device.destroy();
    }
  }

  /** Reads back the metrics of the steps up to `upTo` as one curve point; false when the loss diverged. */
  private async readBack(curve: RunCurve, upTo: number): Promise<boolean> {
    const ms = await this.sae.readMetrics(curve.lastRead, upTo);
    await this.checkGpu();
    const point = curve.point(ms, upTo);
    this.curveBuf.push(point);
    this.hooks.onMetrics?.([point]);
    return curve.diverged === null;
  }

  /** After the last step, a stop or a divergence: the last read-back, the last save, the NaN report, the final evaluation. */
  private async finish(status: TrainResult['status'], curve: RunCurve): Promise<TrainResult> {
    if (this.step > curve.lastRead && status !== 'failed') {
      if (!(await this.readBack(curve, this.step))) status = 'failed';
    }
    if (this.lost) throw this.deviceLostError();
    await this.checkGpu();
    // Save on stop and at the end (never a NaN state); wait for it, the run is over.
    if (status !== 'failed') await this.checkpoint(true);
    else await this.saver.saving;
    const { diverged } = curve;
    if (diverged) {
      const kept =
        this.saver.lastStep === null
          ? 'no checkpoint was saved'
          : `the last good checkpoint (step ${this.saver.lastStep}) is kept`;
      this.hooks.onNaN?.(
        diverged.step,
        `loss became ${diverged.value} at step ${diverged.step}, the run stopped; ${kept}: lower the learning rate, enable gradient clipping, or check the data for huge values`,
      );
    }
    const final = { ...(await this.evaluate()), tokensPerS: curve.tokensPerS };
    await this.checkGpu();
    this.hooks.onEval?.(final);
    this.hooks.onStatus?.(status);
    return { status, steps: this.step, tokens: this.step * this.cfg.batchSize, final, curve: this.curve };
  }

  /** The weights evaluations report on: the EMA weights when the run keeps them (cfg.ema), as the paper evaluates. */
  get evalWeights(): 'ema' | 'live' {
    return this.cfg.ema ? 'ema' : 'live';
  }

  /**
   * Runs `fn` with the weights evaluations report on (evalWeights) in the parameter buffers
   * (EvalWeightsGate.run); meanwhile no training step is submitted, no checkpoint or export
   * snapshot is taken, and other evaluations wait their turn.
   */
  withEvalWeights<T>(fn: (weights: 'ema' | 'live') => Promise<T>): Promise<T> {
    return this.evalGate.run(fn);
  }

  /**
   * The evaluation rows through the GPU forward, batch by batch (evaluation.ts evalBatches), as every
   * evaluation reads them. Reads the parameters in place: wrap in withEvalWeights for the reported weights.
   */
  evalBatches(maxRows = this.opts.evalMaxRows ?? EVAL_MAX_ROWS): AsyncGenerator<EvalBatch> {
    return evalBatches(this, maxRows, () => this.checkGpu());
  }

  /** Held-out metrics of the weights evaluations report on (evaluation.ts heldOutEval). */
  evaluate(maxRows = this.opts.evalMaxRows ?? EVAL_MAX_ROWS): Promise<EvalResult> {
    return heldOutEval(
      this,
      this.evalGate,
      maxRows,
      () => this.step * this.cfg.batchSize,
      () => this.checkGpu(),
    );
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
    await this.evalGate.untilFree();
    return takeSnapshot(this.sae, this.evalGate);
  }
}
