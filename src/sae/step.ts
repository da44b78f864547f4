/**
 * One TopK SAE training step on the GPU: every kernel (docs/DESIGN.md §2) wired in order inside one compute
 * pass. The float64 twin is src/reference/step.ts (refStep); tests compare the two buffer by buffer.
 */
import { createAdam } from '../gpu/kernels/adam';
import { createDead } from '../gpu/kernels/dead';
import { oneWalkTail4 } from '../gpu/kernels/grad';
import { createLoss, lossGradIndirect } from '../gpu/kernels/loss';
import { createUpdate } from '../gpu/kernels/update';
import { createUpdateFused, fusedRowUpdate } from '../gpu/kernels/update-fused';
import { STEP_FLAGS } from '../gpu/step-params';
import type { TensorName } from './buffer-names';
import { isBatchCut, isDense, kRow, l1At, type ResolvedConfig } from './config';
import { paramNames, StepBuffers } from './step-buffers';
import { buildDense } from './step-dense';
import { DEFAULT_KERNELS, type KernelChoice, type StepCommon, type StepHost } from './step-host';
import { buildSparse } from './step-sparse';
import { forwardParamsBytes, microBatchBytes, stepFlags, stepParamsBytes } from './step-uniform';

/**
 * One training step on the buffers of StepBuffers (step-buffers.ts): the kernels bound to them, the
 * step's commands, the evaluation forward.
 */
export class GpuSae extends StepBuffers implements StepHost {
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
  tunePhases: Partial<Record<'encode' | 'topk' | 'select', (pass: GPUComputePassEncoder) => void>> & {
    /** the encoder over the first `rows` rows only (untiled sparse path): the autotuner's screening */
    encodeRows?: (pass: GPUComputePassEncoder, rows: number) => void;
  } = {};
  kernels: KernelChoice;

  /**
   * Plans and allocates the step's buffers (StepBuffers: throws LimitError before anything is
   * allocated) and builds the kernels of `kernels`.
   */
  constructor(
    device: GPUDevice,
    cfg: ResolvedConfig,
    kernels: KernelChoice = DEFAULT_KERNELS,
    opts: { tileLatents?: number; microBatch?: number } = {},
  ) {
    super(device, cfg, opts);
    this.kernels = kernels;
    // A valid uniform before any dispatch: the autotuner and the benchmarks run phases before the
    // first step, and a kernel reading k = 0 from a zeroed uniform loops for 2^32 iterations.
    this.stepBytes = stepParamsBytes(cfg, 1, cfg.lr, 1);
    device.queue.writeBuffer(this.b.params, 0, this.stepBytes);
    this.build(kernels);
  }

  /** The StepParams last written for a step (forward() puts them back after its own). */
  private stepBytes: ArrayBuffer;

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
    // The one-walk gradient sums read g_aux's copy after g's levels, which the loss then writes.
    const auxTail4 = oneWalkTail4(device, {
      d,
      gvParts: plan.gvParts,
      gAuxTail: plan.gAuxTail,
      B,
      widths: cfg.matryoshkaWidths,
    });
    // The sparse family without Multi-TopK: AuxK's entries come from the AuxK TopK alone, so with no
    // candidate nothing needs g_aux: the loss writes none and db_pre leaves it out (loss.wgsl and
    // grad-latent.wgsl IDLE_AUX, one flag for both).
    const idleAux = !isDense(cfg.activation) && !cfg.multiTopK;
    // compact_dead also sizes loss_grad_v4's dispatch, nothing while AuxK is idle (dead.wgsl).
    const loss = createLoss(device, { B, d, auxTail4, idleAux, indirect: b.deadInfo });
    const update = createUpdate(device, { shardN, d });
    const lossGradGroups = lossGradIndirect(device, { B, d, idleAux });
    const dead = createDead(device, { B, N, k: kRow(cfg), lossGradGroups });
    const names = paramNames(cfg);
    // W_dec and W_enc projected, Adam'd and renormalized row by row in one kernel (update-fused.ts).
    const rowUpdate = fusedRowUpdate(device, cfg)
      ? createUpdateFused(device, { shardN, renorm: cfg.unitNormDecoder })
      : null;
    const rowUpdateBgs = rowUpdate
      ? shards.map((_, i) => {
          const seg = (key: TensorName) => this.segments(key)[i];
          return rowUpdate.bind(`rows#${i}`, [
            seg('W_dec'),
            seg('dW_dec'),
            seg('W_enc'),
            seg('dW_enc'),
            seg('m_W_dec'),
            seg('v_W_dec'),
            seg('m_W_enc'),
            seg('v_W_enc'),
            b.db_enc,
            b.normPart,
            params,
            this.shardParams[i],
          ]);
        })
      : [];
    // Adam and EMA per tensor, and per shard for the [N, d] tensors: [theta, grad, m, v, ema] buffers.
    const adamJobs: { kernel: ReturnType<typeof createAdam>; bgs: GPUBindGroup[]; rows: boolean }[] = [];
    for (const p of names) {
      const parts = this.segments(p);
      parts.forEach((theta, i) => {
        const kernel = createAdam(device, theta.size / 4);
        const seg = (key: TensorName) => this.segments(key)[i];
        adamJobs.push({
          kernel,
          rows: p === 'W_dec' || p === 'W_enc',
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
          if (rowUpdate) for (const bg of rowUpdateBgs) rowUpdate.run(p, bg);
          else perShard(p, [update.project]);
          extraNorm?.(p);
          update.run(p, updateBgs[0], [update.clip]);
        },
      },
      {
        name: 'adam',
        record: (p: GPUComputePassEncoder) => {
          for (const j of adamJobs) if (!(rowUpdate && j.rows)) j.kernel.run(p, j.bgs, ['adam']);
        },
      },
      {
        name: 'renorm',
        record: (p: GPUComputePassEncoder) => {
          if (cfg.unitNormDecoder && !rowUpdate) perShard(p, [update.renorm]);
        },
      },
      {
        name: 'ema',
        record: (p: GPUComputePassEncoder) => {
          if (cfg.ema) for (const j of adamJobs) j.kernel.run(p, j.bgs, ['ema']);
        },
      },
    ];

    const common: StepCommon = { loss, lossBg, dead, deadBg, tail, idleAux };
    if (isDense(cfg.activation)) buildDense(this, kernels, common);
    else buildSparse(this, kernels, common);
  }

  /** Set by the path builders (step-sparse.ts, step-dense.ts): frees the kernels of the last build. */
  destroyEncode: () => void = () => {};
  /** Set by the sparse builder: the encoder also writes chunk maxima for the 'chunkmax' TopK. */
  chunkMaxima = false;

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
    if (this.microForward) {
      const K = this.codesK;
      this.microForward.forEach((mb, m) => {
        const n = Math.min(mb.n, rows - mb.row0);
        if (n <= 0) return;
        // Queue order: these writes land after the previous micro-batch's submission ran.
        device.queue.writeBuffer(this.b.paramsCodes, 0, forwardParamsBytes(cfg, n, K));
        device.queue.writeBuffer(this.microRows[m], 0, microBatchBytes(this.plan, m, n));
        const e = device.createCommandEncoder({ label: `sae-forward@${mb.row0}` });
        const pass = e.beginComputePass({ label: `sae-forward@${mb.row0}` });
        mb.record(pass, n);
        pass.end();
        e.copyBufferToBuffer(this.b.gact, 0, this.b.idxAll, 4 * mb.row0 * K, 4 * n * K);
        e.copyBufferToBuffer(this.b.gpre, 0, this.b.valAll, 4 * mb.row0 * K, 4 * n * K);
        device.queue.submit([e.finish()]);
        device.queue.writeBuffer(this.microRows[m], 0, microBatchBytes(this.plan, m));
      });
      return;
    }
    const dense = isDense(cfg.activation);
    // The codes pass (dense: TopK of the activations; BatchTopK: the batch cut) reads paramsCodes.
    if (dense || isBatchCut(cfg.activation))
      device.queue.writeBuffer(this.b.paramsCodes, 0, forwardParamsBytes(cfg, rows, this.codesK));
    if (dense) device.queue.writeBuffer(this.microRows[0], 0, microBatchBytes(this.plan, 0, rows));
    else device.queue.writeBuffer(this.b.params, 0, forwardParamsBytes(cfg, rows));
    const enc = device.createCommandEncoder({ label: 'sae-forward' });
    const pass = enc.beginComputePass({ label: 'sae-forward' });
    this.recordForward(pass, rows);
    pass.end();
    device.queue.submit([enc.finish()]);
    if (dense) device.queue.writeBuffer(this.microRows[0], 0, microBatchBytes(this.plan, 0));
    else device.queue.writeBuffer(this.b.params, 0, this.stepBytes);
  }

  step(t: number, lr: number, lossScale: number) {
    const enc = this.device.createCommandEncoder({ label: `sae-step-${t}` });
    this.encodeStep(enc, t, lr, lossScale);
    this.device.queue.submit([enc.finish()]);
  }

  destroy() {
    this.destroyEncode();
    this.arena.destroy();
  }
}
