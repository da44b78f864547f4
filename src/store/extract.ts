/**
 * The dataset panel's "Extract from a language model" form and the extraction's progress. Worker
 * messages ('extract-progress' / 'extract-done' / 'extract-error') arrive through worker.ts; the
 * resulting dataset arrives as an ordinary 'dataset-ready'.
 */
import { create } from 'zustand';
import type {
  ExtractLmProgress,
  ExtractLmRequest,
  Gpt2ExtractRequest,
  LmFileSpec,
  LmProvenance,
} from '../worker/protocol';

/** The language models bundled with the page (public/models). */
export const BUNDLED_MODELS = {
  stories260K: {
    label: 'stories260K (TinyStories, d=64, 5 layers)',
    checkpoint: 'models/stories260K/stories260K.bin',
    tokenizer: 'models/stories260K/tok512.bin',
    nLayers: 5,
  },
  babyllama: {
    label: 'BabyLlama tok105 (d=128, 5 layers)',
    checkpoint: 'models/babyllama_tok105/model5000.bin',
    tokenizer: 'models/babyllama_tok105/tok105.bin',
    nLayers: 5,
  },
} as const;
const BUNDLED_TEXT = 'text/tinystories_train_head.txt';

/** A llama2.c model (bundled or dropped), or a Hugging Face GPT-2 folder. */
export type ModelChoice = keyof typeof BUNDLED_MODELS | 'custom' | 'gpt2';

export type Gpt2SiteChoice = Gpt2ExtractRequest['site'];

/** GPT-2's read-out sites (TransformerLens names of one block), in forward order. */
export const GPT2_SITES: readonly Gpt2SiteChoice[] = [
  'resid_pre',
  'attn_out',
  'resid_mid',
  'mlp_out',
  'resid_post',
];

/** A GPT-2 folder picked or dropped: its files and what its config.json says (read in the page). */
interface Gpt2Folder {
  /** the folder's name (from the files' relative paths), shown and used as the model's name */
  name: string;
  files: File[];
  /** n_layer and n_positions of config.json, or null when it could not be read */
  nLayer: number | null;
  nPositions: number | null;
}

export interface ExtractOptions {
  model: ModelChoice;
  checkpointFile: File | null;
  tokenizerFile: File | null;
  text: 'bundled' | 'custom';
  textFile: File | null;
  layer: number;
  site: 'resid' | 'mlp';
  maxTokens: number;
  /** model 'gpt2': the folder, the site at block `layer`, the window, and whether position 0 stays */
  gpt2: Gpt2Folder | null;
  gpt2Site: Gpt2SiteChoice;
  /** tokens per window including <|endoftext|> (the paper: 64) */
  context: number;
  keepBos: boolean;
  /** how the rows are stored (the dataset reader reads both): float32, or float16 at half the size */
  dtype: 'f32' | 'f16';
}

export interface ExtractState {
  options: ExtractOptions;
  status: 'idle' | 'running' | 'done' | 'error' | 'cancelled';
  progress: ExtractLmProgress | null;
  /** the last finished extraction */
  last: LmProvenance | null;
  error: string | null;
}

export const useExtract = create<ExtractState>(() => ({
  options: {
    model: 'stories260K',
    checkpointFile: null,
    tokenizerFile: null,
    text: 'bundled',
    textFile: null,
    layer: 2,
    site: 'resid',
    maxTokens: 20_000,
    gpt2: null,
    gpt2Site: 'resid_post',
    context: 64,
    keepBos: false,
    dtype: 'f32',
  },
  status: 'idle',
  progress: null,
  last: null,
  error: null,
}));

export function setExtractOption<K extends keyof ExtractOptions>(key: K, value: ExtractOptions[K]) {
  useExtract.setState((s) => ({ options: { ...s.options, [key]: value } }));
}

/** Largest valid layer for the chosen model and site (null when unknown: a dropped checkpoint). */
export function maxLayer(o: ExtractOptions): number | null {
  if (o.model === 'gpt2') return o.gpt2?.nLayer != null ? o.gpt2.nLayer - 1 : null;
  if (o.model === 'custom') return null;
  const L = BUNDLED_MODELS[o.model].nLayers;
  return o.site === 'resid' ? L : L - 1;
}

/** Why the form cannot start now (null when it can). */
export function extractProblem(o: ExtractOptions): string | null {
  if (o.model === 'gpt2') {
    if (!o.gpt2) return 'choose a GPT-2 folder (config.json, model.safetensors, vocab.json + merges.txt)';
    const P = o.gpt2.nPositions;
    if (!(Number.isInteger(o.context) && o.context >= 2 && (P === null || o.context <= P)))
      return `context must be an integer in 2..${P ?? 'n_positions'}`;
  }
  if (o.model === 'custom' && !o.checkpointFile) return 'choose a llama2.c checkpoint (.bin)';
  if (o.model === 'custom' && !o.tokenizerFile) return 'choose its tokenizer (.bin)';
  if (o.text === 'custom' && !o.textFile) return 'choose a text file (.txt)';
  if (!(Number.isInteger(o.layer) && o.layer >= 0)) return 'layer must be a non-negative integer';
  const m = maxLayer(o);
  if (m !== null && o.layer > m)
    return `layer must be 0..${m} for site ${o.model === 'gpt2' ? o.gpt2Site : o.site}`;
  if (!(Number.isInteger(o.maxTokens) && o.maxTokens >= 1)) return 'tokens must be a positive integer';
  return null;
}

/** The worker request of the form (files as Blobs, bundled files as paths under the page). */
export function extractRequest(o: ExtractOptions): ExtractLmRequest {
  const file = (f: File): LmFileSpec => ({ kind: 'file', blob: f, name: f.name });
  const text =
    o.text === 'bundled' ? { kind: 'bundled' as const, path: BUNDLED_TEXT } : file(o.textFile as File);
  if (o.model === 'gpt2') {
    const g = o.gpt2 as Gpt2Folder;
    return {
      family: 'gpt2',
      modelName: g.name,
      files: g.files.map((f) => ({ blob: f, name: relPath(f) })),
      text,
      layer: o.layer,
      site: o.gpt2Site,
      window: o.context,
      keepBos: o.keepBos,
      maxTokens: o.maxTokens,
      dtype: o.dtype,
    };
  }
  const bundled = o.model === 'custom' ? null : BUNDLED_MODELS[o.model];
  return {
    modelName: bundled
      ? o.model === 'babyllama'
        ? 'BabyLlama'
        : 'stories260K'
      : (o.checkpointFile?.name ?? 'model'),
    checkpoint: bundled ? { kind: 'bundled', path: bundled.checkpoint } : file(o.checkpointFile as File),
    tokenizer: bundled ? { kind: 'bundled', path: bundled.tokenizer } : file(o.tokenizerFile as File),
    text,
    layer: o.layer,
    site: o.site,
    maxTokens: o.maxTokens,
    dtype: o.dtype,
  };
}

/** A file's path inside a picked or dropped folder (webkitRelativePath), else its name. */
function relPath(f: File): string {
  return (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name;
}

/**
 * The files of a GPT-2 folder among `files` (a folder input's listing or a drop), or null when
 * they are not one: config.json and model.safetensors must both be there.
 */
export function gpt2FilesOf(files: readonly File[]): File[] | null {
  const has = (n: string) => files.some((f) => f.name === n);
  return has('config.json') && has('model.safetensors') ? [...files] : null;
}

/**
 * Selects a GPT-2 folder in the form: reads config.json for the layer range and context limit (a
 * config that does not parse leaves them unknown; the worker then reports it in one line) and sets
 * the layer and context within them.
 */
export async function chooseGpt2Folder(files: File[], folder?: string): Promise<void> {
  const cfgFile = files.find((f) => f.name === 'config.json');
  const first = files[0] ? relPath(files[0]) : '';
  const name = folder || (first.includes('/') ? first.slice(0, first.indexOf('/')) : 'gpt2');
  let nLayer: number | null = null;
  let nPositions: number | null = null;
  try {
    const c = JSON.parse(await (cfgFile as File).text()) as Record<string, unknown>;
    if (Number.isInteger(c.n_layer)) nLayer = c.n_layer as number;
    const P = c.n_positions ?? c.n_ctx;
    if (Number.isInteger(P)) nPositions = P as number;
  } catch {
    // the worker's reader names the file and the problem
  }
  useExtract.setState((s) => {
    const o = s.options;
    const layer = nLayer !== null ? Math.min(o.layer, nLayer - 1) : o.layer;
    const context = nPositions !== null ? Math.min(64, nPositions) : o.context;
    return { options: { ...o, model: 'gpt2', gpt2: { name, files, nLayer, nPositions }, layer, context } };
  });
}

// ---- called by worker.ts ----

export function extractStarted() {
  useExtract.setState({
    status: 'running',
    progress: { fraction: 0, phase: 'starting', tokens: 0, windows: 0 },
    error: null,
  });
}

export function extractProgress(progress: ExtractLmProgress) {
  if (useExtract.getState().status === 'running') useExtract.setState({ progress });
}

export function extractDone(lm: LmProvenance) {
  useExtract.setState({ status: 'done', last: lm, progress: null, error: null });
}

export function extractFailed(message: string, cancelled = false) {
  if (useExtract.getState().status !== 'running') return;
  useExtract.setState({ status: cancelled ? 'cancelled' : 'error', progress: null, error: message });
}
