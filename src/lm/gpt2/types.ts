/**
 * GPT-2 (GPT2LMHeadModel) as the lab holds it: the config, the weights after loading, and the
 * forward request shared by the float64/float32 CPU twin (./forward.ts) and the WGSL forward
 * (./gpu-forward.ts).
 *
 * Per layer l (pre-LayerNorm transformer, as in Hugging Face's modeling_gpt2.py):
 *
 *   x = wte[token] + wpe[pos]                                  blocks.0.hook_resid_pre
 *   a = attn(ln_1(x));  x = x + a                              hook_attn_out, hook_resid_mid
 *   m = proj(gelu_tanh(fc(ln_2(x))));  x = x + m               hook_mlp_out, hook_resid_post
 *   logits = wte · ln_f(x)                                     (lm_head tied to wte)
 *
 * Matrices are held [out, in] (y = W·x, as the llama2.c path): Hugging Face's Conv1D stores
 * [in, out] and the loader transposes once.
 */

export interface Gpt2Config {
  nLayer: number;
  nHead: number;
  /** residual width d */
  nEmbd: number;
  /** learned positions (context limit) */
  nPositions: number;
  /** MLP width (n_inner, default 4·d) */
  nInner: number;
  vocabSize: number;
  layerNormEps: number;
  /** nEmbd / nHead */
  headSize: number;
}

/** Float32, row-major. L = nLayer, d = nEmbd, F = nInner, V = vocabSize, P = nPositions. */
export interface Gpt2Weights {
  /** [V, d] token embedding, also the unembedding (tied lm_head) */
  wte: Float32Array;
  /** [P, d] learned positions */
  wpe: Float32Array;
  /** [L, d] */
  ln1G: Float32Array;
  /** [L, d] */
  ln1B: Float32Array;
  /** [L, 3d, d] rows: q (d), k (d), v (d) */
  attnW: Float32Array;
  /** [L, 3d] */
  attnB: Float32Array;
  /** [L, d, d] */
  attnProjW: Float32Array;
  /** [L, d] */
  attnProjB: Float32Array;
  /** [L, d] */
  ln2G: Float32Array;
  /** [L, d] */
  ln2B: Float32Array;
  /** [L, F, d] */
  fcW: Float32Array;
  /** [L, F] */
  fcB: Float32Array;
  /** [L, d, F] */
  projW: Float32Array;
  /** [L, d] */
  projB: Float32Array;
  /** [d] */
  lnFG: Float32Array;
  /** [d] */
  lnFB: Float32Array;
}

export interface Gpt2Checkpoint {
  /** file or folder name, for messages */
  name: string;
  config: Gpt2Config;
  weights: Gpt2Weights;
}

/** TransformerLens hook points of a block (`blocks.L.hook_<kind>`). */
export type Gpt2SiteKind = 'resid_pre' | 'resid_mid' | 'resid_post' | 'attn_out' | 'mlp_out';

export interface Gpt2Site {
  kind: Gpt2SiteKind;
  /** block 0..nLayer−1 */
  layer: number;
}

export interface Gpt2ForwardRequest {
  /** sites whose activations [T, d] to return (the clean value, before any replacement there) */
  sites?: Gpt2Site[];
  /** return logits [T, V] (default true); when false, blocks past the deepest requested site are skipped */
  logits?: boolean;
  /**
   * Replace the activation at `site` by `data` [T, d] before it flows on (for attn_out / mlp_out:
   * before it is added to the residual). The SAE splice and zero-ablation hook.
   */
  replace?: { site: Gpt2Site; data: Float32Array };
}

export interface Gpt2ForwardResult {
  /** hook name (`blocks.L.hook_resid_pre`, …) → [T, d] */
  sites: Map<string, Float32Array | Float64Array>;
  /** [T, V] or null */
  logits: Float32Array | Float64Array | null;
}

/** `blocks.L.hook_<kind>` */
export function hookName(s: Gpt2Site): string {
  return `blocks.${s.layer}.hook_${s.kind}`;
}
