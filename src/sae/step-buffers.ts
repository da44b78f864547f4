/**
 * The buffers of one step (docs/DESIGN.md §6), allocated from its BufferPlan, and what the host writes
 * into them and reads back: tensors across their shards, the training state (parameters, Adam moments,
 * EMA, dead-latent counters, BatchTopK's θ), the metrics ring. GpuSae (step.ts) records the kernels on them.
 */
import { BufferArena, readBytes, STORAGE, upload } from '../gpu/buffers';
import { PARAM_NAMES, type Params } from '../reference/state';
import {
  DENSE_CODES_MAX,
  METRIC_SLOTS,
  METRICS,
  SHARDED,
  type ShardedName,
  type StepBufferName,
  type TensorName,
} from './buffer-names';
import {
  type Activation,
  defaultExtra,
  hasExtra,
  isBatchCut,
  isDense,
  kRow,
  type ResolvedConfig,
} from './config';
import { assertPlan, type BufferPlan, bufferPlan } from './plan';
import { microBatchBytes } from './step-uniform';

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
/** The most a read-back stages at once (ours). */
const READ_CHUNK = 64 * 2 ** 20;

/** The EMA swap's temporary (ours): large enough that the copies stay few, small beside any plan at scale. */
const EMA_SWAP_CHUNK = 64 * 2 ** 20;

export class StepBuffers {
  readonly plan: BufferPlan;
  readonly arena: BufferArena;
  readonly b = {} as Record<StepBufferName, GPUBuffer>;
  readonly sh = {} as Record<ShardedName, GPUBuffer[]>;
  readonly shardParams: GPUBuffer[] = [];
  /** Threshold family: the MicroBatch uniform of each micro-batch (plan.microBatches; one = the whole batch). */
  readonly microRows: GPUBuffer[] = [];
  /** Code entries per row the forward pass leaves at the start of idxAll/valAll ([B, codesK]; val 0 = inactive). */
  readonly codesK: number;

  /**
   * Plans every buffer against the device's limits (and cfg.maxBindingMiB) and throws LimitError,
   * naming the buffer and the limit, before anything is allocated. `tileLatents` forces the width of
   * the encoder + TopK tile (tests).
   */
  constructor(
    readonly device: GPUDevice,
    readonly cfg: ResolvedConfig,
    opts: { tileLatents?: number; microBatch?: number } = {},
  ) {
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
          device.queue.writeBuffer(u, 0, microBatchBytes(this.plan, m));
          this.microRows.push(u);
        } else this.sh[name].push(a.create(pb.key, pb.bytes));
      } else if (pb.shape === 'uniform') this.b[pb.key as StepBufferName] = a.uniform(pb.key, pb.bytes);
      // deadInfo also holds the AuxK TopK's indirect dispatch (dead.wgsl).
      else if (pb.key === 'deadInfo')
        this.b.deadInfo = a.create(pb.key, pb.bytes, STORAGE | GPUBufferUsage.INDIRECT);
      else this.b[pb.key as StepBufferName] = a.create(pb.key, pb.bytes);
    }
  }

  /** The buffers of a tensor in latent order: its shards, or the one buffer. */
  segments(name: TensorName): GPUBuffer[] {
    const sharded = this.sh[name as ShardedName];
    if (sharded?.length) return sharded;
    const one = this.b[name as StepBufferName];
    if (!one) throw new Error(`GpuSae: no buffer ${name}`);
    return [one];
  }

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

  /**
   * Reads `count` elements of a tensor (all when omitted), across its segments, through staging of at
   * most `chunk` bytes at a time (a shard can be a GiB: staging it whole doubled it on the GPU).
   */
  async readTensor(name: TensorName, count?: number, chunk = READ_CHUNK): Promise<ArrayBuffer> {
    const segs = this.segments(name);
    const counts = this.segmentElems(name, count);
    const total = count ?? counts.reduce((a, c) => a + c, 0);
    const out = new Uint8Array(total * 4);
    let o = 0;
    for (let i = 0; i < segs.length && o < total; i++) {
      const bytes = f32(Math.min(counts[i], total - o));
      for (let at = 0; at < bytes; at += chunk)
        out.set(
          new Uint8Array(await readBytes(this.device, segs[i], Math.min(chunk, bytes - at), at)),
          o * 4 + at,
        );
      o += bytes / 4;
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
   * Puts the EMA weights into the parameter buffers and returns the undo; both exchange the two
   * buffers' contents through one temporary of at most `chunk` bytes, so exchanging twice
   * restores every bit. Evaluation runs the one forward pass on the EMA weights this way
   * (EvalWeightsGate.run, which keeps training steps and snapshots out meanwhile). A temporary the
   * size of the parameters, as before, added W_enc + W_dec again to the GPU's load at every evaluation.
   */
  swapInEma(chunk = EMA_SWAP_CHUNK): () => void {
    if (!this.cfg.ema) throw new Error('swapInEma: this run keeps no EMA of its weights');
    const dev = this.device;
    const pairs: { theta: GPUBuffer; ema: GPUBuffer }[] = [];
    for (const p of paramNames(this.cfg)) {
      const ema = this.segments(`ema_${p}`);
      this.segments(p).forEach((theta, i) => {
        if (ema[i].size !== theta.size) throw new Error(`swapInEma: ema_${p}#${i} differs in size from ${p}`);
        pairs.push({ theta, ema: ema[i] });
      });
    }
    const tmp = dev.createBuffer({
      label: 'ema-swap',
      size: Math.min(chunk, Math.max(...pairs.map((x) => x.theta.size))),
      usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    // Copies in one encoder run in order, so the one temporary serves every chunk.
    const exchange = (label: string) => {
      const enc = dev.createCommandEncoder({ label });
      for (const { theta, ema } of pairs)
        for (let at = 0; at < theta.size; at += tmp.size) {
          const n = Math.min(tmp.size, theta.size - at);
          enc.copyBufferToBuffer(theta, at, tmp, 0, n);
          enc.copyBufferToBuffer(ema, at, theta, at, n);
          enc.copyBufferToBuffer(tmp, 0, ema, at, n);
        }
      dev.queue.submit([enc.finish()]);
    };
    exchange('ema-swap-in');
    return () => {
      exchange('ema-swap-out');
      // Freed once the copies above have run (a destroyed buffer's queued uses complete first).
      tmp.destroy();
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
}
