/**
 * WGSL forward pass of GPT-2 (GPT2LMHeadModel) over one window of T tokens from position 0 (causal,
 * the whole window at once), the GPU twin of the CPU Gpt2 in ./forward.ts. Per block l (./types.ts):
 *
 *   x = wte[token] + wpe[pos]                                        resid_pre of block 0
 *   xb = LN(x; ln_1);  qkv = W_attn·xb + b;  o = causal MHA(qkv);  a = W_proj·o + b     attn_out
 *   x += a                                                                               resid_mid
 *   xb = LN(x; ln_2);  h = gelu_tanh(W_fc·xb + b);  a = W_proj·h + b                     mlp_out
 *   x += a                                                                               resid_post
 *
 * then logits = wte · LN(x; ln_f) (tied). Matmuls, attention and the params uniform are the llama2.c
 * path's (src/gpu/kernels/lm-kernels.ts); LayerNorm, bias, GELU, residual add and the position
 * embedding are GPT-2's own (src/gpu/kernels/gpt2-kernels.ts). Weights are uploaded once by
 * {@link GpuGpt2.create}, after {@link gpt2GpuFit} has checked every buffer against the device's
 * limits; activations are sized for `capacity` rows. One forward is one command buffer; read-outs
 * and logits are copied into one staging buffer and read back with one map.
 *
 * Hooks run in TransformerLens order (resid_pre, attn_out, resid_mid, mlp_out, resid_post of each
 * block): at a hook the clean value is recorded, then a `replace` there overwrites it before it flows
 * on (attn_out / mlp_out before the residual add). resid_post of block l and resid_pre of block l+1
 * are one tensor but two hooks, so a replacement at the first shows in the second.
 */
import { BufferArena, upload } from '../../gpu/buffers';
import {
  createLmAdd,
  createLmBias,
  createLmEmbedPos,
  createLmGelu,
  createLmLayernorm,
} from '../../gpu/kernels/gpt2-kernels';
import {
  createLmAttention,
  createLmMatmul,
  LM_PARAMS_BYTES,
  type LmKernel,
  lmGroups,
  writeLmParams,
} from '../../gpu/kernels/lm-kernels';
import {
  checkReplacement,
  checkStaging,
  type LmLimits,
  lmFit,
  WindowRecorder,
  windowIds,
} from '../gpu-window';
import {
  type Gpt2Checkpoint,
  type Gpt2Config,
  type Gpt2ForwardRequest,
  type Gpt2ForwardResult,
  type Gpt2Site,
  type Gpt2SiteKind,
  hookName,
} from './types';

/** {@link Gpt2ForwardRequest} whose replacement may also be a GPUBuffer (COPY_SRC, rows from byte 0). */
export interface GpuGpt2Request extends Omit<Gpt2ForwardRequest, 'replace'> {
  replace?: { site: Gpt2Site; data: Float32Array | GPUBuffer };
}

/** {@link Gpt2ForwardResult} in float32. */
export interface GpuGpt2Result extends Gpt2ForwardResult {
  sites: Map<string, Float32Array>;
  logits: Float32Array | null;
}

/** The hooks of a block in the order the forward passes them. */
const KINDS: readonly Gpt2SiteKind[] = ['resid_pre', 'attn_out', 'resid_mid', 'mlp_out', 'resid_post'];
/** Workgroup memory of lm-layernorm.wgsl (64 f32). */
const LAYERNORM_WG_BYTES = 256;

/**
 * The first reason the WGSL forward cannot hold `config` at `capacity` rows on a device with
 * `limits`, as one line, or null when it fits ({@link lmFit}): every weight and activation buffer
 * against the largest buffer and storage binding (GPT-2 small's wte alone is 147 MiB, over WebGPU's
 * default 128 MiB binding; createGpu requests the adapter's own limit), the workgroup memory and counts.
 */
export function gpt2GpuFit(c: Gpt2Config, capacity: number, limits: LmLimits): string | null {
  const { nEmbd: d, nInner: F, vocabSize: V, nPositions: P, headSize: hs } = c;
  if (hs * c.nHead !== d) return `n_embd ${d} is not n_head ${c.nHead} × head size ${hs}`;
  const shorter = '; use a smaller capacity (context)';
  return lmFit(
    {
      headSize: hs,
      buffers: [
        ['wte', V * d * 4, ''],
        ['wpe', P * d * 4, ''],
        ['c_attn.weight', 3 * d * d * 4, ''],
        ['c_fc.weight', F * d * 4, ''],
        ['logits', capacity * V * 4, shorter],
        ['mlp hidden', capacity * F * 4, shorter],
        ['qkv', capacity * 3 * d * 4, shorter],
      ],
      workgroupBytes: LAYERNORM_WG_BYTES,
      dispatches: [
        ['unembedding', lmGroups.matmul(V, capacity), ''],
        ['qkv matmul', lmGroups.matmul(3 * d, capacity), ''],
        ['MLP matmul', lmGroups.matmul(F, capacity), ''],
        ['attention', lmGroups.attention(c.nHead, capacity), shorter],
      ],
    },
    limits,
  );
}

interface Block {
  ln1: GPUBindGroup;
  qkv: GPUBindGroup;
  qkvBias: GPUBindGroup;
  attention: GPUBindGroup;
  attnProj: GPUBindGroup;
  attnProjBias: GPUBindGroup;
  ln2: GPUBindGroup;
  fc: GPUBindGroup;
  fcBias: GPUBindGroup;
  gelu: GPUBindGroup;
  proj: GPUBindGroup;
  projBias: GPUBindGroup;
}

export class GpuGpt2 {
  readonly config: Gpt2Config;
  /** Most token rows per window. */
  readonly capacity: number;
  private readonly arena: BufferArena;
  private readonly k: Record<
    | 'embed'
    | 'layernorm'
    | 'qkv'
    | 'qkvBias'
    | 'attention'
    | 'attnProj'
    | 'dBias'
    | 'fc'
    | 'fcBias'
    | 'gelu'
    | 'proj'
    | 'add'
    | 'unembed',
    LmKernel
  >;
  private readonly b: Record<'params' | 'tokens' | 'x' | 'a' | 'replace' | 'logits', GPUBuffer>;
  private readonly embedBind: GPUBindGroup;
  private readonly addBind: GPUBindGroup;
  private readonly blocks: Block[];
  private readonly lnF: GPUBindGroup;
  private readonly unembedBind: GPUBindGroup;

  private constructor(
    readonly device: GPUDevice,
    ckpt: Gpt2Checkpoint,
    capacity: number,
  ) {
    const c = ckpt.config;
    const w = ckpt.weights;
    this.config = c;
    this.capacity = capacity;
    const { nEmbd: d, nInner: F, nLayer: L, vocabSize: V, nHead, headSize } = c;
    this.k = {
      embed: createLmEmbedPos(device, { d }),
      layernorm: createLmLayernorm(device, { d, eps: c.layerNormEps }),
      qkv: createLmMatmul(device, { nIn: d, nOut: 3 * d }),
      qkvBias: createLmBias(device, { n: 3 * d }),
      attention: createLmAttention(device, { nHeads: nHead, nKvHeads: nHead, headSize }),
      attnProj: createLmMatmul(device, { nIn: d, nOut: d }),
      dBias: createLmBias(device, { n: d }),
      fc: createLmMatmul(device, { nIn: d, nOut: F }),
      fcBias: createLmBias(device, { n: F }),
      gelu: createLmGelu(device, { n: F }),
      proj: createLmMatmul(device, { nIn: F, nOut: d }),
      add: createLmAdd(device, { n: d }),
      unembed: createLmMatmul(device, { nIn: d, nOut: V }),
    };
    const arena = new BufferArena(device, `gpt2 ${ckpt.name}`);
    this.arena = arena;
    const f = 4 * capacity;
    const params = arena.uniform('params', LM_PARAMS_BYTES);
    const tokens = arena.create('tokens', f);
    const x = arena.create('x', f * d);
    const xb = arena.create('xb', f * d);
    const qkv = arena.create('qkv', f * 3 * d);
    const att = arena.create('att', f * d);
    /** a block's branch output (attn_out, then mlp_out) before the residual add */
    const a = arena.create('a', f * d);
    const h = arena.create('h', f * F);
    const replace = arena.create('replace', f * d);
    const logits = arena.create('logits', f * V);
    this.b = { params, tokens, x, a, replace, logits };

    const wte = arena.from('wte', w.wte);
    const wpe = arena.from('wpe', w.wpe);
    this.embedBind = this.k.embed.bind('embed', [params, tokens, wte, wpe, x]);
    this.addBind = this.k.add.bind('resid', [params, a, x]);
    const up = (name: string, arr: Float32Array, l: number, n: number) =>
      arena.from(`${name}.${l}`, arr.subarray(l * n, (l + 1) * n));
    this.blocks = [];
    for (let l = 0; l < L; l++) {
      const ln1 = [up('ln_1.g', w.ln1G, l, d), up('ln_1.b', w.ln1B, l, d)];
      const ln2 = [up('ln_2.g', w.ln2G, l, d), up('ln_2.b', w.ln2B, l, d)];
      const k = this.k;
      this.blocks.push({
        ln1: k.layernorm.bind(`ln_1.${l}`, [params, x, ...ln1, xb]),
        qkv: k.qkv.bind(`${l}`, [params, xb, up('c_attn.w', w.attnW, l, 3 * d * d), qkv]),
        qkvBias: k.qkvBias.bind(`${l}`, [params, up('c_attn.b', w.attnB, l, 3 * d), qkv]),
        attention: k.attention.bind(`${l}`, [params, qkv, att]),
        attnProj: k.attnProj.bind(`${l}`, [params, att, up('attn.c_proj.w', w.attnProjW, l, d * d), a]),
        attnProjBias: k.dBias.bind(`attn.${l}`, [params, up('attn.c_proj.b', w.attnProjB, l, d), a]),
        ln2: k.layernorm.bind(`ln_2.${l}`, [params, x, ...ln2, xb]),
        fc: k.fc.bind(`${l}`, [params, xb, up('c_fc.w', w.fcW, l, F * d), h]),
        fcBias: k.fcBias.bind(`${l}`, [params, up('c_fc.b', w.fcB, l, F), h]),
        gelu: k.gelu.bind(`${l}`, [params, h]),
        proj: k.proj.bind(`${l}`, [params, h, up('mlp.c_proj.w', w.projW, l, d * F), a]),
        projBias: k.dBias.bind(`mlp.${l}`, [params, up('mlp.c_proj.b', w.projB, l, d), a]),
      });
    }
    const lnF = [arena.from('ln_f.g', w.lnFG), arena.from('ln_f.b', w.lnFB)];
    this.lnF = this.k.layernorm.bind('ln_f', [params, x, ...lnF, xb]);
    this.unembedBind = this.k.unembed.bind('wte', [params, xb, wte, logits]);
  }

  /**
   * Checks the model against the device's limits ({@link gpt2GpuFit}; throws one line naming the
   * checkpoint and the problem), then uploads the weights and builds every pipeline and bind group.
   * `capacity` (default n_positions) bounds the tokens of one window.
   */
  static create(device: GPUDevice, ckpt: Gpt2Checkpoint, capacity = ckpt.config.nPositions): GpuGpt2 {
    const P = ckpt.config.nPositions;
    if (!(Number.isInteger(capacity) && capacity >= 1 && capacity <= P))
      throw new Error(`${ckpt.name}: capacity ${capacity} is outside 1..n_positions=${P}`);
    const problem = gpt2GpuFit(ckpt.config, capacity, device.limits);
    if (problem) throw new Error(`${ckpt.name}: ${problem}`);
    return new GpuGpt2(device, ckpt, capacity);
  }

  /** GPU bytes held (weights + activations). */
  get bytes(): number {
    return this.arena.bytes;
  }

  /** Runs the window `tokens` (positions 0..T−1) and reads back the requested sites and logits. */
  async forward(tokens: ArrayLike<number>, req: GpuGpt2Request = {}): Promise<GpuGpt2Result> {
    const { nEmbd: d, nLayer: L, vocabSize: V } = this.config;
    const ids = windowIds(tokens, this.capacity, V);
    const T = ids.length;
    const checkSite = (s: Gpt2Site) => {
      if (!KINDS.includes(s.kind)) throw new Error(`unknown site kind ${String(s.kind)}`);
      if (!(Number.isInteger(s.layer) && s.layer >= 0 && s.layer < L))
        throw new Error(`${hookName(s)}: layer is outside 0..${L - 1}`);
    };
    const wanted = new Set<string>();
    /** the deepest requested hook, as layer·5 + its place in KINDS */
    let deepest = -1;
    for (const s of req.sites ?? []) {
      checkSite(s);
      wanted.add(hookName(s));
      deepest = Math.max(deepest, s.layer * 5 + KINDS.indexOf(s.kind));
    }
    const wantLogits = req.logits ?? true;
    const rep = req.replace;
    const rowBytes = T * d * 4;
    if (rep) {
      checkSite(rep.site);
      checkReplacement(rep.data, T, d);
    }
    const result: GpuGpt2Result = { sites: new Map(), logits: null };
    // Without logits nothing past the deepest requested hook is computed.
    const stopAfter = wantLogits ? Number.POSITIVE_INFINITY : deepest;
    const stagingBytes = wanted.size * rowBytes + (wantLogits ? T * V * 4 : 0);
    if (stagingBytes === 0) return result;
    // Every read-out comes back through one staging buffer (not a binding: only maxBufferSize applies).
    checkStaging(
      stagingBytes,
      this.device.limits,
      `${wanted.size} read-outs${wantLogits ? ' and the logits' : ''} of ${T} tokens`,
    );

    const { device, b, k } = this;
    writeLmParams(device, b.params, T, 0);
    device.queue.writeBuffer(b.tokens, 0, ids);
    const repName = rep ? hookName(rep.site) : '';
    if (rep && rep.data instanceof Float32Array) upload(device, b.replace, rep.data.subarray(0, T * d));
    const w = new WindowRecorder(device, 'gpt2', stagingBytes);
    const p = () => w.pass();
    const staged: { name: string; at: number }[] = []; // hook names in staging order
    /** Records the clean value of `buf` at a hook, then applies the replacement there; false: stop here. */
    const hook = (kind: Gpt2SiteKind, layer: number, buf: GPUBuffer): boolean => {
      const name = hookName({ kind, layer });
      if (wanted.has(name)) staged.push({ name, at: w.stage(buf, rowBytes) });
      if (rep && name === repName)
        w.copy(rep.data instanceof Float32Array ? b.replace : rep.data, buf, rowBytes);
      return layer * 5 + KINDS.indexOf(kind) < stopAfter;
    };

    k.embed.dispatch(p(), this.embedBind, T);
    for (let l = 0; l < L; l++) {
      if (!hook('resid_pre', l, b.x)) break;
      const g = this.blocks[l];
      k.layernorm.dispatch(p(), g.ln1, T);
      k.qkv.dispatch(p(), g.qkv, T);
      k.qkvBias.dispatch(p(), g.qkvBias, T);
      k.attention.dispatch(p(), g.attention, T);
      k.attnProj.dispatch(p(), g.attnProj, T);
      k.dBias.dispatch(p(), g.attnProjBias, T);
      if (!hook('attn_out', l, b.a)) break;
      k.add.dispatch(p(), this.addBind, T);
      if (!hook('resid_mid', l, b.x)) break;
      k.layernorm.dispatch(p(), g.ln2, T);
      k.fc.dispatch(p(), g.fc, T);
      k.fcBias.dispatch(p(), g.fcBias, T);
      k.gelu.dispatch(p(), g.gelu, T);
      k.proj.dispatch(p(), g.proj, T);
      k.dBias.dispatch(p(), g.projBias, T);
      if (!hook('mlp_out', l, b.a)) break;
      k.add.dispatch(p(), this.addBind, T);
      if (!hook('resid_post', l, b.x)) break;
    }
    if (wantLogits) {
      k.layernorm.dispatch(p(), this.lnF, T);
      k.unembed.dispatch(p(), this.unembedBind, T);
    }
    const logitsAt = wantLogits ? w.stage(b.logits, T * V * 4) : 0;
    const all = await w.read();
    for (const { name, at } of staged) result.sites.set(name, all.slice(at, at + rowBytes / 4));
    if (wantLogits) result.logits = all.slice(logitsAt);
    return result;
  }

  /** Releases every buffer (pipelines stay in the device's cache). */
  destroy(): void {
    this.arena.destroy();
  }
}
