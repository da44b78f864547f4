/**
 * Export and import of trained SAEs in the layouts the PyTorch tools read and write:
 *
 *  - SAELens 6: `cfg.json` (SAELens 6's layout, metadata.sae_lens_version ≥ 6; see
 *    saelens6Config) + `sae_weights.safetensors` with
 *      W_enc [d_in, d_sae]  (the TRANSPOSE of our latent-major [N, d])
 *      b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in] (= our b_pre),
 *    plus `threshold` [d_sae] (jumprelu) or b_gate/r_mag/b_mag [d_sae] instead of b_enc (gated),
 *    and `sparsity.safetensors` (log10 firing density per latent) when the fire counts are known.
 *    SAELens encodes `(x − b_dec) @ W_enc + b_enc` (apply_b_dec_to_input), TopK keeps the k
 *    largest and ReLUs them, and decodes `acts @ W_dec + b_dec`: the same map as ours.
 *    Import reads SAELens 6 configs and the flat pre-6 ones (as SAELens's handle_pre_6_0_config
 *    reads them), and refuses an architecture it cannot hold (batchtopk training configs,
 *    transcoders, …) instead of loading it as another.
 *  - openai/sparse_autoencoder state-dict names (model.py, `Autoencoder`):
 *      pre_bias [d], latent_bias [N], encoder.weight [N, d] (nn.Linear(n_inputs, n_latents)),
 *      decoder.weight [d, N] (nn.Linear(n_latents, n_inputs)), stats_last_nonzero [N] (int64),
 *    in `openai_sae.safetensors`, with `openai_sae.json` beside it for the non-tensor fields
 *    (`activation`, `activation_state_dict`, `normalize`) that its `state_dict()` mixes in.
 *  - EleutherAI sparsify (import only; see scaleout.ts for its trainer config): a folder per
 *    hookpoint with `cfg.json` + `sae.safetensors` holding encoder.weight [N, d], encoder.bias [N],
 *    W_dec [N, d], b_dec [d]. Sparsify encodes relu(encoder(x − b_dec)) then TopK, which keeps the
 *    same positive values as TopK-then-ReLU, so the weights map one to one onto ours.
 *
 * Input normalization. Our SAE is trained on u = normalize(x) (see forward.ts). An export must
 * work on what its tool feeds it, so the normalization is folded into the weights where a tool
 * cannot express it. With y the exported model's input and u = c·y:
 *
 *   pre = (c·y − b_pre)·W_encᵀ + b_enc = (y − b_pre/c)·(c·W_enc)ᵀ + b_enc
 *   ŷ   = û / c = Σ v·(W_dec / c) + b_pre / c
 *
 * so W_enc' = c·W_enc, b_enc' = b_enc, W_dec' = W_dec / c, b_dec' = b_pre / c — exactly SAELens's
 * own `fold_activation_norm_scaling_factor`, after which SAELens sets normalize_activations
 * "none". The cases:
 *   - scalar (u = s·x): c = s; the export takes RAW activations, normalize_activations "none".
 *     With `foldScalar: false` the weights stay as trained and the cfg says
 *     "expected_average_only_in"; SAELens 6 does not rescale inputs at inference for that (it
 *     folds a factor only for its registered pretrained SAEs), so the caller multiplies inputs by
 *     sae_lab.normalization.scale; the exact scale is recorded in both cases.
 *   - paper (u = (x − μ)/‖x − μ‖ per token): a per-token factor cannot be folded into weights.
 *     SAELens ("layer_norm") and openai (`normalize=True`) both apply LN(x) = (x − μ)/(std + 1e-5)
 *     with the unbiased std, i.e. LN(x) ≈ sqrt(d − 1)·u (up to that ε), and map back as
 *     ŷ·std + μ. So c = 1/sqrt(d − 1) is folded and the tool's own per-token normalization does
 *     the rest; the result differs from ours only by the ε in the denominator.
 *   - none: c = 1, weights written as trained (bit-identical).
 * Every export also carries a `sae_lab` block (our config, normalization kind and scale, fold
 * factor, tokens trained, metrics) so that import restores the trained weights exactly as the
 * tool-independent description says.
 */
import { unzipSync, zipSync } from 'fflate';
import { crc32 } from '../data/crc32.ts';
import { DataError, fmtShape } from '../data/errors.ts';
import { readSafetensors, type StTensorIn, type StTensorOut, writeSafetensors } from '../data/safetensors.ts';
import { type Activation, isBatchCut, type SaeConfig } from '../sae/config.ts';
import type { ParamsF32 } from '../sae/step.ts';
import type { Normalization } from './forward.ts';
import { torchStateDictToSafetensors } from './torch-pt.ts';

export type ExportFormat = 'saelens' | 'openai';
export type WeightDtype = 'F32' | 'F16' | 'BF16';

/** Where the activations came from (fills SAELens's model/hook fields; all optional). */
interface SourceInfo {
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

export interface ExportOptions {
  /** Default 'saelens'. */
  format?: ExportFormat;
  /** Tensor dtype in the file (default F32; F16/BF16 round to nearest even). */
  dtype?: WeightDtype;
  /** Fold the scalar normalization into the weights (default true); see the file comment. */
  foldScalar?: boolean;
}

const SAELENS_CFG = 'cfg.json';
const SAELENS_WEIGHTS = 'sae_weights.safetensors';
const OPENAI_WEIGHTS = 'openai_sae.safetensors';
const OPENAI_JSON = 'openai_sae.json';
const SPARSIFY_WEIGHTS = 'sae.safetensors';
/** SAELens's per-latent log10 firing density (constants.py SPARSITY_FILENAME, tensor `sparsity`). */
const SAELENS_SPARSITY = 'sparsity.safetensors';

/** What the exported model is fed: raw x, x·scale, or the tool's LayerNorm of x. */
type InputRule = 'raw' | 'scaled' | 'layer_norm';

const TORCH_DTYPE: Record<WeightDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/**
 * The factor c with u = c·y (u: our training input, y: the exported model's input).
 */
function foldFactor(norm: Normalization, d: number, foldScalar: boolean): { c: number; input: InputRule } {
  switch (norm.kind) {
    case 'none':
      return { c: 1, input: 'raw' };
    case 'scalar':
      if (!(norm.scale > 0) || !Number.isFinite(norm.scale))
        throw new RangeError(`export: scalar normalization needs a positive finite scale, got ${norm.scale}`);
      return foldScalar ? { c: norm.scale, input: 'raw' } : { c: 1, input: 'scaled' };
    case 'paper':
      if (d < 2) throw new RangeError('export: per-token normalization needs d ≥ 2');
      return { c: 1 / Math.sqrt(d - 1), input: 'layer_norm' };
  }
}

/**
 * Folds c into the weights (see the file comment): W_enc·c, W_dec/c, b_pre/c. c = 1 returns the
 * same arrays (no copy, bit-identical). Computed in float64, rounded once to float32.
 */
function foldParams(p: ParamsF32, c: number): ParamsF32 {
  if (c === 1) return p;
  return {
    W_enc: p.W_enc.map((w) => w * c),
    b_enc: p.b_enc,
    W_dec: p.W_dec.map((w) => w / c),
    b_pre: p.b_pre.map((w) => w / c),
    // W_enc·(u − b_pre) is unchanged by the fold, so the per-latent parameters are too.
    ...(p.extra ? { extra: p.extra } : {}),
  };
}

/** Inverse of foldParams. */
function unfoldParams(p: ParamsF32, c: number): ParamsF32 {
  if (c === 1) return p;
  return {
    W_enc: p.W_enc.map((w) => w / c),
    b_enc: p.b_enc,
    W_dec: p.W_dec.map((w) => w * c),
    b_pre: p.b_pre.map((w) => w * c),
    ...(p.extra ? { extra: p.extra } : {}),
  };
}

/** [rows, cols] row-major → [cols, rows] row-major. */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = a[base + c];
  }
  return out;
}

function checkParams(p: ParamsF32, d: number, N: number, activation: Activation): void {
  const want: ['W_enc' | 'b_enc' | 'W_dec' | 'b_pre', number][] = [
    ['W_enc', N * d],
    ['b_enc', N],
    ['W_dec', N * d],
    ['b_pre', d],
  ];
  for (const [name, n] of want) {
    if (p[name].length !== n)
      throw new RangeError(`export: ${name} has ${p[name].length} values, expected ${n} (d=${d}, N=${N})`);
  }
  if ((activation === 'gated' || activation === 'jumprelu') && p.extra?.length !== 2 * N)
    throw new RangeError(
      `export: ${activation} needs params.extra with 2N = ${2 * N} values, got ${p.extra ? p.extra.length : 'none'}`,
    );
}

/** BatchTopK's learned θ from an export input, or a RangeError (it is what evaluation applies). */
function batchTopKThreshold(input: ExportInput): number {
  const t = input.inferenceThreshold;
  if (typeof t !== 'number' || Number.isNaN(t))
    throw new RangeError('export: a BatchTopK SAE needs the inference threshold learned in training');
  return t;
}

/** How an activation is written for SAELens, and what the reader should know about it. */
function saelensArchitecture(activation: Activation): { architecture: string; note: string | null } {
  switch (activation) {
    case 'topk':
      return { architecture: 'topk', note: null };
    case 'batchtopk':
      return {
        architecture: 'jumprelu',
        note: 'trained as BatchTopK (the B·k largest activations of a batch); exported as JumpReLU with threshold = the inference threshold learned in training (a running estimate of the smallest activation the batch selection kept) for every latent, as SAELens saves its BatchTopK SAEs',
      };
    case 'matryoshka':
      return {
        architecture: 'jumprelu',
        note: 'trained as Matryoshka BatchTopK (nested prefixes of the dictionary, in latent order, each reconstruct the input; config.matryoshkaWidths); exported as JumpReLU with threshold = the learned BatchTopK inference threshold for every latent, as SAELens saves its Matryoshka BatchTopK SAEs. The latent order is the nesting: the first m latents are the width-m dictionary',
      };
    case 'relu':
      return { architecture: 'standard', note: null };
    case 'jumprelu':
      return { architecture: 'jumprelu', note: 'threshold = exp(log_threshold)' };
    case 'prolu':
      return {
        architecture: 'jumprelu',
        note: 'trained as ProLU: a = m·[m>0]·[m+b>0], m = W_enc(x−b_dec), which equals JumpReLU with b_enc = 0 and threshold = max(0, −b); exported that way (import restores b = −threshold, exact wherever b < 0; b ≥ 0 becomes 0, the same function)',
      };
    case 'gated':
      return { architecture: 'gated', note: 'b_gate = our b_enc; r_mag, b_mag as trained' };
  }
}

const LOG_THRESHOLD_FLOOR = Math.log(1.1754943508222875e-38); // smallest normal float32

function saeLabBlock(
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

/**
 * The SAELens version whose cfg.json layout this writes. SAELens reads `metadata.sae_lens_version`
 * (loading/pretrained_sae_loaders.py, handle_config_defaulting): below 6.0.0-rc.0, or absent, the
 * cfg goes through its pre-6.0 conversion (handle_pre_6_0_config); from 6 on it is read as is.
 * The layout below is the same in SAELens 6.0.0 and 6.18.0.
 */
const SAELENS_FORMAT_VERSION = '6.0.0';

/**
 * cfg.json as SAELens 6 writes it (saes/sae.py SAEConfig.to_dict, or
 * TrainingSAEConfig.get_inference_sae_cfg_dict from its training runner): the config dataclass's
 * fields (d_in, d_sae, dtype, device, apply_b_dec_to_input, normalize_activations,
 * reshape_activations, metadata, then the architecture's own: TopKSAEConfig's k and
 * rescale_acts_by_decoder_norm; standard, jumprelu and gated have none), then `architecture`.
 * `metadata` holds the versions and the source fields its runner sets (_set_sae_metadata);
 * SAELens's SAEMetadata reads a missing key as None, so an unknown source field is written null.
 * `sae_lab` is ours: SAELens's SAEConfig.from_dict keeps only its dataclass fields, so it is ignored.
 */
function saelens6Config(
  input: ExportInput,
  arch: { architecture: string; note: string | null },
  rule: InputRule,
  dtype: WeightDtype,
  lab: ReturnType<typeof saeLabBlock>,
) {
  const s = input.source ?? {};
  const metadata: Record<string, unknown> = {
    sae_lens_version: SAELENS_FORMAT_VERSION,
    // not trained by SAELens (its own converters of other tools' SAEs write null here too)
    sae_lens_training_version: null,
    model_name: s.modelName ?? null,
    hook_name: s.hookName ?? null,
    hook_head_index: s.hookHeadIndex ?? null,
    context_size: s.contextSize ?? null,
    prepend_bos: s.prependBos ?? null,
    dataset_path: s.datasetPath ?? null,
    // SAELens 6 has no hook_layer (it reads the layer off hook_name); kept when known, as extra
    // metadata, which SAEMetadata stores and ignores.
    ...(s.hookLayer !== undefined ? { hook_layer: s.hookLayer } : {}),
    ...(arch.note ? { sae_lab_architecture_note: arch.note } : {}),
  };
  return {
    d_in: input.config.d,
    d_sae: input.config.nLatents,
    dtype: TORCH_DTYPE[dtype],
    device: 'cpu',
    apply_b_dec_to_input: true,
    normalize_activations:
      rule === 'scaled' ? 'expected_average_only_in' : rule === 'layer_norm' ? 'layer_norm' : 'none',
    reshape_activations: 'none',
    metadata,
    // The decoder is written as trained (not rescaled), so TopK selects on the plain pre-activations.
    ...(arch.architecture === 'topk' ? { k: input.config.k, rescale_acts_by_decoder_norm: false } : {}),
    architecture: arch.architecture,
    sae_lab: lab,
  };
}

/** SAELens's never-fired floor: log10(density + 1e-10) (training/sae_trainer.py, _log_feature_sparsity). */
export const LOG_SPARSITY_EPS = 1e-10;

/**
 * log10 of each latent's firing density, as SAELens writes `sparsity` in sparsity.safetensors:
 * log10(fires / tokens + 1e-10), so a latent that never fired gets −10. Computed in float64,
 * rounded once to float32. A density above 1 (inconsistent counts) is clamped to 1.
 */
export function logFeatureSparsity(fires: ArrayLike<number>, tokens: number): Float32Array {
  if (!(tokens > 0) || !Number.isFinite(tokens))
    throw new RangeError(`logFeatureSparsity: tokens must be positive, got ${tokens}`);
  const out = new Float32Array(fires.length);
  for (let i = 0; i < fires.length; i++)
    out[i] = Math.log10(Math.min(1, fires[i] / tokens) + LOG_SPARSITY_EPS);
  return out;
}

/** The `sparsity` tensor to write, or null when the densities are not known. */
function exportLogSparsity(input: ExportInput, N: number): Float32Array | null {
  if (input.logSparsity) {
    if (input.logSparsity.length !== N)
      throw new RangeError(`export: logSparsity has ${input.logSparsity.length} values, expected N = ${N}`);
    return input.logSparsity;
  }
  if (!input.firesTotal || !input.tokensTrained) return null;
  if (input.firesTotal.length !== N)
    throw new RangeError(`export: firesTotal has ${input.firesTotal.length} values, expected N = ${N}`);
  return logFeatureSparsity(input.firesTotal, input.tokensTrained);
}

const json = (o: unknown) => new TextEncoder().encode(`${JSON.stringify(o, null, 2)}\n`);

/**
 * Writes a trained SAE in a PyTorch tool's layout.
 * @returns file name → bytes (SAELens: cfg.json, sae_weights.safetensors and, when firing
 *   densities are known, sparsity.safetensors; openai: two files; zip them with zipExport)
 */
export function exportSae(input: ExportInput, opts: ExportOptions = {}): Map<string, Uint8Array> {
  const format = opts.format ?? 'saelens';
  const dtype = opts.dtype ?? 'F32';
  const { d, nLatents: N, k } = input.config;
  const activation: Activation = input.config.activation ?? 'topk';
  checkParams(input.params, d, N, activation);
  const { c, input: rule } = foldFactor(input.normalization, d, opts.foldScalar ?? true);
  const p = foldParams(input.params, c);
  const arch = saelensArchitecture(activation);
  const lab = saeLabBlock(input, c, rule, format, format === 'saelens' ? arch.note : null);
  const files = new Map<string, Uint8Array>();
  const isTopK = activation === 'topk' || isBatchCut(activation);

  if (format === 'saelens') {
    files.set(SAELENS_CFG, json(saelens6Config(input, arch, rule, dtype, lab)));
    const W_enc = { dtype, shape: [d, N], data: transpose(p.W_enc, N, d) };
    const W_dec = { dtype, shape: [N, d], data: p.W_dec };
    const b_dec = { dtype, shape: [d], data: p.b_pre };
    let tensors: Record<string, StTensorIn>;
    if (activation === 'gated') {
      const e = p.extra as Float32Array;
      tensors = {
        W_enc,
        b_gate: { dtype, shape: [N], data: p.b_enc },
        r_mag: { dtype, shape: [N], data: e.subarray(0, N) },
        b_mag: { dtype, shape: [N], data: e.subarray(N, 2 * N) },
        W_dec,
        b_dec,
      };
    } else if (activation === 'jumprelu' || isBatchCut(activation)) {
      const e = p.extra as Float32Array;
      const threshold = new Float32Array(N);
      // BatchTopK: one θ for every latent (θ < 0, never learned: every positive activation passes).
      if (isBatchCut(activation)) threshold.fill(Math.max(0, batchTopKThreshold(input)));
      else for (let i = 0; i < N; i++) threshold[i] = Math.exp(e[i]);
      tensors = {
        W_enc,
        b_enc: { dtype, shape: [N], data: p.b_enc },
        W_dec,
        b_dec,
        threshold: { dtype, shape: [N], data: threshold },
      };
    } else if (activation === 'prolu') {
      // ProLU a = m·[m>0]·[m+b>0] = JumpReLU(m; threshold max(0, −b)) with b_enc' = 0 (see saelensArchitecture).
      const threshold = new Float32Array(N);
      for (let i = 0; i < N; i++) threshold[i] = Math.max(0, -p.b_enc[i]);
      tensors = {
        W_enc,
        b_enc: { dtype, shape: [N], data: new Float32Array(N) },
        W_dec,
        b_dec,
        threshold: { dtype, shape: [N], data: threshold },
      };
    } else tensors = { W_enc, b_enc: { dtype, shape: [N], data: p.b_enc }, W_dec, b_dec };
    files.set(SAELENS_WEIGHTS, writeSafetensors(tensors));
    const sparsity = exportLogSparsity(input, N);
    // Always float32, as SAELens writes it (act_freq_scores is a float32 tensor).
    if (sparsity)
      files.set(
        SAELENS_SPARSITY,
        writeSafetensors({ sparsity: { dtype: 'F32', shape: [N], data: sparsity } }),
      );
    return files;
  }

  if (isBatchCut(activation) || (!isTopK && activation !== 'relu'))
    throw new RangeError(
      `export: the openai layout holds TopK and ReLU SAEs only; export ${activation} in the SAELens layout`,
    );

  // openai/sparse_autoencoder: stats_last_nonzero counts forward calls (steps) since a latent
  // was last nonzero; ours counts tokens, so divide by the batch size.
  const bs = input.config.batchSize ?? 1;
  const stats = new Int32Array(N);
  if (input.tokensSince) {
    for (let i = 0; i < N; i++) stats[i] = Math.min(0x7fffffff, Math.floor(input.tokensSince[i] / bs));
  }
  files.set(
    OPENAI_JSON,
    json({
      n_latents: N,
      n_inputs: d,
      activation: isTopK ? 'TopK' : 'ReLU',
      activation_state_dict: isTopK ? { k } : {},
      // openai's Autoencoder.from_state_dict turns normalize on whenever activation is TopK; build
      // Autoencoder(n_latents, n_inputs, TopK(k), normalize=<this>) and load_state_dict instead.
      normalize: rule === 'layer_norm',
      tied: false,
      stats_last_nonzero_unit: `steps of ${bs} tokens`,
      sae_lab: lab,
    }),
  );
  files.set(
    OPENAI_WEIGHTS,
    writeSafetensors({
      pre_bias: { dtype, shape: [d], data: p.b_pre },
      latent_bias: { dtype, shape: [N], data: p.b_enc },
      'encoder.weight': { dtype, shape: [N, d], data: p.W_enc },
      'decoder.weight': { dtype, shape: [d, N], data: transpose(p.W_dec, N, d) },
      stats_last_nonzero: { dtype: 'I64', shape: [N], data: stats },
    }),
  );
  return files;
}

/** Zips files (deflate level 6; safetensors of random floats barely compress, but json does). */
export function zipExport(files: Map<string, Uint8Array>): Uint8Array {
  const z: Record<string, Uint8Array> = {};
  for (const [name, bytes] of files) z[name] = bytes;
  return zipSync(z, { level: 6 });
}

/**
 * Unzips into path → bytes, skipping directory entries and macOS resource forks. Every member's
 * CRC-32 and size are checked against the central directory (fflate's unzipSync checks neither,
 * so a corrupt deflate stream that still inflates would otherwise import as different weights).
 */
export function filesFromZip(bytes: Uint8Array, name = 'zip'): Map<string, Uint8Array> {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (e) {
    throw new DataError(name, `not a readable zip file (${(e as Error).message})`);
  }
  for (const [member, [crc, size]] of zipDirectoryChecks(bytes, name)) {
    const b = entries[member];
    if (!b) continue;
    if (size !== null && b.length !== size)
      throw new DataError(
        name,
        `member ${member}: ${b.length} bytes, the zip directory says ${size}; corrupt archive`,
      );
    if (crc32(b) !== crc) throw new DataError(name, `member ${member}: CRC mismatch, the archive is corrupt`);
  }
  const out = new Map<string, Uint8Array>();
  for (const [p, b] of Object.entries(entries)) {
    if (p.endsWith('/') || p.startsWith('__MACOSX/') || p.split('/').pop()!.startsWith('._')) continue;
    out.set(p, b);
  }
  return out;
}

/**
 * member name → [CRC-32, uncompressed size or null when zip64 moved it] from the central directory,
 * named as fflate names them (UTF-8 when flag bit 11 is set, else latin1). Called after unzipSync
 * accepted the archive, but every read is still bounds-checked.
 */
function zipDirectoryChecks(bytes: Uint8Array, name: string): Map<string, [number, number | null]> {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const corrupt = () => new DataError(name, 'corrupt zip central directory');
  let e = bytes.length - 22;
  while (e >= 0 && v.getUint32(e, true) !== 0x06054b50) e--;
  if (e < 0) throw corrupt();
  let count = v.getUint16(e + 10, true);
  let p = v.getUint32(e + 16, true);
  if (e >= 20 && v.getUint32(e - 20, true) === 0x07064b50) {
    const z = v.getUint32(e - 12, true); // fflate reads the low 32 bits of the zip64 record offset
    if (z + 56 <= bytes.length && v.getUint32(z, true) === 0x06064b50) {
      count = v.getUint32(z + 32, true);
      p = v.getUint32(z + 48, true);
    }
  }
  const out = new Map<string, [number, number | null]>();
  for (let k = 0; k < count; k++) {
    if (p + 46 > bytes.length || v.getUint32(p, true) !== 0x02014b50) throw corrupt();
    const utf8 = (v.getUint16(p + 8, true) & 0x800) !== 0;
    const size = v.getUint32(p + 24, true);
    const nameLen = v.getUint16(p + 28, true);
    if (p + 46 + nameLen > bytes.length) throw corrupt();
    const member = new TextDecoder(utf8 ? 'utf-8' : 'latin1').decode(
      bytes.subarray(p + 46, p + 46 + nameLen),
    );
    out.set(member, [v.getUint32(p + 16, true), size === 0xffffffff ? null : size]);
    p += 46 + nameLen + v.getUint16(p + 30, true) + v.getUint16(p + 32, true);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Import

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

type Files = Map<string, Uint8Array>;
type Json = Record<string, unknown>;

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

function isZip(b: Uint8Array): boolean {
  return b.length >= 4 && ZIP_MAGIC.every((x, i) => b[i] === x);
}

function parseJson(file: string, bytes: Uint8Array): Json {
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
function floatTensor(
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

function intField(file: string, cfg: Json, key: string, fallback?: number): number {
  const v = cfg[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
    throw new DataError(file, `field '${key}' must be a positive integer, got ${JSON.stringify(cfg[key])}`);
  return v;
}

/** Restores what an SAE Lab export recorded: fold factor, normalization, config. */
function readSaeLab(lab: unknown): {
  c: number;
  normalization: Normalization;
  config: Partial<SaeConfig>;
  tokens: number | null;
  metrics: Record<string, number | null> | null;
  inferenceThreshold: number | null;
} | null {
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

/** The major version of a SAELens version string ("6.18.0", "6.0.0-rc.1"), or null. */
function saelensMajor(v: unknown): number | null {
  const m = typeof v === 'string' ? /^\s*v?(\d+)/.exec(v) : null;
  return m ? Number(m[1]) : null;
}

/** Why a SAELens architecture SAE Lab cannot hold is refused (SAELens's registry names). */
const SAELENS_REFUSED: Record<string, string> = {
  batchtopk:
    'a SAELens training config; SAELens saves a trained BatchTopK SAE as jumprelu (save_inference_model)',
  matryoshka_batchtopk:
    'a SAELens training config; SAELens saves a trained BatchTopK SAE as jumprelu (save_inference_model)',
  transcoder: 'a transcoder predicts another activation, not its input',
  skip_transcoder: 'a transcoder predicts another activation, not its input',
  jumprelu_transcoder: 'a transcoder predicts another activation, not its input',
};

function importSaelens(dir: string, files: Files): ImportedSae {
  const cfgName = join(dir, SAELENS_CFG);
  const wName = join(dir, SAELENS_WEIGHTS);
  const cfgBytes = files.get(cfgName);
  if (!cfgBytes) throw new DataError(cfgName, `missing: SAELens needs cfg.json beside ${SAELENS_WEIGHTS}`);
  const cfg = parseJson(cfgName, cfgBytes);
  const warnings: string[] = [];
  const meta0 =
    cfg.metadata && typeof cfg.metadata === 'object' && !Array.isArray(cfg.metadata)
      ? (cfg.metadata as Json)
      : {};
  // SAELens's own rule (handle_config_defaulting): the version at the top level, else in metadata;
  // below 6, or none, the flat pre-6.0 layout.
  const version = cfg.sae_lens_version || meta0.sae_lens_version;
  const v6 = (saelensMajor(version) ?? 0) >= 6;
  let arch: string;
  let act: string;
  let kRaw: unknown;
  if (v6) {
    if (typeof cfg.architecture !== 'string')
      throw new DataError(cfgName, `SAELens ${version} config without 'architecture'`);
    arch = cfg.architecture;
    act = arch === 'topk' ? 'topk' : 'relu';
    kRaw = cfg.k;
  } else {
    // handle_pre_6_0_config: activation_fn_str is activation_fn, architecture defaults to
    // 'standard', and activation 'topk' with activation_fn_kwargs.k becomes architecture 'topk'.
    arch = typeof cfg.architecture === 'string' ? cfg.architecture : 'standard';
    act = String(cfg.activation_fn_str ?? cfg.activation_fn ?? (arch === 'topk' ? 'topk' : 'relu'));
    const kw = (cfg.activation_fn_kwargs ?? {}) as Json;
    if (act === 'topk') arch = arch === 'standard' ? 'topk' : arch;
    kRaw = cfg.k ?? kw.k;
  }
  const lab0 = readSaeLab(cfg.sae_lab);
  const recorded = lab0?.config.activation;
  let activation: Activation;
  // An older SAE Lab BatchTopK export (architecture topk, no threshold) was written as per-token TopK.
  if (arch === 'topk') activation = 'topk';
  else if (arch === 'standard' && act === 'relu') activation = 'relu';
  else if (arch === 'jumprelu' && act === 'relu') activation = recorded === 'prolu' ? 'prolu' : 'jumprelu';
  else if (arch === 'gated' && act === 'relu') activation = 'gated';
  else {
    const why =
      SAELENS_REFUSED[arch] ??
      (act !== 'relu' ? `activation '${act}'` : 'not a SAELens architecture SAE Lab knows');
    throw new DataError(
      cfgName,
      `architecture '${arch}' is not supported (${why}); SAE Lab imports SAELens topk, standard (ReLU), jumprelu and gated SAEs`,
    );
  }
  const isTopK = activation === 'topk';
  const N0 = typeof cfg.d_sae === 'number' ? cfg.d_sae : 32;
  if (isTopK && v6 && kRaw === undefined) {
    kRaw = 100;
    warnings.push("no 'k' in a SAELens 6 topk config: SAELens's default k = 100 used");
  }
  const k = isTopK
    ? intField(cfgName, { k: kRaw }, 'k')
    : typeof lab0?.config.k === 'number'
      ? lab0.config.k
      : Math.min(32, N0);
  const { tensors } = readSafetensors(files.get(wName)!, wName);
  const d = intField(cfgName, cfg, 'd_in', tensors.W_enc?.shape[0]);
  const N = intField(cfgName, cfg, 'd_sae', tensors.W_enc?.shape[1]);
  // d_in and d_sae come from cfgName, so a shape mismatch names both files.
  const of = cfgName;
  const W_enc_t = floatTensor(wName, tensors, 'W_enc', [d, N], '[d_in, d_sae]', of);
  let b_enc = floatTensor(wName, tensors, activation === 'gated' ? 'b_gate' : 'b_enc', [N], '[d_sae]', of);
  let W_dec = floatTensor(wName, tensors, 'W_dec', [N, d], '[d_sae, d_in]', of);
  const b_dec = floatTensor(wName, tensors, 'b_dec', [d], '[d_in]', of);
  let W_enc = transpose(W_enc_t, d, N);
  if (isTopK && cfg.rescale_acts_by_decoder_norm === true) {
    // TopKSAE with rescale_acts_by_decoder_norm selects on pre·‖W_dec,i‖ and decodes a/‖W_dec,i‖;
    // folding the norms in (SAELens's _fold_norm_topk) gives the plain TopK of the same function.
    ({ W_enc, b_enc, W_dec } = foldDecoderNorms(wName, W_enc, b_enc, W_dec, d, N));
    warnings.push('rescale_acts_by_decoder_norm: decoder norms folded into the encoder (same function)');
  }
  let extra: Float32Array | undefined;
  let inferenceThreshold: number | undefined;
  if (activation === 'gated') {
    extra = new Float32Array(2 * N);
    extra.set(floatTensor(wName, tensors, 'r_mag', [N], '[d_sae]', of), 0);
    extra.set(floatTensor(wName, tensors, 'b_mag', [N], '[d_sae]', of), N);
  } else if (activation === 'jumprelu' || activation === 'prolu') {
    const threshold = floatTensor(wName, tensors, 'threshold', [N], '[d_sae]', of);
    if (activation === 'prolu') {
      // exported as JumpReLU with b_enc = 0 and threshold = max(0, −b): b = −threshold.
      const b = new Float32Array(N);
      for (let i = 0; i < N; i++) b[i] = threshold[i] > 0 ? -threshold[i] : 0;
      let zero = true;
      for (let i = 0; i < N; i++) if (b_enc[i] !== 0) zero = false;
      if (!zero) {
        activation = 'jumprelu';
        warnings.push('recorded as ProLU but b_enc is not zero: imported as JumpReLU');
      } else b_enc = b;
    }
    if (activation === 'jumprelu') {
      extra = new Float32Array(2 * N);
      let clamped = 0;
      for (let i = 0; i < N; i++) {
        const t = threshold[i];
        if (!(t > 0)) clamped++;
        extra[i] = t > 0 ? Math.log(t) : LOG_THRESHOLD_FLOOR;
      }
      if (clamped)
        warnings.push(
          `${clamped} JumpReLU threshold(s) ≤ 0 were raised to the smallest float32 (log threshold ${LOG_THRESHOLD_FLOOR.toFixed(2)})`,
        );
    }
    // An SAE Lab BatchTopK / Matryoshka export is JumpReLU with its learned θ for every latent: read
    // back as trained (per token with θ and the candidate cap, Matryoshka's prefixes), so evaluating
    // the export gives the numbers its run reported. Any other threshold stays JumpReLU.
    const theta = lab0?.inferenceThreshold;
    if (
      activation === 'jumprelu' &&
      (recorded === 'batchtopk' || recorded === 'matryoshka') &&
      typeof theta === 'number' &&
      threshold.every((t) => t === Math.fround(Math.max(0, theta)))
    ) {
      activation = recorded;
      extra = undefined;
      inferenceThreshold = theta;
    }
  }
  if (cfg.apply_b_dec_to_input === false) {
    if (activation === 'gated' || activation === 'prolu')
      throw new DataError(
        cfgName,
        `apply_b_dec_to_input false is not supported for ${activation} SAEs (the bias cannot be folded)`,
      );
    // pre = x·W_enc + b_enc = (x − b_dec)·W_enc + (b_enc + b_dec·W_enc): fold into b_enc.
    b_enc = b_enc.slice();
    for (let i = 0; i < N; i++) {
      let s = b_enc[i];
      for (let j = 0; j < d; j++) s += b_dec[j] * W_enc[i * d + j];
      b_enc[i] = s;
    }
    warnings.push(
      'apply_b_dec_to_input was false: b_dec·W_enc was added to b_enc (same function, rounded to float32)',
    );
  }
  if (cfg.finetuning_scaling_factor === true) {
    warnings.push('finetuning_scaling_factor is set; the scaling factor (a separate parameter) is ignored');
  }
  let params: ParamsF32 = { W_enc, b_enc, W_dec, b_pre: b_dec, ...(extra ? { extra } : {}) };
  const lab = lab0;
  let normalization: Normalization = { kind: 'none' };
  if (lab) {
    params = unfoldParams(params, lab.c);
    normalization = lab.normalization;
  } else if (cfg.normalize_activations === 'layer_norm') {
    params = unfoldParams(params, 1 / Math.sqrt(d - 1));
    normalization = { kind: 'paper' };
    warnings.push(
      "normalize_activations 'layer_norm' imported as per-token normalization (differs by LN's ε = 1e-5)",
    );
  } else if (cfg.normalize_activations && cfg.normalize_activations !== 'none') {
    warnings.push(
      `normalize_activations '${cfg.normalize_activations}' without a recorded scale: the weights expect inputs normalized by SAELens; imported as unnormalized`,
    );
  }
  // SAELens 6 keeps the source in metadata, the pre-6 layout at the top level.
  const meta = { ...cfg, ...meta0 };
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  const hookName = str(meta.hook_name);
  // SAELens 6 has no hook_layer; it reads the layer off the hook name (util.py,
  // extract_layer_from_tlens_hook_name: the first ".<digits>.").
  const layerInName = hookName ? /\.(\d+)\./.exec(hookName) : null;
  const sparsity = readLogSparsity(dir, files, N);
  return {
    format: 'saelens',
    path: dir,
    params,
    d,
    nLatents: N,
    k,
    activation,
    config: { ...(lab?.config ?? {}), d, nLatents: N, k, activation },
    normalization,
    source: {
      modelName: str(meta.model_name),
      hookName,
      hookLayer: num(meta.hook_layer) ?? (layerInName ? Number(layerInName[1]) : undefined),
      hookHeadIndex: num(meta.hook_head_index) ?? null,
      contextSize: num(meta.context_size),
      prependBos: typeof meta.prepend_bos === 'boolean' ? meta.prepend_bos : undefined,
      datasetPath: str(meta.dataset_path),
    },
    tokensTrained: lab?.tokens ?? null,
    metrics: lab?.metrics ?? null,
    logSparsity: sparsity,
    ...(inferenceThreshold !== undefined ? { inferenceThreshold } : {}),
    warnings,
    rawConfig: cfg,
  };
}

/**
 * Folds per-latent decoder norms n into the encoder: W_enc·n, b_enc·n, W_dec/n (float64, rounded
 * once). A zero-norm row cannot be folded.
 */
function foldDecoderNorms(
  file: string,
  W_enc: Float32Array,
  b_enc: Float32Array,
  W_dec: Float32Array,
  d: number,
  N: number,
): { W_enc: Float32Array; b_enc: Float32Array; W_dec: Float32Array } {
  const We = new Float32Array(N * d);
  const be = new Float32Array(N);
  const Wd = new Float32Array(N * d);
  for (let i = 0; i < N; i++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += W_dec[i * d + j] ** 2;
    const n = Math.sqrt(ss);
    if (!(n > 0) || !Number.isFinite(n))
      throw new DataError(file, `rescale_acts_by_decoder_norm with W_dec row ${i} of norm ${n}: cannot fold`);
    be[i] = b_enc[i] * n;
    for (let j = 0; j < d; j++) {
      We[i * d + j] = W_enc[i * d + j] * n;
      Wd[i * d + j] = W_dec[i * d + j] / n;
    }
  }
  return { W_enc: We, b_enc: be, W_dec: Wd };
}

/** SAELens's sparsity.safetensors beside the weights: tensor `sparsity` [d_sae], or null if absent. */
function readLogSparsity(dir: string, files: Files, N: number): Float32Array | null {
  const name = join(dir, SAELENS_SPARSITY);
  const bytes = files.get(name);
  if (!bytes) return null;
  const { tensors } = readSafetensors(bytes, name);
  return floatTensor(name, tensors, 'sparsity', [N], '[d_sae]', join(dir, SAELENS_CFG));
}

/**
 * The non-tensor entries of openai's state dict (`activation`, `activation_state_dict`, `normalize`)
 * as a state dict converted to safetensors carries them: `__metadata__` strings, JSON where the value
 * was not a string (`{"k": 32, "postact_fn": "ReLU"}`, `true`).
 */
function openaiMetadata(metadata: Record<string, string>): Json {
  const out: Json = {};
  for (const [key, v] of Object.entries(metadata)) {
    if (key === 'format') continue; // safetensors' own "pt"
    try {
      out[key] = /^[[{0-9tfn-]/.test(v) ? JSON.parse(v) : v;
    } catch {
      out[key] = v === 'True' ? true : v === 'False' ? false : v;
    }
  }
  return out;
}

function importOpenai(dir: string, files: Files, wName: string): ImportedSae {
  const { tensors, metadata } = readSafetensors(files.get(wName)!, wName);
  const jsonName = [...files.keys()].find((f) => dirOf(f) === dir && f.endsWith('.json'));
  const cfg = jsonName ? parseJson(jsonName, files.get(jsonName)!) : openaiMetadata(metadata);
  const warnings: string[] = [];
  const enc = tensors['encoder.weight'];
  const N = intField(jsonName ?? wName, cfg, 'n_latents', enc?.shape[0]);
  const d = intField(jsonName ?? wName, cfg, 'n_inputs', enc?.shape[1]);
  const W_enc = floatTensor(wName, tensors, 'encoder.weight', [N, d], '[n_latents, n_inputs]', jsonName);
  const b_enc = floatTensor(wName, tensors, 'latent_bias', [N], '[n_latents]', jsonName);
  const W_dec_t = floatTensor(wName, tensors, 'decoder.weight', [d, N], '[n_inputs, n_latents]', jsonName);
  const b_pre = floatTensor(wName, tensors, 'pre_bias', [d], '[n_inputs]', jsonName);
  const act = cfg.activation ?? 'TopK';
  if (act !== 'TopK' && act !== 'ReLU')
    throw new DataError(
      jsonName ?? wName,
      `activation '${act}' is not supported; SAE Lab imports TopK and ReLU SAEs in this layout`,
    );
  const asd = (cfg.activation_state_dict ?? {}) as Json;
  if (act === 'TopK' && asd.k === undefined && cfg.k === undefined)
    throw new DataError(
      jsonName ?? wName,
      `no k: expected activation_state_dict.k in a json beside ${basename(wName)}`,
    );
  const labK = (cfg.sae_lab as { config?: { k?: unknown } } | undefined)?.config?.k;
  const k =
    act === 'TopK'
      ? intField(jsonName ?? wName, { k: asd.k ?? cfg.k }, 'k')
      : typeof labK === 'number'
        ? labK
        : Math.min(32, N);
  // A BatchTopK SAE is never written in this layout now; older SAE Lab ones were per-token TopK.
  const activation: Activation = act === 'ReLU' ? 'relu' : 'topk';
  let params: ParamsF32 = { W_enc, b_enc, W_dec: transpose(W_dec_t, d, N), b_pre };
  const lab = readSaeLab(cfg.sae_lab);
  let normalization: Normalization = { kind: 'none' };
  if (lab) {
    params = unfoldParams(params, lab.c);
    normalization = lab.normalization;
  } else if (cfg.normalize === true || (cfg.normalize === undefined && act === 'TopK')) {
    // model.py's Autoencoder.from_state_dict: normalize = (activation == "TopK"), whatever else
    params = unfoldParams(params, 1 / Math.sqrt(d - 1));
    normalization = { kind: 'paper' };
    warnings.push("openai LN normalization imported as per-token normalization (differs by LN's ε = 1e-5)");
  }
  return {
    format: 'openai',
    path: dir,
    params,
    d,
    nLatents: N,
    k,
    activation,
    config: { ...(lab?.config ?? {}), d, nLatents: N, k, activation },
    normalization,
    source: {},
    tokensTrained: lab?.tokens ?? null,
    metrics: lab?.metrics ?? null,
    logSparsity: null,
    warnings,
    rawConfig: cfg,
  };
}

function importSparsify(dir: string, files: Files): ImportedSae {
  const cfgName = join(dir, 'cfg.json');
  const wName = join(dir, SPARSIFY_WEIGHTS);
  const cfg = files.has(cfgName) ? parseJson(cfgName, files.get(cfgName)!) : {};
  const where = files.has(cfgName) ? cfgName : wName;
  if (cfg.activation !== undefined && cfg.activation !== 'topk')
    throw new DataError(where, `activation '${cfg.activation}' is not TopK; only TopK SAEs can be imported`);
  if (cfg.transcode === true)
    throw new DataError(
      where,
      'this is a transcoder (transcode: true): it predicts another activation, not its input',
    );
  const { tensors } = readSafetensors(files.get(wName)!, wName);
  if (cfg.skip_connection === true || tensors.W_skip)
    throw new DataError(wName, 'has a linear skip connection (W_skip), which SAE Lab models do not have');
  const enc = tensors['encoder.weight'];
  const d = intField(where, cfg, 'd_in', enc?.shape[1]);
  const ef = typeof cfg.expansion_factor === 'number' ? cfg.expansion_factor : 0;
  const N = intField(where, { n: (cfg.num_latents as number) || ef * d || enc?.shape[0] }, 'n');
  const k = intField(where, cfg, 'k');
  const from = files.has(cfgName) ? cfgName : undefined;
  const params: ParamsF32 = {
    W_enc: floatTensor(wName, tensors, 'encoder.weight', [N, d], '[num_latents, d_in]', from),
    b_enc: floatTensor(wName, tensors, 'encoder.bias', [N], '[num_latents]', from),
    W_dec: floatTensor(wName, tensors, 'W_dec', [N, d], '[num_latents, d_in]', from),
    b_pre: floatTensor(wName, tensors, 'b_dec', [d], '[d_in]', from),
  };
  const warnings: string[] = [];
  if (cfg.multi_topk === true)
    warnings.push('trained with Multi-TopK; imported as a plain TopK SAE with the same k');
  return {
    format: 'sparsify',
    path: dir,
    params,
    d,
    nLatents: N,
    k,
    activation: 'topk',
    config: { d, nLatents: N, k, activation: 'topk' },
    normalization: { kind: 'none' },
    source: { hookName: dir ? basename(dir) : undefined },
    tokensTrained: null,
    metrics: null,
    logSparsity: null,
    warnings,
    rawConfig: cfg,
  };
}

const dirOf = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
const basename = (p: string) => p.slice(p.lastIndexOf('/') + 1);
const join = (dir: string, name: string) => (dir ? `${dir}/${name}` : name);

function normalizeFiles(input: Files | Uint8Array, zipName: string): Files {
  const raw = input instanceof Uint8Array ? filesFromZip(input, zipName) : input;
  const out: Files = new Map();
  for (const [p, b] of raw)
    out.set(
      p
        .replace(/\\/g, '/')
        .replace(/^(\.\/)+/, '')
        .replace(/^\/+/, ''),
      b,
    );
  return out;
}

/**
 * Finds and imports every SAE in a set of files (or a zip of them), one per folder: SAELens
 * (sae_weights.safetensors + cfg.json), sparsify (sae.safetensors [+ cfg.json], one folder per
 * hookpoint) or openai names (any other .safetensors holding pre_bias / encoder.weight /
 * decoder.weight, with an optional json beside it).
 * @throws DataError naming the file and the problem
 */
export function importSaes(input: Files | Uint8Array, opts: { name?: string } = {}): ImportedSae[] {
  if (!(input instanceof Uint8Array)) return importFileMap(input, 'input');
  // A zip's own name leads every message, so a problem inside it still names the file given.
  const zipName = opts.name ?? 'input';
  if (!isZip(input)) throw new DataError(zipName, 'not a zip file; pass a zip or a map of file name → bytes');
  try {
    return importFileMap(normalizeFiles(input, zipName), zipName);
  } catch (e) {
    if (e instanceof DataError && e.file !== zipName) throw new DataError(zipName, e.message);
    throw e;
  }
}

function importFileMap(input: Files, label: string): ImportedSae[] {
  const files = normalizeFiles(input, label);
  // openai's released SAEs are torch.save'd state dicts: read as the safetensors they would convert to
  for (const [name, bytes] of [...files])
    if (/\.pt$/i.test(name)) {
      files.delete(name);
      files.set(name.replace(/\.pt$/i, '.safetensors'), torchStateDictToSafetensors(bytes, name));
    }
  const dirs = [...new Set([...files.keys()].map(dirOf))].sort();
  const out: ImportedSae[] = [];
  for (const dir of dirs) {
    if (files.has(join(dir, SAELENS_WEIGHTS))) out.push(importSaelens(dir, files));
    else if (files.has(join(dir, SPARSIFY_WEIGHTS))) out.push(importSparsify(dir, files));
    else {
      for (const f of files.keys()) {
        if (dirOf(f) !== dir || !f.endsWith('.safetensors')) continue;
        const names = Object.keys(readSafetensors(files.get(f)!, f).tensors);
        if (names.includes('pre_bias') || names.includes('decoder.weight'))
          out.push(importOpenai(dir, files, f));
      }
    }
  }
  if (out.length === 0) {
    throw new DataError(
      label,
      `no SAE found: expected ${SAELENS_WEIGHTS} + ${SAELENS_CFG} (SAELens), ${SPARSIFY_WEIGHTS} + cfg.json (sparsify), or a .safetensors / torch .pt state dict with pre_bias/encoder.weight/decoder.weight (openai); got ${[...files.keys()].join(', ') || 'no files'}`,
    );
  }
  return out;
}

/**
 * Imports one SAE. With several (e.g. a sparsify run over many hookpoints) `path` picks the
 * folder; without it the call fails listing the choices.
 */
export function importSae(
  input: Files | Uint8Array,
  opts: { path?: string /** the zip's file name, for messages */; name?: string } = {},
): ImportedSae {
  const all = importSaes(input, { name: opts.name });
  if (opts.path !== undefined) {
    const hit = all.find((s) => s.path === opts.path);
    if (!hit)
      throw new DataError(
        opts.path || '(top level)',
        `no SAE in this folder; found: ${all.map((s) => s.path || '(top level)').join(', ')}`,
      );
    return hit;
  }
  if (all.length > 1) {
    throw new DataError(
      opts.name ?? 'input',
      `holds ${all.length} SAEs (${all.map((s) => s.path || '(top level)').join(', ')}); choose one with opts.path`,
    );
  }
  return all[0];
}
