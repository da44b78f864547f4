/**
 * WGSL forward pass of a llama2.c model over one window of T tokens (positions 0..T-1, causal, the
 * whole window at once), the GPU twin of {@link Llama.run} in ./forward.ts. Per layer:
 *
 *   xb = rmsnorm(x, rms_att[l]);  qkv = [wq; wk; wv][l] · xb;  RoPE on q and k;
 *   o = causal GQA(qkv);          x += wo[l] · o;
 *   xb = rmsnorm(x, rms_ffn[l]);  hb = [w1; w3][l] · xb;  h = silu(gate) ⊙ up;  x += w2[l] · h
 *
 * then logits = wcls · rmsnorm(x, rms_final). Weights are uploaded once by {@link GpuLlama.create}
 * (wq/wk/wv and w1/w3 concatenated per layer so each pair is one matmul); activations live in buffers
 * sized for `capacity` rows. One forward is one command buffer: residual snapshots and logits are
 * copied into a single staging buffer and read back with one map.
 *
 * Residual index convention (same as the CPU Llama): 0 = token embedding going into layer 0,
 * l+1 = after layer l. `replace` swaps the residual at one index for given values (after that index is
 * recorded) before it feeds the next layer — the hook for downstream-loss evaluation of an SAE.
 */
import { BufferArena, upload } from '../gpu/buffers';
import {
  createLmAttention,
  createLmEmbed,
  createLmMatmul,
  createLmRmsnorm,
  createLmRope,
  createLmSwiglu,
  LM_PARAMS_BYTES,
  type LmKernel,
  lmGroups,
  ropeTable,
  writeLmParams,
} from '../gpu/kernels/lm-kernels';
import type { LlamaCheckpoint, LlamaConfig } from './checkpoint';
import {
  checkReplacement,
  checkStaging,
  type LmLimits,
  lmFit,
  WindowRecorder,
  windowIds,
} from './gpu-window';

export interface GpuForwardRequest {
  /** Residual indices 0..nLayers to return. */
  residLayers?: number[];
  /** Layers 0..nLayers−1 whose FFN (MLP) output w2·(silu(w1·xb) ⊙ w3·xb) to return (site 'mlp'). */
  mlpLayers?: number[];
  /** Return logits [T, vocab] (default true). When false, layers past the deepest requested index are skipped. */
  logits?: boolean;
  /**
   * Replace the residual at `index` (0..nLayers) with `data` [T, dim] before it flows on; `resid` still
   * reports the clean value at that index. A GPUBuffer needs COPY_SRC usage and holds rows from byte 0.
   */
  replace?: { index: number; data: Float32Array | GPUBuffer };
}

export interface GpuForwardResult {
  /** index → [T, dim] */
  resid: Map<number, Float32Array>;
  /** layer → [T, dim] FFN output (only for requested mlpLayers) */
  mlp: Map<number, Float32Array>;
  /** [T, vocab] or null */
  logits: Float32Array | null;
}

/** Workgroup memory of lm-rmsnorm.wgsl (64 f32). */
const RMSNORM_WG_BYTES = 256;

/**
 * The first reason the WGSL forward cannot hold `config` at `capacity` rows on a device with
 * `limits`, as one line, or null when it fits ({@link lmFit}): each weight buffer (a layer's wq|wk|wv
 * and w1|w3 are concatenated into one; wcls is token_embedding's size) and activation buffer against the largest storage binding, and
 * each kernel's workgroups (the embedding, RoPE and SwiGLU dispatch one invocation per element of the
 * window: a 7B model's T·hidden passes 65,535 workgroups of 64, WebGPU's default, from T = 382).
 */
export function llamaGpuFit(c: LlamaConfig, capacity: number, limits: LmLimits): string | null {
  const { dim: d, hiddenDim: h, kvDim, vocabSize: V, headSize, nHeads } = c;
  const qkvW = d + 2 * kvDim;
  const shorter = '; use a shorter window';
  return lmFit(
    {
      headSize,
      buffers: [
        ['token_embedding', V * d * 4, ''],
        ["a layer's wq|wk|wv", qkvW * d * 4, ''],
        ["a layer's w1|w3", 2 * h * d * 4, ''],
        ['logits', capacity * V * 4, shorter],
        ['the FFN hidden rows', capacity * 2 * h * 4, shorter],
        ['qkv', capacity * qkvW * 4, shorter],
        ['the RoPE table', capacity * headSize * 4, shorter],
      ],
      workgroupBytes: RMSNORM_WG_BYTES,
      dispatches: [
        ['token embedding', lmGroups.embed(d, capacity), shorter],
        ['qkv matmul', lmGroups.matmul(qkvW, capacity), ''],
        ['RoPE', lmGroups.rope(d + kvDim, capacity), shorter],
        ['attention', lmGroups.attention(nHeads, capacity), shorter],
        ['w1|w3 matmul', lmGroups.matmul(2 * h, capacity), ''],
        ['SwiGLU', lmGroups.swiglu(h, capacity), shorter],
        ['classifier', lmGroups.matmul(V, capacity), ''],
        ['RMSNorm', lmGroups.rmsnorm(capacity), shorter],
      ],
    },
    limits,
  );
}

interface LayerBinds {
  normAtt: GPUBindGroup;
  qkv: GPUBindGroup;
  rope: GPUBindGroup;
  attention: GPUBindGroup;
  wo: GPUBindGroup;
  normFfn: GPUBindGroup;
  w13: GPUBindGroup;
  swiglu: GPUBindGroup;
  w2: GPUBindGroup;
  /** w2 · h into the separate `mlp` buffer (for the FFN-output read-out) */
  w2Out: GPUBindGroup;
}

export class GpuLlama {
  readonly config: LlamaConfig;
  /** Most token rows per window (default seq_len). */
  readonly capacity: number;
  private readonly arena: BufferArena;
  private readonly k: {
    embed: LmKernel;
    rmsnorm: LmKernel;
    qkv: LmKernel;
    rope: LmKernel;
    attention: LmKernel;
    wo: LmKernel;
    w13: LmKernel;
    swiglu: LmKernel;
    w2: LmKernel;
    w2Out: LmKernel;
    cls: LmKernel;
  };
  private readonly b: {
    params: GPUBuffer;
    tokens: GPUBuffer;
    x: GPUBuffer;
    replace: GPUBuffer;
    logits: GPUBuffer;
    mlp: GPUBuffer;
  };
  private readonly embedBind: GPUBindGroup;
  private readonly layers: LayerBinds[];
  private readonly finalNorm: GPUBindGroup;
  private readonly clsBind: GPUBindGroup;

  private constructor(
    readonly device: GPUDevice,
    ckpt: LlamaCheckpoint,
    capacity: number,
  ) {
    const c = ckpt.config;
    const w = ckpt.weights;
    this.config = c;
    this.capacity = capacity;
    const { dim: d, hiddenDim: h, kvDim, nLayers: L, vocabSize: V, headSize } = c;
    const qkvW = d + 2 * kvDim;
    const arena = new BufferArena(device, `lm ${ckpt.name}`);
    this.arena = arena;
    this.k = {
      embed: createLmEmbed(device, { d }),
      rmsnorm: createLmRmsnorm(device, { d }),
      qkv: createLmMatmul(device, { nIn: d, nOut: qkvW }),
      rope: createLmRope(device, { headSize, nRot: d + kvDim, stride: qkvW }),
      attention: createLmAttention(device, { nHeads: c.nHeads, nKvHeads: c.nKvHeads, headSize }),
      wo: createLmMatmul(device, { nIn: d, nOut: d, accum: true }),
      w13: createLmMatmul(device, { nIn: d, nOut: 2 * h }),
      swiglu: createLmSwiglu(device, { hidden: h }),
      w2: createLmMatmul(device, { nIn: h, nOut: d, accum: true }),
      w2Out: createLmMatmul(device, { nIn: h, nOut: d }),
      cls: createLmMatmul(device, { nIn: d, nOut: V }),
    };
    // Activations, sized for `capacity` rows.
    const f = 4 * capacity;
    const params = arena.uniform('params', LM_PARAMS_BYTES);
    const tokens = arena.create('tokens', f);
    const x = arena.create('x', f * d);
    const xb = arena.create('xb', f * d);
    const qkv = arena.create('qkv', f * qkvW);
    const att = arena.create('att', f * d);
    const hb = arena.create('hb', f * 2 * h);
    const hg = arena.create('hg', f * h);
    const logits = arena.create('logits', f * V);
    const replace = arena.create('replace', f * d);
    const mlp = arena.create('mlp', f * d);
    this.b = { params, tokens, x, replace, logits, mlp };
    // Weights.
    const emb = arena.from('token_embedding', w.tokenEmbedding);
    const rope = arena.from('rope', ropeTable(capacity, headSize));
    this.embedBind = this.k.embed.bind('embed', [params, tokens, emb, x]);
    const cat = (...parts: Float32Array[]) => {
      const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
      let o = 0;
      for (const p of parts) {
        out.set(p, o);
        o += p.length;
      }
      return out;
    };
    this.layers = [];
    for (let l = 0; l < L; l++) {
      const sl = (a: Float32Array, n: number) => a.subarray(l * n, (l + 1) * n);
      const rmsAtt = arena.from(`rms_att.${l}`, sl(w.rmsAtt, d));
      const wqkv = arena.from(`wqkv.${l}`, cat(sl(w.wq, d * d), sl(w.wk, kvDim * d), sl(w.wv, kvDim * d)));
      const wo = arena.from(`wo.${l}`, sl(w.wo, d * d));
      const rmsFfn = arena.from(`rms_ffn.${l}`, sl(w.rmsFfn, d));
      const w13 = arena.from(`w13.${l}`, cat(sl(w.w1, h * d), sl(w.w3, h * d)));
      const w2 = arena.from(`w2.${l}`, sl(w.w2, d * h));
      this.layers.push({
        normAtt: this.k.rmsnorm.bind(`att.${l}`, [x, rmsAtt, xb]),
        qkv: this.k.qkv.bind(`${l}`, [params, xb, wqkv, qkv]),
        rope: this.k.rope.bind(`${l}`, [params, rope, qkv]),
        attention: this.k.attention.bind(`${l}`, [params, qkv, att]),
        wo: this.k.wo.bind(`${l}`, [params, att, wo, x]),
        normFfn: this.k.rmsnorm.bind(`ffn.${l}`, [x, rmsFfn, xb]),
        w13: this.k.w13.bind(`${l}`, [params, xb, w13, hb]),
        swiglu: this.k.swiglu.bind(`${l}`, [params, hb, hg]),
        w2: this.k.w2.bind(`${l}`, [params, hg, w2, x]),
        w2Out: this.k.w2Out.bind(`${l}`, [params, hg, w2, mlp]),
      });
    }
    const rmsFinal = arena.from('rms_final', w.rmsFinal);
    const wcls = c.sharedClassifier ? emb : arena.from('wcls', w.wcls);
    this.finalNorm = this.k.rmsnorm.bind('final', [x, rmsFinal, xb]);
    this.clsBind = this.k.cls.bind('cls', [params, xb, wcls, logits]);
  }

  /**
   * Checks the model against the device's limits ({@link llamaGpuFit}; throws one line naming the
   * checkpoint and the problem), then uploads the weights once and builds every pipeline and bind group.
   */
  static create(device: GPUDevice, ckpt: LlamaCheckpoint, opts: { capacity?: number } = {}): GpuLlama {
    const capacity = opts.capacity ?? ckpt.config.seqLen;
    if (!(Number.isInteger(capacity) && capacity >= 1 && capacity <= ckpt.config.seqLen))
      throw new Error(`capacity ${capacity} is outside 1..seq_len=${ckpt.config.seqLen}`);
    const problem = llamaGpuFit(ckpt.config, capacity, device.limits);
    if (problem) throw new Error(`${ckpt.name}: ${problem}`);
    return new GpuLlama(device, ckpt, capacity);
  }

  /** GPU bytes held (weights + activations). */
  get bytes(): number {
    return this.arena.bytes;
  }

  /** Runs the window `tokens` (positions 0..T-1) and reads back the requested residuals and logits. */
  async forward(tokens: ArrayLike<number>, req: GpuForwardRequest = {}): Promise<GpuForwardResult> {
    const { dim: d, nLayers: L, vocabSize: V } = this.config;
    const ids = windowIds(tokens, this.capacity, V);
    const T = ids.length;
    const residIdx = [...new Set(req.residLayers ?? [])].sort((a, b) => a - b);
    for (const i of residIdx)
      if (!(Number.isInteger(i) && i >= 0 && i <= L)) throw new Error(`resid index ${i} is outside 0..${L}`);
    const mlpIdx = [...new Set(req.mlpLayers ?? [])].sort((a, b) => a - b);
    for (const l of mlpIdx)
      if (!(Number.isInteger(l) && l >= 0 && l < L)) throw new Error(`mlp layer ${l} is outside 0..${L - 1}`);
    const wantLogits = req.logits ?? true;
    const rep = req.replace;
    if (rep) {
      if (!(Number.isInteger(rep.index) && rep.index >= 0 && rep.index <= L))
        throw new Error(`replace index ${rep.index} is outside 0..${L}`);
      checkReplacement(rep.data, T, d);
    }
    const layersToRun = wantLogits ? L : Math.max(0, ...residIdx, ...mlpIdx.map((l) => l + 1));
    const rowBytes = T * d * 4;
    const nRows = residIdx.length + mlpIdx.length;
    const stagingBytes = nRows * rowBytes + (wantLogits ? T * V * 4 : 0);
    const result: GpuForwardResult = { resid: new Map(), mlp: new Map(), logits: null };
    if (stagingBytes === 0) return result;
    checkStaging(
      stagingBytes,
      this.device.limits,
      `${nRows} read-outs${wantLogits ? ' and the logits' : ''} of ${T} tokens`,
    );

    const { device, b, k } = this;
    writeLmParams(device, b.params, T, 0);
    device.queue.writeBuffer(b.tokens, 0, ids);
    if (rep && rep.data instanceof Float32Array) upload(device, b.replace, rep.data.subarray(0, T * d));
    const w = new WindowRecorder(device, 'lm', stagingBytes);
    const p = () => w.pass();
    /** where each read-out lands in the staging buffer, in order */
    const slots: { map: Map<number, Float32Array>; index: number; at: number }[] = [];
    const visit = (index: number) => {
      if (residIdx.includes(index)) slots.push({ map: result.resid, index, at: w.stage(b.x, rowBytes) });
      if (rep && rep.index === index)
        w.copy(rep.data instanceof Float32Array ? b.replace : rep.data, b.x, rowBytes);
    };

    k.embed.dispatch(p(), this.embedBind, T);
    visit(0);
    for (let l = 0; l < layersToRun; l++) {
      const g = this.layers[l];
      k.rmsnorm.dispatch(p(), g.normAtt, T);
      k.qkv.dispatch(p(), g.qkv, T);
      k.rope.dispatch(p(), g.rope, T);
      k.attention.dispatch(p(), g.attention, T);
      k.wo.dispatch(p(), g.wo, T);
      k.rmsnorm.dispatch(p(), g.normFfn, T);
      k.w13.dispatch(p(), g.w13, T);
      k.swiglu.dispatch(p(), g.swiglu, T);
      if (mlpIdx.includes(l)) {
        k.w2Out.dispatch(p(), g.w2Out, T);
        slots.push({ map: result.mlp, index: l, at: w.stage(b.mlp, rowBytes) });
      }
      k.w2.dispatch(p(), g.w2, T);
      visit(l + 1);
    }
    if (wantLogits) {
      k.rmsnorm.dispatch(p(), this.finalNorm, T);
      k.cls.dispatch(p(), this.clsBind, T);
    }
    const logitsAt = wantLogits ? w.stage(b.logits, T * V * 4) : 0;
    const all = await w.read();
    for (const { map, index, at } of slots) map.set(index, all.slice(at, at + rowBytes / 4));
    if (wantLogits) result.logits = all.slice(logitsAt);
    return result;
  }

  /**
   * Forward with the residual at `index` replaced by `resid` [T, dim] (e.g. an SAE reconstruction),
   * continuing from there; returns the logits (and any requested residuals) for downstream loss.
   */
  forwardResid(
    tokens: ArrayLike<number>,
    index: number,
    resid: Float32Array | GPUBuffer,
    req: Omit<GpuForwardRequest, 'replace'> = {},
  ): Promise<GpuForwardResult> {
    return this.forward(tokens, { ...req, replace: { index, data: resid } });
  }

  /** Releases every buffer (pipelines stay in the device's cache). */
  destroy(): void {
    this.arena.destroy();
  }
}
