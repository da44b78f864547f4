/**
 * Activation extraction: run a language model (llama2.c or GPT-2) over a text and collect one
 * site's activations per token, as the SAE training dataset.
 *
 * The text is split into paragraphs (blank-line separated; TinyStories has no
 * story markers, so a paragraph is the natural unit), each paragraph is encoded
 * (llama2.c: as run.c would, BOS, dummy-prefix space, BPE; GPT-2: byte-level BPE
 * after `<|endoftext|>`) and run from a fresh KV cache.
 * Paragraphs longer than the window are cut into windows of `window` tokens;
 * every window starts with the opening token (BOS / `<|endoftext|>`), so
 * continuation windows are that token + the next window−1 tokens of the paragraph.
 *
 * Pure TS over strings and typed arrays (no fs), so it runs in node and in a
 * browser worker.
 */

import type { FloatArray, Llama } from './forward';
import type { Gpt2 } from './gpt2/forward';
import type { GpuGpt2 } from './gpt2/gpu-forward';
import type { Gpt2Tokenizer } from './gpt2/tokenizer';
import type { Gpt2Site } from './gpt2/types';
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
 * What extraction and the downstream measures need of a model, whatever its family (a LlamaConfig
 * is one; a GPT-2 config maps onto it in gpt2Dims).
 */
export interface LmDims {
  /** residual width d */
  dim: number;
  nLayers: number;
  vocabSize: number;
  /** context length the model was trained with (llama2.c seq_len, GPT-2 n_positions) */
  seqLen: number;
}

/**
 * One forward pass over a window that returns a site's activations [T, dim]: the CPU {@link Llama}
 * ({@link llamaSiteReader}) or the WGSL GpuLlama (src/lm/gpu-forward.ts, in the worker).
 */
export interface SiteReader {
  readonly config: LmDims;
  /** Most tokens per window. */
  readonly capacity: number;
  read(win: Int32Array, site: Site, layer: number): FloatArray | Promise<FloatArray>;
}

/** A reader bound to one site: one forward per window, [T, dim] back. */
interface WindowReader {
  readonly config: LmDims;
  readonly capacity: number;
  read(win: Int32Array): FloatArray | Promise<FloatArray>;
}

/** A GPT-2 config in family-neutral terms. */
function gpt2Dims(m: Gpt2 | GpuGpt2): LmDims {
  const c = m.config;
  return { dim: c.nEmbd, nLayers: c.nLayer, vocabSize: c.vocabSize, seqLen: c.nPositions };
}

/** The CPU GPT-2 twin (synchronous) or the WGSL GpuGpt2 (async) read at one site (blocks past it are skipped). */
function gpt2WindowReader(model: Gpt2 | GpuGpt2, site: Gpt2Site): WindowReader {
  return {
    config: gpt2Dims(model),
    capacity: model.capacity,
    read(win) {
      const req = { sites: [site], logits: false };
      if ('forward' in model)
        return model.forward(win, req).then((out) => out.sites.values().next().value as FloatArray);
      return model.run(win, req).sites.values().next().value as FloatArray;
    },
  };
}

/** The CPU model as a SiteReader (synchronous). */
export function llamaSiteReader(model: Llama): SiteReader {
  return {
    config: model.config,
    capacity: model.capacity,
    read(win, site, layer) {
      const request = site === 'resid' ? { resid: [layer], logits: false } : { mlp: [layer], logits: false };
      const out = model.run(win, request);
      return (site === 'resid' ? out.resid.get(layer) : out.mlp.get(layer)) as FloatArray;
    },
  };
}

interface PlannedWindow {
  win: Int32Array;
  /** text offset after this window's paragraph when it is the paragraph's last window, else −1 */
  paraEnd: number;
}

/** The llama2.c site and layer of the options, checked against the model. */
function llamaSite(config: LmDims, opts: ExtractOptions): { site: Site; layer: number } {
  const site = opts.site ?? 'resid';
  const layer = opts.layer;
  const maxLayer = site === 'resid' ? config.nLayers : config.nLayers - 1;
  if (!Number.isInteger(layer) || layer < 0 || layer > maxLayer) {
    throw new Error(`layer ${layer} is outside 0..${maxLayer} for site '${site}'`);
  }
  return { site, layer };
}

/** A tokenizer of either family: its size, the token that opens a window, and a paragraph's ids after it. */
type AnyTokenizer = Tokenizer | Gpt2Tokenizer;

/** ids of a paragraph with the window-opening token first, and that token. */
function paragraphIds(tok: AnyTokenizer, text: string): { ids: Int32Array; open: number } {
  if ('eotId' in tok) {
    // GPT-2 has no BOS: <|endoftext|> separates documents in its training data, so it opens a window.
    const body = tok.encode(text);
    const ids = new Int32Array(body.length + 1);
    ids[0] = tok.eotId;
    ids.set(body, 1);
    return { ids, open: tok.eotId };
  }
  return { ids: encode(tok, text, { bos: true }), open: tok.bosId };
}

/** Checks the options and plans the windows (the same for every reader and site). */
function planWindows(
  config: LmDims,
  capacity: number,
  tok: AnyTokenizer,
  text: string,
  opts: Omit<ExtractOptions, 'layer' | 'site'>,
): { windows: Generator<PlannedWindow>; window: number } {
  const { vocabSize, seqLen } = config;
  if (tok.vocabSize !== vocabSize) {
    throw new Error(`tokenizer has ${tok.vocabSize} tokens but the model expects ${vocabSize}`);
  }
  const window = opts.window ?? Math.min(seqLen, capacity);
  if (!Number.isInteger(window) || window < 2 || window > capacity) {
    throw new Error(`window ${window} must be an integer in 2..${capacity}`);
  }
  const paragraphs = opts.split === 'none' ? [{ text, end: text.length }] : splitParagraphs(text);
  function* windows(): Generator<PlannedWindow> {
    for (const para of paragraphs) {
      const { ids, open } = paragraphIds(tok, para.text);
      // Windows: ids[0:W], then open + ids[W + (k−1)(W−1) : …] (each continuation adds W−1 new tokens).
      for (let start = 1; start < ids.length; ) {
        const n = Math.min(window - 1, ids.length - start);
        const win = new Int32Array(n + 1);
        win[0] = open;
        win.set(ids.subarray(start, start + n), 1);
        start += n;
        yield { win, paraEnd: start >= ids.length ? para.end : -1 };
      }
    }
  }
  return { windows: windows(), window };
}

/** The options past the site: the same for every model family. */
type WindowOptions = Omit<ExtractOptions, 'layer' | 'site'>;

/**
 * What the sync and async window loops share: the planned windows, and per window whether to go on
 * (maxTokens not reached; throws once aborted) and its chunk from the forward's activations.
 */
function windowWalk(reader: WindowReader, tok: AnyTokenizer, text: string, opts: WindowOptions) {
  const plan = planWindows(reader.config, reader.capacity, tok, text, opts);
  const maxTokens = opts.maxTokens ?? Number.POSITIVE_INFINITY;
  const dim = reader.config.dim;
  const skip = opts.keepBos ? 0 : 1;
  const progress: ExtractProgress = { charsDone: 0, charsTotal: text.length, tokensDone: 0, windowsDone: 0 };
  const checkAbort = () => {
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
  };
  return {
    windows: plan.windows,
    more(): boolean {
      if (progress.tokensDone >= maxTokens) return false;
      checkAbort();
      return true;
    },
    /** The rows of `a` [T, dim], the window's activations (BOS row dropped unless keepBos), as float32. */
    take(a: FloatArray, w: PlannedWindow): ExtractChunk {
      checkAbort();
      const rows = Math.min(w.win.length - skip, maxTokens - progress.tokensDone);
      const acts = new Float32Array(rows * dim);
      // Float64 models are narrowed here; the dataset is always float32.
      acts.set(a.subarray(skip * dim, (skip + rows) * dim));
      const tokens = w.win.slice(skip, skip + rows);
      const positions = new Int32Array(rows);
      for (let r = 0; r < rows; r++) positions[r] = skip + r;
      progress.tokensDone += rows;
      progress.windowsDone++;
      if (w.paraEnd >= 0) progress.charsDone = w.paraEnd;
      opts.onProgress?.({ ...progress });
      return { acts, tokens, positions, progress: { ...progress } };
    },
  };
}

/** The window loop over a synchronous reader (the CPU forwards). */
function* windowLoop(
  reader: WindowReader,
  tok: AnyTokenizer,
  text: string,
  opts: WindowOptions,
): Generator<ExtractChunk> {
  const walk = windowWalk(reader, tok, text, opts);
  for (const w of walk.windows) {
    if (!walk.more()) return;
    yield walk.take(reader.read(w.win) as FloatArray, w); // the CPU readers are synchronous
  }
}

/** {@link windowLoop} with one awaited forward per window (e.g. the WGSL forward pass). */
async function* windowLoopAsync(
  reader: WindowReader,
  tok: AnyTokenizer,
  text: string,
  opts: WindowOptions,
): AsyncGenerator<ExtractChunk> {
  const walk = windowWalk(reader, tok, text, opts);
  for (const w of walk.windows) {
    if (!walk.more()) return;
    yield walk.take(await reader.read(w.win), w);
  }
}

/** A llama2.c SiteReader bound to the options' site and layer (checked first). */
function bindSite(reader: SiteReader, opts: ExtractOptions): WindowReader {
  const { site, layer } = llamaSite(reader.config, opts);
  return { config: reader.config, capacity: reader.capacity, read: (win) => reader.read(win, site, layer) };
}

/**
 * Streams activations of a llama2.c model window by window.
 * @yields one chunk per window (possibly empty when only BOS fell in it and keepBos is false)
 */
export function* extractWindows(
  model: Llama,
  tok: Tokenizer,
  text: string,
  opts: ExtractOptions,
): Generator<ExtractChunk> {
  yield* windowLoop(bindSite(llamaSiteReader(model), opts), tok, text, opts);
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
  const c = new ChunkCollector(model.config.dim, opts.maxTokens);
  for (const chunk of extractWindows(model, tok, text, opts)) c.add(chunk);
  return c.result();
}

/** {@link extractActivations} over any llama2.c {@link SiteReader} (async: the GPU forward). */
export async function extractActivationsAsync(
  reader: SiteReader,
  tok: Tokenizer,
  text: string,
  opts: ExtractOptions,
): Promise<ExtractResult> {
  const c = new ChunkCollector(reader.config.dim, opts.maxTokens);
  for await (const chunk of extractWindowsAsync(reader, tok, text, opts)) c.add(chunk);
  return c.result();
}

/**
 * The windows of {@link extractActivationsAsync} as a stream, one awaited forward per window, for a
 * caller that writes each chunk out as it comes (the page's extractor).
 * @yields one chunk per window (rows [n, d], their token ids and positions, progress)
 */
export function extractWindowsAsync(
  reader: SiteReader,
  tok: Tokenizer,
  text: string,
  opts: ExtractOptions,
): AsyncGenerator<ExtractChunk> {
  return windowLoopAsync(bindSite(reader, opts), tok, text, opts);
}

/**
 * {@link extractActivations} for GPT-2 on the CPU twin: windows open with `<|endoftext|>` and read
 * `site` (blocks past it are skipped).
 * @returns acts [nTokens, d], tokens [nTokens], positions [nTokens]
 */
export function extractGpt2Activations(
  model: Gpt2,
  tok: Gpt2Tokenizer,
  text: string,
  site: Gpt2Site,
  opts: WindowOptions,
): ExtractResult {
  const c = new ChunkCollector(model.config.nEmbd, opts.maxTokens);
  for (const chunk of windowLoop(gpt2WindowReader(model, site), tok, text, opts)) c.add(chunk);
  return c.result();
}

/**
 * The windows of {@link extractGpt2Activations} as a stream, one awaited forward per window: on the
 * WGSL GpuGpt2 (or the CPU twin), for a caller that writes each chunk out as it comes.
 * @yields one chunk per window (rows [n, d], their token ids and positions, progress)
 */
export function extractGpt2WindowsAsync(
  model: Gpt2 | GpuGpt2,
  tok: Gpt2Tokenizer,
  text: string,
  site: Gpt2Site,
  opts: WindowOptions,
): AsyncGenerator<ExtractChunk> {
  return windowLoopAsync(gpt2WindowReader(model, site), tok, text, opts);
}

/** Appends chunks into contiguous arrays that grow geometrically (total copying stays linear). */
class ChunkCollector {
  private cap: number;
  private acts: Float32Array;
  private tokens: Int32Array;
  private positions: Int32Array;
  private n = 0;
  private windows = 0;

  constructor(
    private readonly d: number,
    maxTokens?: number,
  ) {
    this.cap = Math.max(1024, Math.min(maxTokens ?? 1 << 16, 1 << 20));
    this.acts = new Float32Array(this.cap * d);
    this.tokens = new Int32Array(this.cap);
    this.positions = new Int32Array(this.cap);
  }

  add(c: ExtractChunk) {
    const { d, n } = this;
    const rows = c.tokens.length;
    if (n + rows > this.cap) {
      while (n + rows > this.cap) this.cap *= 2;
      const a2 = new Float32Array(this.cap * d);
      a2.set(this.acts.subarray(0, n * d));
      this.acts = a2;
      const t2 = new Int32Array(this.cap);
      t2.set(this.tokens.subarray(0, n));
      this.tokens = t2;
      const p2 = new Int32Array(this.cap);
      p2.set(this.positions.subarray(0, n));
      this.positions = p2;
    }
    this.acts.set(c.acts, n * d);
    this.tokens.set(c.tokens, n);
    this.positions.set(c.positions, n);
    this.n += rows;
    this.windows++;
  }

  result(): ExtractResult {
    const { d, n } = this;
    return {
      acts: this.acts.slice(0, n * d),
      tokens: this.tokens.slice(0, n),
      positions: this.positions.slice(0, n),
      nTokens: n,
      d,
      windows: this.windows,
    };
  }
}
