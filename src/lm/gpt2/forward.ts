/**
 * CPU forward pass of GPT-2 (GPT2LMHeadModel), the twin of the WGSL forward (./gpu-forward.ts) and
 * of the float64 numpy forward in scripts/fixtures/gpt2_fixture.py. One call is one window of T
 * tokens from position 0 (no KV cache: extraction and the downstream measures never continue a
 * window). Per block l, in TransformerLens's hook terms:
 *
 *   x = wte[tok] + wpe[pos]                                          resid_pre (block 0)
 *   qkv = attnW·LN₁(x) + attnB;  per head: softmax(q·kᵀ/√hs, causal)·v = z
 *   a = attnProjW·z + attnProjB                                      attn_out
 *   x = x + a                                                        resid_mid
 *   m = projW·gelu_tanh(fcW·LN₂(x) + fcB) + projB                    mlp_out
 *   x = x + m                                                        resid_post (= resid_pre of l+1)
 *   logits = wte·LN_f(x)
 *
 * LN(x) = (x − mean)/√(var + eps)·g + b with the biased variance (torch.nn.LayerNorm);
 * gelu_tanh(x) = ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (HF's gelu_new).
 *
 * Precision as the llama2.c twin (../forward.ts): weights float32; activations held in Float32Array
 * ('f32', what WGSL does) or Float64Array ('f64', the reference); every sum is a JS double.
 */

import type { Dtype, FloatArray } from '../forward.ts';
import { matmul } from '../ops.ts';
import { parseGpt2Site } from './sites.ts';
import {
  type Gpt2Checkpoint,
  type Gpt2Config,
  type Gpt2ForwardRequest,
  type Gpt2ForwardResult,
  type Gpt2Site,
  type Gpt2SiteKind,
  type Gpt2Weights,
  hookName,
} from './types.ts';

/** Order of the sites inside a block: a site's depth is layer·5 + this. */
const KIND_ORDER: Record<Gpt2SiteKind, number> = {
  resid_pre: 0,
  attn_out: 1,
  resid_mid: 2,
  mlp_out: 3,
  resid_post: 4,
};

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** ½x(1 + tanh(√(2/π)(x + 0.044715x³))), GELU's tanh form (GPT-2's gelu_new). */
function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
}

/**
 * out[t] = (x[t] − mean)/√(var + eps) ⊙ g + b over rows of width n (biased variance, two passes).
 * g, b are read at gOff.
 */
function layerNorm(
  out: FloatArray,
  x: FloatArray,
  g: Float32Array,
  b: Float32Array,
  gOff: number,
  T: number,
  n: number,
  eps: number,
): void {
  for (let t = 0; t < T; t++) {
    const o = t * n;
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[o + i];
    mean /= n;
    let v = 0;
    for (let i = 0; i < n; i++) {
      const c = x[o + i] - mean;
      v += c * c;
    }
    const inv = 1 / Math.sqrt(v / n + eps);
    for (let i = 0; i < n; i++) out[o + i] = (x[o + i] - mean) * inv * g[gOff + i] + b[gOff + i];
  }
}

/**
 * Y[T, nOut] = X[T, nIn]·Wᵀ (W [nOut, nIn] at wOff), as ../forward.ts's matmul and bit-identical to
 * it (each entry is the same left-to-right dot product), but in 4 × 4 blocks of rows and outputs:
 * each weight loaded serves four rows, which halves the time of a whole window at GPT-2 width.
 */
// biome-ignore format: the 16 accumulators read best as a 4 × 4 grid
function matmulRows(
  out: FloatArray,
  x: FloatArray,
  W: Float32Array,
  wOff: number,
  T: number,
  nIn: number,
  nOut: number,
): void {
  const T4 = T - (T % 4);
  const O4 = nOut - (nOut % 4);
  for (let t = 0; t < T4; t += 4) {
    const x0 = t * nIn;
    const x1 = x0 + nIn;
    const x2 = x1 + nIn;
    const x3 = x2 + nIn;
    const y0 = t * nOut;
    const y1 = y0 + nOut;
    const y2 = y1 + nOut;
    const y3 = y2 + nOut;
    for (let o = 0; o < O4; o += 4) {
      const r0 = wOff + o * nIn;
      const r1 = r0 + nIn;
      const r2 = r1 + nIn;
      const r3 = r2 + nIn;
      let a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
      let a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
      for (let i = 0; i < nIn; i++) {
        const w0 = W[r0 + i];
        const w1 = W[r1 + i];
        const w2 = W[r2 + i];
        const w3 = W[r3 + i];
        const v0 = x[x0 + i];
        const v1 = x[x1 + i];
        const v2 = x[x2 + i];
        const v3 = x[x3 + i];
        a00 += v0 * w0; a01 += v0 * w1; a02 += v0 * w2; a03 += v0 * w3;
        a10 += v1 * w0; a11 += v1 * w1; a12 += v1 * w2; a13 += v1 * w3;
        a20 += v2 * w0; a21 += v2 * w1; a22 += v2 * w2; a23 += v2 * w3;
        a30 += v3 * w0; a31 += v3 * w1; a32 += v3 * w2; a33 += v3 * w3;
      }
      out[y0 + o] = a00; out[y0 + o + 1] = a01; out[y0 + o + 2] = a02; out[y0 + o + 3] = a03;
      out[y1 + o] = a10; out[y1 + o + 1] = a11; out[y1 + o + 2] = a12; out[y1 + o + 3] = a13;
      out[y2 + o] = a20; out[y2 + o + 1] = a21; out[y2 + o + 2] = a22; out[y2 + o + 3] = a23;
      out[y3 + o] = a30; out[y3 + o + 1] = a31; out[y3 + o + 2] = a32; out[y3 + o + 3] = a33;
    }
    for (let o = O4; o < nOut; o++) {
      const r = wOff + o * nIn;
      for (let k = 0; k < 4; k++) {
        const xo = x0 + k * nIn;
        let acc = 0;
        for (let i = 0; i < nIn; i++) acc += x[xo + i] * W[r + i];
        out[y0 + k * nOut + o] = acc;
      }
    }
  }
  if (T4 < T) matmul(out, T4 * nOut, x.subarray(T4 * nIn), W, wOff, T - T4, nIn, nOut);
}

/** y[t, o] += bias[bOff + o] over T rows of width n. */
function addBias(y: FloatArray, bias: Float32Array, bOff: number, T: number, n: number): void {
  for (let t = 0; t < T; t++) for (let o = 0; o < n; o++) y[t * n + o] += bias[bOff + o];
}

export interface Gpt2Options {
  dtype?: Dtype;
}

/** A GPT-2 model on the CPU. Stateless between calls except for reused scratch. */
export class Gpt2 {
  readonly config: Gpt2Config;
  readonly weights: Gpt2Weights;
  readonly dtype: Dtype;
  /** Most tokens per window (n_positions). */
  readonly capacity: number;
  private scratch: Scratch | null = null;

  constructor(ckpt: Gpt2Checkpoint, opts: Gpt2Options = {}) {
    this.config = ckpt.config;
    this.weights = ckpt.weights;
    this.dtype = opts.dtype ?? 'f32';
    this.capacity = ckpt.config.nPositions;
  }

  /**
   * One window from position 0.
   * @param tokens [T] ids, 1 ≤ T ≤ n_positions
   * @returns the requested sites [T, d] (clean values, fresh arrays) and logits [T, V]
   */
  run(tokens: ArrayLike<number>, req: Gpt2ForwardRequest = {}): Gpt2ForwardResult {
    const { nLayer, nHead, nEmbd: d, nInner: F, vocabSize: V, headSize: hs, layerNormEps: eps } = this.config;
    const w = this.weights;
    const T = tokens.length;
    if (T < 1 || T > this.capacity) throw new Error(`window of ${T} tokens: must be 1..${this.capacity}`);
    for (let t = 0; t < T; t++) {
      if (!(Number.isInteger(tokens[t]) && tokens[t] >= 0 && tokens[t] < V))
        throw new Error(`token id ${tokens[t]} at ${t} is outside 0..${V - 1}`);
    }
    const wanted = new Set<string>();
    let deepest = -1;
    for (const s of req.sites ?? []) {
      this.checkSite(s);
      wanted.add(hookName(s));
      deepest = Math.max(deepest, depth(s));
    }
    const rep = req.replace;
    if (rep) {
      this.checkSite(rep.site);
      if (rep.data.length !== T * d)
        throw new Error(
          `replacement for ${hookName(rep.site)} has ${rep.data.length} values, expected T·d = ${T * d}`,
        );
    }
    const wantLogits = req.logits ?? true;
    // Nothing past `last` is read when logits are off.
    const last = wantLogits ? Number.POSITIVE_INFINITY : deepest;
    const repName = rep ? hookName(rep.site) : '';
    const result: Gpt2ForwardResult = { sites: new Map(), logits: null };
    /** Records the clean value at a site, then applies the replacement there. False: stop here. */
    const visit = (layer: number, kind: Gpt2SiteKind, a: FloatArray): boolean => {
      const name = `blocks.${layer}.hook_${kind}`;
      if (wanted.has(name)) result.sites.set(name, this.copy(a, T * d));
      if (name === repName) a.set((rep as NonNullable<typeof rep>).data.subarray(0, T * d));
      return layer * 5 + KIND_ORDER[kind] < last;
    };

    const s = this.getScratch(T);
    const { x, h, qkv, z, y, hid, att } = s;
    for (let t = 0; t < T; t++) {
      const e = tokens[t] * d;
      const p = t * d;
      for (let i = 0; i < d; i++) x[t * d + i] = w.wte[e + i] + w.wpe[p + i];
    }
    const scale = 1 / Math.sqrt(hs);
    for (let l = 0; l < nLayer; l++) {
      if (!visit(l, 'resid_pre', x)) return result;
      // ---- attention ----
      layerNorm(h, x, w.ln1G, w.ln1B, l * d, T, d, eps);
      matmulRows(qkv, h, w.attnW, l * 3 * d * d, T, d, 3 * d);
      addBias(qkv, w.attnB, l * 3 * d, T, 3 * d);
      for (let t = 0; t < T; t++) {
        for (let hd = 0; hd < nHead; hd++) {
          const qOff = t * 3 * d + hd * hs;
          let max = Number.NEGATIVE_INFINITY;
          for (let u = 0; u <= t; u++) {
            const kOff = u * 3 * d + d + hd * hs;
            let dot = 0;
            for (let i = 0; i < hs; i++) dot += qkv[qOff + i] * qkv[kOff + i];
            att[u] = dot * scale;
            if (att[u] > max) max = att[u];
          }
          let sum = 0;
          for (let u = 0; u <= t; u++) {
            att[u] = Math.exp(att[u] - max);
            sum += att[u];
          }
          const zOff = t * d + hd * hs;
          for (let i = 0; i < hs; i++) {
            let acc = 0;
            for (let u = 0; u <= t; u++) acc += att[u] * qkv[u * 3 * d + 2 * d + hd * hs + i];
            z[zOff + i] = acc / sum;
          }
        }
      }
      matmulRows(y, z, w.attnProjW, l * d * d, T, d, d);
      addBias(y, w.attnProjB, l * d, T, d);
      if (!visit(l, 'attn_out', y)) return result;
      for (let i = 0; i < T * d; i++) x[i] += y[i];
      if (!visit(l, 'resid_mid', x)) return result;
      // ---- MLP ----
      layerNorm(h, x, w.ln2G, w.ln2B, l * d, T, d, eps);
      matmulRows(hid, h, w.fcW, l * F * d, T, d, F);
      addBias(hid, w.fcB, l * F, T, F);
      for (let i = 0; i < T * F; i++) hid[i] = geluTanh(hid[i]);
      matmulRows(y, hid, w.projW, l * d * F, T, F, d);
      addBias(y, w.projB, l * d, T, d);
      if (!visit(l, 'mlp_out', y)) return result;
      for (let i = 0; i < T * d; i++) x[i] += y[i];
      if (!visit(l, 'resid_post', x)) return result;
    }
    if (wantLogits) {
      layerNorm(h, x, w.lnFG, w.lnFB, 0, T, d, eps);
      const logits = this.alloc(T * V);
      matmulRows(logits, h, w.wte, 0, T, d, V);
      result.logits = logits;
    }
    return result;
  }

  private checkSite(s: Gpt2Site): void {
    // Goes through the parser so a hand-built site gets the same message as a typed name.
    parseGpt2Site(hookName(s), this.config.nLayer);
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
    const { nEmbd: d, nInner: F } = this.config;
    this.scratch = {
      T,
      x: this.alloc(T * d),
      h: this.alloc(T * d),
      qkv: this.alloc(T * 3 * d),
      z: this.alloc(T * d),
      y: this.alloc(T * d),
      hid: this.alloc(T * F),
      att: new Float64Array(this.capacity),
    };
    return this.scratch;
  }
}

function depth(s: Gpt2Site): number {
  return s.layer * 5 + KIND_ORDER[s.kind];
}

interface Scratch {
  /** rows the buffers hold */
  T: number;
  /** [T, d] residual stream */
  x: FloatArray;
  /** [T, d] LayerNorm output */
  h: FloatArray;
  /** [T, 3d] q | k | v */
  qkv: FloatArray;
  /** [T, d] heads' outputs */
  z: FloatArray;
  /** [T, d] attn_out, then mlp_out */
  y: FloatArray;
  /** [T, F] MLP hidden */
  hid: FloatArray;
  /** [n_positions] one row's attention weights */
  att: Float64Array;
}
