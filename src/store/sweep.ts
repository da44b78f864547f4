/**
 * Scaling-law sweeps on the page: a queue of (N, k) runs (plus optional ablations) trained one after
 * another in the lab's worker, each tracked by a RunTracker (held-out evaluations; an until-converged
 * run is stopped once the convergence test says so). The definition and the finished runs are kept in
 * localStorage, so a reload offers to resume the unfinished runs. Fits are recomputed (fitSweep)
 * whenever a run finishes.
 */
import { create } from 'zustand';
import type { SaeConfig } from '../sae/config';
import {
  ABLATIONS,
  type AblationRow,
  ablationPoint,
  ablationRow,
  type SweepDocument,
  type SweepRunRecord,
  sweepDocument,
  trainConfigFor,
  withFixedLr,
} from '../scaling/runner';
import { expandGrid, type SweepGrid, type SweepRunConfig } from '../scaling/sweep';
import type { FromWorker } from '../worker/protocol';
import { loadStored, type QueueCurrent, type QueueStatus, runQueue } from './run-queue';

const SWEEP_STORAGE_KEY = 'sae-lab.sweep';
const RUN_PREFIX = 'sweep-';

/** What the builder produces; everything needed to (re)create the queue. */
export interface SweepDef {
  grid: SweepGrid;
  /** shared training config (batch, AuxK, …) */
  base: Partial<SaeConfig>;
  /** fixed lr for every run instead of the N rule; null: the rule */
  fixedLr: number | null;
  /** tolerance for tokens-to-convergence (fixed budgets) */
  tol: number;
  evalsPerRun: number;
  ablate: boolean;
  /** dataset the sweep was started on (a resume on another one is flagged) */
  dataset: string;
  createdAt: number;
}

export interface SweepJob {
  key: string;
  run: SweepRunConfig;
  /** 'grid' or an ablation variant id */
  variant: string;
  label: string;
}

type SweepStatus = QueueStatus;

interface SweepCurrent extends QueueCurrent {
  key: string;
  nmse: number | null;
}

export interface SweepState {
  def: SweepDef | null;
  jobs: SweepJob[];
  /** finished runs by job key */
  done: Record<string, SweepRunRecord>;
  status: SweepStatus;
  current: SweepCurrent | null;
  message: string | null;
  /** the fitted document of the finished grid runs (recomputed when a run finishes) */
  doc: SweepDocument | null;
}

/** The queue of a definition: the grid runs (small first), then the ablation variants. */
export function jobsFor(def: SweepDef): SweepJob[] {
  const runs = withFixedLr(expandGrid(def.grid), def.fixedLr);
  const jobs: SweepJob[] = runs.map((run) => ({ key: run.id, run, variant: 'grid', label: run.id }));
  if (def.ablate) {
    const at = ablationPoint(runs);
    if (at) {
      for (const v of ABLATIONS.slice(1)) {
        jobs.push({ key: `${at.id}:${v.id}`, run: at, variant: v.id, label: `${at.id} · ${v.label}` });
      }
    }
  }
  return jobs;
}

/** Ablation table rows from the finished runs (the full recipe is the grid run at that point). */
function ablationTable(
  def: SweepDef,
  jobs: readonly SweepJob[],
  done: Record<string, SweepRunRecord>,
): AblationRow[] {
  if (!def.ablate) return [];
  const at = jobs.find((j) => j.variant !== 'grid')?.run;
  if (!at) return [];
  const rows: AblationRow[] = [];
  for (const v of ABLATIONS) {
    const r = done[v.id === 'full' ? at.id : `${at.id}:${v.id}`];
    if (r) rows.push(ablationRow(v, r));
  }
  return rows;
}

function buildDoc(
  def: SweepDef | null,
  jobs: readonly SweepJob[],
  done: Record<string, SweepRunRecord>,
): SweepDocument | null {
  if (!def) return null;
  const grid = jobs.filter((j) => j.variant === 'grid' && done[j.key]).map((j) => done[j.key]);
  return sweepDocument(grid, def.grid, {
    ablation: ablationTable(def, jobs, done),
    meta: { dataset: def.dataset, base_config: def.base, tol: def.tol, evals_per_run: def.evalsPerRun },
  });
}

interface Persisted {
  version: 1;
  def: SweepDef;
  done: Record<string, SweepRunRecord>;
}

type Stored = Pick<SweepState, 'def' | 'jobs' | 'done' | 'status' | 'doc'>;

function load(): Stored {
  const empty: Stored = { def: null, jobs: [], done: {}, status: 'idle', doc: null };
  return loadStored<Persisted, Stored>(
    SWEEP_STORAGE_KEY,
    (p) => {
      if (!p.def) return null;
      const jobs = jobsFor(p.def);
      const unfinished = jobs.some((j) => !p.done[j.key]);
      return {
        def: p.def,
        jobs,
        done: p.done,
        status: unfinished ? 'interrupted' : 'done',
        doc: buildDoc(p.def, jobs, p.done),
      };
    },
    empty,
  );
}

export const useSweep = create<SweepState>(() => ({ ...load(), current: null, message: null }));

/** Jobs not finished yet, in queue order. */
export function pendingJobs(s: SweepState = useSweep.getState()): SweepJob[] {
  return s.jobs.filter((j) => !s.done[j.key]);
}

const queue = runQueue<SweepState, SweepCurrent, SweepJob>({
  store: useSweep,
  prefix: RUN_PREFIX,
  storageKey: SWEEP_STORAGE_KEY,
  stored: ({ def, done }) => (def ? { def, done } : null),
  pick: (s) => (s.def ? pendingJobs(s)[0] : undefined),
  launch: (s, job) => {
    const def = s.def as SweepDef;
    const variant = ABLATIONS.find((v) => v.id === job.variant);
    return {
      current: { key: job.key, nmse: null },
      index: s.jobs.indexOf(job),
      name: job.key,
      run: job.run,
      config: trainConfigFor(job.run, def.base, variant?.patch ?? {}),
      evalsPerRun: def.evalsPerRun,
      tol: def.tol,
    };
  },
  record: (s, cur, rec) => {
    const done = { ...s.done, [cur.key]: rec };
    useSweep.setState({ done, doc: buildDoc(s.def, s.jobs, done) });
  },
  onEval: (_cur, nmse) => ({ nmse }),
});

export const sweepActive = (s: SweepState = useSweep.getState()) => queue.active(s);

/** Start a new sweep (replacing any stored one). */
export function startSweep(def: SweepDef) {
  if (queue.active()) return;
  const jobs = jobsFor(def);
  queue.start({ def, jobs, done: {}, doc: buildDoc(def, jobs, {}), message: null });
}

/** Continue a stored or stopped sweep with its unfinished runs. */
export function resumeSweep() {
  if (useSweep.getState().def) queue.resume();
}

/** Stop the current run and the queue (finished runs are kept; resume continues). */
export const stopSweep = () => queue.stop();

/** Forget the stored sweep. */
export const discardSweep = () => queue.discard({ def: null, jobs: [], done: {}, doc: null });

/**
 * Messages of sweep runs (runId prefix 'sweep-'): returns true when handled (the lab's run state must
 * not see them). Also watches for a worker error while a run is being started.
 */
export const handleSweepMessage = (m: FromWorker): boolean => queue.handle(m);
