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
  evalEveryFor,
  RunTracker,
  type SweepDocument,
  type SweepRunRecord,
  sweepDocument,
  trainConfigFor,
  withFixedLr,
} from '../scaling/runner';
import { expandGrid, type SweepGrid, type SweepRunConfig } from '../scaling/sweep';
import type { FromWorker } from '../worker/protocol';
import { useLab } from './lab';
import { sendToWorker } from './worker';

export const SWEEP_STORAGE_KEY = 'sae-lab.sweep';
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

export type SweepStatus = 'idle' | 'running' | 'stopping' | 'stopped' | 'interrupted' | 'done' | 'failed';

export interface SweepCurrent {
  key: string;
  runId: string;
  index: number;
  started: boolean;
  tokens: number;
  total: number;
  nmse: number | null;
  startedAt: number;
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
export function ablationTable(
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

function load(): Pick<SweepState, 'def' | 'jobs' | 'done' | 'status' | 'doc'> {
  const empty = { def: null, jobs: [], done: {}, status: 'idle' as const, doc: null };
  try {
    const raw = globalThis.localStorage?.getItem(SWEEP_STORAGE_KEY);
    if (!raw) return empty;
    const p = JSON.parse(raw) as Persisted;
    if (p.version !== 1 || !p.def) return empty;
    const jobs = jobsFor(p.def);
    const unfinished = jobs.some((j) => !p.done[j.key]);
    return {
      def: p.def,
      jobs,
      done: p.done,
      status: unfinished ? 'interrupted' : 'done',
      doc: buildDoc(p.def, jobs, p.done),
    };
  } catch {
    return empty;
  }
}

function persist() {
  const { def, done } = useSweep.getState();
  try {
    if (!def) globalThis.localStorage?.removeItem(SWEEP_STORAGE_KEY);
    else
      globalThis.localStorage?.setItem(
        SWEEP_STORAGE_KEY,
        JSON.stringify({ version: 1, def, done } satisfies Persisted),
      );
  } catch {
    // storage full or unavailable: the sweep still runs, it just cannot be resumed
  }
}

export const useSweep = create<SweepState>(() => ({ ...load(), current: null, message: null }));

let tracker: RunTracker | null = null;
let nanMessage: string | undefined;

/** Jobs not finished yet, in queue order. */
export function pendingJobs(s: SweepState = useSweep.getState()): SweepJob[] {
  return s.jobs.filter((j) => !s.done[j.key]);
}

export const sweepActive = (s: SweepState = useSweep.getState()) =>
  s.status === 'running' || s.status === 'stopping';

function startNext() {
  const s = useSweep.getState();
  const next = pendingJobs(s)[0];
  if (!next || !s.def) {
    tracker = null;
    useSweep.setState({ status: 'done', current: null });
    return;
  }
  const lab = useLab.getState();
  if (!lab.dataset.info) {
    useSweep.setState({ status: 'failed', current: null, message: 'no dataset is loaded' });
    return;
  }
  const runId = `${RUN_PREFIX}${Date.now().toString(36)}-${next.key}`;
  const variant = ABLATIONS.find((v) => v.id === next.variant);
  const config = trainConfigFor(next.run, s.def.base, variant?.patch ?? {});
  tracker = new RunTracker(next.run, s.def.tol);
  nanMessage = undefined;
  useSweep.setState({
    status: 'running',
    message: null,
    current: {
      key: next.key,
      runId,
      index: s.jobs.indexOf(next),
      started: false,
      tokens: 0,
      total: config.tokens ?? 0,
      nmse: null,
      startedAt: performance.now(),
    },
  });
  sendToWorker({
    type: 'train',
    start: {
      runId,
      config: { ...config, d: lab.dataset.info.d },
      evalEveryTokens: evalEveryFor(next.run.budget, config.batchSize ?? 4096, s.def.evalsPerRun),
    },
  });
}

/** Start a new sweep (replacing any stored one). */
export function startSweep(def: SweepDef) {
  if (sweepActive()) return;
  const jobs = jobsFor(def);
  useSweep.setState({ def, jobs, done: {}, doc: buildDoc(def, jobs, {}), message: null });
  persist();
  startNext();
}

/** Continue a stored or stopped sweep with its unfinished runs. */
export function resumeSweep() {
  const s = useSweep.getState();
  if (!s.def || sweepActive()) return;
  startNext();
}

/** Stop the current run and the queue (finished runs are kept; resume continues). */
export function stopSweep() {
  if (!sweepActive()) return;
  useSweep.setState({ status: 'stopping' });
  sendToWorker({ type: 'stop' });
}

/** Forget the stored sweep. */
export function discardSweep() {
  if (sweepActive()) return;
  useSweep.setState({
    def: null,
    jobs: [],
    done: {},
    doc: null,
    status: 'idle',
    current: null,
    message: null,
  });
  persist();
}

/**
 * Messages of sweep runs (runId prefix 'sweep-'): returns true when handled (the lab's run state must
 * not see them). Also watches for a worker error while a run is being started.
 */
export function handleSweepMessage(m: FromWorker): boolean {
  const s = useSweep.getState();
  if (m.type === 'error' || m.type === 'device-lost') {
    if (
      s.current &&
      (s.status === 'running' || s.status === 'stopping') &&
      (!s.current.started || m.type === 'device-lost')
    ) {
      tracker = null;
      useSweep.setState({ status: 'failed', current: null, message: m.message });
    }
    return false;
  }
  if (!('runId' in m) || !m.runId.startsWith(RUN_PREFIX)) return false;
  const cur = s.current;
  if (!cur || m.runId !== cur.runId) return true;
  switch (m.type) {
    case 'train-started':
      useSweep.setState({ current: { ...cur, started: true, total: m.totalSteps * m.config.batchSize } });
      break;
    case 'metrics': {
      const p = m.points[m.points.length - 1];
      if (p) useSweep.setState({ current: { ...cur, tokens: p.tokens } });
      break;
    }
    case 'eval':
      useSweep.setState({ current: { ...cur, nmse: m.result.nmse } });
      if (tracker?.push(m.result.tokens, m.result.nmse) && s.status === 'running')
        sendToWorker({ type: 'stop' });
      break;
    case 'nan':
      nanMessage = m.message;
      break;
    case 'train-done': {
      const wall = (performance.now() - cur.startedAt) / 1000;
      if (s.status === 'stopping') {
        // stopped by the user: the partial run is not a result
        tracker = null;
        useSweep.setState({ status: 'stopped', current: null });
        return true;
      }
      if (tracker) {
        const rec = tracker.finish(m.final, wall, nanMessage);
        const done = { ...s.done, [cur.key]: rec };
        useSweep.setState({ done, doc: buildDoc(s.def, s.jobs, done) });
        persist();
      }
      startNext();
      break;
    }
  }
  return true;
}
