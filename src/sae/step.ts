/**
 * One TopK SAE training step on the GPU: every kernel (docs/DESIGN.md §2) wired in order inside one compute
 * pass. The float64 twin is src/reference/step.ts (refStep); tests compare the two buffer by buffer.
 */
import { BufferArena, readBytes, upload } from '../gpu/buffers';
import { createAdam } from '../gpu/kernels/adam';
import { createDead } from '../gpu/kernels/dead';
import { createLoss } from '../gpu/kernels/loss';
import { createUpdate } from '../gpu/kernels/update';
import { STEP_FLAGS } from '../gpu/step-params';
import { PARAM_NAMES, type Params } from '../reference/state';
import {
  type Activation,
  defaultExtra,
  hasExtra,
  isBatchCut,
  isDense,
  l1At,
  type ResolvedConfig,
} from './config';
import {
  assertPlan,
  type BufferPlan,
  bufferPlan,
  DENSE_CODES_MAX,
  METRIC_SLOTS,
  METRICS,
  SHARDED,
  type ShardedName,
  type StepBufferName,
  type TensorName,
} from './plan';

import { buildDense } from './step-dense';
import { DEFAULT_KERNELS, type KernelChoice, type StepCommon, type StepHost } from './step-host';
import { buildSparse } from './step-sparse';
import { kRow, stepFlags, stepParamsBytes } from './step-uniform';

export type { KernelChoice };
export { DEFAULT_KERNELS, kRow, stepParamsBytes };

export type ParamName = (typeof PARAM_NAMES)[number] | 'extra';
/** The trained tensors of a config, in order. */
export function paramNames(c: { activation: Activation }): ParamName[] {
  return hasExtra(c.activation) ? [...PARAM_NAMES, 'extra'] : [...PARAM_NAMES];
}
/** Element counts of each tensor. */
export function paramSizes(c: { d: number; nLatents: number }): Record<ParamName, number> {
  const { d, nLatents: N } = c;
  return { W_enc: N * d, b_enc: N, W_dec: N * d, b_pre: d, extra: 2 * N };
}
/** Per-step metrics, in slot order (see shaders/loss.wgsl finalize and update.wgsl clip_reduce). */
export interface StepMetrics {
  loss: number;
  auxLoss: number;
  /** Σ s_b²‖x̂_b − x_b‖²: squared error in the user's raw units */
  rawSe: number;
  l0: number;
  deadCount: number;
  auxDenom: number;
  gradNorm: number;
  /** Threshold family: the sparsity penalty (λ·L1 or λ·L0); BatchTopK: the batch threshold τ; else 0. */
  extra: number;
}

export type ParamsF32 = Params<Float32Array>;

export interface TrainState {
  params: ParamsF32;
  m: ParamsF32;
  v: ParamsF32;
  ema: ParamsF32 | null;
  tokensSince: Uint32Array;
  firesTotal: Uint32Array;
  /**
   * BatchTopK only: the running inference threshold θ (a float32 value; −1 until the first update),
   * kept in tau[1] on the GPU (shaders/batch-topk.wgsl). Absent for other activations.
   */
  inferenceThreshold?: number;
}

const f32 = (n: number) => n * 4;

/**
 * The buffers of one step, allocated from its BufferPlan: `b` the whole buffers by plan key, `sh` the
 * [N, d] tensors as one buffer per latent shard (plan.shards), `shardParams` the Shard uniform of each.
 */
export class GpuSae implements StepHost {
  readonly plan: BufferPlan;
  readonly arena: BufferArena;
  readonly b = {} as Record<StepBufferName, GPUBuffer>;
  readonly sh = {} as Record<ShardedName, GPUBuffer[]>;
  readonly shardParams: GPUBuffer[] = [];
  /** Threshold family: the MicroBatch uniform of each micro-batch (plan.microBatches; one = the whole batch). */
  readonly microRows: GPUBuffer[] = [];
  /** The step's commands (set by the path builders). */
  record: (pass: GPUComputePassEncoder) => void = () => {};
  /** The evaluation forward's commands over the batch's first `rows` rows (set by the path builders). */
  recordForward: (pass: GPUComputePassEncoder, rows: number) => void = () => {};
  /**
   * The threshold family's forward per micro-batch (encode, activation, decode, codes into gact/gpre),
   * when it has several (set by step-dense.ts); `rows` counted from the micro-batch's row0.
   */
  microForward:
    | { row0: number; n: number; record: (pass: GPUComputePassEncoder, rows: number) => void }[]
    | null = null;
  phases: { name: string; record: (pass: GPUComputePassEncoder) => void }[] = [];
  /**
   * What the autotuner times for each kernel choice: the encoder and the TopK over [B, N], or over the
   * first tile when the step walks tiles. Empty for the threshold family (its phases are used).
   */
  tunePhases: Partial<Record<'encode' | 'topk' | 'select', (pass: GPUComputePassEncoder) => void>> = {};
  kernels: KernelChoice;

  /**
   * Plans every buffer against the device's limits (and cfg.maxBindingMiB) and throws LimitError,
   * naming the buffer and the limit, before anything is allocated. `tileLatents` forces the width of
   * the encoder + TopK tile (tests).
   */
  constructor(
    readonly device: GPUDevice,
    readonly cfg: ResolvedConfig,
    kernels: KernelChoice = DEFAULT_KERNELS,
    opts: { tileLatents?: number; microBatch?: number } = {},
  ) {
    this.kernels = kernels;
    this.plan = assertPlan(bufferPlan(cfg, device.limits, opts));
    const dense = isDense(cfg.activation);
    // Sparse family: main + aux entries per row. Threshold family: the forward keeps the largest
    // codesK activations per row as codes (evaluation); training never goes through entries.
    this.codesK = dense ? Math.min(cfg.nLatents, DENSE_CODES_MAX) : kRow(cfg);
    const a = new BufferArena(device, 'sae');
    this.arena = a;
    for (const name of SHARDED) this.sh[name] = [];
    for (const pb of this.plan.buffers) {
      const hash = pb.key.indexOf('#');
      if (hash >= 0) {
        const name = pb.key.slice(0, hash) as ShardedName;
        if (name === ('shardParams' as string)) {
          const i = Number(pb.key.slice(hash + 1));
          const r = this.plan.shards[i];
          const u = a.uniform(pb.key, pb.bytes);
          device.queue.writeBuffer(
            u,
            0,
            new Uint32Array([r.lat0, r.n, i === 0 ? 1 : 0, i === this.plan.shards.length - 1 ? 1 : 0]),
          );
          this.shardParams.push(u);
        } else if (name === ('microRows' as string)) {
          const m = Number(pb.key.slice(hash + 1));
          const u = a.uniform(pb.key, pb.bytes);
          device.queue.writeBuffer(u, 0, this.microBytes(m));
          this.microRows.push(u);
        } else this.sh[name].push(a.create(pb.key, pb.bytes));
      } else if (pb.shape === 'uniform') this.b[pb.key as StepBufferName] = a.uniform(pb.key, pb.bytes);
      else this.b[pb.key as StepBufferName] = a.create(pb.key, pb.bytes);
    }
    // A valid uniform before any dispatch: the autotuner and the benchmarks run phases before the
    // first step, and a kernel reading k = 0 from a zeroed uniform loops for 2^32 iterations.
    this.stepBytes = stepParamsBytes(cfg, 1, cfg.lr, 1);
    device.queue.writeBuffer(this.b.params, 0, this.stepBytes);
    this.build(kernels);
  }

  /** The StepParams last written for a step (forward() puts them back after its own). */
  private stepBytes: ArrayBuffer;

  /**
   * MicroBatch uniform of micro-batch m (shaders/common.wgsl): its rows (`rows` of them, default all);
   * the forward sums fires from the first micro-batch up, the backward its sums from the last one down.
   */
  private microBytes(m: number, rows = this.plan.microBatches[m].n): Uint32Array<ArrayBuffer> {
    const last = this.plan.microBatches.length - 1;
    return new Uint32Array([this.plan.microBatches[m].row0, rows, m > 0 ? 1 : 0, m < last ? 1 : 0]);
  }

  /** Code entries per row the forward pass leaves at the start of idxAll/valAll ([B, codesK]; val 0 = inactive). */
  readonly codesK: number;

  /** The buffers of a tensor in latent order: its shards, or the one buffer. */
  segments(name: TensorName): GPUBuffer[] {
    const sharded = this.sh[name as ShardedName];
    if (sharded?.length) return sharded;
    const one = this.b[name as StepBufferName];
    if (!one) throw new Error(`GpuSae: no buffer ${name}`);
    return [one];
  }

  /**
   * (Re)creates the kernels for a variant choice and binds them to this step's buffers: the loss,
   * dead-latent and update kernels here, the rest by the sparse or the dense path's builder.
   */
  build(kernels: KernelChoice) {
    this.destroyEncode();
    this.kernels = kernels;
    const { device, cfg, b, sh, plan } = this;
    const { batchSize: B, d, nLatents: N } = cfg;
    const shards = plan.shards;
    const shardN = shards[0].n;
    const params = b.params;
    const loss = createLoss(device, { B, d });
    const update = createUpdate(device, { shardN });
    const dead = createDead(device, { B, N, k: kRow(cfg) });
    const names = paramNames(cfg);
    // Adam and EMA per tensor, and per shard for the [N, d] tensors: [theta, grad, m, v, ema] buffers.
    const adamJobs: { kernel: ReturnType<typeof createAdam>; bgs: GPUBindGroup[] }[] = [];
    for (const p of names) {
      const parts = this.segments(p);
      parts.forEach((theta, i) => {
        const kernel = createAdam(device, theta.size / 4);
        const seg = (key: TensorName) => this.segments(key)[i];
        adamJobs.push({
          kernel,
          bgs: kernel.bind(`${p}#${i}`, [
            theta,
            seg(`d${p}`),
            seg(`m_${p}`),
            seg(`v_${p}`),
            b.scal,
            cfg.ema ? seg(`ema_${p}`) : b.emaDummy,
            params,
          ]),
        });
      });
    }
    const lossBg = (topVal: GPUBuffer) =>
      loss.bind('loss', [
        b.x,
        b.xHat,
        b.eHat,
        topVal,
        b.rowScale,
        b.rowStats,
        b.colR,
        b.scal,
        b.deadInfo,
        b.metrics,
        b.g,
        b.gAux,
        params,
      ]);
    const deadBg = dead.bind('dead', [
      b.idxAll,
      b.valAll,
      b.firesStep,
      b.tokensSince,
      b.firesTotal,
      b.deadFlag,
      b.deadList,
      b.deadInfo,
      params,
    ]);
    const updateBgs = shards.map((_, i) =>
      update.bind(`update#${i}`, [
        sh.W_dec[i],
        sh.dW_dec[i],
        sh.dW_enc[i],
        b.db_enc,
        b.db_pre,
        b.normPart,
        b.scal,
        b.metrics,
        params,
        this.shardParams[i],
      ]),
    );
    const perShard = (p: GPUComputePassEncoder, entries: string[]) => {
      for (const bg of updateBgs) update.run(p, bg, entries);
    };
    const tail = (extraNorm?: (p: GPUComputePassEncoder) => void) => [
      {
        name: 'project+norm',
        record: (p: GPUComputePassEncoder) => {
          perShard(p, ['project_dec']);
          extraNorm?.(p);
          update.run(p, updateBgs[0], ['clip_reduce']);
        },
      },
      {
        name: 'adam',
        record: (p: GPUComputePassEncoder) => {
          for (const j of adamJobs) j.kernel.run(p, j.bgs, ['adam']);
        },
      },
      {
        name: 'renorm',
        record: (p: GPUComputePassEncoder) => {
          if (cfg.unitNormDecoder) perShard(p, ['renorm_dec']);
        },
      },
      {
        name: 'ema',
        record: (p: GPUComputePassEncoder) => {
          if (cfg.ema) for (const j of adamJobs) j.kernel.run(p, j.bgs, ['ema']);
        },
      },
    ];

    const common: StepCommon = { loss, lossBg, dead, deadBg, tail };
    if (isDense(cfg.activation)) buildDense(this, kernels, common);
    else buildSparse(this, kernels, common);
  }

  /** Set by the path builders (step-sparse.ts, step-dense.ts): frees the kernels of the last build. */
  destroyEncode: () => void = () => {};

  /** Bytes of GPU memory this step holds. */
  get bytes() {
    return this.arena.bytes;
  }

  /** Elements of each segment of a tensor (its shards' n·d, or the whole buffer's length). */
  segmentElems(name: TensorName, total?: number): number[] {
    if (this.sh[name as ShardedName]?.length) return this.plan.shards.map((r) => r.n * this.cfg.d);
    return [total ?? this.b[name as StepBufferName].size / 4];
  }

  /** Writes a whole tensor (f32/u32) across its segments. */
  writeTensor(name: TensorName, data: Float32Array | Uint32Array) {
    const segs = this.segments(name);
    const counts = this.segmentElems(name, data.length);
    let o = 0;
    segs.forEach((buf, i) => {
      upload(this.device, buf, data.subarray(o, o + counts[i]));
      o += counts[i];
    });
  }

  /** Reads `count` elements of a tensor (all when omitted), across its segments. */
  async readTensor(name: TensorName, count?: number): Promise<ArrayBuffer> {
    const segs = this.segments(name);
    const counts = this.segmentElems(name, count);
    const total = count ?? counts.reduce((a, c) => a + c, 0);
    const out = new Uint8Array(total * 4);
    let o = 0;
    for (let i = 0; i < segs.length && o < total; i++) {
      const n = Math.min(counts[i], total - o);
      out.set(new Uint8Array(await readBytes(this.device, segs[i], f32(n))), o * 4);
      o += n;
    }
    return out.buffer;
  }

  /** Uploads parameters (f32) and resets optimizer state and dead counters unless `state` is given. */
  setState(s: { params: ParamsF32 } & Partial<TrainState>) {
    const params = { ...s.params };
    if (hasExtra(this.cfg.activation) && !params.extra) params.extra = defaultExtra(this.cfg);
    for (const p of paramNames(this.cfg)) {
      const v = params[p]!;
      this.writeTensor(p, v);
      this.writeTensor(`m_${p}`, s.m?.[p] ?? new Float32Array(v.length));
      this.writeTensor(`v_${p}`, s.v?.[p] ?? new Float32Array(v.length));
      if (this.cfg.ema) this.writeTensor(`ema_${p}`, s.ema?.[p] ?? v);
    }
    const N = this.cfg.nLatents;
    upload(this.device, this.b.tokensSince, s.tokensSince ?? new Uint32Array(N));
    upload(this.device, this.b.firesTotal, s.firesTotal ?? new Uint32Array(N));
    // BatchTopK's θ is training state: −1 (not learned) unless the state carries one.
    if (isBatchCut(this.cfg.activation))
      upload(this.device, this.b.tau, new Float32Array([0, s.inferenceThreshold ?? -1, 0, 0]));
  }

  /** BatchTopK's running inference threshold θ (tau[1]; −1 until learned). */
  async readInferenceThreshold(): Promise<number> {
    return (await this.readF32('tau', 2))[1];
  }

  /** Replaces the parameters alone (e.g. evaluation with the EMA weights); optimizer state is kept. */
  writeParams(params: Partial<ParamsF32>) {
    for (const p of paramNames(this.cfg)) if (params[p]) this.writeTensor(p, params[p]!);
  }

  /**
   * Puts the EMA weights into the parameter buffers (GPU copies; the parameters wait in temporary
   * buffers of their size) and returns the undo, which copies them back and frees the temporaries.
   * Evaluation runs the one forward pass on the EMA weights this way (Trainer.withEvalWeights, which
   * keeps training steps out meanwhile).
   */
  swapInEma(): () => void {
    if (!this.cfg.ema) throw new Error('swapInEma: this run keeps no EMA of its weights');
    const dev = this.device;
    const enc = dev.createCommandEncoder({ label: 'ema-swap-in' });
    const saved: { theta: GPUBuffer; tmp: GPUBuffer }[] = [];
    for (const p of paramNames(this.cfg)) {
      const ema = this.segments(`ema_${p}`);
      this.segments(p).forEach((theta, i) => {
        if (ema[i].size !== theta.size) throw new Error(`swapInEma: ema_${p}#${i} differs in size from ${p}`);
        const tmp = dev.createBuffer({
          label: `ema-swap:${p}#${i}`,
          size: theta.size,
          usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
        });
        enc.copyBufferToBuffer(theta, 0, tmp, 0, theta.size);
        enc.copyBufferToBuffer(ema[i], 0, theta, 0, theta.size);
        saved.push({ theta, tmp });
      });
    }
    dev.queue.submit([enc.finish()]);
    return () => {
      const back = dev.createCommandEncoder({ label: 'ema-swap-out' });
      for (const { theta, tmp } of saved) back.copyBufferToBuffer(tmp, 0, theta, 0, theta.size);
      dev.queue.submit([back.finish()]);
      // Freed once the copies above have run (a destroyed buffer's queued uses complete first).
      for (const { tmp } of saved) tmp.destroy();
    };
  }

  /**
   * Uploads the next batch: x normalized [B, d], rowScale [B] (raw error = rowScale · normalized error);
   * or the first n rows of one ([n, d], [n]) for forward(n).
   */
  writeBatch(x: Float32Array, rowScale: Float32Array) {
    upload(this.device, this.b.x, x);
    upload(this.device, this.b.rowScale, rowScale);
  }

  /** Records step t (1-based) into `enc`; the uniform is written now, so submit before the next call. */
  encodeStep(enc: GPUCommandEncoder, t: number, lr: number, lossScale: number) {
    // Micro-batches: the loss takes each row's L0 from the forward (the activations are not whole).
    const over = this.microForward ? { flags: stepFlags(this.cfg) | STEP_FLAGS.ROW_L0 } : {};
    this.stepBytes = stepParamsBytes(this.cfg, t, lr, lossScale, l1At(this.cfg, t), over);
    this.device.queue.writeBuffer(this.b.params, 0, this.stepBytes);
    const pass = enc.beginComputePass({ label: `sae-step-${t}` });
    this.record(pass);
    pass.end();
  }

  /**
   * Forward only (encode, TopK, decode) on the first `rows` rows of the batch in `x` (default all B),
   * for evaluation: no counters or parameters change. Results in xHat [rows, d] and the first
   * rows·codesK entries of idxAll/valAll ([rows, codesK]); threshold family: each row's count of
   * nonzero activations in rowStats[b, 2] ([rows, 4]). BatchTopK keeps each row's candidates
   * above the learned threshold θ (per token, no batch-level cut). Rows ≥ `rows` do no work:
   * StepParams.B (the loop bound of the TopK, merge, decode and
   * BatchTopK kernels, and BatchTopK's B·k) is `rows` for this submission, the encoders' grids and row
   * guards shrink to it, and the threshold family's MicroBatch uniforms say how many of each
   * micro-batch's rows run. Every uniform changed here is put back after the submission (queue order),
   * so a training step submitted later sees its own. Micro-batches (threshold family): one submission
   * each, its codes copied into its rows of idxAll/valAll.
   */
  forward(rows = this.cfg.batchSize) {
    const { cfg, device } = this;
    const B = cfg.batchSize;
    if (!(Number.isInteger(rows) && rows >= 1 && rows <= B))
      throw new RangeError(`forward: rows must be an integer in [1, ${B}], got ${rows}`);
    // BatchTopK evaluates per token: each row keeps its candidates above the learned θ
    // (THETA_EVAL: no batch-level cut, so no row's code depends on the others; docs/DESIGN.md §8).
    const theta = isBatchCut(cfg.activation) ? STEP_FLAGS.THETA_EVAL : 0;
    const uniform = (n: number, k?: number) =>
      stepParamsBytes(cfg, 1, cfg.lr, 1, cfg.l1Coef, {
        B: n,
        ...(k === undefined ? {} : { k }),
        kBatch: n * cfg.k,
        flags: stepFlags(cfg) | STEP_FLAGS.NO_METRICS | theta,
      });
    if (this.microForward) {
      const K = this.codesK;
      this.microForward.forEach((mb, m) => {
        const n = Math.min(mb.n, rows - mb.row0);
        if (n <= 0) return;
        // Queue order: these writes land after the previous micro-batch's submission ran.
        device.queue.writeBuffer(this.b.paramsCodes, 0, uniform(n, K));
        device.queue.writeBuffer(this.microRows[m], 0, this.microBytes(m, n));
        const e = device.createCommandEncoder({ label: `sae-forward@${mb.row0}` });
        const pass = e.beginComputePass({ label: `sae-forward@${mb.row0}` });
        mb.record(pass, n);
        pass.end();
        e.copyBufferToBuffer(this.b.gact, 0, this.b.idxAll, 4 * mb.row0 * K, 4 * n * K);
        e.copyBufferToBuffer(this.b.gpre, 0, this.b.valAll, 4 * mb.row0 * K, 4 * n * K);
        device.queue.submit([e.finish()]);
        device.queue.writeBuffer(this.microRows[m], 0, this.microBytes(m));
      });
      return;
    }
    const dense = isDense(cfg.activation);
    // The codes pass (dense: TopK of the activations; BatchTopK: the batch cut) reads paramsCodes.
    if (dense || isBatchCut(cfg.activation))
      device.queue.writeBuffer(this.b.paramsCodes, 0, uniform(rows, this.codesK));
    if (dense) device.queue.writeBuffer(this.microRows[0], 0, this.microBytes(0, rows));
    else device.queue.writeBuffer(this.b.params, 0, uniform(rows));
    const enc = device.createCommandEncoder({ label: 'sae-forward' });
    const pass = enc.beginComputePass({ label: 'sae-forward' });
    this.recordForward(pass, rows);
    pass.end();
    device.queue.submit([enc.finish()]);
    if (dense) device.queue.writeBuffer(this.microRows[0], 0, this.microBytes(0));
    else device.queue.writeBuffer(this.b.params, 0, this.stepBytes);
  }

  step(t: number, lr: number, lossScale: number) {
    const enc = this.device.createCommandEncoder({ label: `sae-step-${t}` });
    this.encodeStep(enc, t, lr, lossScale);
    this.device.queue.submit([enc.finish()]);
  }

  async readF32(name: TensorName, count?: number): Promise<Float32Array> {
    return new Float32Array(await this.readTensor(name, count));
  }

  async readU32(name: TensorName, count?: number): Promise<Uint32Array> {
    return new Uint32Array(await this.readTensor(name, count));
  }

  async readParams(which: 'theta' | 'ema' = 'theta'): Promise<ParamsF32> {
    const n = paramSizes(this.cfg);
    const out = {} as ParamsF32;
    for (const p of paramNames(this.cfg)) out[p] = await this.readF32(which === 'ema' ? `ema_${p}` : p, n[p]);
    return out;
  }

  async readState(): Promise<TrainState> {
    const N = this.cfg.nLatents;
    const n = paramSizes(this.cfg);
    const grab = async (prefix: '' | 'm_' | 'v_' | 'ema_') => {
      const o = {} as ParamsF32;
      for (const p of paramNames(this.cfg)) o[p] = await this.readF32(`${prefix}${p}`, n[p]);
      return o;
    };
    return {
      params: await grab(''),
      m: await grab('m_'),
      v: await grab('v_'),
      ema: this.cfg.ema ? await grab('ema_') : null,
      tokensSince: await this.readU32('tokensSince', N),
      firesTotal: await this.readU32('firesTotal', N),
      ...(isBatchCut(this.cfg.activation) ? { inferenceThreshold: await this.readInferenceThreshold() } : {}),
    };
  }

  /** Metrics of steps (t0, t1] (at most METRIC_SLOTS steps back) from one read-back. */
  async readMetrics(t0: number, t1: number): Promise<StepMetrics[]> {
    if (t1 - t0 > METRIC_SLOTS) throw new Error('metrics ring overrun: read back more often');
    const ring = await this.readF32('metrics', METRIC_SLOTS * METRICS);
    const out: StepMetrics[] = [];
    for (let t = t0 + 1; t <= t1; t++) {
      const o = ((t - 1) % METRIC_SLOTS) * METRICS;
      out.push({
        loss: ring[o],
        auxLoss: ring[o + 1],
        rawSe: ring[o + 2],
        l0: ring[o + 3],
        deadCount: ring[o + 4],
        auxDenom: ring[o + 5],
        gradNorm: ring[o + 6],
        extra: ring[o + 7],
      });
    }
    return out;
  }

  destroy() {
    this.destroyEncode();
    this.arena.destroy();
  }
}
