/**
 * The page's activation extractor for GPT-2 ('extract-lm' with family 'gpt2'): a Hugging Face
 * folder's files (config.json, model.safetensors, tokenizer.json or vocab.json + merges.txt) read in
 * the worker (src/lm/gpt2/), run over a text on the WGSL forward (GpuGpt2) when a device is there and
 * the model fits its limits, else on the CPU twin, one site of one block read per window. Windows
 * open with <|endoftext|> and are 64 tokens by default (the paper's GPT-2 contexts); position 0's row
 * is left out unless keepBos. The rows, token ids and positions stream to the OPFS cache a chunk at a
 * time as windows finish and open as the dataset exactly as the llama2.c path's (./lm-cache.ts,
 * ./lm-extract.ts, whose helpers this shares).
 */
import { DataError } from '../data/errors';
import { openActivationFile } from '../data/open';
import { openTokenIds } from '../data/sidecars';
import { type ExtractChunk, extractGpt2WindowsAsync } from '../lm/extract';
import { readGpt2Checkpoint } from '../lm/gpt2/checkpoint';
import { Gpt2 } from '../lm/gpt2/forward';
import { GpuGpt2, gpt2GpuFit } from '../lm/gpt2/gpu-forward';
import { parseGpt2Site } from '../lm/gpt2/sites';
import { readGpt2Tokenizer } from '../lm/gpt2/tokenizer';
import { type Gpt2Checkpoint, hookName } from '../lm/gpt2/types';
import { datasetFromSource } from './datasets';
import { CACHE_VERSION, extractToFiles, readCache } from './lm-cache';
import type { Gpt2LmContext } from './lm-context';
import {
  DEFAULT_MAX_TOKENS,
  type ExtractedDataset,
  extractDtype,
  heldOutStart,
  loadFile,
  sha256Hex,
  yieldToEvents,
} from './lm-extract';
import type { ExtractLmProgress, Gpt2ExtractRequest, LmProvenance } from './protocol';

/** The paper's GPT-2 context length (Gao et al. 2024 trained on 64-token windows). */
const GPT2_WINDOW = 64;

type Named = { blob: Blob; name: string };
const base = (n: string) => n.slice(n.replace(/\\/g, '/').lastIndexOf('/') + 1);

/** config.json, model.safetensors and the tokenizer files of a folder's listing (one line when missing). */
function gpt2FolderFiles(files: readonly Named[]): {
  config: Named;
  model: Named;
  tokenizer: Named[];
} {
  const find = (n: string) => files.find((f) => base(f.name) === n);
  const config = find('config.json');
  const model = find('model.safetensors');
  const folder = files[0]?.name.includes('/') ? files[0].name.slice(0, files[0].name.lastIndexOf('/')) : '';
  const where = folder || 'the GPT-2 folder';
  if (!config) throw new DataError(where, 'has no config.json (a Hugging Face GPT-2 folder holds one)');
  if (!model)
    throw new DataError(
      where,
      'has no model.safetensors (download the safetensors weights; pytorch_model.bin is not read)',
    );
  const tokenizer = files.filter((f) =>
    ['tokenizer.json', 'vocab.json', 'merges.txt'].includes(base(f.name)),
  );
  return { config, model, tokenizer };
}

/** SHA-256 of a Blob read 16 MiB at a time (the hash of the chunks' hashes): memory stays one chunk. */
async function blobDigest(blob: Blob): Promise<string> {
  const CHUNK = 16 << 20;
  const hashes: string[] = [];
  for (let o = 0; o < blob.size; o += CHUNK)
    hashes.push(await sha256Hex([new Uint8Array(await blob.slice(o, o + CHUNK).arrayBuffer())]));
  return sha256Hex([String(blob.size), ...hashes]);
}

// ---- the parsed model and its GPU twin, kept while the worker lives ----

let parsed: { key: string; ckpt: Gpt2Checkpoint } | null = null;
const onGpu = new WeakMap<Gpt2Checkpoint, { device: GPUDevice; capacity: number; model: GpuGpt2 }>();

/** The WGSL model of `ckpt` on `device` holding windows of `capacity` tokens (uploaded once per both). */
export function gpuGpt2For(device: GPUDevice, ckpt: Gpt2Checkpoint, capacity: number): GpuGpt2 {
  const have = onGpu.get(ckpt);
  if (have && have.device === device && have.capacity >= capacity) return have.model;
  have?.model.destroy();
  const model = GpuGpt2.create(device, ckpt, capacity);
  onGpu.set(ckpt, { device, capacity, model });
  return model;
}

/**
 * Runs (or reads from the cache) one GPT-2 extraction and opens it as a dataset.
 * @param getDevice the worker's GPU device, or null when there is none (CPU twin)
 */
export async function extractGpt2Lm(
  req: Gpt2ExtractRequest,
  getDevice: () => Promise<GPUDevice | null>,
  onProgress: (p: ExtractLmProgress) => void,
  signal: AbortSignal,
): Promise<ExtractedDataset> {
  const t0 = performance.now();
  onProgress({ fraction: 0, phase: 'reading the GPT-2 folder', tokens: 0, windows: 0 });
  const f = gpt2FolderFiles(req.files);
  const tx = await loadFile(req.text, req.baseUrl);
  const configText = await f.config.blob.text();
  const tokFiles = await Promise.all(
    f.tokenizer.map(async (t) => ({ name: t.name, bytes: new Uint8Array(await t.blob.arrayBuffer()) })),
  );
  const modelKey = await sha256Hex([configText, await blobDigest(f.model.blob)]);
  if (parsed?.key !== modelKey) {
    parsed = null; // one model parsed at a time: let the old weights go before reading the new
    onProgress({ fraction: 0.02, phase: 'reading model.safetensors', tokens: 0, windows: 0 });
    const ckpt = await readGpt2Checkpoint({
      config: configText,
      model: f.model.blob,
      configName: f.config.name,
      modelName: f.model.name,
      name: req.modelName,
    });
    parsed = { key: modelKey, ckpt };
  }
  const ckpt = parsed.ckpt;
  const c = ckpt.config;
  const tok = readGpt2Tokenizer(tokFiles);
  if (tok.vocabSize !== c.vocabSize)
    throw new DataError(
      tok.name,
      `has ${tok.vocabSize} tokens but ${f.config.name} says vocab_size ${c.vocabSize}`,
    );
  const site = parseGpt2Site(req.site, c.nLayer, req.layer);
  const maxTokens = req.maxTokens ?? DEFAULT_MAX_TOKENS;
  if (!(Number.isInteger(maxTokens) && maxTokens >= 1))
    throw new Error(`max tokens must be a positive integer, got ${maxTokens}`);
  const window = req.window ?? Math.min(GPT2_WINDOW, c.nPositions);
  if (!(Number.isInteger(window) && window >= 2 && window <= c.nPositions))
    throw new Error(`context ${window} must be an integer in 2..${c.nPositions} (the model's n_positions)`);
  const keepBos = req.keepBos ?? false;
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
    family: 'gpt2',
    site,
    window,
    maxTokens,
    keepBos,
    dtype,
  });
  const tkKey = await sha256Hex(tokFiles.map((t) => t.bytes));
  const key = (await sha256Hex([modelKey, tkKey, tx.bytes, settings])).slice(0, 32);
  const siteLabel = hookName(site);
  const prov = {
    model: req.modelName,
    family: 'gpt2' as const,
    tokenizer: base(tok.name),
    text: tx.name,
    layer: site.layer,
    site: site.kind,
    siteLabel,
    spliceable: true,
    keepBos,
    window,
    key,
  };
  const stem = `${req.modelName}_${siteLabel}`;
  const open = async (
    acts: Blob,
    tokens: Blob,
    positions: Int32Array,
    lm: LmProvenance,
    charsUsed: number,
  ) => {
    const source = await openActivationFile(acts, `${stem}.npy`);
    const tokenIds = await openTokenIds(tokens, `${stem}.tokens.npy`, source.rows);
    const description = `real LM activations: ${lm.model} (GPT-2), ${siteLabel}, ${lm.tokens.toLocaleString('en-US')} tokens of ${lm.text} in ${window}-token windows`;
    const dataset = await datasetFromSource(
      source,
      {
        kind: 'files',
        description,
        files: [f.config.name, f.model.name, tok.name, tx.name],
        tokenIds,
        vocab: tok.pieces.slice(),
        lm,
      },
      (fraction, phase) =>
        onProgress({ fraction: 0.95 + 0.05 * fraction, phase, tokens: lm.tokens, windows: lm.windows }),
    );
    const context: Gpt2LmContext = {
      family: 'gpt2',
      name: req.modelName,
      ckpt,
      tok,
      text,
      charsUsed,
      layer: site.layer,
      site: site.kind,
      window,
      keepBos,
      positions,
    };
    return { dataset, lm, context };
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
      const positions = await (await openTokenIds(hit.positions, 'positions.npy', hit.meta.nTokens)).readIds(
        0,
        hit.meta.nTokens,
      );
      const lm: LmProvenance = {
        ...prov,
        tokens: hit.meta.nTokens,
        windows: hit.meta.windows,
        source: 'cache',
        seconds: 0,
      };
      const r = await open(hit.acts, hit.tokens, positions, lm, hit.meta.charsUsed);
      r.lm.seconds = (performance.now() - t0) / 1000;
      return r;
    }
  }

  // 2. the forward passes: WGSL when there is a device and the model fits it, else the CPU twin
  const device = req.backend !== 'cpu' ? await getDevice().catch(() => null) : null;
  if (req.backend === 'gpu' && !device) throw new Error('no WebGPU device for the WGSL forward pass');
  const misfit = device ? gpt2GpuFit(c, window, device.limits) : null;
  if (misfit && req.backend === 'gpu') throw new Error(`${req.modelName}: ${misfit}`);
  if (device && !misfit)
    onProgress({ fraction: 0.04, phase: 'uploading the weights to the GPU', tokens: 0, windows: 0 });
  const model = device && !misfit ? gpuGpt2For(device, ckpt, window) : new Gpt2(ckpt, { dtype: 'f32' });
  const backend: 'gpu' | 'cpu' = model instanceof GpuGpt2 ? 'gpu' : 'cpu';
  const phase = `extracting (${backend === 'gpu' ? 'WGSL' : `CPU${misfit ? `: ${misfit}` : ''}`} forward)`;
  let charsUsed = 0;
  let lastPost = 0;
  const onChunk = async (ch: ExtractChunk) => {
    charsUsed = ch.progress.charsDone;
    const now = performance.now();
    if (now - lastPost >= 100) {
      lastPost = now;
      const p = ch.progress;
      const frac = Math.max(p.tokensDone / maxTokens, p.charsDone / Math.max(1, p.charsTotal));
      onProgress({ fraction: 0.9 * Math.min(1, frac), phase, tokens: p.tokensDone, windows: p.windowsDone });
    }
    // the CPU twin is synchronous: let 'cancel-extract' and progress through between windows
    if (backend === 'cpu') await yieldToEvents();
  };
  let usedChars = 0;
  const seconds = () => (performance.now() - t0) / 1000;
  const out = await extractToFiles({
    key,
    d: c.nEmbd,
    dtype,
    chunks: extractGpt2WindowsAsync(model, tok, text, site, { window, maxTokens, keepBos, signal }),
    onChunk,
    noRows: () => new DataError(tx.name, 'gave no tokens to extract (is it empty?)'),
    meta: (rows) => {
      usedChars = heldOutStart(text, charsUsed, rows, maxTokens);
      return { window, charsUsed: usedChars, seconds: seconds() };
    },
  });
  const lm: LmProvenance = {
    ...prov,
    tokens: out.rows,
    windows: out.windows,
    source: backend,
    seconds: seconds(),
  };
  return open(out.acts, out.tokens, out.positionIds, lm, usedChars);
}
