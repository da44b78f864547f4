/**
 * One TopK SAE training step on the GPU: every kernel of DESIGN §2 wired in order inside one compute
 * pass. The float64 twin is src/reference/step.ts (refStep); tests compare the two buffer by buffer.
 */
import { BufferArena, readBytes, upload } from '../gpu/buffers';
import { createActivation } from '../gpu/kernels/activation';
import { createAdam } from '../gpu/kernels/adam';
import { createBatchTopK } from '../gpu/kernels/batch-topk';
import { createDead } from '../gpu/kernels/dead';
import { createDecode } from '../gpu/kernels/decode';
import { createDenseDecode } from '../gpu/kernels/dense-decode';
import { createEncode, type EncodeVariant } from '../gpu/kernels/encode';
import { createEncodeDead } from '../gpu/kernels/encode-dead';
import { createEncodeTopK, type EncodeTopKVariant } from '../gpu/kernels/encode-topk';
import { createGrad } from '../gpu/kernels/grad';
import { createLoss } from '../gpu/kernels/loss';
import { createOuterAcc } from '../gpu/kernels/outer-acc';
import { createSortByLatent } from '../gpu/kernels/sort';
import { createTopK, type TopKVariant } from '../gpu/kernels/topk';
import { createTopKMerge } from '../gpu/kernels/topk-merge';
import { createUpdate } from '../gpu/kernels/update';
import { STEP_FLAGS } from '../gpu/step-params';
import { PARAM_NAMES, type Params } from '../reference/step';
import { type Activation, defaultExtra, hasExtra, isDense, l1At, type ResolvedConfig } from './config';
import {
  assertPlan,
  type BufferPlan,
  bufferPlan,
  DENSE_CODES_MAX,
  METRIC_SLOTS,
  METRICS,
  SHARDED,
  type ShardedName,
  STEP_PARAMS_BYTES,
} from './plan';

import { kRow, stepFlags, stepParamsBytes } from './step-uniform';

export {
  DENSE_CODES_MAX,
  defaultExtra,
  hasExtra,
  kRow,
  METRIC_SLOTS,
  METRICS,
  STEP_PARAMS_BYTES,
  stepFlags,
  stepParamsBytes,
};

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

export interface KernelChoice {
  encode: EncodeVariant;
  topk: TopKVariant;
  topkTile: number;
  /**
   * Fused encode + TopK (shaders/encode-topk.wgsl) instead of encode + TopK: the variant, or null for
   * the unfused path. Only where the TopK list is ≤ 64 wide (sparse family); the autotuner chooses.
   */
  fused?: EncodeTopKVariant | null;
  /** Latents per thread chunk of the fused kernel (≥ plan's fusedChunkMin). */
  fusedChunk?: number;
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
 * The buffers of one step, allocated from its BufferPlan: `b` the whole buffers by plan key, `sh` the
 * [N, d] tensors as one buffer per latent shard (plan.shards), `shardParams` the Shard uniform of each.
 */
export class GpuSae {
  readonly plan: BufferPlan;
  readonly arena: BufferArena;
  readonly b: Record<string, GPUBuffer> = {};
  readonly sh = {} as Record<ShardedName, GPUBuffer[]>;
  readonly shardParams: GPUBuffer[] = [];
  /** Threshold family: the MicroBatch uniform of each micro-batch (plan.microBatches; one = the whole batch). */
  readonly microRows: GPUBuffer[] = [];
  private record: (pass: GPUComputePassEncoder) => void = () => {};
  private recordForward: (pass: GPUComputePassEncoder) => void = () => {};
  /** Threshold family in micro-batches: the forward of each (encode, activation, decode, codes into gact/gpre). */
  private microForward: { row0: number; n: number; record: (pass: GPUComputePassEncoder) => void }[] | null =
    null;
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
          // MicroBatch uniform (shaders/common.wgsl): rows; the forward sums fires from the first
          // micro-batch up, the backward its sums from the last one down.
          const m = Number(pb.key.slice(hash + 1));
          const { row0, n } = this.plan.microBatches[m];
          const u = a.uniform(pb.key, pb.bytes);
          const last = this.plan.microBatches.length - 1;
          device.queue.writeBuffer(u, 0, new Uint32Array([row0, n, m > 0 ? 1 : 0, m < last ? 1 : 0]));
          this.microRows.push(u);
        } else this.sh[name].push(a.create(pb.key, pb.bytes));
      } else if (pb.shape === 'uniform') this.b[pb.key] = a.uniform(pb.key, pb.bytes);
      else this.b[pb.key] = a.create(pb.key, pb.bytes);
    }
    this.build(kernels);
  }

  /** Code entries per row the forward pass leaves at the start of idxAll/valAll ([B, codesK]; val 0 = inactive). */
  readonly codesK: number;

  /** The buffers of a tensor in latent order: its shards, or the one buffer. */
  segments(name: string): GPUBuffer[] {
    const sharded = this.sh[name as ShardedName];
    if (sharded?.length) return sharded;
    const one = this.b[name];
    if (!one) throw new Error(`GpuSae: no buffer ${name}`);
    return [one];
  }

  /** (Re)creates the kernels for a variant choice and binds them to this step's buffers. */
  build(kernels: KernelChoice) {
    this.destroyEncode();
    this.kernels = kernels;
    const { device, cfg, b, sh, plan } = this;
    const { batchSize: B, d, nLatents: N, kAux } = cfg;
    const shards = plan.shards;
    const S = shards.length;
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
        const seg = (key: string) => this.segments(key)[i];
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

    if (isDense(cfg.activation)) {
      // The threshold family runs unsharded (the plan refuses more than one shard for it), over
      // micro-batches of plan.microBatch rows whose [b, N] buffers fit one binding (one micro-batch:
      // the whole batch, the path below with b = B). Each micro-batch has its encoder (x's rows row0…,
      // and g's for ∂L/∂a) and bind groups with its MicroBatch uniform; [B, d] buffers stay whole.
      const W_enc = sh.W_enc[0];
      const W_dec = sh.W_dec[0];
      const rows = plan.microBatch;
      const gated = cfg.activation === 'gated';
      const act = createActivation(device, { B: rows, N, d, activation: cfg.activation });
      const decodeD = createDenseDecode(device, { B: rows, aux: false });
      const decodeDAux = createDenseDecode(device, { B: rows, aux: true });
      const outer = createOuterAcc(device, { N });
      const encodeBindings = { x: b.x, b_pre: b.b_pre, W_enc, b_enc: b.b_enc, pre: b.pre };
      // ∂L/∂a = W_dec·g is the encoder's own matmul with W_dec in place of W_enc and no biases.
      const gactBindings = { x: b.g, b_pre: b.zerosD, W_enc: W_dec, b_enc: b.zerosN, pre: b.gact };
      const gactAuxBindings = { x: b.gAux, b_pre: b.zerosD, W_enc: W_dec, b_enc: b.zerosN, pre: b.gactAux };
      const micro = plan.microBatches.map((r, m) => {
        const mb = this.microRows[m];
        return {
          ...r,
          encode: createEncode(device, { B: r.n, d, N, row0: r.row0 }, kernels.encode),
          actBg: act.bind(`act#${m}`, [
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
            W_dec,
            sh.dW_dec[0],
            b.db_enc,
            b.dextra,
            b.firesStep,
            b.g,
            W_enc,
            b.db_pre,
            b.metrics,
            b.normPart,
            params,
            b.rowStats,
            mb,
          ]),
          decodeBg: decodeD.bind(`main#${m}`, [b.act, W_dec, b.b_pre, b.xHat, params, mb]),
          decodeAuxBg: decodeDAux.bind(`aux#${m}`, [b.actAux, W_dec, b.b_pre, b.eHat, params, mb]),
          outerEncBg: outer.bind(`enc#${m}`, [b.gpre, b.x, b.b_pre, sh.dW_enc[0], params, mb]),
          outerDecBg: outer.bind(`dec#${m}`, [b.act, b.g, b.zerosD, sh.dW_dec[0], params, mb]),
        };
      });
      // Codes for evaluation: the largest activations of each row, through the TopK kernel on `act`
      // with its own uniform (k = codesK). Micro-batches: into gact/gpre ([b, N] ⊇ [n, codesK]), which
      // forward() copies into the micro-batch's rows of idxAll/valAll.
      const many = micro.length > 1;
      const codes = createTopK(device, {
        B: rows,
        N,
        K: this.codesK,
        aux: false,
        tile: kernels.topkTile,
        variant: kernels.topk,
      });
      const codesBg = codes.bind('codes', [
        b.act,
        b.deadList,
        b.deadInfo,
        many ? b.gact : b.idxAll,
        many ? b.gpre : b.valAll,
        b.paramsCodes,
      ]);
      const lBg = lossBg(b.act);
      const mb0 = micro[0];
      this.destroyEncode = () => {
        for (const mb of micro) mb.encode.destroy();
      };
      const fwd = (p: GPUComputePassEncoder, mb: (typeof micro)[number]) => {
        mb.encode.run(p, encodeBindings);
        act.run(p, mb.actBg, ['act_fwd']);
        decodeD.run(p, mb.decodeBg);
      };
      const grads = (p: GPUComputePassEncoder, mb: (typeof micro)[number]) => {
        outer.run(p, mb.outerEncBg);
        outer.run(p, mb.outerDecBg);
      };
      const gact = (p: GPUComputePassEncoder, mb: (typeof micro)[number]) => {
        mb.encode.run(p, gactBindings);
        if (gated) mb.encode.run(p, gactAuxBindings);
      };
      const apply = (p: GPUComputePassEncoder) =>
        act.run(p, mb0.actBg, ['latent_apply', 'dense_bpre', 'pen_reduce']);
      const normExtra = (p: GPUComputePassEncoder) => act.run(p, mb0.actBg, ['norm_extra']);
      this.microForward = many
        ? micro.map((mb) => ({
            row0: mb.row0,
            n: mb.n,
            record: (p: GPUComputePassEncoder) => {
              fwd(p, mb);
              codes.run(p, codesBg);
            },
          }))
        : null;
      this.recordForward = (pass) => {
        fwd(pass, mb0);
        codes.run(pass, codesBg);
      };
      if (!many) {
        this.phases = [
          { name: 'encode', record: (p) => mb0.encode.run(p, encodeBindings) },
          { name: 'activation', record: (p) => act.run(p, mb0.actBg, ['dec_norm_rows', 'act_fwd']) },
          {
            name: 'decode',
            record: (p) => {
              decodeD.run(p, mb0.decodeBg);
              if (gated) decodeDAux.run(p, mb0.decodeAuxBg);
            },
          },
          {
            name: 'dead',
            record: (p) => {
              act.run(p, mb0.actBg, ['dense_fires']);
              dead.run(p, deadBg, ['update_dead', 'compact_dead']);
            },
          },
          { name: 'loss', record: (p) => loss.run(p, lBg) },
          { name: 'gact', record: (p) => gact(p, mb0) },
          { name: 'act-bwd', record: (p) => act.run(p, mb0.actBg, ['act_bwd', 'latent_sums']) },
          {
            name: 'grad',
            record: (p) => {
              grads(p, mb0);
              apply(p);
            },
          },
          ...tail(normExtra),
        ];
      } else {
        // Micro-batches: the forward of each (fires summed in row order, each row's L0 for the loss,
        // FLAG_ROW_L0), the loss over the whole batch, then the backward of each from the last down
        // (whose pre-activations and activations are still in place; the others' are recomputed),
        // summing the per-latent sums and dW_enc, dW_dec; then the per-latent apply and the update.
        const last = micro.length - 1;
        this.phases = [
          {
            name: 'forward',
            record: (p) => {
              act.run(p, mb0.actBg, ['dec_norm_rows']);
              for (const mb of micro) {
                fwd(p, mb);
                if (gated) decodeDAux.run(p, mb.decodeAuxBg);
                act.run(p, mb.actBg, ['dense_fires', 'row_l0']);
              }
            },
          },
          { name: 'dead', record: (p) => dead.run(p, deadBg, ['update_dead', 'compact_dead']) },
          { name: 'loss', record: (p) => loss.run(p, lBg) },
          {
            name: 'backward',
            record: (p) => {
              for (let m = last; m >= 0; m--) {
                const mb = micro[m];
                if (m < last) {
                  mb.encode.run(p, encodeBindings);
                  act.run(p, mb.actBg, ['act_fwd']);
                }
                gact(p, mb);
                act.run(p, mb.actBg, ['act_bwd', 'latent_sums']);
                grads(p, mb);
              }
            },
          },
          { name: 'grad', record: apply },
          ...tail(normExtra),
        ];
      }
      // The autotuner times the encoder of one micro-batch (the phase 'encode' with one).
      this.tunePhases = many ? { encode: (p) => mb0.encode.run(p, encodeBindings) } : {};
      this.record = (pass) => {
        for (const ph of this.phases) ph.record(pass);
      };
      return;
    }

    const E = B * (kRow(cfg) + kAux);
    const select = this.buildSelect(kernels);
    const decode = createDecode(device, { B, aux: false, shards: S, shardN });
    const decodeAux = createDecode(device, { B, aux: true, shards: S, shardN });
    const grad = createGrad(device, { d, shardN, entries: E });
    const sort = createSortByLatent(device, { B, N, entries: E });

    const decodeBg = decode.bind('main', [b.idxAll, b.valAll, b.b_pre, b.xHat, params, ...sh.W_dec]);
    const decodeAuxBg = decodeAux.bind('aux', [b.idxAll, b.valAll, b.b_pre, b.eHat, params, ...sh.W_dec]);
    const gradBgs = shards.map((_, i) =>
      grad.bind(`grad#${i}`, [
        b.idxAll,
        b.valAll,
        b.g,
        b.gAux,
        sh.W_dec[i],
        b.gvAll,
        b.start,
        b.rows,
        b.x,
        b.b_pre,
        sh.W_enc[i],
        sh.dW_dec[i],
        sh.dW_enc[i],
        b.db_enc,
        b.db_pre,
        params,
        this.shardParams[i],
        b.encPart,
      ]),
    );
    const sortBg = sort.bind('sort', [b.idxAll, b.counts, b.start, b.cursor, b.unordered, b.rows, params]);
    const lBg = lossBg(b.valAll);

    this.recordForward = (pass) => {
      select.encode(pass);
      select.main(pass, true);
      decode.run(pass, decodeBg);
    };
    /** The step as named phases in order (the benchmark times each alone). */
    this.phases = [
      { name: 'encode', record: (p) => select.encode(p) },
      { name: 'topk', record: (p) => select.main(p, false) },
      { name: 'decode', record: (p) => decode.run(p, decodeBg) },
      { name: 'dead', record: (p) => dead.run(p, deadBg) },
      { name: 'topk-aux', record: (p) => select.aux(p) },
      { name: 'decode-aux', record: (p) => decodeAux.run(p, decodeAuxBg) },
      { name: 'loss', record: (p) => loss.run(p, lBg) },
      {
        name: 'gv',
        record: (p) => {
          for (const bg of gradBgs) grad.run(p, bg, ['gv']);
        },
      },
      { name: 'sort', record: (p) => sort.run(p, sortBg) },
      {
        name: 'grad',
        record: (p) => {
          for (const bg of gradBgs) grad.run(p, bg, ['grad_dec', 'grad_enc']);
          for (const bg of gradBgs) grad.run(p, bg, ['bpre_part']);
          grad.run(p, gradBgs[0], ['bpre_final']);
        },
      },
      ...tail(),
    ];
    this.record = (pass) => {
      for (const ph of this.phases) ph.record(pass);
    };
    this.tunePhases = select.tune;
    this.destroyEncode = () => select.destroy();
  }

  /**
   * The sparse family's encoder and selection: `encode` the pre-activations, `main` TopK (and the
   * BatchTopK cut; forward = the evaluation uniform), `aux` the AuxK TopK among dead latents.
   * With one tile this is today's path over [B, N]; with more, the encoder and TopK walk the latent
   * tiles of plan.tiles, keeping per-row running top-k lists, and [B, N] never exists.
   */
  private buildSelect(kernels: KernelChoice) {
    const { device, cfg, b, sh, plan } = this;
    const { batchSize: B, d, nLatents: N, kAux } = cfg;
    const multi = cfg.multiTopK;
    const batchTopK = cfg.activation === 'batchtopk' ? createBatchTopK(device, { B, kCap: kRow(cfg) }) : null;
    const batchBg = batchTopK?.bind('batch', [b.valAll, b.tau, b.metrics, b.params]);
    // The forward pass (evaluation) runs the batch selection with a uniform that keeps τ out of the
    // metrics ring, so an evaluation never overwrites a training step's slot.
    const batchFwdBg = batchTopK?.bind('batch-fwd', [b.valAll, b.tau, b.metrics, b.paramsCodes]);
    const batch = (p: GPUComputePassEncoder, forward: boolean) => {
      if (batchTopK && batchBg && batchFwdBg) batchTopK.run(p, forward ? batchFwdBg : batchBg);
    };
    if (plan.tiles.length > 1 || (kernels.fused && plan.fusedChunkMin > 0))
      return this.buildTiledSelect(kernels, batch);
    const encode = createEncode(device, { B, d, N }, kernels.encode);
    const encodeBindings = { x: b.x, b_pre: b.b_pre, W_enc: sh.W_enc[0], b_enc: b.b_enc, pre: b.pre };
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
    const topkBg = topk.bind('main', [b.pre, b.deadList, b.deadInfo, b.idxAll, b.valAll, b.params]);
    const topkAuxBg = topkAux?.bind('aux', [b.pre, b.deadList, b.deadInfo, b.idxAll, b.valAll, b.params]);
    return {
      encode: (p: GPUComputePassEncoder) => encode.run(p, encodeBindings),
      main: (p: GPUComputePassEncoder, forward: boolean) => {
        topk.run(p, topkBg);
        batch(p, forward);
      },
      aux: (p: GPUComputePassEncoder) => {
        if (topkAux && topkAuxBg) topkAux.run(p, topkAuxBg);
      },
      tune: {
        encode: (p: GPUComputePassEncoder) => encode.run(p, encodeBindings),
        topk: (p: GPUComputePassEncoder) => topk.run(p, topkBg),
        select: (p: GPUComputePassEncoder) => {
          encode.run(p, encodeBindings);
          topk.run(p, topkBg);
        },
      },
      destroy: () => encode.destroy(),
    };
  }
  private destroyEncode: () => void = () => {};

  /**
   * The encoder + TopK over latent tiles (plan.tiles): per tile, the encoder writes the tile [B, n],
   * the tiled TopK its raw per-row list, and the merge folds that into a running best list; after
   * the last tile the best lists are emitted into idxAll/valAll exactly as the untiled TopK writes
   * them. AuxK runs after the dead update: per tile, only the dead latents' pre-activations are
   * recomputed (encode-dead) and their tiled TopK merged. With `kernels.fused` a tile's encoder and
   * TopK are one kernel (encode-topk) writing C chunk lists that the merge folds in at once.
   * Phases: 'encode' = tiles + merges, 'topk' = emit + BatchTopK's cut.
   */
  private buildTiledSelect(
    kernels: KernelChoice,
    batch: (p: GPUComputePassEncoder, forward: boolean) => void,
  ) {
    const { device, cfg, b, sh, plan } = this;
    const { batchSize: B, d, kAux } = cfg;
    const multi = cfg.multiTopK;
    const n = plan.tileLatents;
    const kList = multi ? cfg.k + kAux : kRow(cfg);
    const common = { B, N: n, tile: kernels.topkTile, variant: kernels.topk, tiled: true };
    const topk = createTopK(device, { ...common, K: kList, aux: false, multi });
    const hasAux = kAux > 0 && !multi;
    const topkAux = hasAux ? createTopK(device, { ...common, K: kAux, aux: true }) : null;
    const merge = createTopKMerge(device, { B, K: kList, multi });
    const mergeAux = hasAux ? createTopKMerge(device, { B, K: kAux, aux: true }) : null;
    const encodeDead = hasAux ? createEncodeDead(device, { B, d, n }, kernels.encode) : null;
    const mergeBgs = merge.bind('main', [
      b.tileIdx,
      b.tileVal,
      b.bestIdx,
      b.bestVal,
      b.idxAll,
      b.valAll,
      b.params,
      merge.mergeParams(1),
    ]);
    const mergeAuxBgs = mergeAux?.bind('aux', [
      b.tileIdx,
      b.tileVal,
      b.bestAuxIdx,
      b.bestAuxVal,
      b.idxAll,
      b.valAll,
      b.params,
      mergeAux.mergeParams(1),
    ]);
    const encodes: { destroy(): void }[] = [];
    const fused = kernels.fused && plan.fusedChunkMin > 0 ? kernels.fused : null;
    const chunk = Math.max(plan.fusedChunkMin, kernels.fusedChunk ?? 0);
    // Merge bind groups over the fused kernel's chunk lists, one per chunk count C.
    const fusedMerge = new Map<number, GPUBindGroup[]>();
    const fusedMergeBgs = (C: number) => {
      let bgs = fusedMerge.get(C);
      if (!bgs) {
        bgs = merge.bind(`fused C=${C}`, [
          b.fusedIdx,
          b.fusedVal,
          b.bestIdx,
          b.bestVal,
          b.idxAll,
          b.valAll,
          b.params,
          merge.mergeParams(C),
        ]);
        fusedMerge.set(C, bgs);
      }
      return bgs;
    };
    const tiles = plan.tiles.map((t) => {
      const W_enc = sh.W_enc[t.shard];
      let select: (p: GPUComputePassEncoder) => void;
      let encodeOnly: (p: GPUComputePassEncoder) => void;
      let topkOnly: (p: GPUComputePassEncoder) => void;
      if (fused) {
        const f = createEncodeTopK(
          device,
          { B, d, N: t.n, K: kList, lat0: t.lat0, wOff: t.wOff, chunk, multi },
          fused,
        );
        encodes.push(f);
        const bgs = fusedMergeBgs(f.chunks);
        // deadFlag ← zeros: AuxK's dead columns come from encode-dead after the dead update.
        const bind = {
          x: b.x,
          b_pre: b.b_pre,
          W_enc,
          b_enc: b.b_enc,
          pre: b.pre,
          deadFlag: b.zerosN,
          listIdx: b.fusedIdx,
          listVal: b.fusedVal,
          params: b.params,
        };
        encodeOnly = (p) => f.run(p, bind);
        topkOnly = () => {};
        select = (p) => {
          f.run(p, bind);
          merge.merge(p, bgs);
        };
      } else {
        const encode = createEncode(device, { B, d, N: t.n, lat0: t.lat0, wOff: t.wOff }, kernels.encode);
        encodes.push(encode);
        const tp = topk.tileParams(t.lat0, t.n);
        const topkBg = topk.bind(`tile@${t.lat0}`, [
          b.pre,
          b.deadList,
          b.deadInfo,
          b.tileIdx,
          b.tileVal,
          b.params,
          tp,
        ]);
        encodeOnly = (p) => encode.run(p, { x: b.x, b_pre: b.b_pre, W_enc, b_enc: b.b_enc, pre: b.pre });
        topkOnly = (p) => topk.run(p, topkBg);
        select = (p) => {
          encodeOnly(p);
          topkOnly(p);
          merge.merge(p, mergeBgs);
        };
      }
      return {
        select,
        encodeOnly,
        topkOnly,
        auxBg: topkAux?.bind(`aux@${t.lat0}`, [
          b.pre,
          b.deadList,
          b.deadInfo,
          b.tileIdx,
          b.tileVal,
          b.params,
          topkAux.tileParams(t.lat0, t.n),
        ]),
        deadBg: encodeDead?.bind(t, {
          x: b.x,
          b_pre: b.b_pre,
          W_enc,
          b_enc: b.b_enc,
          pre: b.pre,
          deadList: b.deadList,
          deadInfo: b.deadInfo,
          params: b.params,
        }),
      };
    });
    return {
      encode: (p: GPUComputePassEncoder) => {
        merge.init(p, mergeBgs);
        for (const t of tiles) t.select(p);
      },
      main: (p: GPUComputePassEncoder, forward: boolean) => {
        merge.emit(p, mergeBgs);
        batch(p, forward);
      },
      aux: (p: GPUComputePassEncoder) => {
        if (!topkAux || !mergeAux || !mergeAuxBgs || !encodeDead) return;
        mergeAux.init(p, mergeAuxBgs);
        for (const t of tiles) {
          encodeDead.run(p, t.deadBg!);
          topkAux.run(p, t.auxBg!);
          mergeAux.merge(p, mergeAuxBgs);
        }
        mergeAux.emit(p, mergeAuxBgs);
      },
      // The autotuner times one tile: the choice is per tile shape, and a whole step at scale takes minutes.
      tune: {
        encode: (p: GPUComputePassEncoder) => tiles[0].encodeOnly(p),
        topk: (p: GPUComputePassEncoder) => tiles[0].topkOnly(p),
        select: (p: GPUComputePassEncoder) => {
          merge.init(p, mergeBgs);
          tiles[0].select(p);
        },
      },
      destroy: () => {
        for (const e of encodes) e.destroy();
        topk.destroy();
        topkAux?.destroy();
        merge.destroy();
        mergeAux?.destroy();
        encodeDead?.destroy();
      },
    };
  }

  /** Bytes of GPU memory this step holds. */
  get bytes() {
    return this.arena.bytes;
  }

  /** Elements of each segment of a tensor (its shards' n·d, or the whole buffer's length). */
  segmentElems(name: string, total?: number): number[] {
    if (this.sh[name as ShardedName]?.length) return this.plan.shards.map((r) => r.n * this.cfg.d);
    return [total ?? this.b[name].size / 4];
  }

  /** Writes a whole tensor (f32/u32) across its segments. */
  writeTensor(name: string, data: Float32Array | Uint32Array) {
    const segs = this.segments(name);
    const counts = this.segmentElems(name, data.length);
    let o = 0;
    segs.forEach((buf, i) => {
      upload(this.device, buf, data.subarray(o, o + counts[i]));
      o += counts[i];
    });
  }

  /** Reads `count` elements of a tensor (all when omitted), across its segments. */
  async readTensor(name: string, count?: number): Promise<ArrayBuffer> {
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
  }

  /** Replaces the parameters alone (e.g. evaluation with the EMA weights); optimizer state is kept. */
  writeParams(params: Partial<ParamsF32>) {
    for (const p of paramNames(this.cfg)) if (params[p]) this.writeTensor(p, params[p]!);
  }

  /** Uploads the next batch: x normalized [B, d], rowScale [B] (raw error = rowScale · normalized error). */
  writeBatch(x: Float32Array, rowScale: Float32Array) {
    upload(this.device, this.b.x, x);
    upload(this.device, this.b.rowScale, rowScale);
  }

  /** Records step t (1-based) into `enc`; the uniform is written now, so submit before the next call. */
  encodeStep(enc: GPUCommandEncoder, t: number, lr: number, lossScale: number) {
    // Micro-batches: the loss takes each row's L0 from the forward (the activations are not whole).
    const over = this.microForward ? { flags: stepFlags(this.cfg) | STEP_FLAGS.ROW_L0 } : {};
    this.device.queue.writeBuffer(
      this.b.params,
      0,
      stepParamsBytes(this.cfg, t, lr, lossScale, l1At(this.cfg, t), over),
    );
    this.uniformWritten = true;
    const pass = enc.beginComputePass({ label: `sae-step-${t}` });
    this.record(pass);
    pass.end();
  }

  /**
   * Forward only (encode, TopK, decode) on the batch in `x`, for evaluation: no counters or
   * parameters change. Results in xHat and the first B·k entries of idxAll/valAll. Micro-batches
   * (threshold family): one submission each, its codes copied into its rows of idxAll/valAll.
   */
  forward() {
    // The uniform of the last step still holds the sizes the forward pass needs.
    if (!this.uniformWritten)
      this.device.queue.writeBuffer(this.b.params, 0, stepParamsBytes(this.cfg, 1, this.cfg.lr, 1));
    const codesParams = (B: number) =>
      stepParamsBytes(this.cfg, 1, this.cfg.lr, 1, this.cfg.l1Coef, {
        B,
        k: this.codesK,
        flags: stepFlags(this.cfg) | STEP_FLAGS.NO_METRICS,
      });
    if (this.microForward) {
      const K = this.codesK;
      for (const mb of this.microForward) {
        // Queue order: this write lands after the previous micro-batch's submission ran.
        this.device.queue.writeBuffer(this.b.paramsCodes, 0, codesParams(mb.n));
        const e = this.device.createCommandEncoder({ label: `sae-forward@${mb.row0}` });
        const pass = e.beginComputePass({ label: `sae-forward@${mb.row0}` });
        mb.record(pass);
        pass.end();
        e.copyBufferToBuffer(this.b.gact, 0, this.b.idxAll, 4 * mb.row0 * K, 4 * mb.n * K);
        e.copyBufferToBuffer(this.b.gpre, 0, this.b.valAll, 4 * mb.row0 * K, 4 * mb.n * K);
        this.device.queue.submit([e.finish()]);
      }
      return;
    }
    if (isDense(this.cfg.activation) || this.cfg.activation === 'batchtopk')
      this.device.queue.writeBuffer(this.b.paramsCodes, 0, codesParams(this.cfg.batchSize));
    const enc = this.device.createCommandEncoder({ label: 'sae-forward' });
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
    return new Float32Array(await this.readTensor(name, count));
  }

  async readU32(name: string, count?: number): Promise<Uint32Array> {
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
