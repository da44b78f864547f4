/**
 * One TopK SAE training step on the GPU: every kernel of DESIGN §2 wired in order inside one compute
 * pass. The float64 twin is src/reference/step.ts (refStep); tests compare the two buffer by buffer.
 */
import { BufferArena, readBytes, upload } from '../gpu/buffers';
import { createAdam } from '../gpu/kernels/adam';
import { createDead } from '../gpu/kernels/dead';
import { createDecode } from '../gpu/kernels/decode';
import { createEncode, type EncodeVariant } from '../gpu/kernels/encode';
import { createGrad } from '../gpu/kernels/grad';
import { createLoss } from '../gpu/kernels/loss';
import { createSortByLatent } from '../gpu/kernels/sort';
import { createTopK, type TopKVariant } from '../gpu/kernels/topk';
import { createUpdate } from '../gpu/kernels/update';
import { PARAM_NAMES, type Params } from '../reference/step';
import { adamScalars, type ResolvedConfig } from './config';

export const METRICS = 8;
export const METRIC_SLOTS = 64;
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
}

export interface KernelChoice {
  encode: EncodeVariant;
  topk: TopKVariant;
  topkTile: number;
}
export const DEFAULT_KERNELS: KernelChoice = { encode: 'blocked4x4', topk: 'bitonic', topkTile: 2048 };

export type ParamsF32 = Params<Float32Array>;

export interface TrainState {
  params: ParamsF32;
  m: ParamsF32;
  v: ParamsF32;
  ema: ParamsF32 | null;
  tokensSince: Uint32Array;
  firesTotal: Uint32Array;
}

const f32 = (n: number) => n * 4;

/** Writes the StepParams uniform (field order of shaders/common.wgsl). */
export function stepParamsBytes(c: ResolvedConfig, t: number, lr: number, lossScale: number): ArrayBuffer {
  const buf = new ArrayBuffer(80);
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  const { stepSize, bc2 } = adamScalars(c, t, lr);
  const flags = (c.gradProjection ? 1 : 0) | (c.clipGrad ? 2 : 0) | (c.auxk ? 4 : 0);
  u.set([c.batchSize, c.d, c.nLatents, c.k, c.kAux, Math.min(c.deadTokens, 0xffffffff), 0, flags]);
  f.set(
    [
      lr,
      c.beta1,
      c.beta2,
      c.eps,
      stepSize,
      bc2,
      lossScale,
      c.auxCoef,
      c.fireThreshold,
      c.clipNorm,
      c.emaDecay,
    ],
    8,
  );
  u[19] = (t - 1) % METRIC_SLOTS;
  return buf;
}

export class GpuSae {
  readonly arena: BufferArena;
  readonly b: Record<string, GPUBuffer> = {};
  readonly grads: Params<GPUBuffer>;
  readonly theta: Params<GPUBuffer>;
  private record: (pass: GPUComputePassEncoder) => void = () => {};
  private recordForward: (pass: GPUComputePassEncoder) => void = () => {};
  phases: { name: string; record: (pass: GPUComputePassEncoder) => void }[] = [];
  kernels: KernelChoice;

  constructor(
    readonly device: GPUDevice,
    readonly cfg: ResolvedConfig,
    kernels: KernelChoice = DEFAULT_KERNELS,
  ) {
    this.kernels = kernels;
    const { batchSize: B, d, nLatents: N, k, kAux } = cfg;
    const E = B * (k + kAux);
    const a = new BufferArena(device, 'sae');
    this.arena = a;
    const maxBinding = device.limits.maxStorageBufferBindingSize;
    if (f32(B * N) > maxBinding) {
      throw new Error(
        `pre-activations [${B}, ${N}] need ${(f32(B * N) / 2 ** 20).toFixed(0)} MiB, over this adapter's ${(maxBinding / 2 ** 20).toFixed(0)} MiB binding limit: lower the batch or N`,
      );
    }
    const b = this.b;
    const mk = (name: string, n: number) => {
      b[name] = a.create(name, f32(n));
      return b[name];
    };
    mk('x', B * d);
    mk('rowScale', B);
    this.theta = {
      W_enc: mk('W_enc', N * d),
      b_enc: mk('b_enc', N),
      W_dec: mk('W_dec', N * d),
      b_pre: mk('b_pre', d),
    };
    for (const p of PARAM_NAMES) {
      const n = this.theta[p].size / 4;
      mk(`m_${p}`, n);
      mk(`v_${p}`, n);
      if (cfg.ema) mk(`ema_${p}`, n);
    }
    mk('emaDummy', 4);
    mk('pre', B * N);
    mk('idxAll', E);
    mk('valAll', E);
    mk('gvAll', E);
    mk('xHat', B * d);
    mk('eHat', B * d);
    mk('g', B * d);
    mk('gAux', B * d);
    for (const n of [
      'firesStep',
      'tokensSince',
      'firesTotal',
      'deadFlag',
      'deadList',
      'counts',
      'cursor',
      'normPart',
    ])
      mk(n, N);
    mk('deadInfo', 4);
    mk('rowStats', B * 4);
    mk('colR', d);
    mk('scal', 8);
    mk('metrics', METRIC_SLOTS * METRICS);
    mk('start', N + 1);
    mk('unordered', E);
    mk('rows', E);
    this.grads = {
      W_enc: mk('dW_enc', N * d),
      b_enc: mk('db_enc', N),
      W_dec: mk('dW_dec', N * d),
      b_pre: mk('db_pre', d),
    };
    b.params = a.uniform('params', 80);
    this.build(kernels);
  }

  /** (Re)creates the kernels for a variant choice and binds them to this step's buffers. */
  build(kernels: KernelChoice) {
    this.destroyEncode();
    this.kernels = kernels;
    const { device, cfg, b } = this;
    const { batchSize: B, d, nLatents: N, k, kAux } = cfg;
    const E = B * (k + kAux);
    const params = b.params;
    const encode = createEncode(device, { B, d, N }, kernels.encode);
    const topk = createTopK(device, {
      B,
      N,
      K: k,
      aux: false,
      tile: kernels.topkTile,
      variant: kernels.topk,
    });
    const topkAux =
      kAux > 0
        ? createTopK(device, { B, N, K: kAux, aux: true, tile: kernels.topkTile, variant: kernels.topk })
        : null;
    const decode = createDecode(device, { B, aux: false });
    const decodeAux = createDecode(device, { B, aux: true });
    const dead = createDead(device, { B, N, k });
    const loss = createLoss(device, { B, d });
    const grad = createGrad(device, { d, N, entries: E });
    const sort = createSortByLatent(device, { B, N, entries: E });
    const update = createUpdate(device, { N });
    const adams = PARAM_NAMES.map((p) => createAdam(device, this.theta[p].size / 4));

    const topkBg = topk.bind('main', [b.pre, b.deadList, b.deadInfo, b.idxAll, b.valAll, params]);
    const topkAuxBg = topkAux?.bind('aux', [b.pre, b.deadList, b.deadInfo, b.idxAll, b.valAll, params]);
    const decodeBg = decode.bind('main', [b.idxAll, b.valAll, b.W_dec, b.b_pre, b.xHat, params]);
    const decodeAuxBg = decodeAux.bind('aux', [b.idxAll, b.valAll, b.W_dec, b.b_pre, b.eHat, params]);
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
    const lossBg = loss.bind('loss', [
      b.x,
      b.xHat,
      b.eHat,
      b.valAll,
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
    const gradBg = grad.bind('grad', [
      b.idxAll,
      b.valAll,
      b.g,
      b.gAux,
      b.W_dec,
      b.gvAll,
      b.start,
      b.rows,
      b.x,
      b.b_pre,
      b.W_enc,
      b.dW_dec,
      b.dW_enc,
      b.db_enc,
      b.db_pre,
      params,
    ]);
    const sortBg = sort.bind('sort', [b.idxAll, b.counts, b.start, b.cursor, b.unordered, b.rows, params]);
    const updateBg = update.bind('update', [
      b.W_dec,
      b.dW_dec,
      b.dW_enc,
      b.db_enc,
      b.db_pre,
      b.normPart,
      b.scal,
      b.metrics,
      params,
    ]);
    const adamBgs = PARAM_NAMES.map((p, i) =>
      adams[i].bind(p, [
        this.theta[p],
        this.grads[p],
        b[`m_${p}`],
        b[`v_${p}`],
        b.scal,
        cfg.ema ? b[`ema_${p}`] : b.emaDummy,
        params,
      ]),
    );
    const encodeBindings = { x: b.x, b_pre: b.b_pre, W_enc: b.W_enc, b_enc: b.b_enc, pre: b.pre };

    this.recordForward = (pass) => {
      encode.run(pass, encodeBindings);
      topk.run(pass, topkBg);
      decode.run(pass, decodeBg);
    };
    /** The step as named phases in order (the benchmark times each alone). */
    this.phases = [
      { name: 'encode', record: (p) => encode.run(p, encodeBindings) },
      { name: 'topk', record: (p) => topk.run(p, topkBg) },
      { name: 'decode', record: (p) => decode.run(p, decodeBg) },
      { name: 'dead', record: (p) => dead.run(p, deadBg) },
      { name: 'topk-aux', record: (p) => (topkAux && topkAuxBg ? topkAux.run(p, topkAuxBg) : undefined) },
      { name: 'decode-aux', record: (p) => decodeAux.run(p, decodeAuxBg) },
      { name: 'loss', record: (p) => loss.run(p, lossBg) },
      { name: 'gv', record: (p) => grad.run(p, gradBg, ['gv']) },
      { name: 'sort', record: (p) => sort.run(p, sortBg) },
      { name: 'grad', record: (p) => grad.run(p, gradBg, ['grad_dec', 'grad_enc', 'grad_bpre']) },
      { name: 'project+norm', record: (p) => update.run(p, updateBg, ['project_dec', 'clip_reduce']) },
      {
        name: 'adam',
        record: (p) => {
          for (const [i, k] of adams.entries()) k.run(p, adamBgs[i], ['adam']);
        },
      },
      { name: 'renorm', record: (p) => update.run(p, updateBg, ['renorm_dec']) },
      {
        name: 'ema',
        record: (p) => {
          if (cfg.ema) for (const [i, k] of adams.entries()) k.run(p, adamBgs[i], ['ema']);
        },
      },
    ];
    this.record = (pass) => {
      for (const ph of this.phases) ph.record(pass);
    };
    this.destroyEncode = () => encode.destroy();
  }
  private destroyEncode: () => void = () => {};

  /** Bytes of GPU memory this step holds. */
  get bytes() {
    return this.arena.bytes;
  }

  /** Uploads parameters (f32) and resets optimizer state and dead counters unless `state` is given. */
  setState(s: { params: ParamsF32 } & Partial<TrainState>) {
    const dev = this.device;
    for (const p of PARAM_NAMES) {
      upload(dev, this.theta[p], s.params[p]);
      upload(dev, this.b[`m_${p}`], s.m?.[p] ?? new Float32Array(s.params[p].length));
      upload(dev, this.b[`v_${p}`], s.v?.[p] ?? new Float32Array(s.params[p].length));
      if (this.cfg.ema) upload(dev, this.b[`ema_${p}`], s.ema?.[p] ?? s.params[p]);
    }
    const N = this.cfg.nLatents;
    upload(dev, this.b.tokensSince, s.tokensSince ?? new Uint32Array(N));
    upload(dev, this.b.firesTotal, s.firesTotal ?? new Uint32Array(N));
  }

  /** Uploads the next batch: x normalized [B, d], rowScale [B] (raw error = rowScale · normalized error). */
  writeBatch(x: Float32Array, rowScale: Float32Array) {
    upload(this.device, this.b.x, x);
    upload(this.device, this.b.rowScale, rowScale);
  }

  /** Records step t (1-based) into `enc`; the uniform is written now, so submit before the next call. */
  encodeStep(enc: GPUCommandEncoder, t: number, lr: number, lossScale: number) {
    this.device.queue.writeBuffer(this.b.params, 0, stepParamsBytes(this.cfg, t, lr, lossScale));
    this.uniformWritten = true;
    const pass = enc.beginComputePass({ label: `sae-step-${t}` });
    this.record(pass);
    pass.end();
  }

  /**
   * Forward only (encode, TopK, decode) on the batch in `x`, for evaluation: no counters or
   * parameters change. Results in xHat and the first B·k entries of idxAll/valAll.
   */
  forward() {
    const enc = this.device.createCommandEncoder({ label: 'sae-forward' });
    // The uniform of the last step still holds the sizes the forward pass needs.
    if (!this.uniformWritten)
      this.device.queue.writeBuffer(this.b.params, 0, stepParamsBytes(this.cfg, 1, this.cfg.lr, 1));
    const pass = enc.beginComputePass({ label: 'sae-forward' });
    this.recordForward(pass);
    pass.end();
    this.device.queue.submit([enc.finish()]);
  }
  private uniformWritten = false;

  step(t: number, lr: number, lossScale: number) {
    const enc = this.device.createCommandEncoder({ label: `sae-step-${t}` });
    this.encodeStep(enc, t, lr, lossScale);
    this.device.queue.submit([enc.finish()]);
  }

  async readF32(name: string, count?: number): Promise<Float32Array> {
    const buf = this.b[name];
    return new Float32Array(await readBytes(this.device, buf, f32(count ?? buf.size / 4)));
  }

  async readU32(name: string, count?: number): Promise<Uint32Array> {
    const buf = this.b[name];
    return new Uint32Array(await readBytes(this.device, buf, f32(count ?? buf.size / 4)));
  }

  async readParams(which: 'theta' | 'ema' = 'theta'): Promise<ParamsF32> {
    const { d, nLatents: N } = this.cfg;
    const n = { W_enc: N * d, b_enc: N, W_dec: N * d, b_pre: d };
    const out = {} as ParamsF32;
    for (const p of PARAM_NAMES) out[p] = await this.readF32(which === 'ema' ? `ema_${p}` : p, n[p]);
    return out;
  }

  async readState(): Promise<TrainState> {
    const { d, nLatents: N } = this.cfg;
    const n = { W_enc: N * d, b_enc: N, W_dec: N * d, b_pre: d };
    const grab = async (prefix: string) => {
      const o = {} as ParamsF32;
      for (const p of PARAM_NAMES) o[p] = await this.readF32(`${prefix}${p}`, n[p]);
      return o;
    };
    return {
      params: await grab(''),
      m: await grab('m_'),
      v: await grab('v_'),
      ema: this.cfg.ema ? await grab('ema_') : null,
      tokensSince: await this.readU32('tokensSince', N),
      firesTotal: await this.readU32('firesTotal', N),
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
      });
    }
    return out;
  }

  destroy() {
    this.destroyEncode();
    this.arena.destroy();
  }
}
