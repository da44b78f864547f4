/**
 * The SAELens 6 writer: `cfg.json` (SAELens 6's layout, metadata.sae_lens_version 6.0.0; see
 * saelens6Config) + `sae_weights.safetensors` with
 *   W_enc [d_in, d_sae]  (the TRANSPOSE of our latent-major [N, d])
 *   b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in] (= our b_pre),
 * plus `threshold` [d_sae] (jumprelu) or b_gate/r_mag/b_mag [d_sae] instead of b_enc (gated),
 * and `sparsity.safetensors` (log10 firing density per latent) when the fire counts are known.
 * SAELens encodes `(x − b_dec) @ W_enc + b_enc` (apply_b_dec_to_input), TopK keeps the k largest
 * and ReLUs them, and decodes `acts @ W_dec + b_dec`: the same map as ours.
 */
import { type StTensorIn, writeSafetensors } from '../data/safetensors.ts';
import { type Activation, isBatchCut } from '../sae/config.ts';
import type { ParamsF32 } from '../sae/step-buffers.ts';
import { type InputRule, transpose } from './fold.ts';
import {
  type ExportInput,
  json,
  SAELENS_CFG,
  SAELENS_SPARSITY,
  SAELENS_WEIGHTS,
  type SaeLabBlock,
  type WeightDtype,
} from './sae-files.ts';

const TORCH_DTYPE: Record<WeightDtype, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

/** SAELens's architecture name for an activation, and a note for the reader (written in cfg.json and sae_lab), or null. */
export interface SaelensArchitecture {
  architecture: string;
  note: string | null;
}

/** How an activation is written for SAELens, and what the reader should know about it. */
export function saelensArchitecture(activation: Activation): SaelensArchitecture {
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
  arch: SaelensArchitecture,
  rule: InputRule,
  dtype: WeightDtype,
  lab: SaeLabBlock,
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

/** The `sparsity` tensor [N] to write, or null when the densities are not known. */
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

/** BatchTopK's learned θ from an export input, or a RangeError (it is what evaluation applies). */
function batchTopKThreshold(input: ExportInput): number {
  const t = input.inferenceThreshold;
  if (typeof t !== 'number' || Number.isNaN(t))
    throw new RangeError('export: a BatchTopK SAE needs the inference threshold learned in training');
  return t;
}

/**
 * sae_weights.safetensors' tensors for the activation: W_enc [d, N], W_dec [N, d], b_dec [d], and
 * b_enc [N] with threshold [N] (JumpReLU, ProLU, BatchTopK family) or b_gate, r_mag, b_mag [N] (gated).
 */
function saelensTensors(
  input: ExportInput,
  p: ParamsF32,
  activation: Activation,
  dtype: WeightDtype,
): Record<string, StTensorIn> {
  const { d, nLatents: N } = input.config;
  const W_enc = { dtype, shape: [d, N], data: transpose(p.W_enc, N, d) };
  const W_dec = { dtype, shape: [N, d], data: p.W_dec };
  const b_dec = { dtype, shape: [d], data: p.b_pre };
  const vec = (data: Float32Array) => ({ dtype, shape: [N], data });
  if (activation === 'gated') {
    const e = p.extra as Float32Array;
    return {
      W_enc,
      b_gate: vec(p.b_enc),
      r_mag: vec(e.subarray(0, N)),
      b_mag: vec(e.subarray(N, 2 * N)),
      W_dec,
      b_dec,
    };
  }
  if (activation === 'jumprelu' || isBatchCut(activation)) {
    const e = p.extra as Float32Array;
    const threshold = new Float32Array(N);
    // BatchTopK: one θ for every latent (θ < 0, never learned: every positive activation passes).
    if (isBatchCut(activation)) threshold.fill(Math.max(0, batchTopKThreshold(input)));
    else for (let i = 0; i < N; i++) threshold[i] = Math.exp(e[i]);
    return { W_enc, b_enc: vec(p.b_enc), W_dec, b_dec, threshold: vec(threshold) };
  }
  if (activation === 'prolu') {
    // ProLU a = m·[m>0]·[m+b>0] = JumpReLU(m; threshold max(0, −b)) with b_enc' = 0 (see saelensArchitecture).
    const threshold = new Float32Array(N);
    for (let i = 0; i < N; i++) threshold[i] = Math.max(0, -p.b_enc[i]);
    return { W_enc, b_enc: vec(new Float32Array(N)), W_dec, b_dec, threshold: vec(threshold) };
  }
  return { W_enc, b_enc: vec(p.b_enc), W_dec, b_dec };
}

/**
 * The SAELens 6 files of an SAE whose normalization is already folded into `p` (fold.ts):
 * cfg.json, sae_weights.safetensors and, when firing densities are known, sparsity.safetensors.
 */
export function exportSaelens(
  input: ExportInput,
  p: ParamsF32,
  arch: SaelensArchitecture,
  rule: InputRule,
  dtype: WeightDtype,
  lab: SaeLabBlock,
): Map<string, Uint8Array> {
  const activation: Activation = input.config.activation ?? 'topk';
  const files = new Map<string, Uint8Array>();
  files.set(SAELENS_CFG, json(saelens6Config(input, arch, rule, dtype, lab)));
  files.set(SAELENS_WEIGHTS, writeSafetensors(saelensTensors(input, p, activation, dtype)));
  const sparsity = exportLogSparsity(input, input.config.nLatents);
  // Always float32, as SAELens writes it (act_freq_scores is a float32 tensor).
  if (sparsity)
    files.set(
      SAELENS_SPARSITY,
      writeSafetensors({ sparsity: { dtype: 'F32', shape: [input.config.nLatents], data: sparsity } }),
    );
  return files;
}
