/**
 * Scale-out: turn a run configured (and perhaps tried small) in SAE Lab into a ready-to-run
 * config for the PyTorch trainers, for runs too large for a browser:
 *  - EleutherAI sparsify: `python -m sparsify <model> <dataset> --flags` (simple_parsing CLI over
 *    its RunConfig ⊃ TrainConfig ⊃ SaeConfig dataclasses); also the same values as JSON.
 *  - SAELens: a LanguageModelSAERunnerConfig python snippet.
 * The PyTorch tools extract activations from the model themselves, so the dataset here is a
 * Hugging Face model id + text dataset, not our activation file.
 */
import { resolveConfig, type SaeConfig } from '../sae/config.ts';

export interface RunDataset {
  /** Hugging Face model id, e.g. "EleutherAI/pythia-160m". */
  model: string;
  /** Hugging Face dataset id or local path (text, or tokenized with input_ids). */
  dataset: string;
  /** sparsify hookpoint (module path, e.g. "layers.6" or "gpt_neox.layers.6"). */
  hookpoint?: string;
  /** Layer index (sparsify --layers when no hookpoint; SAELens hook_layer). */
  layer?: number;
  /** SAELens / TransformerLens hook name, e.g. "blocks.6.hook_resid_post". */
  hookName?: string;
  /** Tokens per sequence (sparsify ctx_len, SAELens context_size); default 2048 (sparsify's). */
  ctxLen?: number;
  split?: string;
  textColumn?: string;
  runName?: string;
}

/**
 * Field mapping, SAE Lab → sparsify → SAELens (5.x LanguageModelSAERunnerConfig). Shared by the
 * generated files so the comment travels with them.
 */
const RUN_CONFIG_MAPPING = `Field mapping: SAE Lab -> sparsify (python -m sparsify) -> SAELens (LanguageModelSAERunnerConfig)
  d                  -> (from the model)                     -> d_in
  nLatents           -> --num_latents                        -> d_sae
  k                  -> -k / --k                             -> activation_fn_kwargs={"k": k}
  batchSize (tokens) -> --batch_size = batchSize/ctx_len seqs -> train_batch_size_tokens
  tokens             -> --max_examples = tokens/ctx_len seqs -> training_tokens
  lr                 -> --lr (same default rule 2e-4/sqrt(N/2^14)) -> lr
  lrWarmupSteps      -> --lr_warmup_steps (sparsify default 1000!) -> lr_warm_up_steps
  beta1, beta2       -> (fixed in sparsify's trainer)        -> adam_beta1, adam_beta2
  eps                -> (fixed in sparsify's trainer)        -> (none)
  auxk, auxCoef      -> --auxk_alpha (0 = off)               -> (none in 5.x TopK; 6.x: aux_loss_coefficient)
  kAux               -> (sparsify uses d_in // 2)            -> (none)
  deadTokens         -> --dead_feature_threshold (tokens)    -> dead_feature_window (in steps = deadTokens/batch)
  fireThreshold      -> (fires = selected by TopK)           -> (none)
  tiedInit           -> (always tied in sparsify)            -> init_encoder_as_decoder_transpose
  bPreInit           -> (chosen by sparsify's trainer)       -> b_dec_init_method
  gradProjection     -> --normalize_decoder (also renorms)   -> normalize_sae_decoder
  clipGrad, clipNorm -> (none)                               -> (none)
  ema, emaDecay      -> (none)                               -> (none)
  inputNorm          -> (none: sparsify trains on raw acts)  -> normalize_activations (scalar: expected_average_only_in, paper: layer_norm)
  evalFrac           -> (none)                               -> (none; use its evals)
  seed               -> --init_seeds                         -> seed
  metricsEvery       -> --wandb_log_frequency                -> wandb_log_frequency`;

const BPRE_SAELENS: Record<string, string> = { geomedian: 'geometric_median', mean: 'mean', zero: 'zeros' };
const NORM_SAELENS: Record<string, string> = {
  scalar: 'expected_average_only_in',
  paper: 'layer_norm',
  none: 'none',
};

const shq = (s: string) => (/^[\w./:@=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
const py = (v: unknown): string =>
  v === null || v === undefined
    ? 'None'
    : typeof v === 'boolean'
      ? v
        ? 'True'
        : 'False'
      : typeof v === 'number'
        ? String(v)
        : typeof v === 'string'
          ? JSON.stringify(v)
          : `{${Object.entries(v as Record<string, unknown>)
              .map(([k, x]) => `${JSON.stringify(k)}: ${py(x)}`)
              .join(', ')}}`;

/** SAELens 5.x architecture fields for our activation (TopK family → topk; ProLU → standard, noted). */
function saelensArchitectureFields(c: ReturnType<typeof resolveConfig>): Record<string, unknown> {
  switch (c.activation) {
    case 'topk':
    case 'batchtopk':
      return { architecture: 'topk', activation_fn: 'topk', activation_fn_kwargs: { k: c.k } };
    case 'jumprelu':
      return {
        architecture: 'jumprelu',
        l1_coefficient: c.l1Coef,
        l1_warm_up_steps: Math.round(c.l1WarmupFrac * Math.ceil(c.tokens / c.batchSize)),
        jumprelu_init_threshold: c.jumpInitThreshold,
        jumprelu_bandwidth: c.jumpBandwidth,
      };
    default:
      return {
        architecture: c.activation === 'gated' ? 'gated' : 'standard',
        activation_fn: 'relu',
        l1_coefficient: c.l1Coef,
        l1_warm_up_steps: Math.round(c.l1WarmupFrac * Math.ceil(c.tokens / c.batchSize)),
        scale_sparsity_penalty_by_decoder_norm: true,
      };
  }
}

/**
 * Writes ready-to-run configs for the PyTorch trainers.
 * @param config our run config (derived defaults are resolved: lr, kAux, deadTokens)
 * @returns file name → text: sparsify_train.sh, sparsify_config.json, saelens_train.py
 */
export function exportRunConfig(
  config: Partial<SaeConfig> & { d: number },
  dataset: RunDataset,
): Map<string, string> {
  const c = resolveConfig(config);
  const ctxLen = dataset.ctxLen ?? 2048;
  const seqs = Math.max(1, Math.round(c.batchSize / ctxLen));
  const maxExamples = Math.ceil(c.tokens / ctxLen);
  const auxkAlpha = c.auxk ? c.auxCoef : 0;
  const runName = dataset.runName ?? `sae-lab-N${c.nLatents}-k${c.k}`;
  const where: string[][] = dataset.hookpoint
    ? [['--hookpoints', dataset.hookpoint]]
    : dataset.layer !== undefined
      ? [['--layers', String(dataset.layer)]]
      : [];
  const notes: string[] = [];
  if (seqs * ctxLen !== c.batchSize)
    notes.push(
      `batch: ${c.batchSize} tokens is not a multiple of ctx_len ${ctxLen}; using ${seqs} sequences = ${seqs * ctxLen} tokens per step`,
    );
  if (!dataset.hookpoint && dataset.layer === undefined)
    notes.push('no hookpoint or layer given: sparsify will train on every layer');
  if (c.inputNorm !== 'none')
    notes.push(`inputNorm '${c.inputNorm}' has no sparsify equivalent: sparsify trains on raw activations`);
  if (c.clipGrad) notes.push('clipGrad has no equivalent in either tool');
  const act = c.activation;
  if (act !== 'topk')
    notes.push(
      act === 'batchtopk'
        ? 'batchtopk: sparsify trains per-token TopK with the same k (no BatchTopK); SAELens 5.x likewise'
        : `activation '${act}': sparsify trains TopK SAEs only, so its files here are a TopK run with k=${c.k}; the SAELens file trains the ${act === 'prolu' ? "nearest architecture SAELens has ('standard', ReLU + L1: it has no ProLU)" : `'${act}' architecture`}`,
    );
  if (['relu', 'prolu', 'gated', 'jumprelu'].includes(act))
    notes.push(
      `l1_coefficient ${c.l1Coef} is SAE Lab's λ, on the scale of the normalized MSE; SAELens's losses are not normalized the same way, so take it as a starting point for its sweep`,
    );
  if (c.ema) notes.push('ema has no equivalent in either tool');

  const flags: string[][] = [
    ['--num_latents', String(c.nLatents)],
    ['-k', String(c.k)],
    ...(c.multiTopK ? [['--multi_topk', 'true']] : []),
    ['--batch_size', String(seqs)],
    ['--ctx_len', String(ctxLen)],
    ['--max_examples', String(maxExamples)],
    ['--optimizer', 'adam'],
    ['--loss_fn', 'fvu'],
    ['--lr', String(c.lr)],
    ['--lr_warmup_steps', String(c.lrWarmupSteps)],
    ['--auxk_alpha', String(auxkAlpha)],
    ['--dead_feature_threshold', String(c.deadTokens)],
    ['--normalize_decoder', c.gradProjection ? 'true' : 'false'],
    ['--init_seeds', String(c.seed)],
    ...where,
    ...(dataset.split ? [['--split', dataset.split]] : []),
    ...(dataset.textColumn ? [['--text_column', dataset.textColumn]] : []),
    ['--wandb_log_frequency', String(c.metricsEvery)],
    ['--run_name', runName],
  ];
  const comment = (prefix: string) =>
    [...RUN_CONFIG_MAPPING.split('\n'), '', ...notes.map((n) => `NOTE: ${n}`)]
      .map((l) => `${prefix}${l}`.trimEnd())
      .join('\n');

  const sh = `#!/usr/bin/env bash
# Generated by SAE Lab: the same TopK SAE run, scaled out with EleutherAI sparsify
# (pip install eai-sparsify; needs a CUDA GPU). Writes checkpoints/${runName}/<hookpoint>/
# {cfg.json, sae.safetensors}, which SAE Lab imports (importSae).
#
${comment('# ')}
set -euo pipefail
python -m sparsify ${shq(dataset.model)} ${shq(dataset.dataset)} \\
${flags.map((f) => `  ${f.map(shq).join(' ')}`).join(' \\\n')}
`;

  const sparsifyJson = {
    _comment: `SAE Lab run as sparsify RunConfig fields (load with RunConfig.load(path) or pass as flags). ${RUN_CONFIG_MAPPING.split('\n')[0]}`,
    _notes: notes,
    model: dataset.model,
    dataset: dataset.dataset,
    split: dataset.split ?? 'train',
    ctx_len: ctxLen,
    max_examples: maxExamples,
    text_column: dataset.textColumn ?? 'text',
    sae: {
      activation: 'topk',
      // ignored by sparsify when num_latents > 0; the nearest integer, for information
      expansion_factor: Math.max(1, Math.round(c.nLatents / c.d)),
      normalize_decoder: c.gradProjection,
      num_latents: c.nLatents,
      k: c.k,
      multi_topk: c.multiTopK,
      skip_connection: false,
      transcode: false,
    },
    batch_size: seqs,
    grad_acc_steps: 1,
    micro_acc_steps: 1,
    loss_fn: 'fvu',
    optimizer: 'adam',
    lr: c.lr,
    lr_warmup_steps: c.lrWarmupSteps,
    auxk_alpha: auxkAlpha,
    dead_feature_threshold: c.deadTokens,
    hookpoints: dataset.hookpoint ? [dataset.hookpoint] : [],
    layers: !dataset.hookpoint && dataset.layer !== undefined ? [dataset.layer] : [],
    init_seeds: [c.seed],
    log_to_wandb: false,
    wandb_log_frequency: c.metricsEvery,
    run_name: runName,
    save_dir: 'checkpoints',
  };

  const hookLayer = dataset.layer ?? 0;
  const saelens = {
    // data
    model_name: dataset.model,
    hook_name: dataset.hookName ?? `blocks.${hookLayer}.hook_resid_post`,
    hook_layer: hookLayer,
    d_in: c.d,
    dataset_path: dataset.dataset,
    is_dataset_tokenized: false,
    streaming: true,
    context_size: ctxLen,
    prepend_bos: true,
    // architecture
    ...saelensArchitectureFields(c),
    d_sae: c.nLatents,
    apply_b_dec_to_input: true,
    normalize_activations: NORM_SAELENS[c.inputNorm],
    b_dec_init_method: BPRE_SAELENS[c.bPreInit],
    init_encoder_as_decoder_transpose: c.tiedInit,
    normalize_sae_decoder: c.unitNormDecoder && c.gradProjection,
    // optimization
    lr: c.lr,
    adam_beta1: c.beta1,
    adam_beta2: c.beta2,
    lr_warm_up_steps: c.lrWarmupSteps,
    lr_scheduler_name: 'constant',
    train_batch_size_tokens: c.batchSize,
    training_tokens: c.tokens,
    // dead latents: SAELens counts steps
    dead_feature_window: Math.max(1, Math.ceil(c.deadTokens / c.batchSize)),
    feature_sampling_window: Math.max(1, Math.ceil(c.deadTokens / c.batchSize)),
    seed: c.seed,
    device: 'cuda',
    dtype: 'float32',
    log_to_wandb: false,
    wandb_log_frequency: c.metricsEvery,
    n_checkpoints: 0,
    checkpoint_path: 'checkpoints',
  };
  const pyText = `# Generated by SAE Lab: the same SAE run, scaled out with SAELens (pip install sae-lens).
# Field names are those of SAELens 5.x LanguageModelSAERunnerConfig; SAELens 6 moved the
# architecture fields into sae=TopKTrainingSAEConfig(d_in=..., d_sae=..., k=...,
# apply_b_dec_to_input=..., normalize_activations=...) and adds aux_loss_coefficient (AuxK).
#
${comment('# ')}
from sae_lens import LanguageModelSAERunnerConfig, SAETrainingRunner

cfg = LanguageModelSAERunnerConfig(
${Object.entries(saelens)
  .map(([k, v]) => `    ${k}=${py(v)},`)
  .join('\n')}
)

if __name__ == "__main__":
    sae = SAETrainingRunner(cfg).run()
`;
  return new Map([
    ['sparsify_train.sh', sh],
    ['sparsify_config.json', `${JSON.stringify(sparsifyJson, null, 2)}\n`],
    ['saelens_train.py', pyText],
  ]);
}
