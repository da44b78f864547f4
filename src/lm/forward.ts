/**
 * CPU forward pass of a llama2.c model (LLaMA-2 architecture), the reference
 * twin for the WGSL port. It follows karpathy/llama2.c run.c `forward()`
 * operation for operation:
 *
 *   x = token_embedding[token]                                  residual index 0
 *   for each layer l:
 *     xb = rmsnorm(x, rms_att[l])                 (eps 1e-5)
 *     q = wq[l]·xb, k = wk[l]·xb, v = wv[l]·xb     (k, v go into the KV cache)
 *     RoPE on q and k: within each head, rotate pair (2j, 2j+1) by angle
 *       pos · 10000^(-2j/head_size)
 *     per head h (kv head h / (n_heads/n_kv_heads), grouped-query attention):
 *       att = softmax(q_h · k_s / sqrt(head_size) for s ≤ pos);  o_h = Σ_s att_s v_s
 *     x += wo[l]·o
 *     xb = rmsnorm(x, rms_ffn[l])
 *     mlp = w2[l]·(silu(w1[l]·xb) ⊙ (w3[l]·xb))  (SwiGLU)               site 'mlp', layer l
 *     x += mlp                                                          residual index l+1
 *   logits = wcls · rmsnorm(x, rms_final)
 *
 * A call processes a window of T tokens at once (each row attends causally to
 * the KV cache, which holds every earlier position of the sequence), so the
 * same code serves whole windows and token-by-token generation.
 *
 * Precision: weights stay Float32 (as stored). Activations and the KV cache are
 * stored in Float32Array (`dtype: 'f32'`, like run.c and WGSL) or Float64Array
 * (`dtype: 'f64'`, the reference twin that the numpy float64 fixtures were made
 * with). Arithmetic inside each loop is JS double in both cases.
 */

import type { LlamaCheckpoint, LlamaConfig, LlamaWeights } from './checkpoint';
import { argmaxRow } from './logits';
import { matmul, rmsnorm, rotate } from './ops';

export type Dtype = 'f32' | 'f64';
export type FloatArray = Float32Array | Float64Array;

const ROPE_BASE = 10000;

/**
 * Edits the residual stream in place before it flows on: `x` is [T, dim]
 * row-major for the window being processed, rows at absolute positions
 * startPos … startPos+T-1. Used to splice an SAE reconstruction into the
 * residual stream or to zero-ablate it.
 */
type ResidHook = (x: FloatArray, T: number, startPos: number) => void;

export interface ResidIntervention {
  /** Residual index 0..nLayers (0 = embedding going into layer 0; l+1 = after layer l). */
  index: number;
  fn: ResidHook;
}

export interface ForwardRequest {
  /** Residual indices 0..nLayers to return (0 = token embedding; l+1 = after layer l). */
  resid?: number[];
  /** Layers 0..nLayers-1 whose FFN (MLP) output to return. */
  mlp?: number[];
  /**
   * Return logits [T, vocab]. Default true. When false, layers past the deepest
   * requested site are skipped (much faster for extraction); the KV cache is then
   * only valid up to that depth (see {@link Llama.cacheDepth}).
   */
  logits?: boolean;
  /**
   * Residual replacements, applied (in array order) after the residual at `index`
   * is recorded in `resid` (so `resid` shows the clean value) and before it feeds layer `index`.
   */
  interventions?: ResidIntervention[];
}

export interface ForwardResult {
  /** index → [T, dim] copy of the residual stream (before any intervention at that index). */
  resid: Map<number, FloatArray>;
  /** layer → [T, dim] copy of the FFN output. */
  mlp: Map<number, FloatArray>;
  /** [T, vocab] or null when not requested. */
  logits: FloatArray | null;
}

export interface LlamaOptions {
  dtype?: Dtype;
  /** KV-cache capacity in positions; default config.seqLen. */
  capacity?: number;
}

/** A model plus its KV cache: one sequence at a time. */
export class Llama {
  readonly config: LlamaConfig;
  readonly weights: LlamaWeights;
  readonly dtype: Dtype;
  /** Maximum sequence length (KV-cache positions). */
  readonly capacity: number;
  /** RoPE cos/sin tables [capacity, headSize/2]: entry (pos, j) = cos/sin(pos · base^(-2j/headSize)). */
  readonly ropeCos: Float64Array;
  readonly ropeSin: Float64Array;
  /** [nLayers, capacity, kvDim] */
  readonly keyCache: FloatArray;
  /** [nLayers, capacity, kvDim] */
  readonly valueCache: FloatArray;
  private _pos = 0;
  private _cacheDepth: number;
  private scratch: Scratch | null = null;

  constructor(ckpt: LlamaCheckpoint, opts: LlamaOptions = {}) {
    this.config = ckpt.config;
    this.weights = ckpt.weights;
    this.dtype = opts.dtype ?? 'f32';
    this.capacity = opts.capacity ?? ckpt.config.seqLen;
    const { nLayers, kvDim, headSize } = this.config;
    this.keyCache = this.alloc(nLayers * this.capacity * kvDim);
    this.valueCache = this.alloc(nLayers * this.capacity * kvDim);
    const half = headSize / 2;
    this.ropeCos = new Float64Array(this.capacity * half);
    this.ropeSin = new Float64Array(this.capacity * half);
    for (let pos = 0; pos < this.capacity; pos++) {
      for (let j = 0; j < half; j++) {
        // run.c: head_dim = i % head_size (even), freq = 1 / 10000^(head_dim / head_size)
        const freq = 1 / ROPE_BASE ** ((2 * j) / headSize);
        this.ropeCos[pos * half + j] = Math.cos(pos * freq);
        this.ropeSin[pos * half + j] = Math.sin(pos * freq);
      }
    }
    this._cacheDepth = nLayers;
  }

  /** Number of positions already in the KV cache (the position of the next token). */
  get pos(): number {
    return this._pos;
  }

  /** How many layers have valid KV-cache entries for all positions < pos. */
  get cacheDepth(): number {
    return this._cacheDepth;
  }

  /** Starts a new sequence (the cache contents are simply overwritten later). */
  reset(): void {
    this._pos = 0;
    this._cacheDepth = this.config.nLayers;
  }

  /** reset() then forward(): one independent window. */
  run(tokens: ArrayLike<number>, req: ForwardRequest = {}): ForwardResult {
    this.reset();
    return this.forward(tokens, req);
  }

  /**
   * Processes tokens [T] at positions pos … pos+T-1, appending to the KV cache.
   * @returns the requested activations, each a fresh array.
   */
  forward(tokens: ArrayLike<number>, req: ForwardRequest = {}): ForwardResult {
    const { dim, vocabSize } = this.config;
    const w = this.weights;
    const T = tokens.length;
    const startPos = this._pos;
    const residIdx = new Set(req.resid ?? []);
    const mlpIdx = new Set(req.mlp ?? []);
    const wantLogits = req.logits ?? true;
    const hooks = req.interventions ?? [];
    const layersToRun = this.checkRequest(tokens, residIdx, mlpIdx, hooks, wantLogits);
    const s = this.getScratch(T);
    const { x, xb } = s;
    const result: ForwardResult = { resid: new Map(), mlp: new Map(), logits: null };

    // Embedding: x[t] = token_embedding[tokens[t]]
    for (let t = 0; t < T; t++) {
      const src = tokens[t] * dim;
      for (let i = 0; i < dim; i++) x[t * dim + i] = w.tokenEmbedding[src + i];
    }
    this.visitResid(0, x, T, startPos, residIdx, hooks, result);
    for (let l = 0; l < layersToRun; l++) {
      this.attentionBlock(l, T, startPos, s);
      this.ffnBlock(l, T, s);
      if (mlpIdx.has(l)) result.mlp.set(l, this.copy(xb, T * dim));
      for (let i = 0; i < T * dim; i++) x[i] += xb[i];
      this.visitResid(l + 1, x, T, startPos, residIdx, hooks, result);
    }

    if (wantLogits) {
      rmsnorm(xb, x, w.rmsFinal, 0, T, dim);
      const logits = this.alloc(T * vocabSize);
      matmul(logits, 0, xb, w.wcls, 0, T, dim, vocabSize);
      result.logits = logits;
    }
    this._pos = startPos + T;
    if (startPos === 0) this._cacheDepth = layersToRun;
    else this._cacheDepth = Math.min(this._cacheDepth, layersToRun);
    return result;
  }

  /**
   * Checks a request against the model and its cache.
   * @returns the number of layers to run: all of them for logits, else up to the deepest requested site
   */
  private checkRequest(
    tokens: ArrayLike<number>,
    residIdx: Set<number>,
    mlpIdx: Set<number>,
    hooks: ResidIntervention[],
    wantLogits: boolean,
  ): number {
    const { nLayers, vocabSize } = this.config;
    const T = tokens.length;
    const startPos = this._pos;
    for (const i of residIdx) checkIndex('resid', i, nLayers);
    for (const l of mlpIdx) checkIndex('mlp', l, nLayers - 1);
    for (const h of hooks) checkIndex('intervention', h.index, nLayers);
    if (startPos + T > this.capacity) {
      throw new Error(`sequence of ${startPos + T} positions exceeds the KV-cache capacity ${this.capacity}`);
    }
    let layersToRun = nLayers;
    if (!wantLogits) {
      layersToRun = 0;
      for (const i of residIdx) layersToRun = Math.max(layersToRun, i);
      for (const l of mlpIdx) layersToRun = Math.max(layersToRun, l + 1);
    }
    if (startPos > 0 && layersToRun > this._cacheDepth) {
      throw new Error(
        `layers ${this._cacheDepth}..${layersToRun - 1} have no KV cache for earlier positions (an earlier call stopped early); reset() first`,
      );
    }
    for (let t = 0; t < T; t++) {
      if (!(tokens[t] >= 0 && tokens[t] < vocabSize))
        throw new Error(`token id ${tokens[t]} at ${t} is outside 0..${vocabSize - 1}`);
    }
    return layersToRun;
  }

  /**
   * Layer l's attention block on rows [T, dim] at positions startPos…: appends k, v to the cache
   * and adds wo·o to the residual stream s.x.
   */
  private attentionBlock(l: number, T: number, startPos: number, s: Scratch): void {
    const { dim, nHeads, kvDim, headSize } = this.config;
    const w = this.weights;
    const { x, xb, q, att } = s;
    const kvMul = nHeads / this.config.nKvHeads;
    const half = headSize / 2;
    const invSqrtHead = 1 / Math.sqrt(headSize);
    rmsnorm(xb, x, w.rmsAtt, l * dim, T, dim);
    const cacheOff = l * this.capacity * kvDim; // layer l's slab of the cache
    matmul(q, 0, xb, w.wq, l * dim * dim, T, dim, dim);
    matmul(this.keyCache, cacheOff + startPos * kvDim, xb, w.wk, l * kvDim * dim, T, dim, kvDim);
    matmul(this.valueCache, cacheOff + startPos * kvDim, xb, w.wv, l * kvDim * dim, T, dim, kvDim);
    // RoPE: rotate consecutive pairs within each head of q (all heads) and k (kv heads).
    for (let t = 0; t < T; t++) {
      const pos = startPos + t;
      rotate(q, t * dim, dim, this.ropeCos, this.ropeSin, pos * half, headSize);
      rotate(this.keyCache, cacheOff + pos * kvDim, kvDim, this.ropeCos, this.ropeSin, pos * half, headSize);
    }
    // Causal grouped-query attention; the head outputs o[t] go into xb (q is no longer needed after).
    for (let t = 0; t < T; t++) {
      const pos = startPos + t;
      for (let h = 0; h < nHeads; h++) {
        const qOff = t * dim + h * headSize;
        const kvHeadOff = Math.floor(h / kvMul) * headSize;
        let maxScore = -Infinity;
        for (let sPos = 0; sPos <= pos; sPos++) {
          const kOff = cacheOff + sPos * kvDim + kvHeadOff;
          let score = 0;
          for (let i = 0; i < headSize; i++) score += q[qOff + i] * this.keyCache[kOff + i];
          score *= invSqrtHead;
          att[sPos] = score;
          if (score > maxScore) maxScore = score;
        }
        let sum = 0;
        for (let sPos = 0; sPos <= pos; sPos++) {
          const e = Math.exp(att[sPos] - maxScore);
          att[sPos] = e;
          sum += e;
        }
        const oOff = t * dim + h * headSize;
        for (let i = 0; i < headSize; i++) xb[oOff + i] = 0;
        for (let sPos = 0; sPos <= pos; sPos++) {
          const a = att[sPos] / sum;
          const vOff = cacheOff + sPos * kvDim + kvHeadOff;
          for (let i = 0; i < headSize; i++) xb[oOff + i] += a * this.valueCache[vOff + i];
        }
      }
    }
    // x += wo · o   (q is reused as the scratch for wo·o)
    matmul(q, 0, xb, w.wo, l * dim * dim, T, dim, dim);
    for (let i = 0; i < T * dim; i++) x[i] += q[i];
  }

  /** Layer l's FFN (SwiGLU) on rows [T, dim] of s.x; its output [T, dim] is left in s.xb. */
  private ffnBlock(l: number, T: number, s: Scratch): void {
    const { dim, hiddenDim } = this.config;
    const w = this.weights;
    const { x, xb, hb, hb2 } = s;
    rmsnorm(xb, x, w.rmsFfn, l * dim, T, dim);
    matmul(hb, 0, xb, w.w1, l * hiddenDim * dim, T, dim, hiddenDim);
    matmul(hb2, 0, xb, w.w3, l * hiddenDim * dim, T, dim, hiddenDim);
    for (let i = 0; i < T * hiddenDim; i++) {
      const g = hb[i];
      hb[i] = (g / (1 + Math.exp(-g))) * hb2[i]; // silu(g) · up
    }
    matmul(xb, 0, hb, w.w2, l * dim * hiddenDim, T, hiddenDim, dim);
  }

  private visitResid(
    index: number,
    x: FloatArray,
    T: number,
    startPos: number,
    residIdx: Set<number>,
    hooks: ResidIntervention[],
    result: ForwardResult,
  ): void {
    if (residIdx.has(index)) result.resid.set(index, this.copy(x, T * this.config.dim));
    for (const h of hooks) {
      if (h.index !== index) continue;
      // Hand the hook exactly the T rows (scratch may be larger than T).
      h.fn(x.subarray(0, T * this.config.dim), T, startPos);
    }
  }

  private alloc(n: number): FloatArray {
    return this.dtype === 'f64' ? new Float64Array(n) : new Float32Array(n);
  }

  private copy(a: FloatArray, n: number): FloatArray {
    const out = this.alloc(n);
    out.set(a.subarray(0, n));
    return out;
  }

  private getScratch(T: number): Scratch {
    if (this.scratch && this.scratch.T >= T) return this.scratch;
    const { dim, hiddenDim } = this.config;
    this.scratch = {
      T,
      x: this.alloc(T * dim),
      xb: this.alloc(T * dim),
      q: this.alloc(T * dim),
      att: new Float64Array(this.capacity),
      hb: this.alloc(T * hiddenDim),
      hb2: this.alloc(T * hiddenDim),
    };
    return this.scratch;
  }
}

interface Scratch {
  /** Rows the buffers can hold. */
  T: number;
  /** [T, dim] residual stream */
  x: FloatArray;
  /** [T, dim] normed input / attention output / FFN output */
  xb: FloatArray;
  /** [T, dim] queries, then wo·o */
  q: FloatArray;
  /** [capacity] attention scores of one (row, head) */
  att: Float64Array;
  /** [T, hidden] gate, then silu(gate)·up */
  hb: FloatArray;
  /** [T, hidden] up projection */
  hb2: FloatArray;
}

function checkIndex(what: string, i: number, max: number): void {
  if (!Number.isInteger(i) || i < 0 || i > max) throw new Error(`${what} index ${i} is outside 0..${max}`);
}

/**
 * Greedy (temperature 0) generation as run.c `generate()`: feed the prompt, then
 * append argmax tokens; stop at BOS (id 1, the story separator), at `maxNewTokens`,
 * or when the KV cache is full. Resets the model's state first.
 * @returns prompt followed by the generated ids
 */
export function generateGreedy(
  model: Llama,
  prompt: ArrayLike<number>,
  maxNewTokens: number,
  bosId = 1,
): number[] {
  if (prompt.length === 0) throw new Error('generateGreedy needs at least one prompt token (usually BOS)');
  const V = model.config.vocabSize;
  const ids = Array.from(prompt);
  model.reset();
  let { logits } = model.forward(prompt, { logits: true });
  let last = prompt.length - 1;
  for (let n = 0; n < maxNewTokens; n++) {
    const next = argmaxRow(logits as FloatArray, last, V);
    if (next === bosId) break;
    ids.push(next);
    // Like run.c, the last token may come from the final cache position; only feed it back if there is room.
    if (n + 1 === maxNewTokens || model.pos >= model.capacity) break;
    ({ logits } = model.forward([next], { logits: true }));
    last = 0;
  }
  return ids;
}
