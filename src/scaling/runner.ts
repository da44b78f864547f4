/**
 * Glue between a sweep (pure logic in sweep.ts, convergence.ts, sweep-result.ts) and the trainer worker, shared by the CLI
 * (cli/sweep.ts) and the page (src/store/sweep.ts): the training config of each run, the held-out
 * evaluation interval, the stop decision for "until converged" runs, the ablation runs, and the
 * export files (JSON, CSV, SVG). No DOM, no node APIs.
 */
import type { SaeConfig } from '../sae/config';
import { type CurveSample, detectConvergence, shouldStop } from './convergence';
import { predictPowerLaw } from './laws';
import { lossVsNSvg, tokensVsNSvg } from './plots';
import { type PlotSeries, renderLogLogSvg } from './svg';
import type { SweepGrid, SweepRunConfig, TokenBudget } from './sweep';
import {
  makeSweepResult,
  type SweepFits,
  type SweepResult,
  type SweepRun,
  type SweepRunFinal,
  sweepToCsv,
} from './sweep-result';

/** Tolerance used to read tokens-to-convergence off fixed-budget runs' curves. */
export const DEFAULT_TOL = 0.01;
/** Held-out evaluations per run (the convergence test's resolution). */
export const DEFAULT_EVALS_PER_RUN = 24;

/** Tokens each run is started with: the fixed budget, or the cap of an until-converged run. */
export function budgetTokens(budget: TokenBudget): number {
  return budget.kind === 'tokens' ? budget.tokens : budget.maxTokens;
}

/**
 * The SaeConfig of one sweep run: the shared base (batch, AuxK, …) with N, k, lr, seed and the
 * token budget of the run. `patch` applies an ablation switch on top.
 */
export function trainConfigFor(
  run: SweepRunConfig,
  base: Partial<SaeConfig> = {},
  patch: Partial<SaeConfig> = {},
): Partial<SaeConfig> {
  return {
    ...base,
    nLatents: run.N,
    k: run.k,
    lr: run.lr,
    seed: run.seed,
    tokens: budgetTokens(run.budget),
    ...patch,
  };
}

/**
 * Tokens between held-out evaluations: about `evalsPerRun` per run, a whole number of batches,
 * at least one batch.
 */
export function evalEveryFor(
  budget: TokenBudget,
  batchSize: number,
  evalsPerRun = DEFAULT_EVALS_PER_RUN,
): number {
  const per = budgetTokens(budget) / Math.max(1, evalsPerRun);
  return Math.max(1, Math.round(per / batchSize)) * batchSize;
}

/** The `runs` of expandGrid with one fixed lr instead of the N rule (the --lr flag). */
export function withFixedLr(
  runs: readonly SweepRunConfig[],
  lr: number | null | undefined,
): SweepRunConfig[] {
  return lr == null ? [...runs] : runs.map((r) => ({ ...r, lr }));
}

/** What one sweep run reports back, besides SweepRun's config and final metrics. */
export interface SweepRunRecord extends SweepRun {
  curve: CurveSample[];
  /** Why the run ended: its budget, the convergence test, or a failure (NaN). */
  stop_reason: 'budget' | 'converged' | 'failed';
  /** tokens_to_convergence is an upper bound (converged before the first testable evaluation). */
  censored: boolean;
  wall_s: number;
  error?: string;
}

/** Held-out metrics as the worker reports them (EvalResult's fields the sweep reads). */
export interface EvalLike {
  tokens: number;
  nmse: number;
  l0: number;
  deadFractionRule: number;
  /** the weights evaluated (EvalResult.weights) */
  weights?: 'ema' | 'live';
}

/**
 * Follows one run's held-out evaluations. `push` returns true once an until-converged run should be
 * stopped (the caller sends {type: 'stop'}); `finish` turns the final evaluation into the record.
 */
export class RunTracker {
  readonly curve: CurveSample[] = [];
  private stopAsked = false;

  constructor(
    readonly run: SweepRunConfig,
    /** tolerance for tokens-to-convergence of fixed-budget runs (until-converged runs use their own) */
    readonly tol = DEFAULT_TOL,
  ) {}

  private get testTol(): number {
    return this.run.budget.kind === 'converged' ? this.run.budget.tol : this.tol;
  }
  private get minTokens(): number | undefined {
    return this.run.budget.kind === 'converged' ? this.run.budget.minTokens : undefined;
  }

  /** Add a held-out evaluation; true exactly once, when the run should be stopped as converged. */
  push(tokens: number, nmse: number): boolean {
    const last = this.curve[this.curve.length - 1];
    if (!(tokens > 0) || !Number.isFinite(nmse) || (last && tokens <= last.tokens)) return false;
    this.curve.push({ tokens, nmse });
    if (this.stopAsked || this.run.budget.kind !== 'converged') return false;
    const s = shouldStop(this.curve, this.run.budget);
    if (s.stop && s.reason === 'converged') {
      this.stopAsked = true;
      return true;
    }
    return false;
  }

  get stopRequested(): boolean {
    return this.stopAsked;
  }

  /** The record of a finished run from its final held-out evaluation. */
  finish(final: EvalLike, wallS: number, error?: string): SweepRunRecord {
    this.push(final.tokens, final.nmse);
    const conv = detectConvergence(this.curve, this.testTol, { minTokens: this.minTokens });
    const f: SweepRunFinal = {
      nmse: final.nmse,
      l0: final.l0,
      dead_fraction: final.deadFractionRule,
      tokens: final.tokens,
      tokens_to_convergence: conv.converged ? Math.round(conv.tokensToConvergence as number) : null,
      ...(final.weights === 'ema' ? { weights: 'ema' as const } : {}),
    };
    return {
      config: this.run,
      final: f,
      curve: [...this.curve],
      stop_reason: error ? 'failed' : this.stopAsked ? 'converged' : 'budget',
      censored: conv.censored,
      wall_s: wallS,
      ...(error ? { error } : {}),
    };
  }
}

/** Runs that can enter the fits (finished, finite, positive loss). */
function fittableRuns<R extends SweepRunRecord>(runs: readonly R[]): R[] {
  return runs.filter((r) => r.stop_reason !== 'failed' && Number.isFinite(r.final.nmse) && r.final.nmse > 0);
}

// ---------------------------------------------------------------------------
// Ablations (issue "Baselines, variants and ablations")

export interface AblationVariant {
  id: string;
  label: string;
  /** the switch turned off */
  patch: Partial<SaeConfig>;
}

/** The full recipe, then each of the paper's ablation switches off once. */
export const ABLATIONS: readonly AblationVariant[] = [
  { id: 'full', label: 'full recipe', patch: {} },
  { id: 'no-tied-init', label: 'no tied init', patch: { tiedInit: false } },
  { id: 'no-auxk', label: 'no AuxK', patch: { auxk: false } },
  { id: 'b-pre-zero', label: 'b_pre = 0', patch: { bPreInit: 'zero' } },
  { id: 'no-grad-projection', label: 'no gradient projection', patch: { gradProjection: false } },
];

export interface AblationRow {
  id: string;
  label: string;
  N: number;
  k: number;
  nmse: number;
  l0: number;
  dead_fraction: number;
  tokens: number;
}

/**
 * Where to run the ablations: the given (N, k), else the largest N of the sweep with its middle k
 * (k < N). Null for an empty sweep.
 */
export function ablationPoint(
  runs: readonly SweepRunConfig[],
  at?: { N: number; k: number },
): SweepRunConfig | null {
  if (at) return runs.find((r) => r.N === at.N && r.k === at.k) ?? null;
  if (!runs.length) return null;
  const maxN = Math.max(...runs.map((r) => r.N));
  const atN = runs.filter((r) => r.N === maxN).sort((a, b) => a.k - b.k);
  return atN[Math.floor((atN.length - 1) / 2)];
}

export function ablationRow(v: AblationVariant, r: SweepRunRecord): AblationRow {
  return {
    id: v.id,
    label: v.label,
    N: r.config.N,
    k: r.config.k,
    nmse: r.final.nmse,
    l0: r.final.l0,
    dead_fraction: r.final.dead_fraction,
    tokens: r.final.tokens,
  };
}

export function ablationToCsv(rows: readonly AblationRow[]): string {
  const cols = ['id', 'label', 'N', 'k', 'nmse', 'l0', 'dead_fraction', 'tokens'] as const;
  const field = (v: string | number) =>
    typeof v === 'number'
      ? Number.isFinite(v)
        ? String(v)
        : ''
      : /[",\n]/.test(v)
        ? `"${v.replace(/"/g, '""')}"`
        : v;
  return [cols.join(','), ...rows.map((r) => cols.map((c) => field(r[c])).join(','))].join('\n') + '\n';
}

// ---------------------------------------------------------------------------
// The exported document and plots

export interface SweepDocument extends SweepResult {
  runs: SweepRunRecord[];
  /** runs that failed (NaN), kept out of the fits */
  failed?: SweepRunRecord[];
  ablation?: AblationRow[];
  meta?: Record<string, unknown>;
}

/** sweep.json: the finished runs, the fits (FitError messages where a fit cannot be made), ablations. */
export function sweepDocument(
  records: readonly SweepRunRecord[],
  grid?: SweepGrid,
  extra: { ablation?: AblationRow[]; meta?: Record<string, unknown> } = {},
): SweepDocument {
  const ok = fittableRuns(records);
  const failed = records.filter((r) => !ok.includes(r));
  const base = makeSweepResult(ok, grid) as SweepDocument;
  return {
    ...base,
    runs: ok,
    ...(failed.length ? { failed } : {}),
    ...(extra.ablation?.length ? { ablation: extra.ablation } : {}),
    ...(extra.meta ? { meta: extra.meta } : {}),
  };
}

/** nMSE vs k at fixed N, one series per N, with each N's power-law fit. */
function lossVsKSvg(runs: readonly SweepRun[], fits?: SweepFits): string {
  const Ns = [...new Set(runs.map((r) => r.config.N))].sort((a, b) => a - b);
  const series: PlotSeries[] = Ns.map((N) => {
    const o = fits?.Lk.find((f) => f.N === N)?.outcome;
    return {
      name: o?.ok ? `N=${N} (L ∝ k^${o.fit.params.beta.toFixed(3)})` : `N=${N}`,
      points: runs.filter((r) => r.config.N === N).map((r) => ({ x: r.config.k, y: r.final.nmse })),
      curve: o?.ok ? (k: number) => predictPowerLaw(o.fit.params, k) : undefined,
    };
  });
  return renderLogLogSvg({
    title: 'Final nMSE vs k',
    xLabel: 'k',
    yLabel: 'nMSE',
    series,
    idPrefix: 'loss-vs-k',
  });
}

/** The MSE–L0 frontier: nMSE vs measured L0, one series per N (points joined in L0 order). */
function frontierSvg(runs: readonly SweepRun[]): string {
  const Ns = [...new Set(runs.map((r) => r.config.N))].sort((a, b) => a - b);
  const series: PlotSeries[] = Ns.map((N) => {
    const pts = runs
      .filter((r) => r.config.N === N)
      .map((r) => ({ x: r.final.l0, y: r.final.nmse }))
      .sort((a, b) => a.x - b.x);
    return { name: `N=${N}`, points: pts, curve: pts.length > 1 ? pts : undefined };
  });
  return renderLogLogSvg({
    title: 'MSE–L0 frontier',
    xLabel: 'L0',
    yLabel: 'nMSE',
    series,
    idPrefix: 'frontier',
  });
}

/** Every figure of a sweep as standalone SVG, with its file name. */
export function sweepSvgs(doc: SweepResult): { file: string; title: string; svg: string }[] {
  return [
    { file: 'L_vs_N.svg', title: 'nMSE vs N', svg: lossVsNSvg(doc.runs, doc.fits) },
    { file: 'L_vs_k.svg', title: 'nMSE vs k', svg: lossVsKSvg(doc.runs, doc.fits) },
    { file: 'frontier.svg', title: 'MSE–L0 frontier', svg: frontierSvg(doc.runs) },
    { file: 'T_vs_N.svg', title: 'tokens to convergence vs N', svg: tokensVsNSvg(doc.runs, doc.fits) },
  ];
}

/** sweep.csv content (the runs of the document). */
export function sweepCsv(doc: SweepResult): string {
  return sweepToCsv(doc.runs);
}

/** A fitted curve y(x) sampled log-uniformly on [lo, hi] (for plotting); non-positive values dropped. */
export function sampleCurve(
  f: (x: number) => number,
  lo: number,
  hi: number,
  n = 40,
): { x: number; y: number }[] {
  const out: { x: number; y: number }[] = [];
  const a = Math.log(lo);
  const b = Math.log(hi);
  for (let i = 0; i < n; i++) {
    const x = Math.exp(a + ((b - a) * i) / (n - 1));
    const y = f(x);
    if (Number.isFinite(y) && y > 0) out.push({ x, y });
  }
  return out;
}
