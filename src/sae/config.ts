/**
 * Training configuration. Every default is the paper's (Gao et al. 2024, "Scaling and evaluating
 * sparse autoencoders", arXiv 2406.04093) or its released code (openai/sparse_autoencoder), with the
 * source named beside it. Each ablation of the paper is a switch.
 */

export type InputNorm = 'scalar' | 'paper' | 'none';
export type BPreInit = 'geomedian' | 'mean' | 'zero';
/**
 * Activation of the autoencoder. The TopK family runs sparse through indices (no dense [B, N]
 * gradient): 'topk' (the paper), 'batchtopk' (Bussmann et al. 2024: the B·k largest activations of
 * the whole batch). The threshold family runs dense ([B, N] activations and their gradient):
 * 'relu' (L1 penalty weighted by decoder row norms), 'prolu' (Taggart 2024, ReLU synthetic gradient),
 * 'gated' (Rajamanoharan et al. 2024a), 'jumprelu' (Rajamanoharan et al. 2024b, L0 penalty, STE).
 * 'matryoshka' is BatchTopK whose nested dictionary prefixes (matryoshkaWidths) each reconstruct the
 * input, trained on the sum of the prefix losses (Bussmann et al. 2025; Nabeshima 2024).
 */
export type Activation = 'topk' | 'batchtopk' | 'matryoshka' | 'relu' | 'prolu' | 'gated' | 'jumprelu';
export const ACTIVATIONS: readonly Activation[] = [
  'topk',
  'batchtopk',
  'matryoshka',
  'relu',
  'prolu',
  'gated',
  'jumprelu',
];
export const isDense = (a: Activation) => a !== 'topk' && a !== 'batchtopk' && a !== 'matryoshka';
/** BatchTopK's batch-level cut and learned inference threshold θ: BatchTopK and Matryoshka BatchTopK. */
export const isBatchCut = (a: Activation) => a === 'batchtopk' || a === 'matryoshka';
/** Most nested prefixes of a Matryoshka dictionary (the kernel keeps one partial sum per prefix in registers). */
const MAX_MATRYOSHKA_LEVELS = 8;
/** Activations with per-latent parameters in `extra` [2N] (Gated: r_mag, b_mag; JumpReLU: log θ). */
export const hasExtra = (a: Activation) => a === 'gated' || a === 'jumprelu';

export interface SaeConfig {
  /** Model width d (taken from the data). */
  d: number;
  /** Number of latents N. */
  nLatents: number;
  /** Activation (see {@link Activation}); 'topk' is the paper's. */
  activation: Activation;
  /** Active latents per token (TopK; BatchTopK: mean per token). Unused by the threshold family. */
  k: number;
  /** Multi-TopK (paper §5.3, 'topk' only): loss on the top-k plus 1/8 of the loss on the top-4k. Uses the AuxK entry region, so AuxK is off. */
  multiTopK: boolean;
  /** BatchTopK: per-row candidates kept before the batch selection; null → min(N, 4k, 512). */
  batchTopKCap: number | null;
  /**
   * BatchTopK: decay β of the running inference threshold θ ← β·θ + (1 − β)·(smallest positive
   * activation the batch selection kept); the first update sets θ to that value (dictionary_learning's
   * BatchTopKTrainer). null → min(0.999, 1 − 10/steps): its threshold_beta = 0.999, shortened for
   * short runs so that θ averages over the last tenth of the run rather than its start (ours).
   * Evaluation and export use θ per token (JumpReLU-style).
   */
  batchTopKThresholdBeta: number | null;
  /**
   * BatchTopK: θ is updated from the step after this one on; null → min(1000, ⌊steps/10⌋)
   * (dictionary_learning's threshold_start_step = 1000, shortened for short runs as deadTokens is).
   */
  batchTopKThresholdStart: number | null;
  /**
   * Matryoshka: the nested prefix widths m₁ < … < m_G = N (SAELens's matryoshka_widths; the group
   * sizes of dictionary_learning are their differences). Loss = Σ_g ‖x − (b_pre + Σ_{i<m_g} a_i·W_dec,i)‖²,
   * the full width included once. null → N/64, N/16, N/4, N (ours: four levels, each 4× the last).
   */
  matryoshkaWidths: number[] | null;
  /** Sparsity coefficient λ: L1 of a·‖W_dec,i‖ for relu/prolu/gated, L0 for jumprelu (in units of the normalized MSE). */
  l1Coef: number;
  /** λ ramps linearly from 0 over this fraction of the run's steps (Anthropic's 2024 recipe: 5%). */
  l1WarmupFrac: number;
  /** JumpReLU STE kernel width ε; null → 1e-3·√d (the paper's 1e-3 at E‖x‖² = 1, our inputs have E‖x‖² = d). */
  jumpBandwidth: number | null;
  /** JumpReLU initial threshold; null → 1e-3·√d. */
  jumpInitThreshold: number | null;
  /** Renormalize decoder rows to unit norm after each step; null → on except for relu/prolu/gated, which weight their L1 by the row norms instead. */
  unitNormDecoder: boolean | null;
  /** Rows per step. Paper A.1: 131072 tokens for GPT-4; openai code default 4096 "where memory allows". */
  batchSize: number;
  /** Token budget of the run. */
  tokens: number;
  /** Adam lr; null → 2e-4 / sqrt(N / 2^14), the rule EleutherAI's sparsify uses, fitted to the paper's sweeps. */
  lr: number | null;
  /** Linear warm-up steps for lr (0 in the paper's code). */
  lrWarmupSteps: number;
  /** Linear decay of lr to 0 over the run's last this-many steps (0: constant, as the released code). */
  lrDecaySteps: number;
  /** Adam β1, β2 (paper A.1: 0.9, 0.999). */
  beta1: number;
  beta2: number;
  /** Adam ε (paper A.1: 6.25e-10). */
  eps: number;
  /** AuxK latents; null → min(512, d/2) (paper §2.4 uses k_aux = 512 for d = 768 and larger). */
  kAux: number | null;
  /** AuxK loss weight α (paper §2.4: 1/32). */
  auxCoef: number;
  /** AuxK switch (ablation). */
  auxk: boolean;
  /** Tokens without firing before a latent is dead; null → min(10M, tokens / 10) (paper: 10M). */
  deadTokens: number | null;
  /** A latent fires when its activation exceeds this (paper A.2: 1e-3 — "activates"). */
  fireThreshold: number;
  /** Tied init W_enc = W_decᵀ (paper §2.4; ablation switch). */
  tiedInit: boolean;
  /** b_pre initialization (paper A.1: geometric median of a data sample). */
  bPreInit: BPreInit;
  /** Project the decoder-row gradient orthogonal to the row (paper A.1; ablation switch). */
  gradProjection: boolean;
  /** Clip the global gradient norm (off in the released code; the paper's GPT-4 runs clip to 1). */
  clipGrad: boolean;
  clipNorm: number;
  /** Weight EMA for evaluation (paper A.1: 0.999). */
  ema: boolean;
  emaDecay: number;
  /** Input normalization (stored with the model): scalar so E‖x‖² = d (SAELens/sparsify); paper: per-token center + unit norm. */
  inputNorm: InputNorm;
  /** Held-out fraction of rows, never trained on. */
  evalFrac: number;
  seed: number;
  /** Steps between metric read-backs (the loop never waits on the GPU every step). */
  metricsEvery: number;
  /**
   * Cap on one storage binding, MiB (ours); null → the adapter's maxStorageBufferBindingSize. Lower it
   * to force latent shards and tiles (tests), or on a driver that reports more than it can bind.
   */
  maxBindingMiB: number | null;
}

export const DEFAULTS: Omit<SaeConfig, 'd'> = {
  nLatents: 4096,
  activation: 'topk',
  k: 32,
  multiTopK: false,
  batchTopKCap: null,
  batchTopKThresholdBeta: null,
  batchTopKThresholdStart: null,
  matryoshkaWidths: null,
  l1Coef: 1,
  l1WarmupFrac: 0.05,
  jumpBandwidth: null,
  jumpInitThreshold: null,
  unitNormDecoder: null,
  batchSize: 4096,
  tokens: 10_000_000,
  lr: null,
  lrWarmupSteps: 0,
  lrDecaySteps: 0,
  beta1: 0.9,
  beta2: 0.999,
  eps: 6.25e-10,
  kAux: null,
  auxCoef: 1 / 32,
  auxk: true,
  deadTokens: null,
  fireThreshold: 1e-3,
  tiedInit: true,
  bPreInit: 'geomedian',
  gradProjection: true,
  clipGrad: false,
  clipNorm: 1,
  ema: false,
  emaDecay: 0.999,
  inputNorm: 'scalar',
  evalFrac: 0.1,
  seed: 0,
  metricsEvery: 8,
  maxBindingMiB: null,
};

/** Config with every derived default turned into a number. */
export interface ResolvedConfig extends SaeConfig {
  lr: number;
  kAux: number;
  deadTokens: number;
  batchTopKCap: number;
  batchTopKThresholdBeta: number;
  batchTopKThresholdStart: number;
  matryoshkaWidths: number[];
  jumpBandwidth: number;
  jumpInitThreshold: number;
  unitNormDecoder: boolean;
}

/**
 * Entries per row in the main region: k (TopK, Multi-TopK), the per-row candidate cap (BatchTopK),
 * N (the threshold family: the loss counts L0 over the dense activations).
 */
export function kRow(c: ResolvedConfig): number {
  if (isBatchCut(c.activation)) return c.batchTopKCap;
  if (isDense(c.activation)) return c.nLatents;
  return c.k;
}

/** Width of the main TopK's per-row list: k + kAux for Multi-TopK (one list), kRow otherwise. */
export const kList = (c: ResolvedConfig) => (c.multiTopK ? c.k + c.kAux : kRow(c));

/**
 * Where each default comes from: the paper (Gao et al. 2024), its released code (openai/sparse_autoencoder),
 * EleutherAI's sparsify, SAELens, or ours. README's defaults table is checked against this list.
 */
export const DEFAULT_SOURCES: Record<keyof typeof DEFAULTS, { source: string; note: string }> = {
  nLatents: { source: 'ours', note: 'a size that trains in minutes; the paper sweeps 2^11…2^24' },
  activation: { source: 'paper', note: 'TopK (§2.3)' },
  k: { source: 'released code', note: "openai's GPT-2 SAEs use k = 32" },
  multiTopK: { source: 'paper', note: 'off; §5.3 variant' },
  batchTopKCap: { source: 'ours', note: 'min(N, 4k, 512) candidates per row before the batch cut' },
  batchTopKThresholdBeta: {
    source: 'dictionary_learning',
    note: 'threshold_beta 0.999 of BatchTopKTrainer, shortened to 1 − 10/steps for short runs (ours; SAELens: topk_threshold_lr 0.01)',
  },
  batchTopKThresholdStart: {
    source: 'dictionary_learning',
    note: 'threshold_start_step 1000, shortened to steps/10 for short runs (ours)',
  },
  matryoshkaWidths: {
    source: 'ours',
    note: 'N/64, N/16, N/4, N (SAELens requires them; dictionary_learning takes group fractions)',
  },
  l1Coef: { source: 'ours', note: 'threshold-family baselines only' },
  l1WarmupFrac: { source: 'Anthropic 2024', note: 'λ ramps over the first 5% of steps' },
  jumpBandwidth: { source: 'Rajamanoharan et al. 2024b', note: '1e-3 at E‖x‖² = 1, scaled by √d' },
  jumpInitThreshold: { source: 'Rajamanoharan et al. 2024b', note: '1e-3 at E‖x‖² = 1, scaled by √d' },
  unitNormDecoder: { source: 'paper', note: 'unit-norm decoder rows (§2.4); off for the L1 baselines' },
  batchSize: { source: 'released code', note: '4096 rows (the paper: 131072 tokens for GPT-4)' },
  tokens: { source: 'ours', note: '10M' },
  lr: { source: 'sparsify', note: '2e-4 / √(N / 2^14), fitted to the paper’s sweeps' },
  lrWarmupSteps: { source: 'released code', note: 'none' },
  lrDecaySteps: { source: 'released code', note: 'constant lr' },
  beta1: { source: 'paper', note: 'A.1: 0.9' },
  beta2: { source: 'paper', note: 'A.1: 0.999' },
  eps: { source: 'paper', note: 'A.1: 6.25e-10' },
  kAux: { source: 'paper', note: 'min(512, d/2) (§2.4: 512)' },
  auxCoef: { source: 'paper', note: '§2.4: 1/32' },
  auxk: { source: 'paper', note: 'on (§2.4)' },
  deadTokens: { source: 'paper', note: '10M tokens (§2.4), shortened to tokens/10 for short runs (ours)' },
  fireThreshold: { source: 'paper', note: 'A.2: a latent fires above 1e-3' },
  tiedInit: { source: 'paper', note: 'W_enc = W_decᵀ at init (§2.4)' },
  bPreInit: { source: 'paper', note: 'A.1: geometric median of a sample' },
  gradProjection: { source: 'paper', note: 'A.1: decoder gradient projected off each row' },
  clipGrad: { source: 'released code', note: 'off (the paper clips to 1 for GPT-4; --recipe paper)' },
  clipNorm: { source: 'paper', note: '1' },
  ema: { source: 'released code', note: 'off (the paper evaluates an EMA, 0.999; --recipe paper)' },
  emaDecay: { source: 'paper', note: 'A.1: 0.999' },
  inputNorm: {
    source: 'SAELens/sparsify',
    note: 'one scale per dataset, E‖x‖² = d (the paper: per token; --recipe paper)',
  },
  evalFrac: { source: 'ours', note: '10% held out' },
  seed: { source: 'ours', note: '0' },
  metricsEvery: { source: 'ours', note: 'read metrics back every 8 steps' },
  maxBindingMiB: { source: 'ours', note: "the adapter's limit" },
};

/** Named presets over DEFAULTS (page and CLI `--recipe`): `paper` sets the paper's own choices where the defaults follow other code. */
export const RECIPES = {
  default: {},
  paper: { inputNorm: 'paper', ema: true, emaDecay: 0.999, clipGrad: true, clipNorm: 1 },
} as const satisfies Record<string, Partial<SaeConfig>>;
export type Recipe = keyof typeof RECIPES;

export const lrRule = (nLatents: number) => 2e-4 / Math.sqrt(nLatents / 2 ** 14);
export const kAuxRule = (d: number, nLatents: number) => Math.min(512, Math.floor(d / 2), nLatents);
export const deadTokensRule = (tokens: number) => Math.min(10_000_000, Math.max(1, Math.floor(tokens / 10)));

export function matryoshkaWidthsRule(nLatents: number): number[] {
  const w = [64, 16, 4, 1].map((f) => Math.floor(nLatents / f)).filter((m) => m >= 1);
  return w.filter((m, i) => i === 0 || m > w[i - 1]);
}

export function resolveConfig(partial: Partial<SaeConfig> & { d: number }): ResolvedConfig {
  const c = { ...DEFAULTS, ...partial } as SaeConfig;
  const multi = c.activation === 'topk' && c.multiTopK;
  const resolved: ResolvedConfig = {
    ...c,
    multiTopK: multi,
    // The threshold family has no k; keep it a valid number for the code paths that read it.
    k: isDense(c.activation) ? Math.min(c.k, c.nLatents) : c.k,
    lr: c.lr ?? lrRule(c.nLatents),
    // Multi-TopK keeps ranks k..4k−1 of each row in the AuxK entry region.
    kAux: multi
      ? Math.min(3 * c.k, c.nLatents - c.k)
      : isDense(c.activation)
        ? 0
        : (c.kAux ?? kAuxRule(c.d, c.nLatents)),
    auxk: c.auxk && !multi && !isDense(c.activation),
    deadTokens: c.deadTokens ?? deadTokensRule(c.tokens),
    batchTopKCap: c.batchTopKCap ?? Math.min(c.nLatents, 4 * c.k, 512),
    batchTopKThresholdBeta:
      c.batchTopKThresholdBeta ??
      Math.min(0.999, Math.max(0, 1 - 10 / Math.max(1, Math.ceil(c.tokens / c.batchSize)))),
    batchTopKThresholdStart:
      c.batchTopKThresholdStart ??
      Math.min(1000, Math.floor(Math.max(1, Math.ceil(c.tokens / c.batchSize)) / 10)),
    // Only Matryoshka nests: every other activation has the one level N.
    matryoshkaWidths:
      c.activation === 'matryoshka' ? (c.matryoshkaWidths ?? matryoshkaWidthsRule(c.nLatents)) : [c.nLatents],
    jumpBandwidth: c.jumpBandwidth ?? 1e-3 * Math.sqrt(c.d),
    jumpInitThreshold: c.jumpInitThreshold ?? 1e-3 * Math.sqrt(c.d),
    unitNormDecoder: c.unitNormDecoder ?? !['relu', 'prolu', 'gated'].includes(c.activation),
  };
  if (!resolved.unitNormDecoder) resolved.gradProjection = false;
  const problems = validateConfig(resolved);
  if (problems.length) throw new Error(`invalid config: ${problems.join('; ')}`);
  return resolved;
}

/**
 * Most rows a batch may hold (ours). The kernels take an entry's row from a float quotient corrected
 * once each way (common.wgsl div_rows), exact only below 2^22 rows: keep this cap under that.
 */
const MAX_BATCH_ROWS = 32768;

/** Human-readable problems with a config (empty when valid). */
export function validateConfig(c: ResolvedConfig): string[] {
  const p: string[] = [];
  const int = (name: string, v: number, lo: number, hi = Number.MAX_SAFE_INTEGER) => {
    if (!Number.isInteger(v) || v < lo || v > hi)
      p.push(`${name} must be an integer in [${lo}, ${hi}], got ${v}`);
  };
  int('d', c.d, 1, 65536);
  int('nLatents', c.nLatents, 1);
  int('k', c.k, 1, Math.min(512, c.nLatents));
  int('batchSize', c.batchSize, 1, MAX_BATCH_ROWS);
  int('kAux', c.kAux, 0, Math.min(512, c.nLatents));
  int('deadTokens', c.deadTokens, 0);
  if (!(c.tokens > 0)) p.push(`tokens must be positive, got ${c.tokens}`);
  if (!(c.lr > 0 && c.lr < 1)) p.push(`lr must be in (0, 1), got ${c.lr}`);
  if (!(c.beta1 >= 0 && c.beta1 < 1)) p.push(`beta1 must be in [0, 1), got ${c.beta1}`);
  if (!(c.beta2 >= 0 && c.beta2 < 1)) p.push(`beta2 must be in [0, 1), got ${c.beta2}`);
  if (!(c.eps > 0)) p.push(`eps must be positive, got ${c.eps}`);
  if (!(c.auxCoef >= 0)) p.push(`auxCoef must be ≥ 0, got ${c.auxCoef}`);
  if (!(c.clipNorm > 0)) p.push(`clipNorm must be positive, got ${c.clipNorm}`);
  if (!(c.emaDecay >= 0 && c.emaDecay < 1)) p.push(`emaDecay must be in [0, 1), got ${c.emaDecay}`);
  if (!(c.evalFrac >= 0 && c.evalFrac < 1)) p.push(`evalFrac must be in [0, 1), got ${c.evalFrac}`);
  if (!['scalar', 'paper', 'none'].includes(c.inputNorm)) p.push(`inputNorm must be scalar|paper|none`);
  if (!['geomedian', 'mean', 'zero'].includes(c.bPreInit)) p.push(`bPreInit must be geomedian|mean|zero`);
  int('metricsEvery', c.metricsEvery, 1, 64);
  if (!ACTIVATIONS.includes(c.activation))
    p.push(`activation must be ${ACTIVATIONS.join('|')}, got ${c.activation}`);
  if (isBatchCut(c.activation)) int('batchTopKCap', c.batchTopKCap, c.k, Math.min(512, c.nLatents));
  p.push(...matryoshkaProblems(c.matryoshkaWidths, c.nLatents));
  if (!(c.batchTopKThresholdBeta >= 0 && c.batchTopKThresholdBeta < 1))
    p.push(`batchTopKThresholdBeta must be in [0, 1), got ${c.batchTopKThresholdBeta}`);
  int('batchTopKThresholdStart', c.batchTopKThresholdStart, 0);
  if (c.multiTopK && c.k + c.kAux > 512)
    p.push(`Multi-TopK keeps 4k per row, at most 512: k must be ≤ 128, got ${c.k}`);
  if (!(c.l1Coef >= 0)) p.push(`l1Coef must be ≥ 0, got ${c.l1Coef}`);
  if (!(c.l1WarmupFrac >= 0 && c.l1WarmupFrac <= 1))
    p.push(`l1WarmupFrac must be in [0, 1], got ${c.l1WarmupFrac}`);
  if (!(c.jumpBandwidth > 0)) p.push(`jumpBandwidth must be positive, got ${c.jumpBandwidth}`);
  if (!(c.jumpInitThreshold > 0)) p.push(`jumpInitThreshold must be positive, got ${c.jumpInitThreshold}`);
  int('lrWarmupSteps', c.lrWarmupSteps, 0);
  int('lrDecaySteps', c.lrDecaySteps, 0);
  if (c.maxBindingMiB !== null && !(c.maxBindingMiB > 0))
    p.push(`maxBindingMiB must be positive, got ${c.maxBindingMiB}`);
  return p;
}

function matryoshkaProblems(w: readonly number[], N: number): string[] {
  if (!Array.isArray(w) || w.length < 1 || w.length > MAX_MATRYOSHKA_LEVELS)
    return [`matryoshkaWidths must list 1 to ${MAX_MATRYOSHKA_LEVELS} widths, got ${w}`];
  if (w.some((m, i) => !Number.isInteger(m) || m < 1 || (i > 0 && m <= w[i - 1])))
    return [`matryoshkaWidths must be strictly increasing positive integers, got ${w.join(',')}`];
  if (w[w.length - 1] !== N) return [`matryoshkaWidths must end at nLatents = ${N}, got ${w.join(',')}`];
  return [];
}

/** Adam's bias-corrected step for step t (1-based), computed in float64. */
export function adamScalars(c: ResolvedConfig, t: number, lr: number) {
  return { stepSize: lr / (1 - c.beta1 ** t), bc2: 1 / (1 - c.beta2 ** t) };
}

/** Steps of the run. */
export const totalSteps = (c: ResolvedConfig) => Math.max(1, Math.ceil(c.tokens / c.batchSize));

/** Sparsity coefficient λ at step t (1-based): linear warm-up from 0 over l1WarmupFrac of the steps. */
export function l1At(c: ResolvedConfig, t: number): number {
  const warm = Math.round(c.l1WarmupFrac * totalSteps(c));
  return warm > 0 ? c.l1Coef * Math.min(1, t / warm) : c.l1Coef;
}

/** Learning rate at step t (1-based) with linear warm-up. */
export function lrAt(c: ResolvedConfig, t: number): number {
  let lr = c.lrWarmupSteps > 0 ? c.lr * Math.min(1, t / c.lrWarmupSteps) : c.lr;
  if (c.lrDecaySteps > 0) {
    const total = Math.max(1, Math.ceil(c.tokens / c.batchSize));
    const left = total - t + 1;
    if (left <= c.lrDecaySteps) lr *= Math.max(0, left) / c.lrDecaySteps;
  }
  return lr;
}

/** Initial per-latent parameters: Gated r_mag = b_mag = 0; JumpReLU log θ = log(jumpInitThreshold). */
export function defaultExtra(c: ResolvedConfig): Float32Array {
  const N = c.nLatents;
  const e = new Float32Array(2 * N);
  if (c.activation === 'jumprelu') e.fill(Math.log(c.jumpInitThreshold), 0, N);
  return e;
}

/**
 * The sparsity penalty's weight per token as the kernels use it: the L1 term λ·Σ a·‖w‖ has the units
 * of x, so it is divided by B·√var to sit on the scale of the normalized MSE (var = 1 / (B·lossScale));
 * JumpReLU's L0 term is unitless and only averaged over the batch.
 */
export function l1Scale(c: ResolvedConfig, lossScale: number, l1: number): number {
  if (c.activation === 'jumprelu') return l1 / c.batchSize;
  const variance = 1 / (lossScale * c.batchSize);
  return l1 / (c.batchSize * Math.sqrt(variance));
}
