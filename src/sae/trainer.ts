/**
 * The training loop: streams batches from an ActivationSource, normalizes them, runs GpuSae steps
 * without waiting on the GPU each step (metrics are read back every cfg.metricsEvery steps), reports
 * curves, evaluates on the held-out split, and obeys pause / resume / stop. Runs in the worker
 * (page and CLI alike) and in the GPU tests.
 */
import { Batcher } from '../data/stream';
import { Rng } from '../data/rng';
import type { ActivationSource } from '../data/source';
import type { ActivationStats } from '../data/stream';
import type { EvalResult, MetricPoint, RunStatus } from '../worker/protocol';
import { lrAt, type ResolvedConfig, resolveConfig, type SaeConfig } from './config';
import { initParams } from './init';
import { centeredMeanSqNorm, denormalizeInPlace, normalizeBatch, type Normalizer } from './normalize';
import { autotune, type AutotuneReport } from '../gpu/autotune';
import { DEFAULT_KERNELS, GpuSae, type KernelChoice, type StepMetrics } from './step';

export interface TrainerHooks {
  onMetrics?: (points: MetricPoint[]) => void;
  onEval?: (r: EvalResult) => void;
  onStatus?: (s: RunStatus, message?: string) => void;
  onNaN?: (step: number, message: string) => void;
  /** after initialization and autotuning, before the first step */
  onStarted?: (info: { kernels: KernelChoice; autotune: AutotuneReport | null }) => void;
}

export interface TrainerOptions {
  kernels?: Partial<KernelChoice>;
  /** evaluate every this many tokens (0: only at the end) */
  evalEveryTokens?: number;
  /** held-out rows evaluated at most */
  evalMaxRows?: number;
  nonFinite?: 'skip' | 'stop';
  /** time the kernel variants at start-up (skipped for variants given in `kernels`); names the adapter for the cache */
  autotuneAdapter?: string | null;
}

export interface TrainResult {
  status: 'done' | 'stopped' | 'failed';
  steps: number;
  tokens: number;
  final: EvalResult & { tokensPerS: number };
  curve: MetricPoint[];
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

  constructor(
    readonly device: GPUDevice,
    readonly source: ActivationSource,
    readonly stats: ActivationStats,
    config: Partial<SaeConfig>,
    private readonly hooks: TrainerHooks = {},
    private readonly opts: TrainerOptions = {},
  ) {
    this.cfg = resolveConfig({ ...config, d: source.d });
    this.kernels = { ...DEFAULT_KERNELS, ...opts.kernels };
    this.norm = { kind: this.cfg.inputNorm, scale: this.cfg.inputNorm === 'scalar' ? stats.scale : 1 };
    this.batcher = new Batcher(source, {
      seed: this.cfg.seed,
      heldOutFraction: this.cfg.evalFrac,
      nonFinite: opts.nonFinite ?? 'skip',
    });
    this.totalSteps = Math.max(1, Math.ceil(this.cfg.tokens / this.cfg.batchSize));
    this.sae = new GpuSae(device, this.cfg, this.kernels);
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

  async run(): Promise<TrainResult> {
    const { d, batchSize: B, metricsEvery } = this.cfg;
    this.hooks.onStatus?.('preparing');
    await this.initialize();
    let tuned: AutotuneReport | null = null;
    if (this.opts.autotuneAdapter && !this.opts.kernels) {
      this.hooks.onStatus?.('preparing', 'autotuning kernels');
      tuned = await autotune(this.sae, this.opts.autotuneAdapter);
      this.kernels = this.sae.kernels;
    }
    this.hooks.onStarted?.({ kernels: this.kernels, autotune: tuned });
    this.hooks.onStatus?.('running');
    const raw = new Float32Array(B * d);
    const xn = new Float32Array(B * d);
    const rowScale = new Float32Array(B);
    const mu = this.stats.mean;
    const denoms: number[] = [];
    let lastRead = 0;
    let lastTime = performance.now();
    let lastEvalTokens = 0;
    let tokensPerS = 0;
    const evalEvery = this.opts.evalEveryTokens ?? 0;
    let status: TrainResult['status'] = 'done';

    const readBack = async (upTo: number) => {
      const ms: StepMetrics[] = await this.sae.readMetrics(lastRead, upTo);
      const now = performance.now();
      const steps = upTo - lastRead;
      tokensPerS = (steps * B) / Math.max(1e-3, (now - lastTime) / 1000);
      lastTime = now;
      let rawSe = 0;
      let den = 0;
      const mean = (f: (m: StepMetrics) => number) => ms.reduce((a, m) => a + f(m), 0) / ms.length;
      ms.forEach((m, i) => {
        rawSe += m.rawSe;
        den += denoms[lastRead + i] ?? 0;
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
      lastRead = upTo;
      this.curve.push(point);
      this.hooks.onMetrics?.([point]);
      if (!ms.every((m) => Number.isFinite(m.loss) && Number.isFinite(m.auxLoss))) {
        const bad = ms.findIndex((m) => !Number.isFinite(m.loss) || !Number.isFinite(m.auxLoss));
        const message = `loss became ${ms[bad].loss} at step ${lastRead - ms.length + bad + 1}: lower the learning rate, enable gradient clipping, or check the data for huge values`;
        this.hooks.onNaN?.(lastRead - ms.length + bad + 1, message);
        return false;
      }
      return true;
    };

    for (let t = 1; t <= this.totalSteps; t++) {
      if (this.paused) {
        if (t - 1 > lastRead && !(await readBack(t - 1))) {
          status = 'failed';
          break;
        }
        this.hooks.onStatus?.('paused');
        while (this.paused) await new Promise<void>((r) => (this.wake = r));
        lastTime = performance.now();
        if (!this.stopped) this.hooks.onStatus?.('running');
      }
      if (this.stopped) {
        status = 'stopped';
        break;
      }
      await this.batcher.nextBatch(B, raw);
      normalizeBatch(this.norm, raw, d, xn, rowScale);
      let den = 0;
      for (let b = 0; b < B; b++) for (let c = 0; c < d; c++) den += (raw[b * d + c] - mu[c]) ** 2;
      denoms[t - 1] = den;
      this.sae.writeBatch(xn, rowScale);
      this.sae.step(t, lrAt(this.cfg, t), this.lossScale);
      this.step = t;
      if (t % metricsEvery === 0 || t === this.totalSteps) {
        if (!(await readBack(t))) {
          status = 'failed';
          break;
        }
      }
      if (evalEvery > 0 && t * B - lastEvalTokens >= evalEvery && t < this.totalSteps) {
        lastEvalTokens = t * B;
        this.hooks.onEval?.(await this.evaluate());
        lastTime = performance.now();
      }
    }
    if (this.step > lastRead && status !== 'failed') await readBack(this.step);
    const final = { ...(await this.evaluate()), tokensPerS };
    this.hooks.onEval?.(final);
    this.hooks.onStatus?.(status);
    return { status, steps: this.step, tokens: this.step * B, final, curve: this.curve };
  }

  /**
   * Held-out metrics on raw activations: nMSE = Σ‖x̂ − x‖² / Σ‖x − mean‖², explained variance,
   * L0, fraction never fired on these rows, and the dead fraction by the deadTokens rule.
   */
  async evaluate(maxRows = this.opts.evalMaxRows ?? 65536): Promise<EvalResult> {
    const { d, batchSize: B, k, nLatents: N } = this.cfg;
    const xn = new Float32Array(B * d);
    const rowScale = new Float32Array(B);
    const rowShift = new Float32Array(B);
    const fired = new Uint8Array(N);
    let se = 0;
    let l0 = 0;
    let rows = 0;
    // Per-dimension sums for the explained variance (float64).
    const sx = new Float64Array(d);
    const sxx = new Float64Array(d);
    const sr = new Float64Array(d);
    const srr = new Float64Array(d);
    const source = this.batcher.split.heldOutRows > 0 ? this.batcher.heldOutBatches(B, maxRows) : this.trainSample(maxRows);
    for await (const batch of source) {
      const n = batch.data.length / d;
      xn.fill(0);
      normalizeBatch(this.norm, batch.data, d, xn.subarray(0, n * d), rowScale.subarray(0, n), rowShift.subarray(0, n));
      this.sae.writeBatch(xn, rowScale);
      this.sae.forward();
      const xHat = await this.sae.readF32('xHat', B * d);
      const val = await this.sae.readF32('valAll', B * k);
      const idx = await this.sae.readU32('idxAll', B * k);
      denormalizeInPlace(xHat.subarray(0, n * d), d, rowScale, rowShift);
      for (let b = 0; b < n; b++) {
        for (let c = 0; c < d; c++) {
          const x = batch.data[b * d + c];
          const r = x - xHat[b * d + c];
          se += r * r;
          sx[c] += x;
          sxx[c] += x * x;
          sr[c] += r;
          srr[c] += r * r;
        }
        for (let j = 0; j < k; j++) {
          const v = val[b * k + j];
          if (v > 0) l0++;
          if (v > this.cfg.fireThreshold) fired[idx[b * k + j]] = 1;
        }
      }
      rows += n;
    }
    let varX = 0;
    let varR = 0;
    let tot = 0;
    const mu = this.stats.mean;
    for (let c = 0; c < d; c++) {
      varX += sxx[c] / rows - (sx[c] / rows) ** 2;
      varR += srr[c] / rows - (sr[c] / rows) ** 2;
      // Σ‖x − μ‖² about the dataset mean (the nMSE denominator), from the same sums.
      tot += sxx[c] - 2 * mu[c] * sx[c] + rows * mu[c] * mu[c];
    }
    const since = await this.sae.readU32('tokensSince', N);
    let deadRule = 0;
    for (let i = 0; i < N; i++) if (since[i] > this.cfg.deadTokens) deadRule++;
    let never = 0;
    for (let i = 0; i < N; i++) if (!fired[i]) never++;
    return {
      tokens: this.step * B,
      rows,
      nmse: se / tot,
      explainedVariance: 1 - varR / varX,
      l0: l0 / rows,
      deadFractionEval: never / N,
      deadFractionRule: deadRule / N,
    };
  }

  /** Without a held-out split (evalFrac 0) evaluation falls back to training rows, said in the result's row count. */
  private async *trainSample(maxRows: number) {
    const b = new Batcher(this.source, { seed: this.cfg.seed + 7, nonFinite: 'skip' });
    const B = this.cfg.batchSize;
    for (let done = 0; done < Math.min(maxRows, b.trainRows); done += B) {
      const n = Math.min(B, maxRows - done, b.trainRows - done);
      yield { data: await b.nextBatch(n), rowIds: new Float64Array(0) };
    }
  }

  destroy() {
    this.sae.destroy();
  }
}
