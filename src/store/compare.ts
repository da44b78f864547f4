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
  type CompareRunConfig,
  type CompareRunRecord,
  compareRecord,
  compareTrainConfig,
  expandCompare,
  failedCompareRecord,
} from '../scaling/compare';
import { type CompareDocument, compareDocument } from '../scaling/compare-document';
import type { FromWorker } from '../worker/protocol';
import { loadStored, type QueueCurrent, type QueueStatus, runQueue } from './run-queue';

const COMPARE_STORAGE_KEY = 'sae-lab.compare';
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

type CompareStatus = QueueStatus;

interface CompareCurrent extends QueueCurrent {
  id: string;
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

type Stored = Pick<CompareState, 'spec' | 'runs' | 'done' | 'status' | 'doc'>;

function load(): Stored {
  const empty: Stored = { spec: null, runs: [], done: {}, status: 'idle', doc: null };
  return loadStored<Persisted, Stored>(
    COMPARE_STORAGE_KEY,
    (p) => {
      if (!p.spec) return null;
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
    },
    empty,
  );
}

export const useCompare = create<CompareState>(() => ({ ...load(), current: null, message: null }));

/** Runs not finished yet (failed ones of this session count as finished), in queue order. */
export function pendingRuns(s: CompareState = useCompare.getState()): CompareRunConfig[] {
  return s.runs.filter((r) => !s.done[r.id]);
}

function finishCurrent(rec: CompareRunRecord) {
  const s = useCompare.getState();
  const done = { ...s.done, [rec.config.id]: rec };
  useCompare.setState({ done, doc: buildDoc(s.spec, done) });
}

const queue = runQueue<CompareState, CompareCurrent, CompareRunConfig>({
  store: useCompare,
  prefix: RUN_PREFIX,
  storageKey: COMPARE_STORAGE_KEY,
  stored: ({ spec, done }) => (spec ? { spec, done } : null),
  pick: (s) => (s.spec ? pendingRuns(s)[0] : undefined),
  launch: (s, run) => ({
    current: { id: run.id },
    index: s.runs.indexOf(run),
    name: run.id.replace(/[^\w.-]+/g, '_'),
    run,
    config: compareTrainConfig(run, (s.spec as CompareSpec).base),
    evalsPerRun: (s.spec as CompareSpec).evalsPerRun,
  }),
  record: (s, cur, rec, final) => {
    const run = s.runs.find((r) => r.id === cur.id);
    if (run) finishCurrent(compareRecord(run, rec, final.tokensPerS));
  },
  // the engine refusing the method fails that run only; the queue goes on
  refused: (s, cur, message) => {
    const run = s.runs.find((r) => r.id === cur.id);
    if (run) {
      finishCurrent(failedCompareRecord(run, message.split('\n')[0]));
      queue.persist();
    }
    return true;
  },
});

export const compareActive = (s: CompareState = useCompare.getState()) => queue.active(s);

/** Start a new comparison (replacing any stored one). */
export function startCompare(spec: CompareSpec) {
  if (queue.active()) return;
  const runs = expandCompare(spec.def);
  queue.start({ spec, runs, done: {}, doc: buildDoc(spec, {}), message: null });
}

/** Continue a stored or stopped comparison with its unfinished runs. */
export function resumeCompare() {
  if (useCompare.getState().spec) queue.resume();
}

/** Stop the current run and the queue (finished runs are kept; resume continues). */
export const stopCompare = () => queue.stop();

/** Forget the stored comparison. */
export const discardCompare = () => queue.discard({ spec: null, runs: [], done: {}, doc: null });

/**
 * Messages of comparison runs (runId prefix 'compare-'): true when handled (the lab's run state
 * must not see them). A worker error before the current run started (the engine refusing the
 * method) fails that run only; the queue goes on.
 */
export const handleCompareMessage = (m: FromWorker): boolean => queue.handle(m);
