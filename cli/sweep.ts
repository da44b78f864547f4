/**
 * npm run sweep -- --data FILE|demo --n-latents 256,512,1024 --k 8,16,32 --tokens T [--until-converged
 * --tol 0.01 --max-tokens T] [--ablate] [train flags] --out DIR
 *
 * Runs the grid N × k one run after another in ONE headless session (the dataset is opened once, then
 * one 'train' message per run), lr scaled with N by lr(N) = 2e-4/sqrt(N/2^14) unless --lr is given,
 * and writes DIR/sweep.json (runs, fits — FitError messages where a fit cannot be made — and the
 * ablation table), DIR/sweep.csv, DIR/ablation.csv and the log-log plots as SVG.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SaeConfig } from '../src/sae/config';
import { DEFAULT_L0_COEF_LIST, DEFAULT_L1_LIST, METHODS } from '../src/scaling/compare';
import {
  ABLATIONS,
  type AblationRow,
  ablationPoint,
  ablationRow,
  ablationToCsv,
  DEFAULT_EVALS_PER_RUN,
  DEFAULT_TOL,
  RunTracker,
  type SweepDocument,
  type SweepRunRecord,
  sweepCsv,
  sweepDocument,
  sweepSvgs,
  trainConfigFor,
  withFixedLr,
} from '../src/scaling/runner';
import { expandGrid, type SweepGrid, type SweepRunConfig, type TokenBudget } from '../src/scaling/sweep';
import type { FitOutcome } from '../src/scaling/sweep-result';
import { type FlagSpec, helpText, parseFlags, UsageError } from './args';
import { compareMain } from './compare';
import { configFromFlags, TRAIN_FLAGS } from './train-flags';
import { checkPlans, fmtDur, queueTrainer } from './train-one';

const {
  'n-latents': _n,
  k: _k,
  tokens: _t,
  out: _o,
  'inject-gpu-error': _inject,
  ...trainOnly
} = TRAIN_FLAGS;

export const SWEEP_FLAGS: Record<string, FlagSpec> = {
  'n-latents': { kind: 'list', help: 'latent counts N, powers of two, comma-separated (e.g. 256,512,1024)' },
  k: { kind: 'list', help: 'sparsities k, comma-separated (e.g. 8,16,32); pairs with k ≥ N are skipped' },
  tokens: { kind: 'number', help: 'token budget of every run (fixed-budget sweep)' },
  'until-converged': {
    kind: 'bool',
    help: 'stop each run once held-out nMSE improves < tol over a doubling',
  },
  tol: {
    kind: 'number',
    help: `convergence tolerance (default ${DEFAULT_TOL}); also used to read tokens-to-convergence off fixed-budget runs`,
  },
  'max-tokens': { kind: 'number', help: 'cap for --until-converged runs (default --tokens)' },
  'min-tokens': { kind: 'number', help: 'never call a run converged before this many tokens (default 0)' },
  'evals-per-run': { kind: 'int', help: `held-out evaluations per run (default ${DEFAULT_EVALS_PER_RUN})` },
  'base-lr': { kind: 'number', help: 'lr at N = 2^14 for the rule lr(N) = base/sqrt(N/2^14) (default 2e-4)' },
  ablate: { kind: 'bool', help: 'also run the full recipe with each ablation switch off once at one (N, k)' },
  'ablate-at': {
    kind: 'list',
    help: 'N,k of the ablation (default: the largest N, its middle k; with --methods: k, or N,k)',
  },
  methods: {
    kind: 'string',
    help: `method comparison at one N: any of ${METHODS.join(',')} (sparsity axis: --k for the TopK family, --l1 for relu/prolu/gated, --l0-coef for jumprelu)`,
  },
  l1: {
    kind: 'list',
    help: `with --methods: λ values (L1) for relu/prolu/gated (default ${DEFAULT_L1_LIST.join(',')})`,
  },
  'l0-coef': {
    kind: 'list',
    help: `with --methods: λ values (L0) for jumprelu (default ${DEFAULT_L0_COEF_LIST.join(',')})`,
  },
  restart: {
    kind: 'bool',
    help: 'with --methods: ignore runs already in DIR/compare.json (default: skip them)',
  },
  ...trainOnly,
  out: { kind: 'string', help: 'output directory (default sweeps/<timestamp>)' },
};
export const SWEEP_USAGE = [
  'usage: npm run sweep -- --data FILE|demo --n-latents 256,512,1024 --k 8,16,32 --tokens T [--until-converged --tol 0.01 --max-tokens T] [--ablate] [train flags] --out DIR',
  '       npm run sweep -- --data FILE|demo --methods topk,relu,jumprelu --n-latents 1024 [--k 8,16,32] [--l1 1e-3,1e-2] [--l0-coef 1e-3,1e-2] --tokens T [--ablate] [train flags] --out DIR',
].join('\n');

export interface SweepPlan {
  grid: SweepGrid;
  runs: SweepRunConfig[];
  /** shared training config (batch, AuxK, …; never N, k, lr, seed, tokens) */
  base: Partial<SaeConfig>;
  tol: number;
  evalsPerRun: number;
  /** the ablation's (N, k) run, when --ablate */
  ablation: SweepRunConfig | null;
}

/** Flags → the sweep's grid, runs, shared config and ablation point; UsageError on bad input. */
export function planFromFlags(flags: Record<string, unknown>): SweepPlan {
  const Ns = flags['n-latents'] as number[] | undefined;
  const ks = flags.k as number[] | undefined;
  if (!Ns?.length) throw new UsageError('--n-latents is required (e.g. --n-latents 256,512,1024)');
  if (!ks?.length) throw new UsageError('--k is required (e.g. --k 8,16,32)');
  const tol = (flags.tol as number | undefined) ?? DEFAULT_TOL;
  let budget: TokenBudget;
  if (flags['until-converged']) {
    const maxTokens = (flags['max-tokens'] as number | undefined) ?? (flags.tokens as number | undefined);
    if (maxTokens === undefined)
      throw new UsageError('--until-converged needs --max-tokens (or --tokens) as a cap');
    budget = {
      kind: 'converged',
      tol,
      maxTokens,
      minTokens: (flags['min-tokens'] as number | undefined) ?? 0,
    };
  } else {
    if (flags.tokens === undefined)
      throw new UsageError('--tokens is required (or --until-converged --max-tokens T)');
    budget = { kind: 'tokens', tokens: flags.tokens as number };
  }
  const grid: SweepGrid = {
    N: Ns,
    k: ks,
    budget,
    ...(flags['base-lr'] !== undefined ? { baseLr: flags['base-lr'] as number } : {}),
    seed: (flags.seed as number | undefined) ?? 0,
  };
  let runs: SweepRunConfig[];
  try {
    runs = withFixedLr(expandGrid(grid), flags.lr as number | undefined);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (!runs.length) throw new UsageError('the grid is empty: every k is ≥ every N');
  const { nLatents: _N, k: _K, lr: _lr, seed: _s, tokens: _T, ...base } = configFromFlags(flags);
  let ablation: SweepRunConfig | null = null;
  if (flags.ablate) {
    const at = flags['ablate-at'] as number[] | undefined;
    if (at && at.length !== 2) throw new UsageError('--ablate-at expects N,k');
    ablation = ablationPoint(runs, at ? { N: at[0], k: at[1] } : undefined);
    if (!ablation) throw new UsageError(`--ablate-at ${at?.join(',')} is not a run of the grid`);
  }
  const evalsPerRun = (flags['evals-per-run'] as number | undefined) ?? DEFAULT_EVALS_PER_RUN;
  if (!(evalsPerRun >= 2)) throw new UsageError('--evals-per-run must be at least 2');
  return { grid, runs, base, tol, evalsPerRun, ablation };
}

/** One line per fit: parameters ± stderr and R², or the FitError message. */
export function fitSummary(doc: SweepDocument): string[] {
  const fmt = <P extends string>(o: FitOutcome<P>) =>
    o.ok
      ? `${o.fit.paramNames.map((p) => `${p}=${o.fit.params[p].toPrecision(4)}±${o.fit.stderr[p].toPrecision(2)}`).join(' ')}  R²=${o.fit.r2.toFixed(4)}`
      : `(no fit: ${o.error})`;
  return [
    ...doc.fits.LN.map((f) => `L(N) k=${f.k}: ${fmt(f.outcome)}`),
    `L(N,k): ${fmt(doc.fits.LNk)}`,
    ...doc.fits.Lk.map((f) => `L(k) N=${f.N}: ${fmt(f.outcome)}`),
    ...doc.fits.T.map((f) => `T(N) k=${f.k}: ${fmt(f.outcome)}`),
  ];
}

interface Job {
  run: SweepRunConfig;
  patch: Partial<SaeConfig>;
  label: string;
}

export async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, SWEEP_FLAGS);
  if (flags.help) {
    console.log(helpText(SWEEP_USAGE, SWEEP_FLAGS));
    return 0;
  }
  if (!flags.data) throw new UsageError('--data is required (a file, shards comma-separated, or "demo")');
  if (flags.methods !== undefined) return compareMain(flags);
  const plan = planFromFlags(flags);
  const out =
    (flags.out as string | undefined) ?? join('sweeps', new Date().toISOString().replace(/[:.]/g, '-'));
  const quiet = Boolean(flags.quiet);
  const log = (s: string) => process.stderr.write(`${s}\n`);

  const jobs: Job[] = plan.runs.map((run) => ({ run, patch: {}, label: run.id }));
  if (plan.ablation) {
    for (const v of ABLATIONS.slice(1))
      jobs.push({ run: plan.ablation, patch: v.patch, label: `${plan.ablation.id} ${v.label}` });
  }

  const { datasetRecord, openDataFlag, openHeadless } = await import('./headless');
  const t0 = performance.now();
  const h = await openHeadless();
  const records: SweepRunRecord[] = [];
  const ablationRecords = new Map<string, SweepRunRecord>();
  let meta: Record<string, unknown> = {};
  try {
    await h.send({ type: 'init' });
    const ready = await h.next(['ready']);
    const ds = await openDataFlag(h, flags);
    log(
      `sweep: ${jobs.length} runs on ${ds.name} [${ds.rows}, ${ds.d}] · ${plan.grid.budget.kind === 'tokens' ? `${plan.grid.budget.tokens} tokens each` : `until converged (tol ${plan.tol}, cap ${plan.grid.budget.maxTokens})`} · lr ${flags.lr !== undefined ? `fixed ${flags.lr}` : `2e-4·… rule: lr(N) = ${plan.grid.baseLr ?? 2e-4}/sqrt(N/2^14)`}`,
    );
    await checkPlans(
      h,
      jobs.map((j) => ({ label: j.label, config: trainConfigFor(j.run, plan.base, j.patch) })),
    );
    meta = {
      dataset: datasetRecord(ds),
      adapter: ready.adapter,
      base_config: plan.base,
      evals_per_run: plan.evalsPerRun,
      tol: plan.tol,
    };

    const train = queueTrainer(h, {
      encodeVariant: flags['encode-variant'],
      evalsPerRun: plan.evalsPerRun,
      quiet,
      log,
    });
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i];
      const isFullAblation = job.label === plan.ablation?.id;
      const config = trainConfigFor(job.run, plan.base, job.patch);
      const tracker = new RunTracker(job.run, plan.tol);
      const runId = `sweep-${i}-${Date.now().toString(36)}`;
      const prefix = `[${i + 1}/${jobs.length} ${job.label}]`;
      const startedAt = performance.now();
      log(
        `${prefix} N=${job.run.N} k=${job.run.k} lr=${job.run.lr.toPrecision(3)} · sweep elapsed ${fmtDur((startedAt - t0) / 1000)}`,
      );
      const { final, wall, nanMessage } = await train({ runId, prefix, config, tracker, startedAt });
      const rec = tracker.finish(final, wall, nanMessage);
      const f = rec.final;
      log(
        `${prefix} done in ${fmtDur(wall)}: nMSE ${f.nmse.toFixed(4)} L0 ${f.l0.toFixed(1)} dead ${(f.dead_fraction * 100).toFixed(1)}% tokens ${f.tokens}` +
          ` · T_conv ${f.tokens_to_convergence ?? '—'}${rec.censored ? ' (≤)' : ''}${rec.error ? ` · FAILED: ${rec.error}` : ''}`,
      );
      if (job.patch && Object.keys(job.patch).length) ablationRecords.set(job.label, rec);
      else {
        records.push(rec);
        if (isFullAblation) ablationRecords.set(job.label, rec);
      }
      // Partial results survive an interrupted sweep.
      writeOutputs(out, records, plan, ablationRecords, {
        ...meta,
        wall_s: (performance.now() - t0) / 1000,
        complete: false,
      });
    }
  } finally {
    h.onMessage = null;
    await h.close();
  }
  const wallS = (performance.now() - t0) / 1000;
  const doc = writeOutputs(out, records, plan, ablationRecords, { ...meta, wall_s: wallS, complete: true });
  for (const line of fitSummary(doc)) console.log(line);
  if (doc.ablation) {
    for (const r of doc.ablation)
      console.log(
        `ablation ${r.label.padEnd(24)} nMSE ${r.nmse.toFixed(4)} dead ${(r.dead_fraction * 100).toFixed(1)}%`,
      );
  }
  console.log(
    `sweep of ${records.length + ablationRecords.size - (plan.ablation ? 1 : 0)} runs took ${fmtDur(wallS)} → ${join(out, 'sweep.json')}`,
  );
  return 0;
}

function ablationRows(plan: SweepPlan, recs: Map<string, SweepRunRecord>): AblationRow[] {
  if (!plan.ablation) return [];
  const rows: AblationRow[] = [];
  for (const v of ABLATIONS) {
    const key = v.id === 'full' ? plan.ablation.id : `${plan.ablation.id} ${v.label}`;
    const r = recs.get(key);
    if (r) rows.push(ablationRow(v, r));
  }
  return rows;
}

function writeOutputs(
  out: string,
  records: SweepRunRecord[],
  plan: SweepPlan,
  ablation: Map<string, SweepRunRecord>,
  meta: Record<string, unknown>,
): SweepDocument {
  const rows = ablationRows(plan, ablation);
  const doc = sweepDocument(records, plan.grid, { ablation: rows, meta });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'sweep.json'), JSON.stringify(doc, null, 2));
  writeFileSync(join(out, 'sweep.csv'), sweepCsv(doc));
  if (rows.length) writeFileSync(join(out, 'ablation.csv'), ablationToCsv(rows));
  for (const s of sweepSvgs(doc)) writeFileSync(join(out, s.file), s.svg);
  return doc;
}
