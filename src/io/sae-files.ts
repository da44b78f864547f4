/**
 * What the SAE writers and readers share: the export input and the imported SAE, the file names of
 * each layout, the `sae_lab` block every export carries (our config, normalization and fold factor,
 * so import restores the trained weights exactly), and checked readers of JSON, config fields and
 * float tensors that name the file at fault.
 */
import { DataError, fmtShape } from '../data/errors.ts';
import type { StTensorOut } from '../data/safetensors.ts';
import type { Activation, SaeConfig } from '../sae/config.ts';
import type { ParamsF32 } from '../sae/step-buffers.ts';
import type { InputRule } from './fold.ts';
import type { Normalization } from './forward.ts';

export type ExportFormat = 'saelens' | 'openai';
export type WeightDtype = 'F32' | 'F16' | 'BF16';

/** Where the activations came from (fills SAELens's model/hook fields; all optional). */
export interface SourceInfo {
  modelName?: string;
  hookName?: string;
  hookLayer?: number;
  hookHeadIndex?: number | null;
  contextSize?: number;
  prependBos?: boolean;
  datasetPath?: string;
}

export interface ExportInput {
  /** Trained weights in our latent-major layout (W_enc, W_dec [N, d]). */
  params: ParamsF32;
  /** The run's config; d, nLatents and k are read from it, the rest is recorded. */
  config: Pick<SaeConfig, 'd' | 'nLatents' | 'k'> & Partial<SaeConfig>;
  normalization: Normalization;
  tokensTrained?: number;
  step?: number;
  /** Final metrics (nMSE, L0, dead fraction, …); recorded verbatim. */
  metrics?: Record<string, number | null>;
  source?: SourceInfo;
  /** Tokens since each latent last fired [N]; becomes openai's stats_last_nonzero (in steps). */
  tokensSince?: Uint32Array;
  /**
   * Fires per latent [N] over the `tokensTrained` training tokens (the trainer's firesTotal);
   * with tokensTrained > 0 the SAELens export writes sparsity.safetensors from them.
   */
  firesTotal?: Uint32Array;
  /** log10 firing densities [N] as SAELens stores them (e.g. read on import); used as given. */
  logSparsity?: Float32Array;
  /** Which weights `params` are: the EMA of the trained weights (a run with cfg.ema) or the weights themselves; recorded. */
  weights?: 'ema' | 'live';
  /** BatchTopK: the inference threshold θ learned in training (TrainState.inferenceThreshold); required for it. */
  inferenceThreshold?: number;
}

type ImportFormat = 'saelens' | 'openai' | 'sparsify';

export interface ImportedSae {
  format: ImportFormat;
  /** Folder the model was found in ('' = top level); for sparsify, the hookpoint name. */
  path: string;
  /** Weights in our layout, normalization un-folded: apply with `normalization` (forward.ts). */
  params: ParamsF32;
  d: number;
  nLatents: number;
  /** TopK's k (other activations: the recorded config's k, else min(32, N); unused by them) */
  k: number;
  /** The activation the weights are for (params.extra holds gated's r_mag, b_mag / jumprelu's log_threshold). */
  activation: Activation;
  /** Our config as recorded by an SAE Lab export, else what the tool's config says (d, nLatents, k). */
  config: Partial<SaeConfig>;
  normalization: Normalization;
  source: SourceInfo;
  tokensTrained: number | null;
  metrics: Record<string, number | null> | null;
  /** log10 firing density per latent [N] (SAELens's sparsity.safetensors), when the files have it. */
  logSparsity: Float32Array | null;
  /** BatchTopK / Matryoshka restored from an SAE Lab export: the learned inference threshold θ. */
  inferenceThreshold?: number;
  /** Things the caller should tell the user (lossy conversions, unknown scales). */
  warnings: string[];
  /** The tool's config json as read. */
  rawConfig: Record<string, unknown>;
}

/** Path → bytes, paths '/'-separated. */
export type Files = Map<string, Uint8Array>;
export type Json = Record<string, unknown>;

export const SAELENS_CFG = 'cfg.json';
export const SAELENS_WEIGHTS = 'sae_weights.safetensors';
/** SAELens's per-latent log10 firing density (constants.py SPARSITY_FILENAME, tensor `sparsity`). */
export const SAELENS_SPARSITY = 'sparsity.safetensors';
export const OPENAI_WEIGHTS = 'openai_sae.safetensors';
export const OPENAI_JSON = 'openai_sae.json';
export const SPARSIFY_WEIGHTS = 'sae.safetensors';

export const dirOf = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
export const basename = (p: string) => p.slice(p.lastIndexOf('/') + 1);
export const join = (dir: string, name: string) => (dir ? `${dir}/${name}` : name);

/** A JSON file's bytes: 2-space indented, newline-terminated. */
export const json = (o: unknown) => new TextEncoder().encode(`${JSON.stringify(o, null, 2)}\n`);

/**
 * The `sae_lab` block of an export: our config, the normalization and its fold factor c
 * (fold.ts), how the exported model takes its input, and what the run recorded.
 */
export function saeLabBlock(
  input: ExportInput,
  c: number,
  rule: InputRule,
  format: ExportFormat,
  architectureNote: string | null = null,
) {
  const n = input.normalization;
  const notes: Record<InputRule, string> = {
    raw:
      c === 1
        ? 'takes raw activations'
        : `takes raw activations: the scalar normalization x·${n.kind === 'scalar' ? n.scale : c} is folded into the weights`,
    scaled: 'takes activations multiplied by normalization.scale (not folded)',
    layer_norm:
      format === 'saelens'
        ? "takes raw activations with normalize_activations='layer_norm' (LN(x) ≈ sqrt(d-1)·(x-μ)/‖x-μ‖; 1/sqrt(d-1) folded into the weights)"
        : 'takes raw activations with normalize=True (LN, as in openai model.py); 1/sqrt(d-1) folded into the weights',
  };
  return {
    version: 1,
    config: input.config,
    normalization: { kind: n.kind, scale: n.kind === 'scalar' ? n.scale : null },
    export: {
      fold_factor: c,
      input: rule,
      note: notes[rule],
      activation: input.config.activation ?? 'topk',
      ...(architectureNote ? { architecture_note: architectureNote } : {}),
    },
    tokens_trained: input.tokensTrained ?? null,
    step: input.step ?? null,
    metrics: input.metrics ?? null,
    // 'ema': these are the EMA of the trained weights (the run kept one, and evaluated it)
    ...(input.weights ? { weights: input.weights } : {}),
    ...(input.inferenceThreshold !== undefined ? { inference_threshold: input.inferenceThreshold } : {}),
  };
}

export type SaeLabBlock = ReturnType<typeof saeLabBlock>;

/** What an SAE Lab export recorded, as import restores it. */
export interface SaeLabRecord {
  /** The fold factor to unfold (fold.ts). */
  c: number;
  normalization: Normalization;
  config: Partial<SaeConfig>;
  tokens: number | null;
  metrics: Record<string, number | null> | null;
  inferenceThreshold: number | null;
}

/** Restores what an SAE Lab export recorded: fold factor, normalization, config. */
export function readSaeLab(lab: unknown): SaeLabRecord | null {
  if (!lab || typeof lab !== 'object') return null;
  const l = lab as Json;
  const n = (l.normalization ?? {}) as Json;
  const e = (l.export ?? {}) as Json;
  const c = typeof e.fold_factor === 'number' && e.fold_factor > 0 ? e.fold_factor : 1;
  let normalization: Normalization = { kind: 'none' };
  if (n.kind === 'scalar' && typeof n.scale === 'number') normalization = { kind: 'scalar', scale: n.scale };
  else if (n.kind === 'paper') normalization = { kind: 'paper' };
  return {
    c,
    normalization,
    config: (l.config ?? {}) as Partial<SaeConfig>,
    tokens: typeof l.tokens_trained === 'number' ? l.tokens_trained : null,
    metrics: (l.metrics ?? null) as Record<string, number | null> | null,
    inferenceThreshold: typeof l.inference_threshold === 'number' ? l.inference_threshold : null,
  };
}

export function parseJson(file: string, bytes: Uint8Array): Json {
  let o: unknown;
  try {
    o = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new DataError(file, `not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new DataError(file, 'not a JSON object');
  return o as Json;
}

/** A float tensor as float32, after checking presence, dtype and shape. */
export function floatTensor(
  file: string,
  tensors: Record<string, StTensorOut>,
  name: string,
  shape: number[],
  shapeDesc: string,
  /** The config file the expected shape was read from, named in a mismatch. */
  shapeFrom?: string,
): Float32Array {
  const t = tensors[name];
  if (!t) {
    throw new DataError(
      file,
      `missing tensor '${name}' ${shapeDesc} (file has: ${Object.keys(tensors).join(', ') || 'no tensors'})`,
    );
  }
  if (!['F32', 'F16', 'BF16', 'F64'].includes(t.dtype)) {
    throw new DataError(
      file,
      `tensor '${name}' has dtype ${t.dtype}; expected a float dtype (F32, F16, BF16 or F64)`,
    );
  }
  if (t.shape.length !== shape.length || t.shape.some((x, i) => x !== shape[i])) {
    throw new DataError(
      file,
      `tensor '${name}' has shape ${fmtShape(t.shape)}, expected ${shapeDesc} = ${fmtShape(shape)}${shapeFrom ? ` (from ${shapeFrom})` : ''}`,
    );
  }
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as Float64Array);
}

/** cfg[key] (or the fallback when absent) as a positive integer, else a DataError naming the file. */
export function intField(file: string, cfg: Json, key: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
    throw new DataError(file, `field '${key}' must be a positive integer, got ${JSON.stringify(cfg[key])}`);
  return v;
}
