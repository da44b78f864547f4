/**
 * Method comparison on the page ("Compare methods" in the sweep panel): the runs of a CompareDef
 * (src/scaling/compare.ts, the same expansion and run configs as `npm run sweep -- --methods`)
 * trained one after another in the lab's worker. A run the engine refuses (a method it does not
 * support yet) is recorded as failed and the queue goes on. The definition and finished runs are
 * kept in localStorage, so a reload offers to resume the rest; the document (frontiers, dead
 * fraction per method, equal-L0 comparison, ablation table) is rebuilt whenever a run finishes.
 */
import { create } from 'zustand';
import type { SaeConfig } from '../sae/config';
import {
  type CompareDef,
  type CompareDocument,
  type CompareRunConfig,
  type CompareRunRecord,
  compareDocument,
  compareRecord,
  compareTrainConfig,
  expandCompare,
  failedCompareRecord,
} from '../scaling/compare';
import { evalEveryFor, RunTracker } from '../scaling/runner';
import type { FromWorker } from '../worker/protocol';
import { useLab } from './lab';
import { sendToWorker } from './worker';

export const COMPARE_STORAGE_KEY = 'sae-lab.compare';
const RUN_PREFIX = 'compare-';

/** What the builder produces. */
export interface CompareSpec {
  def: CompareDef;
  /** shared training config from the configuration panel (batch, AuxK, …) */
  base: Partial<SaeConfig>;
  evalsPerRun: number;
  dataset: string;
  createdAt: number;
}

export type CompareStatus = 'idle' | 'running' | 'stopping' | 'stopped' | 'interrupted' | 'done' | 'failed';

export interface CompareCurrent {
  id: string;
  runId: string;
  index: number;
  started: boolean;
  tokens: number;
  total: number;
  startedAt: number;
}

export interface CompareState {
  spec: CompareSpec | null;
  runs: CompareRunConfig[];
  done: Record<string, CompareRunRecord>;
  status: CompareStatus;
  current: CompareCurrent | null;
  message: string | null;
  doc: CompareDocument | null;
}

function buildDoc(spec: CompareSpec | null, done: Record<string, CompareRunRecord>): CompareDocument | null {
  if (!spec) return null;
  return compareDocument(spec.def, Object.values(done), {
    dataset: spec.dataset,
    base_config: spec.base,
    evals_per_run: spec.evalsPerRun,
  });
}

interface Persisted {
  version: 1;
  spec: CompareSpec;
  done: Record<string, CompareRunRecord>;
}

function load(): Pick<CompareState, 'spec' | 'runs' | 'done' | 'status' | 'doc'> {
  const empty = { spec: null, runs: [], done: {}, status: 'idle' as const, doc: null };
  try {
    const raw = globalThis.localStorage?.getItem(COMPARE_STORAGE_KEY);
    if (!raw) return empty;
    const p = JSON.parse(raw) as Persisted;
    if (p.version !== 1 || !p.spec) return empty;
    const runs = expandCompare(p.spec.def);
    // JSON turned NaN into null: failed records are redone on resume
    const done: Record<string, CompareRunRecord> = {};
    for (const [id, r] of Object.entries(p.done ?? {})) if (r && r.stop_reason !== 'failed') done[id] = r;
    const unfinished = runs.some((r) => !done[r.id]);
    return {
      spec: p.spec,
      runs,
      done,
      status: unfinished ? 'interrupted' : 'done',
      doc: buildDoc(p.spec, done),
    };
  } catch {
    return empty;
  }
}

function persist() {
  const { spec, done } = useCompare.getState();
  try {
    if (!spec) globalThis.localStorage?.removeItem(COMPARE_STORAGE_KEY);
    else
      globalThis.localStorage?.setItem(
        COMPARE_STORAGE_KEY,
        JSON.stringify({ version: 1, spec, done } satisfies Persisted),
      );
  } catch {
    // storage full or unavailable: the comparison still runs, it just cannot be resumed
  }
}

export const useCompare = create<CompareState>(() => ({ ...load(), current: null, message: null }));

let tracker: RunTracker | null = null;
let nanMessage: string | undefined;

/** Runs not finished yet (failed ones of this session count as finished), in queue order. */
export function pendingRuns(s: CompareState = useCompare.getState()): CompareRunConfig[] {
  return s.runs.filter((r) => !s.done[r.id]);
}

export const compareActive = (s: CompareState = useCompare.getState()) =>
  s.status === 'running' || s.status === 'stopping';

function finishCurrent(rec: CompareRunRecord) {
  const s = useCompare.getState();
  const done = { ...s.done, [rec.config.id]: rec };
  useCompare.setState({ done, doc: buildDoc(s.spec, done) });
  persist();
}

function startNext() {
  const s = useCompare.getState();
  const next = pendingRuns(s)[0];
  if (!next || !s.spec) {
    tracker = null;
    useCompare.setState({ status: 'done', current: null });
    return;
  }
  const lab = useLab.getState();
  if (!lab.dataset.info) {
    useCompare.setState({ status: 'failed', current: null, message: 'no dataset is loaded' });
    return;
  }
  const runId = `${RUN_PREFIX}${Date.now().toString(36)}-${next.id.replace(/[^\w.-]+/g, '_')}`;
  const config = compareTrainConfig(next, s.spec.base);
  tracker = new RunTracker(next);
  nanMessage = undefined;
  useCompare.setState({
    status: 'running',
    message: null,
    current: {
      id: next.id,
      runId,
      index: s.runs.indexOf(next),
      started: false,
      tokens: 0,
      total: config.tokens ?? 0,
      startedAt: performance.now(),
    },
  });
  sendToWorker({
    type: 'train',
    start: {
      runId,
      config: { ...config, d: lab.dataset.info.d },
      evalEveryTokens: evalEveryFor(next.budget, config.batchSize ?? 4096, s.spec.evalsPerRun),
    },
  });
}

/** Start a new comparison (replacing any stored one). */
export function startCompare(spec: CompareSpec) {
  if (compareActive()) return;
  const runs = expandCompare(spec.def);
  useCompare.setState({ spec, runs, done: {}, doc: buildDoc(spec, {}), message: null });
  persist();
  startNext();
}

/** Continue a stored or stopped comparison with its unfinished runs. */
export function resumeCompare() {
  const s = useCompare.getState();
  if (!s.spec || compareActive()) return;
  startNext();
}

/** Stop the current run and the queue (finished runs are kept; resume continues). */
export function stopCompare() {
  if (!compareActive()) return;
  useCompare.setState({ status: 'stopping' });
  sendToWorker({ type: 'stop' });
}

/** Forget the stored comparison. */
export function discardCompare() {
  if (compareActive()) return;
  useCompare.setState({
    spec: null,
    runs: [],
    done: {},
    doc: null,
    status: 'idle',
    current: null,
    message: null,
  });
  persist();
}

/**
 * Messages of comparison runs (runId prefix 'compare-'): true when handled (the lab's run state
 * must not see them). A worker error before the current run started (the engine refusing the
 * method) fails that run only; the queue goes on.
 */
export function handleCompareMessage(m: FromWorker): boolean {
  const s = useCompare.getState();
  if (m.type === 'error' || m.type === 'device-lost') {
    const cur = s.current;
    if (cur && compareActive(s)) {
      if (m.type === 'device-lost') {
        tracker = null;
        useCompare.setState({ status: 'failed', current: null, message: m.message });
      } else if (!cur.started) {
        const run = s.runs.find((r) => r.id === cur.id);
        tracker = null;
        if (run) finishCurrent(failedCompareRecord(run, m.message.split('\n')[0]));
        if (s.status === 'stopping') useCompare.setState({ status: 'stopped', current: null });
        else startNext();
        return true;
      }
    }
    return false;
  }
  if (!('runId' in m) || !m.runId.startsWith(RUN_PREFIX)) return false;
  const cur = s.current;
  if (!cur || m.runId !== cur.runId) return true;
  switch (m.type) {
    case 'train-started':
      useCompare.setState({ current: { ...cur, started: true, total: m.totalSteps * m.config.batchSize } });
      break;
    case 'metrics': {
      const p = m.points[m.points.length - 1];
      if (p) useCompare.setState({ current: { ...cur, tokens: p.tokens } });
      break;
    }
    case 'eval':
      tracker?.push(m.result.tokens, m.result.nmse);
      break;
    case 'nan':
      nanMessage = m.message;
      break;
    case 'train-done': {
      const wall = (performance.now() - cur.startedAt) / 1000;
      if (s.status === 'stopping') {
        tracker = null;
        useCompare.setState({ status: 'stopped', current: null });
        return true;
      }
      const run = s.runs.find((r) => r.id === cur.id);
      if (tracker && run)
        finishCurrent(compareRecord(run, tracker.finish(m.final, wall, nanMessage), m.final.tokensPerS));
      startNext();
      break;
    }
  }
  return true;
}
