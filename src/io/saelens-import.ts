/**
 * The SAELens reader: SAELens 6 configs and the flat pre-6 ones (as SAELens's
 * handle_pre_6_0_config reads them), with the weights laid out as saelens-export.ts describes.
 * An architecture SAE Lab cannot hold (batchtopk training configs, transcoders, …) is refused
 * instead of loaded as another; what the tool folds differently (decoder-norm rescaling, b_dec not
 * applied to the input, LayerNorm inputs) is folded into our form and said in a warning.
 */
import { DataError } from '../data/errors.ts';
import { readSafetensors, type StTensorOut } from '../data/safetensors.ts';
import type { Activation } from '../sae/config.ts';
import type { ParamsF32 } from '../sae/step-buffers.ts';
import { transpose, unfoldParams } from './fold.ts';
import type { Normalization } from './forward.ts';
import {
  type Files,
  floatTensor,
  type ImportedSae,
  intField,
  type Json,
  join,
  parseJson,
  readSaeLab,
  SAELENS_CFG,
  SAELENS_SPARSITY,
  SAELENS_WEIGHTS,
  type SaeLabRecord,
  type SourceInfo,
} from './sae-files.ts';

const LOG_THRESHOLD_FLOOR = Math.log(1.1754943508222875e-38); // smallest normal float32

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

/** The architecture, activation fn and k (unchecked) as SAELens reads a cfg, 6 or pre-6. */
function saelensCfgArchitecture(
  cfgName: string,
  cfg: Json,
  meta0: Json,
): { v6: boolean; arch: string; act: string; kRaw: unknown } {
  // SAELens's own rule (handle_config_defaulting): the version at the top level, else in metadata;
  // below 6, or none, the flat pre-6.0 layout.
  const version = cfg.sae_lens_version || meta0.sae_lens_version;
  if ((saelensMajor(version) ?? 0) >= 6) {
    if (typeof cfg.architecture !== 'string')
      throw new DataError(cfgName, `SAELens ${version} config without 'architecture'`);
    const arch = cfg.architecture;
    return { v6: true, arch, act: arch === 'topk' ? 'topk' : 'relu', kRaw: cfg.k };
  }
  // handle_pre_6_0_config: activation_fn_str is activation_fn, architecture defaults to
  // 'standard', and activation 'topk' with activation_fn_kwargs.k becomes architecture 'topk'.
  let arch = typeof cfg.architecture === 'string' ? cfg.architecture : 'standard';
  const act = String(cfg.activation_fn_str ?? cfg.activation_fn ?? (arch === 'topk' ? 'topk' : 'relu'));
  const kw = (cfg.activation_fn_kwargs ?? {}) as Json;
  if (act === 'topk') arch = arch === 'standard' ? 'topk' : arch;
  return { v6: false, arch, act, kRaw: cfg.k ?? kw.k };
}

/**
 * Our activation for a SAELens cfg (a DataError for one SAE Lab cannot hold), and k: TopK's, else
 * the recorded config's, else min(32, d_sae).
 */
function saelensActivationK(
  cfgName: string,
  cfg: Json,
  meta0: Json,
  lab: SaeLabRecord | null,
  warnings: string[],
): { activation: Activation; k: number } {
  const { v6, arch, act, kRaw } = saelensCfgArchitecture(cfgName, cfg, meta0);
  let activation: Activation;
  // An older SAE Lab BatchTopK export (architecture topk, no threshold) was written as per-token TopK.
  if (arch === 'topk') activation = 'topk';
  else if (arch === 'standard' && act === 'relu') activation = 'relu';
  else if (arch === 'jumprelu' && act === 'relu')
    activation = lab?.config.activation === 'prolu' ? 'prolu' : 'jumprelu';
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
  if (activation !== 'topk')
    return {
      activation,
      k:
        typeof lab?.config.k === 'number'
          ? lab.config.k
          : Math.min(32, typeof cfg.d_sae === 'number' ? cfg.d_sae : 32),
    };
  if (v6 && kRaw === undefined) {
    warnings.push("no 'k' in a SAELens 6 topk config: SAELens's default k = 100 used");
    return { activation, k: 100 };
  }
  return { activation, k: intField(cfgName, { k: kRaw }, 'k') };
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

/**
 * The tensors every architecture has, in our layout: W_enc, W_dec [N, d], b_enc [N] (gated's
 * b_gate), b_dec [d]; a TopK SAE that rescales by decoder norms gets them folded in.
 * `of` is the cfg the shapes were read from, named in a mismatch.
 */
function saelensCoreWeights(
  wName: string,
  of: string,
  cfg: Json,
  tensors: Record<string, StTensorOut>,
  activation: Activation,
  d: number,
  N: number,
  warnings: string[],
): { W_enc: Float32Array; b_enc: Float32Array; W_dec: Float32Array; b_dec: Float32Array } {
  const W_enc_t = floatTensor(wName, tensors, 'W_enc', [d, N], '[d_in, d_sae]', of);
  const b_enc = floatTensor(wName, tensors, activation === 'gated' ? 'b_gate' : 'b_enc', [N], '[d_sae]', of);
  const W_dec = floatTensor(wName, tensors, 'W_dec', [N, d], '[d_sae, d_in]', of);
  const b_dec = floatTensor(wName, tensors, 'b_dec', [d], '[d_in]', of);
  const W_enc = transpose(W_enc_t, d, N);
  if (activation === 'topk' && cfg.rescale_acts_by_decoder_norm === true) {
    // TopKSAE with rescale_acts_by_decoder_norm selects on pre·‖W_dec,i‖ and decodes a/‖W_dec,i‖;
    // folding the norms in (SAELens's _fold_norm_topk) gives the plain TopK of the same function.
    const folded = foldDecoderNorms(wName, W_enc, b_enc, W_dec, d, N);
    warnings.push('rescale_acts_by_decoder_norm: decoder norms folded into the encoder (same function)');
    return { ...folded, b_dec };
  }
  return { W_enc, b_enc, W_dec, b_dec };
}

/**
 * The activation's own parameters: gated's r_mag, b_mag and JumpReLU's log threshold (extra [2N]),
 * ProLU's b (b_enc [N], from the threshold), or an SAE Lab BatchTopK / Matryoshka export's θ. The
 * activation may change: ProLU with b_enc ≠ 0 becomes JumpReLU, a JumpReLU whose every threshold
 * is the recorded θ becomes the recorded BatchTopK / Matryoshka.
 */
function saelensActivationParams(
  wName: string,
  of: string,
  tensors: Record<string, StTensorOut>,
  activation0: Activation,
  b_enc0: Float32Array,
  lab: SaeLabRecord | null,
  N: number,
  warnings: string[],
): { activation: Activation; b_enc: Float32Array; extra?: Float32Array; inferenceThreshold?: number } {
  let activation = activation0;
  let b_enc = b_enc0;
  if (activation === 'gated') {
    const extra = new Float32Array(2 * N);
    extra.set(floatTensor(wName, tensors, 'r_mag', [N], '[d_sae]', of), 0);
    extra.set(floatTensor(wName, tensors, 'b_mag', [N], '[d_sae]', of), N);
    return { activation, b_enc, extra };
  }
  if (activation !== 'jumprelu' && activation !== 'prolu') return { activation, b_enc };
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
  if (activation === 'prolu') return { activation, b_enc };
  // An SAE Lab BatchTopK / Matryoshka export is JumpReLU with its learned θ for every latent: read
  // back as trained (per token with θ and the candidate cap, Matryoshka's prefixes), so evaluating
  // the export gives the numbers its run reported. Any other threshold stays JumpReLU.
  const recorded = lab?.config.activation;
  const theta = lab?.inferenceThreshold;
  const extra = new Float32Array(2 * N);
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
  if (
    (recorded === 'batchtopk' || recorded === 'matryoshka') &&
    typeof theta === 'number' &&
    threshold.every((t) => t === Math.fround(Math.max(0, theta)))
  )
    return { activation: recorded, b_enc, inferenceThreshold: theta };
  return { activation, b_enc, extra };
}

/**
 * b_enc [N] for apply_b_dec_to_input: b_enc as read, or, when the cfg sets it false,
 * pre = x·W_enc + b_enc = (x − b_dec)·W_enc + (b_enc + b_dec·W_enc) folded into a new b_enc.
 */
function foldBDecIntoBEnc(
  cfgName: string,
  cfg: Json,
  activation: Activation,
  w: { W_enc: Float32Array; b_enc: Float32Array; b_dec: Float32Array },
  d: number,
  N: number,
  warnings: string[],
): Float32Array {
  if (cfg.apply_b_dec_to_input !== false) return w.b_enc;
  if (activation === 'gated' || activation === 'prolu')
    throw new DataError(
      cfgName,
      `apply_b_dec_to_input false is not supported for ${activation} SAEs (the bias cannot be folded)`,
    );
  const b_enc = w.b_enc.slice();
  for (let i = 0; i < N; i++) {
    let s = b_enc[i];
    for (let j = 0; j < d; j++) s += w.b_dec[j] * w.W_enc[i * d + j];
    b_enc[i] = s;
  }
  warnings.push(
    'apply_b_dec_to_input was false: b_dec·W_enc was added to b_enc (same function, rounded to float32)',
  );
  return b_enc;
}

/**
 * The input normalization the weights expect, and the weights unfolded from it (fold.ts): as an
 * SAE Lab export recorded, else LayerNorm inputs read as per-token normalization, else none.
 */
function saelensNormalization(
  cfg: Json,
  folded: ParamsF32,
  lab: SaeLabRecord | null,
  d: number,
  warnings: string[],
): { params: ParamsF32; normalization: Normalization } {
  if (lab) return { params: unfoldParams(folded, lab.c), normalization: lab.normalization };
  if (cfg.normalize_activations === 'layer_norm') {
    warnings.push(
      "normalize_activations 'layer_norm' imported as per-token normalization (differs by LN's ε = 1e-5)",
    );
    return { params: unfoldParams(folded, 1 / Math.sqrt(d - 1)), normalization: { kind: 'paper' } };
  }
  if (cfg.normalize_activations && cfg.normalize_activations !== 'none') {
    warnings.push(
      `normalize_activations '${cfg.normalize_activations}' without a recorded scale: the weights expect inputs normalized by SAELens; imported as unnormalized`,
    );
  }
  return { params: folded, normalization: { kind: 'none' } };
}

/** Where the activations came from: SAELens 6 keeps it in metadata, the pre-6 layout at the top level. */
function saelensSource(cfg: Json, meta0: Json): SourceInfo {
  const meta = { ...cfg, ...meta0 };
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  const hookName = str(meta.hook_name);
  // SAELens 6 has no hook_layer; it reads the layer off the hook name (util.py,
  // extract_layer_from_tlens_hook_name: the first ".<digits>.").
  const layerInName = hookName ? /\.(\d+)\./.exec(hookName) : null;
  return {
    modelName: str(meta.model_name),
    hookName,
    hookLayer: num(meta.hook_layer) ?? (layerInName ? Number(layerInName[1]) : undefined),
    hookHeadIndex: num(meta.hook_head_index) ?? null,
    contextSize: num(meta.context_size),
    prependBos: typeof meta.prepend_bos === 'boolean' ? meta.prepend_bos : undefined,
    datasetPath: str(meta.dataset_path),
  };
}

/** SAELens's sparsity.safetensors beside the weights: tensor `sparsity` [d_sae], or null if absent. */
function readLogSparsity(dir: string, files: Files, N: number): Float32Array | null {
  const name = join(dir, SAELENS_SPARSITY);
  const bytes = files.get(name);
  if (!bytes) return null;
  const { tensors } = readSafetensors(bytes, name);
  return floatTensor(name, tensors, 'sparsity', [N], '[d_sae]', join(dir, SAELENS_CFG));
}

/** The SAE in `dir`: cfg.json + sae_weights.safetensors (+ sparsity.safetensors). */
export function importSaelens(dir: string, files: Files): ImportedSae {
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
  const lab = readSaeLab(cfg.sae_lab);
  const { activation: cfgActivation, k } = saelensActivationK(cfgName, cfg, meta0, lab, warnings);
  const { tensors } = readSafetensors(files.get(wName)!, wName);
  const d = intField(cfgName, cfg, 'd_in', tensors.W_enc?.shape[0]);
  const N = intField(cfgName, cfg, 'd_sae', tensors.W_enc?.shape[1]);
  // d_in and d_sae come from cfgName, so a shape mismatch names both files.
  const w = saelensCoreWeights(wName, cfgName, cfg, tensors, cfgActivation, d, N, warnings);
  const { activation, b_enc, extra, inferenceThreshold } = saelensActivationParams(
    wName,
    cfgName,
    tensors,
    cfgActivation,
    w.b_enc,
    lab,
    N,
    warnings,
  );
  const b_enc_in = foldBDecIntoBEnc(cfgName, cfg, activation, { ...w, b_enc }, d, N, warnings);
  if (cfg.finetuning_scaling_factor === true) {
    warnings.push('finetuning_scaling_factor is set; the scaling factor (a separate parameter) is ignored');
  }
  const folded: ParamsF32 = {
    W_enc: w.W_enc,
    b_enc: b_enc_in,
    W_dec: w.W_dec,
    b_pre: w.b_dec,
    ...(extra ? { extra } : {}),
  };
  const { params, normalization } = saelensNormalization(cfg, folded, lab, d, warnings);
  const source = saelensSource(cfg, meta0);
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
    source,
    tokensTrained: lab?.tokens ?? null,
    metrics: lab?.metrics ?? null,
    logSparsity: readLogSparsity(dir, files, N),
    ...(inferenceThreshold !== undefined ? { inferenceThreshold } : {}),
    warnings,
    rawConfig: cfg,
  };
}
