/**
 * The document a sweep exports: each run's config, final held-out metrics and curve, the scaling
 * laws fitted to them (fitSweep), its JSON check (parseSweepResult) and CSV (sweepToCsv).
 */
import type { CurveSample } from './convergence';
import { type BootstrapOptions, FitError, type FitResult } from './fit';
import { fitLN, fitLNk, fitPowerLaw, type LNkParam, type LNParam, type PowerLawParam } from './laws';
import type { SweepGrid, SweepRunConfig } from './sweep';

/** Final metrics of a run, all measured on the held-out set. */
export interface SweepRunFinal {
  /** Normalized MSE Σe²/Σ(x − mean x)² on raw activations. */
  nmse: number;
  /** Mean number of active latents per token (≤ k for TopK). */
  l0: number;
  /** Fraction of latents dead at the end, in [0, 1]. */
  dead_fraction: number;
  /** Tokens trained on. */
  tokens: number;
  /** From `detectConvergence`; null if the run did not converge (or had a fixed budget and was not tested). */
  tokens_to_convergence: number | null;
  /** 'ema': the metrics are those of the EMA of the weights (the run kept one, --ema), as the paper evaluates. */
  weights?: 'ema' | 'live';
}

export interface SweepRun {
  config: SweepRunConfig;
  final: SweepRunFinal;
  /** Optional held-out nMSE curve, for plots and re-running the convergence test. */
  curve?: CurveSample[];
}

/** A fit that either worked or was refused (too few points, …). */
export type FitOutcome<P extends string> = { ok: true; fit: FitResult<P> } | { ok: false; error: string };

export interface SweepFits {
  /** L(N) = exp(alpha) N^beta + L_irr, one fit per k. */
  LN: { k: number; outcome: FitOutcome<LNParam> }[];
  /** Joint L(N, k) over all runs. */
  LNk: FitOutcome<LNkParam>;
  /** L(k) = c k^beta, one fit per N. */
  Lk: { N: number; outcome: FitOutcome<PowerLawParam> }[];
  /** Tokens to convergence T(N) = c N^beta, one fit per k, over converged runs. */
  T: { k: number; outcome: FitOutcome<PowerLawParam> }[];
}

/** The JSON document a sweep exports. */
export interface SweepResult {
  version: 1;
  grid?: SweepGrid;
  runs: SweepRun[];
  fits: SweepFits;
}

/** Run `f`, turning a FitError into a refused outcome (other errors are bugs and propagate). */
function attempt<P extends string>(f: () => FitResult<P>): FitOutcome<P> {
  try {
    return { ok: true, fit: f() };
  } catch (e) {
    if (e instanceof FitError) return { ok: false, error: e.message };
    throw e;
  }
}

function groupBy<T>(items: readonly T[], key: (t: T) => number): Map<number, T[]> {
  const m = new Map<number, T[]>();
  for (const it of [...items].sort((a, b) => key(a) - key(b))) {
    const group = m.get(key(it));
    if (group) group.push(it);
    else m.set(key(it), [it]);
  }
  return m;
}

/**
 * Fit every law the runs support. Fits without enough points come back as
 * `{ok: false, error}` instead of throwing, so a partial sweep still exports.
 */
export function fitSweep(
  runs: readonly SweepRun[],
  options: { bootstrap?: BootstrapOptions } = {},
): SweepFits {
  const byK = groupBy(runs, (r) => r.config.k);
  const byN = groupBy(runs, (r) => r.config.N);
  return {
    LN: [...byK].map(([k, group]) => ({
      k,
      outcome: attempt(() =>
        fitLN(
          group.map((r) => ({ N: r.config.N, L: r.final.nmse })),
          options,
        ),
      ),
    })),
    LNk: attempt(() =>
      fitLNk(
        runs.map((r) => ({ N: r.config.N, k: r.config.k, L: r.final.nmse })),
        options,
      ),
    ),
    Lk: [...byN].map(([N, group]) => ({
      N,
      outcome: attempt(() =>
        fitPowerLaw(
          group.map((r) => ({ x: r.config.k, y: r.final.nmse })),
          options,
        ),
      ),
    })),
    T: [...byK].map(([k, group]) => ({
      k,
      outcome: attempt(() =>
        fitPowerLaw(
          group
            .filter((r) => r.final.tokens_to_convergence !== null)
            .map((r) => ({ x: r.config.N, y: r.final.tokens_to_convergence as number })),
          options,
        ),
      ),
    })),
  };
}

/** Assemble the exportable sweep document, fitting the laws. */
export function makeSweepResult(
  runs: readonly SweepRun[],
  grid?: SweepGrid,
  options: { bootstrap?: BootstrapOptions } = {},
): SweepResult {
  return { version: 1, ...(grid ? { grid } : {}), runs: [...runs], fits: fitSweep(runs, options) };
}

/**
 * Check that a parsed JSON value has the SweepResult shape (the parts the
 * app reads back: version, runs with config and final metrics). Throws a
 * TypeError naming the first bad field. Fits are recomputed rather than
 * trusted when missing.
 */
export function parseSweepResult(value: unknown): SweepResult {
  const doc = asObject(value, 'document');
  if (doc.version !== 1) failParse('version (expected 1)');
  if (!Array.isArray(doc.runs)) failParse('runs');
  (doc.runs as unknown[]).forEach((run, i) => {
    const config = asObject(asObject(run, `runs[${i}]`).config, `runs[${i}].config`);
    if (typeof config.id !== 'string') failParse(`runs[${i}].config.id`);
    for (const f of ['N', 'k', 'lr']) {
      if (typeof config[f] !== 'number') failParse(`runs[${i}].config.${f}`);
    }
    const final = asObject((run as Record<string, unknown>).final, `runs[${i}].final`);
    for (const f of ['nmse', 'l0', 'dead_fraction', 'tokens']) {
      if (typeof final[f] !== 'number') failParse(`runs[${i}].final.${f}`);
    }
    const ttc = final.tokens_to_convergence;
    if (!(ttc === null || typeof ttc === 'number')) failParse(`runs[${i}].final.tokens_to_convergence`);
  });
  const result = doc as unknown as SweepResult;
  if (typeof doc.fits !== 'object' || doc.fits === null) return { ...result, fits: fitSweep(result.runs) };
  return result;
}

function failParse(path: string): never {
  throw new TypeError(`parseSweepResult: bad or missing ${path}`);
}

function asObject(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) failParse(path);
  return v as Record<string, unknown>;
}

// CSV

/** Column order of `sweepToCsv`. */
export const SWEEP_CSV_COLUMNS = [
  'id',
  'N',
  'k',
  'lr',
  'seed',
  'max_tokens',
  'tol',
  'nmse',
  'l0',
  'dead_fraction',
  'tokens',
  'tokens_to_convergence',
] as const;

/** RFC 4180 quoting: only fields with a comma, quote or newline are quoted. */
function csvField(v: string | number | null | undefined): string {
  if (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v))) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * One header line, then one line per run, in the given order; lines end in
 * "\n". Numbers use JS's shortest round-trip form; null / non-finite values
 * are empty fields. `max_tokens` is the fixed budget or the cap; `tol` is
 * empty for fixed budgets.
 */
export function sweepToCsv(runs: readonly SweepRun[]): string {
  const lines = [SWEEP_CSV_COLUMNS.join(',')];
  for (const { config: c, final: f } of runs) {
    const b = c.budget;
    const row = [
      c.id,
      c.N,
      c.k,
      c.lr,
      c.seed,
      b.kind === 'tokens' ? b.tokens : b.maxTokens,
      b.kind === 'tokens' ? null : b.tol,
      f.nmse,
      f.l0,
      f.dead_fraction,
      f.tokens,
      f.tokens_to_convergence,
    ];
    lines.push(row.map(csvField).join(','));
  }
  return lines.join('\n') + '\n';
}
