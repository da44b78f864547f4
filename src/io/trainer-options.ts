/**
 * The option names the cluster trainers define for a training run, recorded from their source
 * (their config dataclasses' field names; the lists are ours, no code of theirs). scaleout.ts
 * writes run configs for these tools; tests/unit/io/scaleout.test.ts lists every option each
 * generated file uses and checks it is here. When a tool moves, re-read the files named below at
 * its new version and update the list, the version and the commit together.
 */

/**
 * EleutherAI sparsify (PyPI `eai-sparsify`), version 1.3.0, read at commit
 * 9d3b136c9217565af11089081444770e0d31673d of github.com/EleutherAI/sparsify (2026-06-08).
 * `python -m sparsify` parses RunConfig with simple_parsing: the nested `sae` fields are flat flags
 * (`--num_latents`), a one-letter field also gets one dash (`-k`), `model` and `dataset` are
 * positional. `RunConfig.load(json)` reads the same names, `sae` as a nested object.
 */
export const SPARSIFY_OPTIONS = {
  version: '1.3.0',
  commit: '9d3b136c9217565af11089081444770e0d31673d',
  /** sparsify/config.py, SparseCoderConfig (alias SaeConfig): TrainConfig.sae. */
  sae: [
    'activation',
    'expansion_factor',
    'normalize_decoder',
    'num_latents',
    'k',
    'multi_topk',
    'skip_connection',
    'transcode',
  ],
  /** sparsify/config.py, TrainConfig, less its `sae` field. */
  train: [
    'batch_size',
    'grad_acc_steps',
    'micro_acc_steps',
    'loss_fn',
    'optimizer',
    'lr',
    'lr_warmup_steps',
    'k_decay_steps',
    'auxk_alpha',
    'dead_feature_threshold',
    'exclude_tokens',
    'hookpoints',
    'init_seeds',
    'layers',
    'layer_stride',
    'distribute_modules',
    'save_every',
    'save_best',
    'finetune',
    'log_to_wandb',
    'run_name',
    'wandb_log_frequency',
    'save_dir',
  ],
  /** sparsify/__main__.py, RunConfig(TrainConfig)'s own fields. */
  run: [
    'model',
    'dataset',
    'split',
    'ctx_len',
    'hf_token',
    'revision',
    'load_in_8bit',
    'max_examples',
    'resume',
    'text_column',
    'shuffle_seed',
    'data_preprocessing_num_proc',
    'data_args',
  ],
  /** RunConfig fields the CLI takes by position, in this order. */
  positional: ['model', 'dataset'],
} as const;

/** A SAELens training-SAE config class and every option it takes beyond {@link SAELENS_OPTIONS}.saeBase. */
interface SaelensArchitecture {
  /** The class name, exported by `sae_lens`. */
  config: string;
  /** Its own fields and those of its parents below TrainingSAEConfig. */
  options: readonly string[];
}

const TOPK_OPTIONS = ['k', 'use_sparse_activations', 'aux_loss_coefficient', 'rescale_acts_by_decoder_norm'];
const BATCHTOPK_OPTIONS = [...TOPK_OPTIONS, 'topk_threshold_lr'];

/**
 * SAELens (PyPI `sae-lens`), version 6.18.0, read at commit
 * 91ca16ccd0684e4dd6323cd4f23ded734339ec54 of github.com/jbloomAus/SAELens (2025-10-22).
 * A run is `LanguageModelSAERunnerConfig(sae=<Arch>TrainingSAEConfig(...), logger=LoggingConfig(...), ...)`
 * trained by `LanguageModelSAETrainingRunner(cfg).run()`.
 */
export const SAELENS_OPTIONS = {
  version: '6.18.0',
  commit: '91ca16ccd0684e4dd6323cd4f23ded734339ec54',
  /** Names the generated script imports from `sae_lens` besides the architecture's config class. */
  classes: {
    runner: 'LanguageModelSAERunnerConfig',
    training: 'LanguageModelSAETrainingRunner',
    logger: 'LoggingConfig',
  },
  /** sae_lens/config.py, LanguageModelSAERunnerConfig. */
  runner: [
    'sae',
    'model_name',
    'model_class_name',
    'hook_name',
    'hook_eval',
    'hook_head_index',
    'dataset_path',
    'dataset_trust_remote_code',
    'streaming',
    'is_dataset_tokenized',
    'context_size',
    'use_cached_activations',
    'cached_activations_path',
    'from_pretrained_path',
    'n_batches_in_buffer',
    'training_tokens',
    'store_batch_size_prompts',
    'seqpos_slice',
    'disable_concat_sequences',
    'sequence_separator_token',
    'device',
    'act_store_device',
    'seed',
    'dtype',
    'prepend_bos',
    'autocast',
    'autocast_lm',
    'compile_llm',
    'llm_compilation_mode',
    'compile_sae',
    'sae_compilation_mode',
    'train_batch_size_tokens',
    'adam_beta1',
    'adam_beta2',
    'lr',
    'lr_scheduler_name',
    'lr_warm_up_steps',
    'lr_end',
    'lr_decay_steps',
    'n_restart_cycles',
    'dead_feature_window',
    'feature_sampling_window',
    'dead_feature_threshold',
    'n_eval_batches',
    'eval_batch_size_prompts',
    'logger',
    'n_checkpoints',
    'checkpoint_path',
    'save_final_checkpoint',
    'output_path',
    'resume_from_checkpoint',
    'verbose',
    'model_kwargs',
    'model_from_pretrained_kwargs',
    'sae_lens_version',
    'sae_lens_training_version',
    'exclude_special_tokens',
  ],
  /** sae_lens/config.py, LoggingConfig (the runner's `logger`). */
  logger: [
    'log_to_wandb',
    'log_activations_store_to_wandb',
    'log_optimizer_state_to_wandb',
    'wandb_project',
    'wandb_id',
    'run_name',
    'wandb_entity',
    'wandb_log_frequency',
    'eval_every_n_wandb_logs',
  ],
  /** sae_lens/saes/sae.py, SAEConfig and TrainingSAEConfig: every training architecture takes these. */
  saeBase: [
    'd_in',
    'd_sae',
    'dtype',
    'device',
    'apply_b_dec_to_input',
    'normalize_activations',
    'reshape_activations',
    'metadata',
    'decoder_init_norm',
  ],
  /** The training architectures registered in sae_lens/__init__.py, by architecture name (sae_lens/saes/*.py). */
  architectures: {
    standard: {
      config: 'StandardTrainingSAEConfig',
      options: ['l1_coefficient', 'lp_norm', 'l1_warm_up_steps'],
    },
    gated: { config: 'GatedTrainingSAEConfig', options: ['l1_coefficient', 'l1_warm_up_steps'] },
    jumprelu: {
      config: 'JumpReLUTrainingSAEConfig',
      options: [
        'jumprelu_init_threshold',
        'jumprelu_bandwidth',
        'jumprelu_sparsity_loss_mode',
        'l0_coefficient',
        'l0_warm_up_steps',
        'pre_act_loss_coefficient',
        'jumprelu_tanh_scale',
      ],
    },
    topk: { config: 'TopKTrainingSAEConfig', options: TOPK_OPTIONS },
    // BatchTopKTrainingSAEConfig(TopKTrainingSAEConfig): k becomes a float (mean active per token).
    batchtopk: { config: 'BatchTopKTrainingSAEConfig', options: BATCHTOPK_OPTIONS },
    // MatryoshkaBatchTopKTrainingSAEConfig(BatchTopKTrainingSAEConfig).
    matryoshka_batchtopk: {
      config: 'MatryoshkaBatchTopKTrainingSAEConfig',
      options: [...BATCHTOPK_OPTIONS, 'matryoshka_widths'],
    },
  } satisfies Record<string, SaelensArchitecture>,
} as const;

export type SaelensTrainingArchitecture = keyof typeof SAELENS_OPTIONS.architectures;
