/**
 * The dataset panel's "Extract from a language model" form and the extraction's progress. Worker
 * messages ('extract-progress' / 'extract-done' / 'extract-error') arrive through worker.ts; the
 * resulting dataset arrives as an ordinary 'dataset-ready'.
 */
import { create } from 'zustand';
import type { ExtractLmProgress, ExtractLmRequest, LmFileSpec, LmProvenance } from '../worker/protocol';

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

export type ModelChoice = keyof typeof BUNDLED_MODELS | 'custom';

export interface ExtractOptions {
  model: ModelChoice;
  checkpointFile: File | null;
  tokenizerFile: File | null;
  text: 'bundled' | 'custom';
  textFile: File | null;
  layer: number;
  site: 'resid' | 'mlp';
  maxTokens: number;
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
  if (o.model === 'custom') return null;
  const L = BUNDLED_MODELS[o.model].nLayers;
  return o.site === 'resid' ? L : L - 1;
}

/** Why the form cannot start now (null when it can). */
export function extractProblem(o: ExtractOptions): string | null {
  if (o.model === 'custom' && !o.checkpointFile) return 'choose a llama2.c checkpoint (.bin)';
  if (o.model === 'custom' && !o.tokenizerFile) return 'choose its tokenizer (.bin)';
  if (o.text === 'custom' && !o.textFile) return 'choose a text file (.txt)';
  if (!(Number.isInteger(o.layer) && o.layer >= 0)) return 'layer must be a non-negative integer';
  const m = maxLayer(o);
  if (m !== null && o.layer > m) return `layer must be 0..${m} for site ${o.site}`;
  if (!(Number.isInteger(o.maxTokens) && o.maxTokens >= 1)) return 'tokens must be a positive integer';
  return null;
}

/** The worker request of the form (files as Blobs, bundled files as paths under the page). */
export function extractRequest(o: ExtractOptions): ExtractLmRequest {
  const file = (f: File): LmFileSpec => ({ kind: 'file', blob: f, name: f.name });
  const bundled = o.model === 'custom' ? null : BUNDLED_MODELS[o.model];
  return {
    modelName: bundled
      ? o.model === 'babyllama'
        ? 'BabyLlama'
        : 'stories260K'
      : (o.checkpointFile?.name ?? 'model'),
    checkpoint: bundled ? { kind: 'bundled', path: bundled.checkpoint } : file(o.checkpointFile as File),
    tokenizer: bundled ? { kind: 'bundled', path: bundled.tokenizer } : file(o.tokenizerFile as File),
    text: o.text === 'bundled' ? { kind: 'bundled', path: BUNDLED_TEXT } : file(o.textFile as File),
    layer: o.layer,
    site: o.site,
    maxTokens: o.maxTokens,
  };
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
