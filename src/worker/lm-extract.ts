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
import { type ExtractProgress, extractWindowsAsync, llamaSiteReader, type SiteReader } from '../lm/extract';
import { Llama } from '../lm/forward';
import { GpuLlama } from '../lm/gpu-forward';
import { readTokenizer } from '../lm/tokenizer';
import { datasetFromSource, type OpenedDataset } from './datasets';
import { CACHE_VERSION, extractToFiles, readCache } from './lm-cache';
import type { LlamaLmContext, LmContext } from './lm-context';
import type { ExtractLmProgress, LlamaExtractRequest, LmFileSpec, LmProvenance } from './protocol';

export const DEFAULT_MAX_TOKENS = 20_000;

export interface ExtractedDataset {
  dataset: OpenedDataset;
  lm: LmProvenance;
  context: LmContext;
}

export const yieldToEvents = () => new Promise<void>((r) => setTimeout(r, 0));

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
 * Runs (or reads from the cache) one extraction and opens it as a dataset.
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
  const maxTokens = req.maxTokens ?? DEFAULT_MAX_TOKENS;
  if (!(Number.isInteger(maxTokens) && maxTokens >= 1))
    throw new Error(`max tokens must be a positive integer, got ${maxTokens}`);
  const ckKey = await sha256Hex([ck.bytes]);
  let ckpt = parsed.get(ckKey);
  if (!ckpt) {
    ckpt = readCheckpoint(ck.bytes, ck.name); // bad checkpoints throw one line naming the file
    parsed.clear(); // keep one model parsed at a time
    parsed.set(ckKey, ckpt);
  }
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
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(tx.bytes);
  } catch {
    throw new DataError(tx.name, 'is not UTF-8 text');
  }
  if (text.trim() === '') throw new DataError(tx.name, 'has no text');
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
  const base = {
    model: req.modelName,
    tokenizer: tk.name,
    text: tx.name,
    layer: req.layer,
    site,
    siteLabel: site === 'resid' ? 'residual stream' : 'MLP output',
    spliceable: site === 'resid',
    window,
    key,
  };
  const vocab = tok.pieces.slice();
  const contextOf = (positions: Int32Array, charsUsed: number): LlamaLmContext => ({
    family: 'llama2c',
    name: req.modelName,
    ckpt: ckpt as LlamaCheckpoint,
    tok,
    text,
    charsUsed,
    layer: req.layer,
    site,
    positions,
  });
  const describeLm = (lm: LmProvenance) =>
    `real LM activations: ${lm.model}, ${lm.siteLabel} at layer ${lm.layer}, ${lm.tokens.toLocaleString('en-US')} tokens of ${lm.text}`;
  const stem = `${req.modelName}_L${req.layer}_${site}`;

  const open = async (
    acts: Blob,
    tokens: Blob,
    positions: Int32Array,
    lm: LmProvenance,
    charsUsed: number,
  ): Promise<ExtractedDataset> => {
    const source = await openActivationFile(acts, `${stem}.npy`);
    const tokenIds = await openTokenIds(tokens, `${stem}.tokens.npy`, source.rows);
    const dataset = await datasetFromSource(
      source,
      { kind: 'files', description: describeLm(lm), files: [ck.name, tk.name, tx.name], tokenIds, vocab, lm },
      (fraction, phase) =>
        onProgress({ fraction: 0.95 + 0.05 * fraction, phase, tokens: lm.tokens, windows: lm.windows }),
    );
    return { dataset, lm, context: contextOf(positions, charsUsed) };
  };

  // 1. the cache
  if (!req.noCache) {
    const hit = await readCache(key);
    if (hit) {
      onProgress({
        fraction: 0.9,
        phase: 'cache hit: opening cached activations',
        tokens: hit.meta.nTokens,
        windows: hit.meta.windows,
      });
      const posIds = await openTokenIds(hit.positions, 'positions.npy', hit.meta.nTokens);
      const positions = await posIds.readIds(0, hit.meta.nTokens);
      const lm: LmProvenance = {
        ...base,
        tokens: hit.meta.nTokens,
        windows: hit.meta.windows,
        source: 'cache',
        seconds: (performance.now() - t0) / 1000,
      };
      const r = await open(hit.acts, hit.tokens, positions, lm, hit.meta.charsUsed);
      r.lm.seconds = (performance.now() - t0) / 1000;
      return r;
    }
  }

  // 2. the forward passes
  const wantGpu = req.backend !== 'cpu';
  const device = wantGpu ? await getDevice().catch(() => null) : null;
  if (req.backend === 'gpu' && !device) throw new Error('no WebGPU device for the WGSL forward pass');
  let reader: SiteReader;
  let backend: 'gpu' | 'cpu';
  if (device) {
    const g = gpuLlamaFor(device, ckpt);
    backend = 'gpu';
    reader = {
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
  } else {
    const cpu = llamaSiteReader(new Llama(ckpt, { dtype: 'f32' }));
    backend = 'cpu';
    reader = {
      config: cpu.config,
      capacity: cpu.capacity,
      // let 'cancel-extract' and progress messages through between windows
      read: async (win, s, layer) => {
        await yieldToEvents();
        return cpu.read(win, s, layer);
      },
    };
  }
  let charsUsed = 0;
  let lastPost = 0;
  const progress = (p: ExtractProgress) => {
    charsUsed = p.charsDone;
    const now = performance.now();
    if (now - lastPost < 100) return;
    lastPost = now;
    const f = Math.max(p.tokensDone / maxTokens, p.charsDone / Math.max(1, p.charsTotal));
    onProgress({
      fraction: 0.9 * Math.min(1, f),
      phase: `extracting (${backend === 'gpu' ? 'WGSL' : 'CPU'} forward)`,
      tokens: p.tokensDone,
      windows: p.windowsDone,
    });
  };
  const chunks = extractWindowsAsync(reader, tok, text, {
    layer: req.layer,
    site,
    window,
    maxTokens,
    onProgress: progress,
    signal,
  });
  let usedChars = 0;
  const seconds = () => (performance.now() - t0) / 1000;
  const out = await extractToFiles({
    key,
    d: c.dim,
    dtype,
    chunks,
    noRows: () => new DataError(tx.name, 'gave no tokens to extract (is it empty?)'),
    meta: (rows) => {
      usedChars = heldOutStart(text, charsUsed, rows, maxTokens);
      return { window, charsUsed: usedChars, seconds: seconds() };
    },
  });
  const lm: LmProvenance = {
    ...base,
    tokens: out.rows,
    windows: out.windows,
    source: backend,
    seconds: seconds(),
  };
  return open(out.acts, out.tokens, out.positionIds, lm, usedChars);
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
export function heldOutStart(text: string, charsDone: number, nTokens: number, maxTokens: number): number {
  if (nTokens < maxTokens) return Math.max(charsDone, text.length);
  const re = /\r?\n[ \t]*\r?\n\s*/g;
  re.lastIndex = charsDone;
  const m = re.exec(text);
  return m ? m.index + m[0].length : text.length;
}
