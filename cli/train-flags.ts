/**
 * The training command line's flags (`npm run train`, shared by sweep and compare): the flag table
 * that `--help` prints, and their mapping onto SaeConfig fields and kernel choices.
 */
import {
  ENCODE_TOPK_VARIANT_NAMES,
  ENCODE_VARIANT_NAMES,
  TOPK_VARIANT_NAMES,
} from '../src/gpu/kernel-variants';
import { ACTIVATIONS, type Activation, RECIPES, type Recipe, type SaeConfig } from '../src/sae/config';
import type { KernelChoice } from '../src/sae/step-host';
import { type FlagSpec, UsageError } from './args';

export const TRAIN_FLAGS: Record<string, FlagSpec> = {
  data: {
    kind: 'string',
    help: 'activation file(s): .npy/.npz/.safetensors/raw; several shards comma-separated; "demo" for the bundled demo',
  },
  tensor: { kind: 'string', help: 'tensor/array name inside a .safetensors/.npz holding several' },
  'raw-width': { kind: 'int', help: 'row width d for raw .bin/.f32/.f16 files' },
  'raw-dtype': { kind: 'string', help: 'f32|f16 for raw files (default from the extension, else f32)' },
  recipe: {
    kind: 'string',
    help: `${Object.keys(RECIPES).join('|')}: paper = the paper's per-token input normalization, weight EMA 0.999 and gradient clipping at 1 where the defaults follow the released code/SAELens (README: defaults); other flags override it`,
  },
  'n-latents': { kind: 'int', help: 'number of latents N (default 4096)' },
  k: { kind: 'int', help: 'active latents per token (default 32; BatchTopK: mean per token)' },
  activation: {
    kind: 'string',
    help: `${ACTIVATIONS.join('|')} (default topk); multitopk = topk --multi-topk`,
  },
  'multi-topk': { kind: 'bool', help: 'topk only: add 1/8 of the loss on the top 4k (paper §5.3; AuxK off)' },
  'batch-topk-cap': {
    kind: 'int',
    help: 'batchtopk: per-row candidates before the batch selection (default min(N, 4k, 512))',
  },
  'matryoshka-widths': {
    kind: 'list',
    help: "matryoshka: nested prefix widths m1<…<N, e.g. 64,256,1024,4096 (SAELens's matryoshka_widths; default N/64,N/16,N/4,N)",
  },
  'group-sizes': {
    kind: 'list',
    help: "matryoshka: the same as group sizes summing to N, e.g. 64,192,768,3072 (dictionary_learning's group_sizes)",
  },
  'l1-coef': {
    kind: 'number',
    help: 'sparsity λ: L1 of a·‖W_dec,i‖ for relu/prolu/gated, L0 for jumprelu (default 1)',
  },
  'l1-warmup-frac': { kind: 'number', help: 'λ ramps from 0 over this fraction of the steps (default 0.05)' },
  'jump-bandwidth': { kind: 'number', help: 'jumprelu: STE kernel width ε (default 1e-3·√d)' },
  'jump-init-threshold': { kind: 'number', help: 'jumprelu: initial threshold (default 1e-3·√d)' },
  'unit-norm-decoder': {
    kind: 'string',
    help: 'on|off: renormalize decoder rows each step (default on, off for relu/prolu/gated)',
  },
  batch: { kind: 'int', help: 'rows per step (default 4096)' },
  tokens: { kind: 'number', help: 'token budget (default 10M; accepts 2M, 500k)' },
  seed: { kind: 'int', help: 'seed for init and data order (default 0)' },
  'eval-frac': { kind: 'number', help: 'held-out fraction, never trained on (default 0.1)' },
  'eval-every': {
    kind: 'number',
    help: 'evaluate on the held-out split every this many tokens (default: at the end)',
  },
  lr: { kind: 'number', help: 'Adam learning rate (default 2e-4/sqrt(N/2^14))' },
  'lr-warmup': { kind: 'int', help: 'linear warm-up steps (default 0)' },
  'lr-decay': {
    kind: 'int',
    help: 'linear lr decay to 0 over the last this-many steps (default 0: constant)',
  },
  beta1: { kind: 'number', help: 'Adam β1 (default 0.9)' },
  beta2: { kind: 'number', help: 'Adam β2 (default 0.999)' },
  eps: { kind: 'number', help: 'Adam ε (default 6.25e-10)' },
  'k-aux': { kind: 'int', help: 'AuxK latents (default min(512, d/2))' },
  'aux-coef': { kind: 'number', help: 'AuxK loss coefficient (default 1/32)' },
  'dead-tokens': {
    kind: 'number',
    help: 'tokens without firing before a latent is dead (default min(10M, tokens/10))',
  },
  'fire-threshold': {
    kind: 'number',
    help: 'a latent fires when its activation exceeds this (default 1e-3)',
  },
  'input-norm': { kind: 'string', help: 'scalar|paper|none (default scalar: E‖x‖² = d)' },
  clip: { kind: 'bool', help: 'clip the global gradient norm to --clip-norm (default off)' },
  'clip-norm': { kind: 'number', help: 'clip threshold (default 1)' },
  ema: {
    kind: 'bool',
    help: 'keep an EMA of the weights (decay --ema-decay); evaluation (metrics.json) and the export use it',
  },
  'ema-decay': { kind: 'number', help: 'EMA decay (default 0.999)' },
  'no-tied-init': { kind: 'bool', help: 'ablation: independent random encoder instead of W_enc = W_dec' },
  'no-auxk': { kind: 'bool', help: 'ablation: no AuxK loss' },
  'b-pre-init': { kind: 'string', help: 'geomedian|mean|zero (default geomedian)' },
  'no-grad-projection': { kind: 'bool', help: 'ablation: no projection of decoder gradients' },
  'metrics-every': { kind: 'int', help: 'steps between metric read-backs (default 8)' },
  'max-binding-mib': {
    kind: 'number',
    help: 'cap one GPU storage binding at this many MiB (default: the adapter limit); forces latent shards and tiles. A config that breaks a limit is refused with one line naming the buffer (exit 2)',
  },
  'inject-gpu-error': {
    kind: 'int',
    help: 'TEST HOOK: record an invalid GPU command right after step STEP, outside any error scope',
    hidden: true,
  },
  'lose-device': {
    kind: 'int',
    help: 'TEST HOOK: destroy the GPU device right after step STEP (the run recovers from its last checkpoint)',
    hidden: true,
  },
  'lose-device-times': {
    kind: 'int',
    help: 'TEST HOOK: with --lose-device, lose this many devices in a row at that step (default 1)',
    hidden: true,
  },
  'checkpoint-every': {
    kind: 'int',
    help: 'also checkpoint every this many steps (default: every 120 s); a lost GPU device resumes the run from the last one, bit for bit',
  },
  'non-finite': {
    kind: 'string',
    help: 'skip|stop: rows of --data holding NaN or Inf are skipped and counted (default skip), or the file is refused naming it and the row (stop)',
  },
  'encode-variant': {
    kind: 'string',
    help: `${ENCODE_VARIANT_NAMES.join('|')}: skip the autotuner and use this encoder (default: autotuned)`,
  },
  'topk-variant': {
    kind: 'string',
    help: `${TOPK_VARIANT_NAMES.join('|')} (insert, chunked, chunkmax: k ≤ 64; chunkmax with an unroll* encoder): with --encode-variant, the TopK to use (default bitonic)`,
  },
  fused: {
    kind: 'string',
    help: 'blocked1x4|blocked2x4|blocked4x4|blocked4x8|vec4x4|vec4x8: with --encode-variant, use the fused encode+TopK (k ≤ 64)',
  },
  reproduce: {
    kind: 'string',
    help: 'a run directory (or its metrics.json): train again with its config and kernel variants (the autotuner skipped), bit for bit on the same adapter; --data is still needed',
  },
  out: {
    kind: 'string',
    help: 'output directory (default runs/<timestamp>): metrics.json and sae/ (SAELens 6: cfg.json, sae_weights.safetensors, sparsity.safetensors)',
  },
  'export-format': { kind: 'string', help: 'saelens|openai: layout of DIR/sae (default saelens)' },
  quiet: { kind: 'bool', help: 'no progress bar' },
  help: { kind: 'bool', help: 'this help' },
};
export const TRAIN_USAGE =
  'usage: npm run train -- --data FILE.npy --n-latents N --k K [--batch B] [--tokens T] [--seed S] [--eval-frac 0.1] [--out DIR]';

/** Maps parsed flags onto SaeConfig fields (validation happens in resolveConfig, in the worker). */
export function configFromFlags(f: Record<string, unknown>): Partial<SaeConfig> {
  const recipe = f.recipe as string | undefined;
  if (recipe !== undefined && !(recipe in RECIPES))
    throw new UsageError(`--recipe must be ${Object.keys(RECIPES).join('|')}, got '${recipe}'`);
  const c: Partial<SaeConfig> = recipe ? { ...RECIPES[recipe as Recipe] } : {};
  const set = <K extends keyof SaeConfig>(key: K, flag: string) => {
    if (f[flag] !== undefined) c[key] = f[flag] as SaeConfig[K];
  };
  set('nLatents', 'n-latents');
  set('k', 'k');
  set('batchSize', 'batch');
  set('tokens', 'tokens');
  set('seed', 'seed');
  set('evalFrac', 'eval-frac');
  set('lr', 'lr');
  set('lrWarmupSteps', 'lr-warmup');
  set('lrDecaySteps', 'lr-decay');
  set('kAux', 'k-aux');
  set('auxCoef', 'aux-coef');
  set('deadTokens', 'dead-tokens');
  set('clipNorm', 'clip-norm');
  set('emaDecay', 'ema-decay');
  set('metricsEvery', 'metrics-every');
  set('beta1', 'beta1');
  set('beta2', 'beta2');
  set('eps', 'eps');
  set('fireThreshold', 'fire-threshold');
  set('batchTopKCap', 'batch-topk-cap');
  set('l1Coef', 'l1-coef');
  set('l1WarmupFrac', 'l1-warmup-frac');
  set('jumpBandwidth', 'jump-bandwidth');
  set('jumpInitThreshold', 'jump-init-threshold');
  set('maxBindingMiB', 'max-binding-mib');
  if (f.activation !== undefined) {
    const a = String(f.activation);
    if (a === 'multitopk') {
      c.activation = 'topk';
      c.multiTopK = true;
    } else if ((ACTIVATIONS as readonly string[]).includes(a)) c.activation = a as Activation;
    else throw new UsageError(`--activation must be ${ACTIVATIONS.join('|')}|multitopk, got '${a}'`);
  }
  const widths = f['matryoshka-widths'] as number[] | undefined;
  const sizes = f['group-sizes'] as number[] | undefined;
  if (widths && sizes) throw new UsageError('give --matryoshka-widths or --group-sizes, not both');
  if (widths || sizes) {
    if ((c.activation ?? 'topk') !== 'matryoshka')
      throw new UsageError(
        `--${widths ? 'matryoshka-widths' : 'group-sizes'} needs --activation matryoshka, got '${c.activation ?? 'topk'}'`,
      );
    // Group sizes are the differences of the widths; resolveConfig checks what they add up to.
    let run = 0;
    c.matryoshkaWidths = widths ?? sizes!.map((n) => (run += n));
  }
  if (f['multi-topk']) {
    if (c.activation !== undefined && c.activation !== 'topk')
      throw new UsageError(`--multi-topk needs --activation topk, got '${c.activation}'`);
    c.multiTopK = true;
  }
  if (f['unit-norm-decoder'] !== undefined) {
    const v = String(f['unit-norm-decoder']);
    if (v !== 'on' && v !== 'off') throw new UsageError(`--unit-norm-decoder must be on|off, got '${v}'`);
    c.unitNormDecoder = v === 'on';
  }
  for (const [flag, lo, hi] of [
    ['l1-coef', 0, Number.POSITIVE_INFINITY],
    ['l1-warmup-frac', 0, 1],
  ] as const) {
    const v = f[flag] as number | undefined;
    if (v !== undefined && !(v >= lo && v <= hi))
      throw new UsageError(
        `--${flag} must be in [${lo}, ${hi === Number.POSITIVE_INFINITY ? '∞)' : `${hi}]`}, got ${v}`,
      );
  }
  for (const flag of ['jump-bandwidth', 'jump-init-threshold', 'max-binding-mib'] as const) {
    const v = f[flag] as number | undefined;
    if (v !== undefined && !(v > 0)) throw new UsageError(`--${flag} must be positive, got ${v}`);
  }
  if (f['input-norm'] !== undefined) {
    if (!['scalar', 'paper', 'none'].includes(f['input-norm'] as string))
      throw new UsageError(`--input-norm must be scalar|paper|none`);
    c.inputNorm = f['input-norm'] as SaeConfig['inputNorm'];
  }
  if (f['b-pre-init'] !== undefined) {
    if (!['geomedian', 'mean', 'zero'].includes(f['b-pre-init'] as string))
      throw new UsageError(`--b-pre-init must be geomedian|mean|zero`);
    c.bPreInit = f['b-pre-init'] as SaeConfig['bPreInit'];
  }
  if (f.clip) c.clipGrad = true;
  if (f.ema) c.ema = true;
  if (f['no-tied-init']) c.tiedInit = false;
  if (f['no-auxk']) c.auxk = false;
  if (f['no-grad-projection']) c.gradProjection = false;
  return c;
}

/** The kernels named on the command line (then the autotuner is skipped), or undefined. */
export function kernelFlags(flags: Record<string, unknown>): Partial<KernelChoice> | undefined {
  const encode = flags['encode-variant'] as string | undefined;
  if (!encode) {
    if (flags['topk-variant'] || flags.fused)
      throw new UsageError('--topk-variant and --fused need --encode-variant (they replace the autotuner)');
    return undefined;
  }
  if (!ENCODE_VARIANT_NAMES.includes(encode as never))
    throw new UsageError(`--encode-variant must be ${ENCODE_VARIANT_NAMES.join('|')}, got '${encode}'`);
  const topk = (flags['topk-variant'] as string | undefined) ?? 'bitonic';
  if (!TOPK_VARIANT_NAMES.includes(topk as never))
    throw new UsageError(`--topk-variant must be ${TOPK_VARIANT_NAMES.join('|')}, got '${topk}'`);
  const fused = flags.fused as string | undefined;
  if (fused && !ENCODE_TOPK_VARIANT_NAMES.includes(fused as never))
    throw new UsageError(`--fused must be ${ENCODE_TOPK_VARIANT_NAMES.join('|')}, got '${fused}'`);
  return { encode: encode as never, topk: topk as never, fused: (fused as never) ?? null };
}
