/**
 * One training run of a CLI queue (`npm run sweep`, with or without --methods) in an open headless
 * session: progress lines on stderr, a run its RunTracker calls converged is stopped, NaN messages
 * kept for the record.
 */
import type { SaeConfig } from '../src/sae/config';
import { evalEveryFor, type RunTracker } from '../src/scaling/runner';
import type { EvalResult, FromWorker } from '../src/worker/protocol';
import { UsageError } from './args';
import { readAutotuneCache, rememberAutotune } from './autotune-cache';
import type { Headless } from './headless';
import { progressLine } from './train';

/** A duration in seconds as "42s" or "3m07s". */
export const fmtDur = (s: number) =>
  s >= 60 ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;

/**
 * Refuses a queue before its first run when one run's buffer plan breaks a limit of the device (the
 * worker computes the plans with the device's limits, allocating nothing): UsageError (exit 2) with one
 * line, the run's label and the plan's first problem. Configs that do not resolve are left to the run
 * (the worker refuses it, and a queue records it as failed).
 */
export async function checkPlans(h: Headless, jobs: { label: string; config: Partial<SaeConfig> }[]) {
  await h.send({ type: 'check-plans', configs: jobs });
  const { results } = await h.next(['plan-check']);
  const bad = results.find((r) => r.problems.length);
  if (bad) throw new UsageError(`run ${bad.label}: ${bad.problems[0]}`);
}

/** What every run of one CLI queue shares. */
export interface QueueOptions {
  /** --encode-variant, if given */
  encodeVariant: unknown;
  evalsPerRun: number;
  quiet: boolean;
  log: (s: string) => void;
}

export interface TrainOneOptions {
  runId: string;
  /** log line prefix, e.g. "[3/12 N256-k16]" */
  prefix: string;
  config: Partial<SaeConfig>;
  /** the run's tracker (its run gives the token budget) */
  tracker: RunTracker;
  /** performance.now() when the run began (its wall time counts from here) */
  startedAt: number;
}

export interface TrainOneResult {
  final: EvalResult & { tokensPerS: number };
  wall: number;
  nanMessage: string | undefined;
}

/**
 * The trainer of one queue: each call trains one run to its end and throws the worker's error when
 * the run fails or is refused.
 */
export function queueTrainer(h: Headless, q: QueueOptions) {
  return (o: TrainOneOptions) => trainOne(h, q, o);
}

async function trainOne(h: Headless, q: QueueOptions, o: TrainOneOptions): Promise<TrainOneResult> {
  const { runId, prefix, tracker } = o;
  const { quiet, log } = q;
  let total = 0;
  let nextPrint = 0;
  let nanMessage: string | undefined;
  h.onMessage = (m: FromWorker) => {
    if (!('runId' in m) || m.runId !== runId) return;
    if (m.type === 'eval' && tracker.push(m.result.tokens, m.result.nmse)) {
      if (!quiet)
        log(`${prefix} converged at ~${m.result.tokens} tokens (nMSE ${m.result.nmse.toFixed(4)}): stopping`);
      void h.send({ type: 'stop' });
    } else if (m.type === 'metrics' && !quiet && total > 0) {
      const p = m.points[m.points.length - 1];
      if (process.stderr.isTTY) process.stderr.write(`\r${prefix} ${progressLine(p, total)}\x1b[K`);
      else if (p.tokens >= nextPrint) {
        nextPrint = p.tokens + total / 5;
        log(`${prefix} ${progressLine(p, total)}`);
      }
    } else if (m.type === 'nan') nanMessage = m.message;
  };
  await h.send({
    type: 'train',
    start: {
      runId,
      config: o.config,
      ...(q.encodeVariant
        ? { kernels: { encode: q.encodeVariant as never } }
        : { autotuneCache: readAutotuneCache() }),
      evalEveryTokens: evalEveryFor(tracker.run.budget, o.config.batchSize ?? 4096, q.evalsPerRun),
    },
  });
  // a device loss mid-run: the worker continues from the last checkpoint by itself
  const started = await h.next(['train-started'], undefined, ['device-lost']);
  total = started.totalSteps * started.config.batchSize;
  if (started.autotune && started.autotuneKey) rememberAutotune(started.autotuneKey, started.kernels);
  const done = await h.next(['train-done'], undefined, ['device-lost']);
  if (!quiet && process.stderr.isTTY) process.stderr.write('\n');
  return { final: done.final, wall: (performance.now() - o.startedAt) / 1000, nanMessage };
}
