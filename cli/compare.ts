/**
 * `npm run sweep -- --methods topk,relu,… --n-latents N [--k LIST] [--l1 LIST] [--l0-coef LIST]
 * --tokens T [--ablate] --out DIR`: the method comparison of src/scaling/compare.ts, run one after
 * another in ONE headless session (the same worker and the same run configs as the page's
 * "Compare methods" mode). Writes DIR/compare.json (every run with its config, frontiers, dead
 * fraction per method, equal-L0 comparisons, ablation table), DIR/compare.csv, DIR/dead.csv,
 * DIR/ablation.csv and DIR/frontier.svg after every run; runs already in DIR/compare.json with the
 * same settings are skipped (resume), unless --restart.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SaeConfig } from '../src/sae/config';
import {
  type CompareDef,
  type CompareRunConfig,
  type CompareRunRecord,
  compareRecord,
  compareTrainConfig,
  DEFAULT_K_LIST,
  DEFAULT_L0_COEF_LIST,
  DEFAULT_L1_LIST,
  expandCompare,
  failedCompareRecord,
  isMethod,
  METHOD_LABEL,
  METHODS,
  type Method,
} from '../src/scaling/compare';
import {
  type CompareDocument,
  compareDocument,
  comparisonLines,
  reusableRecords,
} from '../src/scaling/compare-document';
import { compareCsv, compareFrontierSvg, deadCsv } from '../src/scaling/compare-files';
import { ablationToCsv, DEFAULT_EVALS_PER_RUN, RunTracker } from '../src/scaling/runner';
import { GpuFailure, UsageError } from './args';
import { configFromFlags } from './train-flags';
import { checkPlans, fmtDur, queueTrainer } from './train-one';

export interface ComparePlan {
  def: CompareDef;
  runs: CompareRunConfig[];
  /** shared training config (batch, AuxK, …; never N, k, λ, lr, seed, tokens, activation) */
  base: Partial<SaeConfig>;
  evalsPerRun: number;
}

/** Flags → the comparison's definition and runs; UsageError (exit 2) on bad input. */
export function comparePlanFromFlags(flags: Record<string, unknown>): ComparePlan {
  const names = String(flags.methods)
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (!names.length) throw new UsageError(`--methods needs at least one of ${METHODS.join(',')}`);
  const bad = names.find((m) => !isMethod(m));
  if (bad) throw new UsageError(`--methods: unknown method '${bad}' (one of ${METHODS.join(',')})`);
  const Ns = flags['n-latents'] as number[] | undefined;
  if (!Ns?.length)
    throw new UsageError('--n-latents is required (one N with --methods, e.g. --n-latents 1024)');
  if (Ns.length !== 1) throw new UsageError(`--methods compares at one N; got --n-latents ${Ns.join(',')}`);
  if (flags['until-converged'])
    throw new UsageError('--until-converged is not supported with --methods; use --tokens');
  if (flags.tokens === undefined) throw new UsageError('--tokens is required (the budget of every run)');
  const at = flags['ablate-at'] as number[] | undefined;
  let ablateK: number | undefined;
  if (at) {
    if (at.length === 2 && at[0] !== Ns[0])
      throw new UsageError(`--ablate-at ${at.join(',')}: N must be the compared N = ${Ns[0]}`);
    if (at.length !== 1 && at.length !== 2)
      throw new UsageError('--ablate-at expects k (or N,k) with --methods');
    ablateK = at[at.length - 1];
  }
  const def: CompareDef = {
    methods: [...new Set(names)] as Method[],
    N: Ns[0],
    k: (flags.k as number[] | undefined) ?? DEFAULT_K_LIST,
    l1: (flags.l1 as number[] | undefined) ?? DEFAULT_L1_LIST,
    l0Coef: (flags['l0-coef'] as number[] | undefined) ?? DEFAULT_L0_COEF_LIST,
    tokens: flags.tokens as number,
    seed: (flags.seed as number | undefined) ?? 0,
    lr: (flags.lr as number | undefined) ?? null,
    ...(flags['base-lr'] !== undefined ? { baseLr: flags['base-lr'] as number } : {}),
    ablate: Boolean(flags.ablate),
    ...(ablateK !== undefined ? { ablateK } : {}),
  };
  let runs: CompareRunConfig[];
  try {
    runs = expandCompare(def);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (def.ablate && !runs.some((r) => r.variant !== 'method'))
    throw new UsageError(
      ablateK !== undefined
        ? `--ablate-at: k=${ablateK} is not one of --k ${def.k.join(',')} below N`
        : '--ablate needs a k below N',
    );
  const {
    nLatents: _N,
    k: _K,
    lr: _lr,
    seed: _s,
    tokens: _T,
    activation: _a,
    multiTopK: _m,
    l1Coef: _l,
    ...base
  } = configFromFlags(flags);
  const evalsPerRun = (flags['evals-per-run'] as number | undefined) ?? DEFAULT_EVALS_PER_RUN;
  if (!(evalsPerRun >= 2)) throw new UsageError('--evals-per-run must be at least 2');
  return { def, runs, base, evalsPerRun };
}

/** Writes every output file of the comparison; returns the document. */
function writeCompareOutputs(
  out: string,
  plan: ComparePlan,
  records: readonly CompareRunRecord[],
  meta: Record<string, unknown>,
): CompareDocument {
  const doc = compareDocument(plan.def, records, meta);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'compare.json'), JSON.stringify(doc, null, 2));
  writeFileSync(join(out, 'compare.csv'), compareCsv(doc));
  writeFileSync(join(out, 'dead.csv'), deadCsv(doc.dead));
  if (doc.ablation?.length) writeFileSync(join(out, 'ablation.csv'), ablationToCsv(doc.ablation));
  writeFileSync(join(out, 'frontier.svg'), compareFrontierSvg(doc));
  return doc;
}

/** Records of an earlier run of the same comparison in DIR/compare.json that can be kept. */
function resumeRecords(out: string, plan: ComparePlan): CompareRunRecord[] {
  const p = join(out, 'compare.json');
  if (!existsSync(p)) return [];
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(p, 'utf8'));
  } catch {
    throw new UsageError(`${p} is not readable JSON: fix or delete it, or pass --restart`);
  }
  return reusableRecords(json, plan.runs, plan.base);
}

export async function compareMain(flags: Record<string, unknown>): Promise<number> {
  const plan = comparePlanFromFlags(flags);
  const out =
    (flags.out as string | undefined) ??
    join('sweeps', `compare-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const quiet = Boolean(flags.quiet);
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const kept = flags.restart ? [] : resumeRecords(out, plan);
  const records = new Map<string, CompareRunRecord>(kept.map((r) => [r.config.id, r]));
  const pending = plan.runs.filter((r) => !records.has(r.id));
  if (kept.length)
    log(
      `compare: resuming, ${kept.length} of ${plan.runs.length} runs already in ${join(out, 'compare.json')}`,
    );

  const { datasetRecord, openDataFlag, openHeadless } = await import('./headless');
  const t0 = performance.now();
  let meta: Record<string, unknown> = { base_config: plan.base, evals_per_run: plan.evalsPerRun };
  const h = pending.length ? await openHeadless() : null;
  try {
    if (h) {
      await h.send({ type: 'init' });
      const ready = await h.next(['ready']);
      const ds = await openDataFlag(h, flags);
      await checkPlans(
        h,
        pending.map((r) => ({ label: r.id, config: compareTrainConfig(r, plan.base) })),
      );
      meta = {
        ...meta,
        dataset: datasetRecord(ds),
        adapter: ready.adapter,
      };
      log(
        `compare: ${pending.length} runs (${plan.def.methods.map((m) => METHOD_LABEL[m]).join(', ')}) at N=${plan.def.N} on ${ds.name} [${ds.rows}, ${ds.d}] · ${plan.def.tokens} tokens each · lr ${plan.runs[0].lr.toPrecision(3)}`,
      );
    }
    const train =
      h &&
      queueTrainer(h, { encodeVariant: flags['encode-variant'], evalsPerRun: plan.evalsPerRun, quiet, log });
    for (let i = 0; train && i < pending.length; i++) {
      const run = pending[i];
      const config = compareTrainConfig(run, plan.base);
      const tracker = new RunTracker(run);
      const runId = `compare-${i}-${Date.now().toString(36)}`;
      const prefix = `[${i + 1}/${pending.length} ${run.id}]`;
      const startedAt = performance.now();
      log(
        `${prefix} ${METHOD_LABEL[run.method]} ${run.sparsity_kind}=${run.sparsity} · elapsed ${fmtDur((startedAt - t0) / 1000)}`,
      );
      let rec: CompareRunRecord;
      try {
        const { final, wall, nanMessage } = await train({ runId, prefix, config, tracker, startedAt });
        rec = compareRecord(run, tracker.finish(final, wall, nanMessage), final.tokensPerS);
      } catch (e) {
        // A config over the GPU's limits (exit 2) and a GPU error (exit 1) end the comparison.
        if (e instanceof UsageError || e instanceof GpuFailure) throw e;
        // The engine refuses a method it does not support (or the run failed): record it, go on.
        const msg = (e as Error).message.split('\n')[0];
        rec = failedCompareRecord(run, msg, (performance.now() - startedAt) / 1000);
      }
      const f = rec.final;
      log(
        rec.stop_reason === 'failed' && !Number.isFinite(f.nmse)
          ? `${prefix} FAILED: ${rec.error}`
          : `${prefix} nMSE ${f.nmse.toFixed(4)} L0 ${f.l0.toFixed(2)} dead ${(f.dead_fraction * 100).toFixed(1)}% ${Math.round(rec.tokens_per_s)} tok/s${rec.error ? ` · FAILED: ${rec.error}` : ''}`,
      );
      records.set(run.id, rec);
      writeCompareOutputs(out, plan, [...records.values()], {
        ...meta,
        wall_s: (performance.now() - t0) / 1000,
        complete: false,
      });
    }
  } finally {
    if (h) {
      h.onMessage = null;
      await h.close();
    }
  }
  const doc = writeCompareOutputs(out, plan, [...records.values()], {
    ...meta,
    wall_s: (performance.now() - t0) / 1000,
    complete: true,
  });
  for (const r of doc.runs)
    console.log(
      `${r.config.id.padEnd(22)} nMSE ${r.final.nmse.toFixed(4)}  L0 ${r.final.l0.toFixed(2).padStart(7)}  dead ${(r.final.dead_fraction * 100).toFixed(1).padStart(5)}%  ${Math.round(r.tokens_per_s)} tok/s${r.pareto ? '  (Pareto)' : ''}`,
    );
  for (const r of doc.failed ?? []) console.log(`${r.config.id.padEnd(22)} failed: ${r.error}`);
  for (const d of doc.dead)
    console.log(
      `dead fraction ${METHOD_LABEL[d.method].padEnd(11)} mean ${(d.mean * 100).toFixed(1)}% (min ${(d.min * 100).toFixed(1)}%, max ${(d.max * 100).toFixed(1)}%, ${d.runs} runs)`,
    );
  for (const r of doc.ablation ?? [])
    console.log(
      `ablation ${r.label.padEnd(24)} nMSE ${r.nmse.toFixed(4)} dead ${(r.dead_fraction * 100).toFixed(1)}%`,
    );
  for (const line of comparisonLines(doc)) console.log(line);
  console.log(`comparison of ${plan.runs.length} runs → ${join(out, 'compare.json')}`);
  return 0;
}
