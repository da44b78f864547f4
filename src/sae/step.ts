/**
 * One TopK SAE training step on the GPU: every kernel of DESIGN §2 wired in order inside one compute
 * pass. The float64 twin is src/reference/step.ts (refStep); tests compare the two buffer by buffer.
 */
import { BufferArena, readBytes, upload } from '../gpu/buffers';
import { createActivation, LAT_STATS } from '../gpu/kernels/activation';
import { createAdam } from '../gpu/kernels/adam';
import { createBatchTopK } from '../gpu/kernels/batch-topk';
import { createDead } from '../gpu/kernels/dead';
import { createDecode } from '../gpu/kernels/decode';
import { createDenseDecode } from '../gpu/kernels/dense-decode';
import { createEncode, type EncodeVariant } from '../gpu/kernels/encode';
import { createGrad } from '../gpu/kernels/grad';
import { createLoss } from '../gpu/kernels/loss';
import { createOuterAcc } from '../gpu/kernels/outer-acc';
import { createSortByLatent } from '../gpu/kernels/sort';
import { createTopK, type TopKVariant } from '../gpu/kernels/topk';
import { createUpdate } from '../gpu/kernels/update';
import { PARAM_NAMES, type Params } from '../reference/step';
import {
  type Activation,
  adamScalars,
  defaultExtra,
  hasExtra,
  isDense,
  l1At,
  l1Scale,
  type ResolvedConfig,
} from './config';

export { defaultExtra, hasExtra };

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
/** Most code entries per row kept by the forward pass of the threshold family (the largest activations). */
export const DENSE_CODES_MAX = 512;

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
  /** Threshold family: the sparsity penalty (λ·L1 or λ·L0); BatchTopK: the batch threshold τ; else 0. */
  extra: number;
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

/**
 * Entries per row in the main region: k (TopK, Multi-TopK), the per-row candidate cap (BatchTopK),
 * N (the threshold family: the loss counts L0 over the dense activations).
 */
export function kRow(c: ResolvedConfig): number {
  if (c.activation === 'batchtopk') return c.batchTopKCap;
  if (isDense(c.activation)) return c.nLatents;
  return c.k;
}

/** Writes the StepParams uniform (field order of shaders/common.wgsl). */
export const STEP_PARAMS_BYTES = 96;
/** StepParams.flags bit: a forward pass for evaluation, which must not write the metrics ring. */
const FLAG_NO_METRICS = 32;

/**
 * Writes the StepParams uniform (field order of shaders/common.wgsl). lossScale = 1 / (B·c);
 * `l1` is the sparsity coefficient λ of this step (after warm-up).
 */
export function stepParamsBytes(
  c: ResolvedConfig,
  t: number,
  lr: number,
  lossScale: number,
  l1 = c.l1Coef,
): ArrayBuffer {
  const buf = new ArrayBuffer(STEP_PARAMS_BYTES);
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  const { stepSize, bc2 } = adamScalars(c, t, lr);
  const gated = c.activation === 'gated';
  const flags =
    (c.gradProjection ? 1 : 0) |
    (c.clipGrad ? 2 : 0) |
    (c.auxk ? 4 : 0) |
    (c.multiTopK || gated ? 8 : 0) |
    (c.multiTopK ? 16 : 0);
  u.set([c.batchSize, c.d, c.nLatents, kRow(c), c.kAux, Math.min(c.deadTokens, 0xffffffff), 0, flags]);
  f.set(
    [
      lr,
      c.beta1,
      c.beta2,
      c.eps,
      stepSize,
      bc2,
      lossScale,
      c.multiTopK ? 1 / 8 : gated ? 1 : c.auxCoef,
      c.fireThreshold,
      c.clipNorm,
      c.emaDecay,
    ],
    8,
  );
  u[19] = (t - 1) % METRIC_SLOTS;
  f[20] = l1Scale(c, lossScale, l1);
  f[21] = c.jumpBandwidth;
  u[22] = c.batchSize * c.k;
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
    const { batchSize: B, d, nLatents: N, kAux } = cfg;
    const dense = isDense(cfg.activation);
    // Sparse family: main + aux entries per row. Threshold family: the forward keeps the largest
    // codesK activations per row as codes (evaluation); training never goes through entries.
    this.codesK = dense ? Math.min(N, DENSE_CODES_MAX) : kRow(cfg);
    const E = dense ? B * this.codesK : B * (kRow(cfg) + kAux);
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
    const sizes = paramSizes(cfg);
    mk('x', B * d);
    mk('rowScale', B);
    this.theta = {
      W_enc: mk('W_enc', N * d),
      b_enc: mk('b_enc', N),
      W_dec: mk('W_dec', N * d),
      b_pre: mk('b_pre', d),
      extra: mk('extra', dense ? sizes.extra : 1),
    };
    for (const p of paramNames(cfg)) {
      mk(`m_${p}`, sizes[p]);
      mk(`v_${p}`, sizes[p]);
      if (cfg.ema) mk(`ema_${p}`, sizes[p]);
    }
    mk('emaDummy', 4);
    mk('pre', B * N);
    mk('idxAll', E);
    mk('valAll', E);
    mk('gvAll', dense ? 1 : E);
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
    mk('unordered', dense ? 1 : E);
    mk('rows', dense ? 1 : E);
    mk('tau', 4);
    // The threshold family's dense buffers (Gated alone needs the aux pair).
    const gated = cfg.activation === 'gated';
    mk('act', dense ? B * N : 1);
    mk('actAux', gated ? B * N : 1);
    mk('gact', dense ? B * N : 1);
    mk('gactAux', gated ? B * N : 1);
    mk('gpre', dense ? B * N : 1);
    mk('decNorm', N);
    mk('latStats', N * LAT_STATS);
    mk('zerosD', d);
    mk('zerosN', N);
    this.grads = {
      W_enc: mk('dW_enc', N * d),
      b_enc: mk('db_enc', N),
      W_dec: mk('dW_dec', N * d),
      b_pre: mk('db_pre', d),
      extra: mk('dextra', dense ? sizes.extra : 1),
    };
    b.params = a.uniform('params', STEP_PARAMS_BYTES);
    b.paramsCodes = a.uniform('paramsCodes', STEP_PARAMS_BYTES);
    this.build(kernels);
  }

  /** Code entries per row the forward pass leaves at the start of idxAll/valAll ([B, codesK]; val 0 = inactive). */
  readonly codesK: number;

  /** (Re)creates the kernels for a variant choice and binds them to this step's buffers. */
  build(kernels: KernelChoice) {
    this.destroyEncode();
    this.kernels = kernels;
    const { device, cfg, b } = this;
    const { batchSize: B, d, nLatents: N, kAux } = cfg;
    const params = b.params;
    const encode = createEncode(device, { B, d, N }, kernels.encode);
    const encodeBindings = { x: b.x, b_pre: b.b_pre, W_enc: b.W_enc, b_enc: b.b_enc, pre: b.pre };
    const loss = createLoss(device, { B, d });
    const update = createUpdate(device, { N });
    const dead = createDead(device, { B, N, k: kRow(cfg) });
    const names = paramNames(cfg);
    const adams = names.map((p) => createAdam(device, this.theta[p]!.size / 4));
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
    const adamBgs = names.map((p, i) =>
      adams[i].bind(p, [
        this.theta[p]!,
        this.grads[p]!,
        b[`m_${p}`],
        b[`v_${p}`],
        b.scal,
        cfg.ema ? b[`ema_${p}`] : b.emaDummy,
        params,
      ]),
    );
    const tail = (extraNorm?: (p: GPUComputePassEncoder) => void) => [
      {
        name: 'project+norm',
        record: (p: GPUComputePassEncoder) => {
          update.run(p, updateBg, ['project_dec']);
          extraNorm?.(p);
          update.run(p, updateBg, ['clip_reduce']);
        },
      },
      {
        name: 'adam',
        record: (p: GPUComputePassEncoder) => {
          for (const [i, k] of adams.entries()) k.run(p, adamBgs[i], ['adam']);
        },
      },
      {
        name: 'renorm',
        record: (p: GPUComputePassEncoder) => {
          if (cfg.unitNormDecoder) update.run(p, updateBg, ['renorm_dec']);
        },
      },
      {
        name: 'ema',
        record: (p: GPUComputePassEncoder) => {
          if (cfg.ema) for (const [i, k] of adams.entries()) k.run(p, adamBgs[i], ['ema']);
        },
      },
    ];

    if (isDense(cfg.activation)) {
      const act = createActivation(device, { B, N, d, activation: cfg.activation });
      const actBg = act.bind('act', [
        b.pre,
        b.act,
        b.actAux,
        b.gact,
        b.gactAux,
        b.gpre,
        b.b_enc,
        b.extra,
        b.decNorm,
        b.latStats,
        b.W_dec,
        b.dW_dec,
        b.db_enc,
        b.dextra,
        b.firesStep,
        b.g,
        b.W_enc,
        b.db_pre,
        b.metrics,
        b.normPart,
        params,
      ]);
      const gated = cfg.activation === 'gated';
      const decodeD = createDenseDecode(device, { B, aux: false });
      const decodeDAux = createDenseDecode(device, { B, aux: true });
      const decodeBg = decodeD.bind('main', [b.act, b.W_dec, b.b_pre, b.xHat, params]);
      const decodeAuxBg = decodeDAux.bind('aux', [b.actAux, b.W_dec, b.b_pre, b.eHat, params]);
      const outer = createOuterAcc(device, { N });
      const outerEncBg = outer.bind('enc', [b.gpre, b.x, b.b_pre, b.dW_enc, params]);
      const outerDecBg = outer.bind('dec', [b.act, b.g, b.zerosD, b.dW_dec, params]);
      // ∂L/∂a = W_dec·g is the encoder's own matmul with W_dec in place of W_enc and no biases.
      const gactBindings = { x: b.g, b_pre: b.zerosD, W_enc: b.W_dec, b_enc: b.zerosN, pre: b.gact };
      const gactAuxBindings = { x: b.gAux, b_pre: b.zerosD, W_enc: b.W_dec, b_enc: b.zerosN, pre: b.gactAux };
      // Codes for evaluation: the largest activations of each row, through the TopK kernel on `act`
      // with its own uniform (k = codesK).
      const codes = createTopK(device, {
        B,
        N,
        K: this.codesK,
        aux: false,
        tile: kernels.topkTile,
        variant: kernels.topk,
      });
      const codesBg = codes.bind('codes', [b.act, b.deadList, b.deadInfo, b.idxAll, b.valAll, b.paramsCodes]);
      const lBg = lossBg(b.act);
      this.recordForward = (pass) => {
        encode.run(pass, encodeBindings);
        act.run(pass, actBg, ['act_fwd']);
        decodeD.run(pass, decodeBg);
        codes.run(pass, codesBg);
      };
      this.phases = [
        { name: 'encode', record: (p) => encode.run(p, encodeBindings) },
        { name: 'activation', record: (p) => act.run(p, actBg, ['dec_norm_rows', 'act_fwd']) },
        {
          name: 'decode',
          record: (p) => {
            decodeD.run(p, decodeBg);
            if (gated) decodeDAux.run(p, decodeAuxBg);
          },
        },
        {
          name: 'dead',
          record: (p) => {
            act.run(p, actBg, ['dense_fires']);
            dead.run(p, deadBg, ['update_dead', 'compact_dead']);
          },
        },
        { name: 'loss', record: (p) => loss.run(p, lBg) },
        {
          name: 'gact',
          record: (p) => {
            encode.run(p, gactBindings);
            if (gated) encode.run(p, gactAuxBindings);
          },
        },
        { name: 'act-bwd', record: (p) => act.run(p, actBg, ['act_bwd', 'latent_sums']) },
        {
          name: 'grad',
          record: (p) => {
            outer.run(p, outerEncBg);
            outer.run(p, outerDecBg);
            act.run(p, actBg, ['latent_apply', 'dense_bpre', 'pen_reduce']);
          },
        },
        ...tail((p) => act.run(p, actBg, ['norm_extra'])),
      ];
      this.record = (pass) => {
        for (const ph of this.phases) ph.record(pass);
      };
      this.destroyEncode = () => encode.destroy();
      return;
    }

    const E = B * (kRow(cfg) + kAux);
    const multi = cfg.multiTopK;
    const topk = createTopK(device, {
      B,
      N,
      K: multi ? cfg.k + kAux : kRow(cfg),
      aux: false,
      multi,
      tile: kernels.topkTile,
      variant: kernels.topk,
    });
    const topkAux =
      kAux > 0 && !multi
        ? createTopK(device, { B, N, K: kAux, aux: true, tile: kernels.topkTile, variant: kernels.topk })
        : null;
    const batchTopK = cfg.activation === 'batchtopk' ? createBatchTopK(device, { B, kCap: kRow(cfg) }) : null;
    const batchBg = batchTopK?.bind('batch', [b.valAll, b.tau, b.metrics, params]);
    // The forward pass (evaluation) runs the batch selection with a uniform that keeps τ out of the
    // metrics ring, so an evaluation never overwrites a training step's slot.
    const batchFwdBg = batchTopK?.bind('batch-fwd', [b.valAll, b.tau, b.metrics, b.paramsCodes]);
    const decode = createDecode(device, { B, aux: false });
    const decodeAux = createDecode(device, { B, aux: true });
    const grad = createGrad(device, { d, N, entries: E });
    const sort = createSortByLatent(device, { B, N, entries: E });

    const topkBg = topk.bind('main', [b.pre, b.deadList, b.deadInfo, b.idxAll, b.valAll, params]);
    const topkAuxBg = topkAux?.bind('aux', [b.pre, b.deadList, b.deadInfo, b.idxAll, b.valAll, params]);
    const decodeBg = decode.bind('main', [b.idxAll, b.valAll, b.W_dec, b.b_pre, b.xHat, params]);
    const decodeAuxBg = decodeAux.bind('aux', [b.idxAll, b.valAll, b.W_dec, b.b_pre, b.eHat, params]);
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
    const lBg = lossBg(b.valAll);
    const select = (p: GPUComputePassEncoder) => {
      topk.run(p, topkBg);
      if (batchTopK && batchBg) batchTopK.run(p, batchBg);
    };

    this.recordForward = (pass) => {
      encode.run(pass, encodeBindings);
      topk.run(pass, topkBg);
      if (batchTopK && batchFwdBg) batchTopK.run(pass, batchFwdBg);
      decode.run(pass, decodeBg);
    };
    /** The step as named phases in order (the benchmark times each alone). */
    this.phases = [
      { name: 'encode', record: (p) => encode.run(p, encodeBindings) },
      { name: 'topk', record: select },
      { name: 'decode', record: (p) => decode.run(p, decodeBg) },
      { name: 'dead', record: (p) => dead.run(p, deadBg) },
      { name: 'topk-aux', record: (p) => (topkAux && topkAuxBg ? topkAux.run(p, topkAuxBg) : undefined) },
      { name: 'decode-aux', record: (p) => decodeAux.run(p, decodeAuxBg) },
      { name: 'loss', record: (p) => loss.run(p, lBg) },
      { name: 'gv', record: (p) => grad.run(p, gradBg, ['gv']) },
      { name: 'sort', record: (p) => sort.run(p, sortBg) },
      { name: 'grad', record: (p) => grad.run(p, gradBg, ['grad_dec', 'grad_enc', 'grad_bpre']) },
      ...tail(),
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
    const params = { ...s.params };
    if (hasExtra(this.cfg.activation) && !params.extra) params.extra = defaultExtra(this.cfg);
    for (const p of paramNames(this.cfg)) {
      const v = params[p]!;
      upload(dev, this.theta[p]!, v);
      upload(dev, this.b[`m_${p}`], s.m?.[p] ?? new Float32Array(v.length));
      upload(dev, this.b[`v_${p}`], s.v?.[p] ?? new Float32Array(v.length));
      if (this.cfg.ema) upload(dev, this.b[`ema_${p}`], s.ema?.[p] ?? v);
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
    this.device.queue.writeBuffer(
      this.b.params,
      0,
      stepParamsBytes(this.cfg, t, lr, lossScale, l1At(this.cfg, t)),
    );
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
    if (isDense(this.cfg.activation) || this.cfg.activation === 'batchtopk') {
      const codes = stepParamsBytes(this.cfg, 1, this.cfg.lr, 1);
      const u = new Uint32Array(codes);
      u[3] = this.codesK;
      u[7] |= FLAG_NO_METRICS;
      this.device.queue.writeBuffer(this.b.paramsCodes, 0, codes);
    }
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
    const n = paramSizes(this.cfg);
    const out = {} as ParamsF32;
    for (const p of paramNames(this.cfg)) out[p] = await this.readF32(which === 'ema' ? `ema_${p}` : p, n[p]);
    return out;
  }

  async readState(): Promise<TrainState> {
    const N = this.cfg.nLatents;
    const n = paramSizes(this.cfg);
    const grab = async (prefix: string) => {
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
