/**
 * Scale-out: turn a run configured (and perhaps tried small) in SAE Lab into a ready-to-run
 * config for the PyTorch trainers, for runs too large for a browser:
 *  - EleutherAI sparsify 1.3: `python -m sparsify <model> <dataset> --flags` (simple_parsing CLI
 *    over its RunConfig ⊃ TrainConfig ⊃ SparseCoderConfig dataclasses); also the same values as
 *    RunConfig JSON.
 *  - SAELens 6: a python script building LanguageModelSAERunnerConfig with the architecture's
 *    training-SAE config (TopKTrainingSAEConfig, MatryoshkaBatchTopKTrainingSAEConfig, ...).
 * Every option written is one those versions define (trainer-options.ts records the names).
 * The PyTorch tools extract activations from the model themselves, so the dataset here is a
 * Hugging Face model id + text dataset, not our activation file.
 */
import { isBatchCut, type ResolvedConfig, resolveConfig, type SaeConfig } from '../sae/config.ts';
import { SAELENS_OPTIONS, type SaelensTrainingArchitecture } from './trainer-options.ts';

export interface RunDataset {
  /** Hugging Face model id, e.g. "EleutherAI/pythia-160m". */
  model: string;
  /** Hugging Face dataset id or local path (text, or tokenized with input_ids). */
  dataset: string;
  /** sparsify hookpoint (module path, e.g. "layers.6" or "gpt_neox.layers.6"). */
  hookpoint?: string;
  /** Layer index (sparsify --layers when no hookpoint; the SAELens hook name's layer). */
  layer?: number;
  /** SAELens / TransformerLens hook name, e.g. "blocks.6.hook_resid_post". */
  hookName?: string;
  /** Tokens per sequence (sparsify ctx_len, SAELens context_size); default 2048 (sparsify's). */
  ctxLen?: number;
  split?: string;
  textColumn?: string;
  runName?: string;
}

/** Field mapping, SAE Lab → sparsify → SAELens 6, written into the generated files. */
const RUN_CONFIG_MAPPING = `Field mapping: SAE Lab -> sparsify 1.3 (python -m sparsify) -> SAELens 6 (LanguageModelSAERunnerConfig; sae.* = its training-SAE config)
  d                  -> (from the model)                     -> sae.d_in
  nLatents           -> --num_latents                        -> sae.d_sae
  activation         -> (TopK only)                          -> the sae config class: topk, batchtopk, matryoshka_batchtopk, standard (relu, prolu), gated, jumprelu
  k                  -> -k                                   -> sae.k (TopK family)
  multiTopK          -> --multi_topk                         -> (none)
  batchTopKThresholdBeta -> (none)                           -> sae.topk_threshold_lr = 1 - beta
  matryoshkaWidths   -> (none)                               -> sae.matryoshka_widths
  l1Coef             -> (none)                               -> sae.l1_coefficient (relu, prolu, gated), sae.l0_coefficient (jumprelu)
  l1WarmupFrac       -> (none)                               -> sae.l1_warm_up_steps / sae.l0_warm_up_steps (in steps)
  jumpInitThreshold  -> (none)                               -> sae.jumprelu_init_threshold
  jumpBandwidth      -> (none)                               -> sae.jumprelu_bandwidth
  batchSize (tokens) -> --batch_size = batchSize/ctx_len seqs -> train_batch_size_tokens
  tokens             -> --max_examples = tokens/ctx_len seqs -> training_tokens
  lr                 -> --lr (same default rule 2e-4/sqrt(N/2^14)) -> lr
  lrWarmupSteps      -> --lr_warmup_steps (sparsify default 1000!) -> lr_warm_up_steps
  lrDecaySteps       -> (none: adam decays linearly over the whole run) -> lr_decay_steps (linear to 0, as ours)
  beta1, beta2       -> (fixed in sparsify's trainer)        -> adam_beta1, adam_beta2
  eps                -> (fixed in sparsify's trainer)        -> (none)
  auxk, auxCoef      -> --auxk_alpha (0 = off)               -> sae.aux_loss_coefficient (TopK family; 0 = off)
  kAux               -> (sparsify uses d_in // 2)            -> (SAELens uses d_in // 2)
  deadTokens         -> --dead_feature_threshold (tokens)    -> dead_feature_window (in steps = deadTokens/batch)
  fireThreshold      -> (fires = selected by TopK)           -> (none)
  tiedInit           -> (always tied in sparsify)            -> (always tied in SAELens 6)
  (unit decoder rows at init) -> (sparsify's own init)       -> sae.decoder_init_norm = 1 (SAELens default 0.1)
  bPreInit           -> (chosen by sparsify's trainer)       -> (none: b_dec starts at zero)
  gradProjection     -> --normalize_decoder (also renorms)   -> (none)
  unitNormDecoder    -> --normalize_decoder                  -> sae.rescale_acts_by_decoder_norm (TopK family)
  clipGrad, clipNorm -> (none)                               -> (none)
  ema, emaDecay      -> (none)                               -> (none)
  inputNorm          -> (none: sparsify trains on raw acts)  -> sae.normalize_activations (scalar: expected_average_only_in, paper: layer_norm)
  evalFrac           -> (none)                               -> (none; use its evals)
  seed               -> --init_seeds                         -> seed
  metricsEvery       -> --wandb_log_frequency                -> logger.wandb_log_frequency`;

const NORM_SAELENS: Record<string, string> = {
  scalar: 'expected_average_only_in',
  paper: 'layer_norm',
  none: 'none',
};

/** A python call with keyword arguments, rendered one argument a line. */
interface PyCall {
  call: string;
  args: Record<string, PyValue>;
}
type PyValue = null | boolean | number | string | number[] | PyCall;

const shq = (s: string) => (/^[\w./:@=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
const pyScalar = (v: Exclude<PyValue, PyCall>): string =>
  v === null
    ? 'None'
    : typeof v === 'boolean'
      ? v
        ? 'True'
        : 'False'
      : typeof v === 'number'
        ? String(v)
        : typeof v === 'string'
          ? JSON.stringify(v)
          : `[${v.join(', ')}]`;
function pyCall({ call, args }: PyCall, indent: string): string {
  const inner = `${indent}    `;
  const lines = Object.entries(args).map(([k, v]) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? `${inner}${k}=${pyCall(v, inner)},`
      : `${inner}${k}=${pyScalar(v)},`,
  );
  return `${call}(\n${lines.join('\n')}\n${indent})`;
}

/** Rounds away float noise such as 1 − 0.999 = 0.0010000000000000009. */
const clean = (x: number) => Number(x.toPrecision(12));

const steps = (c: ResolvedConfig) => Math.ceil(c.tokens / c.batchSize);

/** The SAELens 6 training architecture for our activation (ProLU → standard, noted by the caller). */
function saelensArchitecture(c: ResolvedConfig): SaelensTrainingArchitecture {
  switch (c.activation) {
    case 'topk':
      return 'topk';
    case 'batchtopk':
      return 'batchtopk';
    case 'matryoshka':
      return 'matryoshka_batchtopk';
    case 'gated':
      return 'gated';
    case 'jumprelu':
      return 'jumprelu';
    default:
      return 'standard';
  }
}

/** The architecture's own options of the SAELens 6 training-SAE config. */
function saelensArchitectureArgs(
  c: ResolvedConfig,
  arch: SaelensTrainingArchitecture,
): Record<string, PyValue> {
  const warmUp = Math.round(c.l1WarmupFrac * steps(c));
  switch (arch) {
    case 'topk':
    case 'batchtopk':
    case 'matryoshka_batchtopk':
      return {
        k: c.k,
        aux_loss_coefficient: c.auxk ? 1 : 0,
        rescale_acts_by_decoder_norm: c.unitNormDecoder,
        ...(arch === 'topk' ? {} : { topk_threshold_lr: clean(1 - c.batchTopKThresholdBeta) }),
        ...(arch === 'matryoshka_batchtopk' ? { matryoshka_widths: c.matryoshkaWidths } : {}),
      };
    case 'jumprelu':
      return {
        l0_coefficient: c.l1Coef,
        l0_warm_up_steps: warmUp,
        jumprelu_init_threshold: c.jumpInitThreshold,
        jumprelu_bandwidth: c.jumpBandwidth,
      };
    default:
      return { l1_coefficient: c.l1Coef, l1_warm_up_steps: warmUp };
  }
}

/** What the generated files cannot carry over, one line each (written as NOTE lines). */
function runNotes(c: ResolvedConfig, dataset: RunDataset, ctxLen: number, seqs: number): string[] {
  const notes: string[] = [];
  const act = c.activation;
  const arch = saelensArchitecture(c);
  if (seqs * ctxLen !== c.batchSize)
    notes.push(
      `batch: ${c.batchSize} tokens is not a multiple of ctx_len ${ctxLen}; sparsify uses ${seqs} sequences = ${seqs * ctxLen} tokens per step`,
    );
  if (!dataset.hookpoint && dataset.layer === undefined)
    notes.push('no hookpoint or layer given: sparsify will train on every layer');
  if (c.inputNorm !== 'none')
    notes.push(`inputNorm '${c.inputNorm}' has no sparsify equivalent: sparsify trains on raw activations`);
  notes.push(
    `sparsify's adam decays the lr linearly to 0 over the run after its warm-up; SAE Lab's lr is constant${c.lrDecaySteps ? ` until the last ${c.lrDecaySteps} steps` : ''} (the SAELens file keeps ours)`,
  );
  if (c.clipGrad) notes.push('clipGrad has no equivalent in either tool');
  if (c.ema) notes.push('ema has no equivalent in either tool');
  if (!c.tiedInit) notes.push('tiedInit off: both tools always start with W_enc = W_dec transposed');
  if (c.bPreInit !== 'zero')
    notes.push(`bPreInit '${c.bPreInit}': SAELens 6 starts b_dec at zero and has no option for it`);
  if (c.multiTopK)
    notes.push('multiTopK: SAELens has no Multi-TopK; its file trains plain TopK with the same k');
  if (act === 'batchtopk' || act === 'matryoshka')
    notes.push(
      `${act}: sparsify has no ${act === 'batchtopk' ? 'BatchTopK' : 'Matryoshka SAE (nor BatchTopK)'}: its files here are a per-token TopK run with the same k; the SAELens file trains '${arch}'${act === 'matryoshka' ? ` with matryoshka_widths [${c.matryoshkaWidths.join(', ')}]` : ''}, saved as JumpReLU with its learned threshold`,
    );
  else if (act !== 'topk')
    notes.push(
      `activation '${act}': sparsify trains TopK SAEs only, so its files here are a TopK run with k=${c.k}; the SAELens file trains the ${act === 'prolu' ? "nearest architecture SAELens has ('standard', ReLU + L1: it has no ProLU)" : `'${arch}' architecture`}`,
    );
  if (isBatchCut(act))
    notes.push(
      `batchTopKThresholdStart ${c.batchTopKThresholdStart}: SAELens updates the threshold from the first step (no option)`,
    );
  // Resolved auxk is on only for the TopK family without Multi-TopK.
  if (c.auxk)
    notes.push(
      `auxCoef ${c.auxCoef} weighs an AuxK loss divided by the residual's variance (as sparsify's auxk_alpha); SAELens's is not divided, so its file keeps its own aux_loss_coefficient 1`,
    );
  if (['relu', 'prolu', 'gated', 'jumprelu'].includes(act))
    notes.push(
      `${act === 'jumprelu' ? 'l0' : 'l1'}_coefficient ${c.l1Coef} is SAE Lab's λ, on the scale of the normalized MSE; SAELens's losses are not normalized the same way, so take it as a starting point for its sweep`,
    );
  return notes;
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
  const runName = dataset.runName ?? `sae-lab-N${c.nLatents}-k${c.k}`;
  const notes = runNotes(c, dataset, ctxLen, seqs);
  const comment = [...RUN_CONFIG_MAPPING.split('\n'), '', ...notes.map((n) => `NOTE: ${n}`)]
    .map((l) => `# ${l}`.trimEnd())
    .join('\n');
  return new Map([
    ['sparsify_train.sh', sparsifyShell(c, dataset, { ctxLen, seqs, runName, comment })],
    [
      'sparsify_config.json',
      `${JSON.stringify(sparsifyRunConfig(c, dataset, { ctxLen, seqs, runName }), null, 2)}\n`,
    ],
    ['saelens_train.py', saelensScript(c, dataset, { ctxLen, runName, comment })],
  ]);
}

interface RunShape {
  ctxLen: number;
  seqs: number;
  runName: string;
}

/** sparsify's RunConfig fields for our run (`sae` nested), as RunConfig.load reads them. */
function sparsifyRunConfig(c: ResolvedConfig, dataset: RunDataset, { ctxLen, seqs, runName }: RunShape) {
  return {
    model: dataset.model,
    dataset: dataset.dataset,
    split: dataset.split ?? 'train',
    ctx_len: ctxLen,
    max_examples: Math.ceil(c.tokens / ctxLen),
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
    auxk_alpha: c.auxk ? c.auxCoef : 0,
    dead_feature_threshold: c.deadTokens,
    hookpoints: dataset.hookpoint ? [dataset.hookpoint] : [],
    layers: !dataset.hookpoint && dataset.layer !== undefined ? [dataset.layer] : [],
    init_seeds: [c.seed],
    log_to_wandb: false,
    wandb_log_frequency: c.metricsEvery,
    run_name: runName,
    save_dir: 'checkpoints',
  };
}

/** `python -m sparsify` with the same values as flags (model and dataset positional). */
function sparsifyShell(
  c: ResolvedConfig,
  dataset: RunDataset,
  shape: RunShape & { comment: string },
): string {
  const j = sparsifyRunConfig(c, dataset, shape);
  const where: string[][] = dataset.hookpoint
    ? [['--hookpoints', dataset.hookpoint]]
    : dataset.layer !== undefined
      ? [['--layers', String(dataset.layer)]]
      : [];
  const flags: string[][] = [
    ['--num_latents', String(c.nLatents)],
    ['-k', String(c.k)],
    ...(c.multiTopK ? [['--multi_topk', 'true']] : []),
    ['--batch_size', String(j.batch_size)],
    ['--ctx_len', String(j.ctx_len)],
    ['--max_examples', String(j.max_examples)],
    ['--optimizer', 'adam'],
    ['--loss_fn', 'fvu'],
    ['--lr', String(c.lr)],
    ['--lr_warmup_steps', String(c.lrWarmupSteps)],
    ['--auxk_alpha', String(j.auxk_alpha)],
    ['--dead_feature_threshold', String(c.deadTokens)],
    ['--normalize_decoder', c.gradProjection ? 'true' : 'false'],
    ['--init_seeds', String(c.seed)],
    ...where,
    ...(dataset.split ? [['--split', dataset.split]] : []),
    ...(dataset.textColumn ? [['--text_column', dataset.textColumn]] : []),
    ['--wandb_log_frequency', String(c.metricsEvery)],
    ['--run_name', shape.runName],
  ];
  return `#!/usr/bin/env bash
# Generated by SAE Lab: the same SAE run, scaled out with EleutherAI sparsify 1.3
# (pip install eai-sparsify; needs a CUDA GPU). Writes checkpoints/${shape.runName}/<hookpoint>/
# {cfg.json, sae.safetensors}, which SAE Lab imports (importSae). sparsify_config.json holds the
# same values as RunConfig fields (RunConfig.load).
#
${shape.comment}
set -euo pipefail
python -m sparsify ${shq(dataset.model)} ${shq(dataset.dataset)} \\
${flags.map((f) => `  ${f.map(shq).join(' ')}`).join(' \\\n')}
`;
}

/** A SAELens 6 script: LanguageModelSAERunnerConfig with the architecture's training-SAE config. */
function saelensScript(
  c: ResolvedConfig,
  dataset: RunDataset,
  { ctxLen, runName, comment }: Omit<RunShape, 'seqs'> & { comment: string },
): string {
  const arch = saelensArchitecture(c);
  const saeConfig = SAELENS_OPTIONS.architectures[arch].config;
  const { runner, training, logger } = SAELENS_OPTIONS.classes;
  const deadWindow = Math.max(1, Math.ceil(c.deadTokens / c.batchSize));
  const cfg: PyCall = {
    call: runner,
    args: {
      sae: {
        call: saeConfig,
        args: {
          d_in: c.d,
          d_sae: c.nLatents,
          apply_b_dec_to_input: true,
          normalize_activations: NORM_SAELENS[c.inputNorm],
          // SAE Lab starts every decoder row at unit norm.
          decoder_init_norm: 1,
          ...saelensArchitectureArgs(c, arch),
        },
      },
      // data
      model_name: dataset.model,
      hook_name: dataset.hookName ?? `blocks.${dataset.layer ?? 0}.hook_resid_post`,
      dataset_path: dataset.dataset,
      is_dataset_tokenized: false,
      streaming: true,
      context_size: ctxLen,
      prepend_bos: true,
      // optimization
      lr: c.lr,
      adam_beta1: c.beta1,
      adam_beta2: c.beta2,
      lr_warm_up_steps: c.lrWarmupSteps,
      lr_decay_steps: c.lrDecaySteps,
      lr_scheduler_name: 'constant',
      train_batch_size_tokens: c.batchSize,
      training_tokens: c.tokens,
      // dead latents: SAELens counts steps
      dead_feature_window: deadWindow,
      feature_sampling_window: deadWindow,
      seed: c.seed,
      device: 'cuda',
      dtype: 'float32',
      n_checkpoints: 0,
      checkpoint_path: 'checkpoints',
      logger: {
        call: logger,
        args: { log_to_wandb: false, wandb_log_frequency: c.metricsEvery, run_name: runName },
      },
    },
  };
  return `# Generated by SAE Lab: the same SAE run, scaled out with SAELens 6 (pip install "sae-lens>=6").
# Its option names are those of sae-lens ${SAELENS_OPTIONS.version}.
#
${comment}
from sae_lens import ${[runner, training, logger, saeConfig].join(', ')}

cfg = ${pyCall(cfg, '')}

if __name__ == "__main__":
    sae = ${training}(cfg).run()
`;
}
