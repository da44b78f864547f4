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
import { extractGpt2WindowsAsync } from '../lm/extract';
import { readGpt2Checkpoint } from '../lm/gpt2/checkpoint';
import { Gpt2 } from '../lm/gpt2/forward';
import { GpuGpt2, gpt2GpuFit } from '../lm/gpt2/gpu-forward';
import { parseGpt2Site } from '../lm/gpt2/sites';
import { readGpt2Tokenizer } from '../lm/gpt2/tokenizer';
import { type Gpt2Checkpoint, hookName } from '../lm/gpt2/types';
import { CACHE_VERSION } from './lm-cache';
import type { Gpt2LmContext } from './lm-context';
import {
  type ExtractedDataset,
  extractDtype,
  extractMaxTokens,
  extractText,
  loadFile,
  runExtraction,
  sha256Hex,
} from './lm-extract';
import type { ExtractLmProgress, Gpt2ExtractRequest } from './protocol';

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
  const maxTokens = extractMaxTokens(req.maxTokens);
  const window = req.window ?? Math.min(GPT2_WINDOW, c.nPositions);
  if (!(Number.isInteger(window) && window >= 2 && window <= c.nPositions))
    throw new Error(`context ${window} must be an integer in 2..${c.nPositions} (the model's n_positions)`);
  const keepBos = req.keepBos ?? false;
  const text = extractText(tx);
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
  return runExtraction(
    {
      key,
      prov: {
        model: req.modelName,
        family: 'gpt2',
        tokenizer: base(tok.name),
        text: tx.name,
        layer: site.layer,
        site: site.kind,
        siteLabel,
        spliceable: true,
        keepBos,
        window,
        key,
      },
      stem: `${req.modelName}_${siteLabel}`,
      files: [f.config.name, f.model.name, tok.name, tx.name],
      vocab: tok.pieces.slice(),
      describe: (lm) =>
        `real LM activations: ${lm.model} (GPT-2), ${siteLabel}, ${lm.tokens.toLocaleString('en-US')} tokens of ${lm.text} in ${window}-token windows`,
      context: (positions, charsUsed): Gpt2LmContext => ({
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
      }),
      text,
      textName: tx.name,
      d: c.nEmbd,
      dtype,
      maxTokens,
      window,
      noCache: req.noCache,
      backend: req.backend,
      getDevice,
      fit: (limits) => gpt2GpuFit(c, window, limits),
      modelName: req.modelName,
      forward: (device) => {
        if (device)
          onProgress({ fraction: 0.04, phase: 'uploading the weights to the GPU', tokens: 0, windows: 0 });
        const model = device ? gpuGpt2For(device, ckpt, window) : new Gpt2(ckpt, { dtype: 'f32' });
        return extractGpt2WindowsAsync(model, tok, text, site, { window, maxTokens, keepBos, signal });
      },
    },
    t0,
    onProgress,
  );
}
