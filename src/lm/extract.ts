/**
 * Activation extraction: run a llama2.c model over a text and collect one
 * site's activations per token, as the SAE training dataset.
 *
 * The text is split into paragraphs (blank-line separated; TinyStories has no
 * story markers, so a paragraph is the natural unit), each paragraph is encoded
 * as run.c would (BOS, dummy-prefix space, BPE) and run from a fresh KV cache.
 * Paragraphs longer than the window are cut into windows of `window` tokens;
 * every window starts with BOS, so continuation windows are BOS + the next
 * window−1 tokens of the paragraph.
 *
 * Pure TS over strings and typed arrays (no fs), so it runs in node and in a
 * browser worker.
 */

import type { Llama } from './forward';
import { encode, type Tokenizer } from './tokenizer';

export type Site = 'resid' | 'mlp';

export interface ExtractProgress {
  /** Characters of the text consumed so far (whole paragraphs). */
  charsDone: number;
  charsTotal: number;
  /** Rows collected so far. */
  tokensDone: number;
  windowsDone: number;
}

export interface ExtractOptions {
  /**
   * site 'resid': residual index 0..nLayers (0 = token embedding into layer 0,
   * l+1 = after layer l). site 'mlp': layer 0..nLayers−1 (that layer's FFN output).
   */
  layer: number;
  /** Default 'resid'. */
  site?: Site;
  /** Tokens per window including the leading BOS; default (and maximum) the model's seq_len. */
  window?: number;
  /** Stop after this many rows. */
  maxTokens?: number;
  /**
   * Keep the BOS position's row. Default false: every window starts with BOS at
   * position 0, whose activation is identical for every window (it attends only
   * to itself) and has a much larger norm than the rest of the stream, so it would
   * be a heavily repeated outlier in an SAE dataset.
   */
  keepBos?: boolean;
  /** 'paragraph' (default): each blank-line separated paragraph from a fresh BOS. 'none': the whole text as one stream. */
  split?: 'paragraph' | 'none';
  /** Called after each window. */
  onProgress?: (p: ExtractProgress) => void;
  /** Checked between windows; aborting throws the signal's reason. */
  signal?: AbortSignal;
}

/** One window's rows. */
export interface ExtractChunk {
  /** [n, d] activations. */
  acts: Float32Array;
  /** [n] token id at each row (the token whose position produced the activation). */
  tokens: Int32Array;
  /** [n] position of each row inside its window (BOS = 0). */
  positions: Int32Array;
  progress: ExtractProgress;
}

export interface ExtractResult {
  /** [nTokens, d] row-major. */
  acts: Float32Array;
  /** [nTokens] */
  tokens: Int32Array;
  /** [nTokens] position in window; a row with a position ≤ the previous row's starts a new window. */
  positions: Int32Array;
  nTokens: number;
  d: number;
  windows: number;
}

/** Splits text into non-empty paragraphs (separated by lines that are empty or whitespace). */
export function splitParagraphs(text: string): { text: string; end: number }[] {
  const out: { text: string; end: number }[] = [];
  const re = /\r?\n[ \t]*\r?\n\s*/g;
  let start = 0;
  for (;;) {
    const m = re.exec(text);
    const stop = m ? m.index : text.length;
    const para = text.slice(start, stop).trim();
    const end = m ? m.index + m[0].length : text.length;
    if (para.length > 0) out.push({ text: para, end });
    if (!m) break;
    start = end;
  }
  return out;
}

/**
 * Streams activations window by window.
 * @yields one chunk per window (possibly empty when only BOS fell in it and keepBos is false)
 */
export function* extractWindows(
  model: Llama,
  tok: Tokenizer,
  text: string,
  opts: ExtractOptions,
): Generator<ExtractChunk> {
  const { nLayers, dim, vocabSize, seqLen } = model.config;
  const site = opts.site ?? 'resid';
  const layer = opts.layer;
  const maxLayer = site === 'resid' ? nLayers : nLayers - 1;
  if (!Number.isInteger(layer) || layer < 0 || layer > maxLayer) {
    throw new Error(`layer ${layer} is outside 0..${maxLayer} for site '${site}'`);
  }
  if (tok.vocabSize !== vocabSize) {
    throw new Error(`tokenizer has ${tok.vocabSize} tokens but the model expects ${vocabSize}`);
  }
  const window = opts.window ?? Math.min(seqLen, model.capacity);
  if (!Number.isInteger(window) || window < 2 || window > model.capacity) {
    throw new Error(`window ${window} must be an integer in 2..${model.capacity}`);
  }
  const maxTokens = opts.maxTokens ?? Number.POSITIVE_INFINITY;
  const skip = opts.keepBos ? 0 : 1;
  const request = site === 'resid' ? { resid: [layer], logits: false } : { mlp: [layer], logits: false };
  const paragraphs = opts.split === 'none' ? [{ text, end: text.length }] : splitParagraphs(text);
  const progress: ExtractProgress = { charsDone: 0, charsTotal: text.length, tokensDone: 0, windowsDone: 0 };

  for (const para of paragraphs) {
    const ids = encode(tok, para.text, { bos: true });
    // Windows: ids[0:W], then BOS + ids[W + (k−1)(W−1) : …] (each continuation adds W−1 new tokens).
    for (let start = 1; start < ids.length; ) {
      if (progress.tokensDone >= maxTokens) return;
      if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
      const n = Math.min(window - 1, ids.length - start);
      const win = new Int32Array(n + 1);
      win[0] = tok.bosId;
      win.set(ids.subarray(start, start + n), 1);
      start += n;

      const out = model.run(win, request);
      const a = (site === 'resid' ? out.resid.get(layer) : out.mlp.get(layer)) as Float32Array | Float64Array;
      const rows = Math.min(win.length - skip, maxTokens - progress.tokensDone);
      const acts = new Float32Array(rows * dim);
      // Float64 models are narrowed here; the dataset is always float32.
      acts.set(a.subarray(skip * dim, (skip + rows) * dim));
      const tokens = win.slice(skip, skip + rows);
      const positions = new Int32Array(rows);
      for (let r = 0; r < rows; r++) positions[r] = skip + r;
      progress.tokensDone += rows;
      progress.windowsDone++;
      if (start >= ids.length) progress.charsDone = para.end;
      opts.onProgress?.({ ...progress });
      yield { acts, tokens, positions, progress: { ...progress } };
    }
    progress.charsDone = para.end;
  }
}

/**
 * Collects all windows into contiguous arrays.
 * @returns acts [nTokens, d], tokens [nTokens], positions [nTokens]
 */
export function extractActivations(
  model: Llama,
  tok: Tokenizer,
  text: string,
  opts: ExtractOptions,
): ExtractResult {
  const d = model.config.dim;
  let cap = Math.max(1024, Math.min(opts.maxTokens ?? 1 << 16, 1 << 20));
  let acts = new Float32Array(cap * d);
  let tokens = new Int32Array(cap);
  let positions = new Int32Array(cap);
  let n = 0;
  let windows = 0;
  for (const c of extractWindows(model, tok, text, opts)) {
    const rows = c.tokens.length;
    if (n + rows > cap) {
      // Grow geometrically so the total copying stays linear.
      while (n + rows > cap) cap *= 2;
      const a2 = new Float32Array(cap * d);
      a2.set(acts.subarray(0, n * d));
      acts = a2;
      const t2 = new Int32Array(cap);
      t2.set(tokens.subarray(0, n));
      tokens = t2;
      const p2 = new Int32Array(cap);
      p2.set(positions.subarray(0, n));
      positions = p2;
    }
    acts.set(c.acts, n * d);
    tokens.set(c.tokens, n);
    positions.set(c.positions, n);
    n += rows;
    windows++;
  }
  return {
    acts: acts.slice(0, n * d),
    tokens: tokens.slice(0, n),
    positions: positions.slice(0, n),
    nTokens: n,
    d,
    windows,
  };
}
