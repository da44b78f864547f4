/**
 * The page's activation extractor ('extract-lm'): runs a llama2.c model (bundled or dropped) over a
 * text in the worker with src/lm/extract.ts, on the WGSL forward (GpuLlama) when a device is
 * available and the CPU forward otherwise, and opens the rows as the current dataset with token ids,
 * positions and the tokenizer's vocabulary (so the latent browser shows real contexts).
 *
 * The rows stream to .npy files in the Origin Private File System as windows finish (./lm-cache.ts:
 * sae-lab-lm-cache/<key>/, key the SHA-256 of the checkpoint, tokenizer and text bytes and the
 * settings: layer, site, window, max tokens, stored dtype) and the dataset opens from those files: no
 * whole-dataset buffer. A second extraction with the same inputs opens them and runs no forward pass.
 */
import { DataError } from '../data/errors';
import { openActivationFile } from '../data/open';
import { openTokenIds } from '../data/sidecars';
import { type LlamaCheckpoint, readCheckpoint } from '../lm/checkpoint';
import { type ExtractChunk, extractWindowsAsync, llamaSiteReader, type SiteReader } from '../lm/extract';
import { Llama } from '../lm/forward';
import { GpuLlama, llamaGpuFit } from '../lm/gpu-forward';
import { readTokenizer } from '../lm/tokenizer';
import { datasetFromSource, type OpenedDataset } from './datasets';
import { yieldToEvents } from './eval-extras';
import { CACHE_VERSION, extractToFiles, readCache } from './lm-cache';
import type { LlamaLmContext, LmContext } from './lm-context';
import type { ExtractLmProgress, LlamaExtractRequest, LmFileSpec, LmProvenance } from './protocol';

const DEFAULT_MAX_TOKENS = 20_000;

export interface ExtractedDataset {
  dataset: OpenedDataset;
  lm: LmProvenance;
  context: LmContext;
}

/** Reads a bundled (fetched from baseUrl) or dropped file. */
export async function loadFile(
  spec: LmFileSpec,
  baseUrl: string | undefined,
): Promise<{ bytes: Uint8Array; name: string }> {
  if (spec.kind === 'file') {
    if (spec.blob.size === 0) throw new DataError(spec.name, 'file is empty (0 bytes)');
    return { bytes: new Uint8Array(await spec.blob.arrayBuffer()), name: spec.name };
  }
  const name = spec.path.split('/').pop() ?? spec.path;
  const url = new URL(spec.path, baseUrl ?? self.location.href).href;
  const res = await fetch(url);
  if (!res.ok) throw new DataError(name, `could not load the bundled file ${spec.path} (HTTP ${res.status})`);
  return { bytes: new Uint8Array(await res.arrayBuffer()), name };
}

export async function sha256Hex(parts: (Uint8Array | string)[]): Promise<string> {
  const enc = new TextEncoder();
  const inner: Uint8Array[] = [];
  for (const p of parts) {
    const b = typeof p === 'string' ? enc.encode(p) : p;
    inner.push(new Uint8Array(await crypto.subtle.digest('SHA-256', b as Uint8Array<ArrayBuffer>)));
  }
  const all = new Uint8Array(inner.length * 32);
  inner.forEach((h, i) => {
    all.set(h, i * 32);
  });
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', all));
  return Array.from(h, (b) => b.toString(16).padStart(2, '0')).join('');
}

// ---- parsed models and their GPU twins, kept while the worker lives ----

const parsed = new Map<string, LlamaCheckpoint>();
const onGpu = new WeakMap<LlamaCheckpoint, { device: GPUDevice; model: GpuLlama }>();

/** The WGSL model of `ckpt` on `device` (uploaded once per device; capacity seq_len). */
export function gpuLlamaFor(device: GPUDevice, ckpt: LlamaCheckpoint): GpuLlama {
  const have = onGpu.get(ckpt);
  if (have && have.device === device) return have.model;
  have?.model.destroy();
  const model = GpuLlama.create(device, ckpt);
  onGpu.set(ckpt, { device, model });
  return model;
}

// ---- extraction ----

/**
 * What a model family's extractor settles before the part both families share: the cache key, the
 * provenance, how the rows are named and described, and how to start its forward passes.
 */
export interface ExtractionJob {
  /** the OPFS cache key (model, tokenizer, text and settings) */
  key: string;
  /** the provenance less what this extraction measures */
  prov: Omit<LmProvenance, 'tokens' | 'windows' | 'source' | 'seconds'>;
  /** the opened files' name stem, e.g. stories260K_L2_resid */
  stem: string;
  /** the input files' names, as the dataset lists them */
  files: string[];
  vocab: string[];
  describe: (lm: LmProvenance) => string;
  /** the LM context kept for the downstream measures and the latent browser */
  context: (positions: Int32Array, charsUsed: number) => LmContext;
  text: string;
  textName: string;
  /** model width: floats per row */
  d: number;
  dtype: 'f32' | 'f16';
  maxTokens: number;
  window: number;
  noCache?: boolean;
  /** the request's forward: 'cpu', 'gpu' (an error without a device) or either ('auto', undefined) */
  backend?: 'auto' | 'gpu' | 'cpu';
  getDevice: () => Promise<GPUDevice | null>;
  /** the first reason the model cannot run on a device with `limits`, or null (llamaGpuFit, gpt2GpuFit) */
  fit: (limits: GPUSupportedLimits) => string | null;
  /** the model's name in a misfit's message under backend 'gpu' */
  modelName: string;
  /**
   * Starts the forward passes after a cache miss: on `device` when there is one and the model fits
   * it, else (null) the CPU forward. The windows' rows as they finish.
   */
  forward: (device: GPUDevice | null) => AsyncIterable<ExtractChunk>;
}

/**
 * The part of an extraction both families share: the cache, else the forward passes streamed to
 * .npy files (progress at most every 100 ms, the CPU forwards yielding between windows), then the
 * files opened as the dataset.
 * @param t0 when the request arrived (performance.now()), for `lm.seconds`
 */
export async function runExtraction(
  job: ExtractionJob,
  t0: number,
  onProgress: (p: ExtractLmProgress) => void,
): Promise<ExtractedDataset> {
  const seconds = () => (performance.now() - t0) / 1000;
  const open = async (
    acts: Blob,
    tokens: Blob,
    positions: Int32Array,
    lm: LmProvenance,
    charsUsed: number,
  ): Promise<ExtractedDataset> => {
    const source = await openActivationFile(acts, `${job.stem}.npy`);
    const tokenIds = await openTokenIds(tokens, `${job.stem}.tokens.npy`, source.rows);
    const dataset = await datasetFromSource(
      source,
      { kind: 'files', description: job.describe(lm), files: job.files, tokenIds, vocab: job.vocab, lm },
      (fraction, phase) =>
        onProgress({ fraction: 0.95 + 0.05 * fraction, phase, tokens: lm.tokens, windows: lm.windows }),
    );
    lm.seconds = seconds();
    return { dataset, lm, context: job.context(positions, charsUsed) };
  };

  // 1. the cache
  if (!job.noCache) {
    const hit = await readCache(job.key);
    if (hit) {
      const { nTokens, windows } = hit.meta;
      onProgress({ fraction: 0.9, phase: 'cache hit: opening cached activations', tokens: nTokens, windows });
      const positions = await (await openTokenIds(hit.positions, 'positions.npy', nTokens)).readIds(
        0,
        nTokens,
      );
      const lm: LmProvenance = { ...job.prov, tokens: nTokens, windows, source: 'cache', seconds: seconds() };
      return open(hit.acts, hit.tokens, positions, lm, hit.meta.charsUsed);
    }
  }

  // 2. the forward passes
  // WGSL when there is a device and the model fits it, else the CPU forward (the phase says why)
  const device = job.backend !== 'cpu' ? await job.getDevice().catch(() => null) : null;
  if (job.backend === 'gpu' && !device) throw new Error('no WebGPU device for the WGSL forward pass');
  const misfit = device ? job.fit(device.limits) : null;
  if (misfit && job.backend === 'gpu') throw new Error(`${job.modelName}: ${misfit}`);
  const backend = device && !misfit ? 'gpu' : 'cpu';
  const phase = `extracting (${backend === 'gpu' ? 'WGSL' : `CPU${misfit ? `: ${misfit}` : ''}`} forward)`;
  const chunks = job.forward(backend === 'gpu' ? device : null);
  let charsUsed = 0;
  let lastPost = 0;
  const onChunk = async (ch: ExtractChunk) => {
    const p = ch.progress;
    charsUsed = p.charsDone;
    const now = performance.now();
    if (now - lastPost >= 100) {
      lastPost = now;
      const f = Math.max(p.tokensDone / job.maxTokens, p.charsDone / Math.max(1, p.charsTotal));
      onProgress({ fraction: 0.9 * Math.min(1, f), phase, tokens: p.tokensDone, windows: p.windowsDone });
    }
    // the CPU forwards are synchronous: let 'cancel-extract' and progress through between windows
    if (backend === 'cpu') await yieldToEvents();
  };
  let usedChars = 0;
  const out = await extractToFiles({
    key: job.key,
    d: job.d,
    dtype: job.dtype,
    chunks,
    onChunk,
    noRows: () => new DataError(job.textName, 'gave no tokens to extract (is it empty?)'),
    meta: (rows) => {
      usedChars = heldOutStart(job.text, charsUsed, rows, job.maxTokens);
      return { window: job.window, charsUsed: usedChars, seconds: seconds() };
    },
  });
  const lm: LmProvenance = {
    ...job.prov,
    tokens: out.rows,
    windows: out.windows,
    source: backend,
    seconds: 0,
  };
  return open(out.acts, out.tokens, out.positionIds, lm, usedChars);
}

/** A request's max tokens (default {@link DEFAULT_MAX_TOKENS}), checked. */
export function extractMaxTokens(maxTokens: number | undefined): number {
  const m = maxTokens ?? DEFAULT_MAX_TOKENS;
  if (!(Number.isInteger(m) && m >= 1)) throw new Error(`max tokens must be a positive integer, got ${m}`);
  return m;
}

/** A text file's bytes as a string: strict UTF-8 and not blank, else a DataError naming the file. */
export function extractText(tx: { bytes: Uint8Array; name: string }): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(tx.bytes);
  } catch {
    throw new DataError(tx.name, 'is not UTF-8 text');
  }
  if (text.trim() === '') throw new DataError(tx.name, 'has no text');
  return text;
}

/**
 * Runs (or reads from the cache) one llama2.c extraction and opens it as a dataset.
 * @param getDevice the worker's GPU device, or null when there is none (CPU forward)
 */
export async function extractLm(
  req: LlamaExtractRequest,
  getDevice: () => Promise<GPUDevice | null>,
  onProgress: (p: ExtractLmProgress) => void,
  signal: AbortSignal,
): Promise<ExtractedDataset> {
  const t0 = performance.now();
  onProgress({ fraction: 0, phase: 'loading model', tokens: 0, windows: 0 });
  const ck = await loadFile(req.checkpoint, req.baseUrl);
  const tk = await loadFile(req.tokenizer, req.baseUrl);
  const tx = await loadFile(req.text, req.baseUrl);
  const site = req.site;
  const maxTokens = extractMaxTokens(req.maxTokens);
  const ckKey = await sha256Hex([ck.bytes]);
  let parsedCkpt = parsed.get(ckKey);
  if (!parsedCkpt) {
    parsedCkpt = readCheckpoint(ck.bytes, ck.name); // bad checkpoints throw one line naming the file
    parsed.clear(); // keep one model parsed at a time
    parsed.set(ckKey, parsedCkpt);
  }
  const ckpt = parsedCkpt;
  const tok = readTokenizer(tk.bytes, { vocabSize: ckpt.config.vocabSize, name: tk.name });
  const c = ckpt.config;
  const maxLayer = site === 'resid' ? c.nLayers : c.nLayers - 1;
  if (!(Number.isInteger(req.layer) && req.layer >= 0 && req.layer <= maxLayer))
    throw new Error(
      `layer ${req.layer} is outside 0..${maxLayer} for site '${site}' of ${ck.name} (${c.nLayers} layers)`,
    );
  const window = req.window ?? c.seqLen;
  if (!(Number.isInteger(window) && window >= 2 && window <= c.seqLen))
    throw new Error(`window ${window} must be an integer in 2..${c.seqLen} (the model's seq_len)`);
  const text = extractText(tx);
  const dtype = extractDtype(req.dtype);
  const settings = JSON.stringify({
    v: CACHE_VERSION,
    layer: req.layer,
    site,
    window,
    maxTokens,
    split: 'paragraph',
    dtype,
  });
  const key = (await sha256Hex([ckKey, tk.bytes, tx.bytes, settings])).slice(0, 32);
  return runExtraction(
    {
      key,
      prov: {
        model: req.modelName,
        tokenizer: tk.name,
        text: tx.name,
        layer: req.layer,
        site,
        siteLabel: site === 'resid' ? 'residual stream' : 'MLP output',
        spliceable: site === 'resid',
        window,
        key,
      },
      stem: `${req.modelName}_L${req.layer}_${site}`,
      files: [ck.name, tk.name, tx.name],
      vocab: tok.pieces.slice(),
      describe: (lm) =>
        `real LM activations: ${lm.model}, ${lm.siteLabel} at layer ${lm.layer}, ${lm.tokens.toLocaleString('en-US')} tokens of ${lm.text}`,
      context: (positions, charsUsed): LlamaLmContext => ({
        family: 'llama2c',
        name: req.modelName,
        ckpt,
        tok,
        text,
        charsUsed,
        layer: req.layer,
        site,
        positions,
      }),
      text,
      textName: tx.name,
      d: c.dim,
      dtype,
      maxTokens,
      window,
      noCache: req.noCache,
      backend: req.backend,
      getDevice,
      fit: (limits) => llamaGpuFit(c, c.seqLen, limits),
      modelName: ck.name,
      forward: (device) => {
        const reader: SiteReader = device
          ? gpuSiteReader(gpuLlamaFor(device, ckpt))
          : llamaSiteReader(new Llama(ckpt, { dtype: 'f32' }));
        return extractWindowsAsync(reader, tok, text, { layer: req.layer, site, window, maxTokens, signal });
      },
    },
    t0,
    onProgress,
  );
}

/** The WGSL model read as a {@link SiteReader}: one forward a window, stopping past the site's layer. */
function gpuSiteReader(g: GpuLlama): SiteReader {
  return {
    config: g.config,
    capacity: g.capacity,
    async read(win, s, layer) {
      const out = await g.forward(win, {
        residLayers: s === 'resid' ? [layer] : [],
        mlpLayers: s === 'mlp' ? [layer] : [],
        logits: false,
      });
      return (s === 'resid' ? out.resid.get(layer) : out.mlp.get(layer)) as Float32Array;
    },
  };
}

/** The stored dtype of a request's rows (default float32), checked. */
export function extractDtype(d: string | undefined): 'f32' | 'f16' {
  if (d === undefined || d === 'f32' || d === 'f16') return d ?? 'f32';
  throw new Error(`dtype must be f32 or f16, got '${d}'`);
}

/**
 * Where held-out text starts: after the last paragraph any row came from. Progress reports whole
 * paragraphs only, so when maxTokens cut a paragraph, skip past the next paragraph break.
 */
function heldOutStart(text: string, charsDone: number, nTokens: number, maxTokens: number): number {
  if (nTokens < maxTokens) return Math.max(charsDone, text.length);
  const re = /\r?\n[ \t]*\r?\n\s*/g;
  re.lastIndex = charsDone;
  const m = re.exec(text);
  return m ? m.index + m[0].length : text.length;
}
