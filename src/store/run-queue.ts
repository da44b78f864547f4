/**
 * A queue of training runs in the lab's worker, shared by the scaling sweep (./sweep.ts) and the
 * method comparison (./compare.ts): starts the next pending run, follows its progress messages
 * (runId prefix), stops a run its RunTracker calls converged, hands the finished run's record to
 * the store, and keeps the store's definition and finished runs in localStorage so that a reload
 * can resume the rest.
 */
import type { StoreApi, UseBoundStore } from 'zustand';
import type { SaeConfig } from '../sae/config';
import { evalEveryFor, RunTracker, type SweepRunRecord } from '../scaling/runner';
import type { SweepRunConfig } from '../scaling/sweep';
import type { EvalResult, FromWorker } from '../worker/protocol';
import { sendToWorker } from './channel';
import { useLab } from './lab';

export type QueueStatus = 'idle' | 'running' | 'stopping' | 'stopped' | 'interrupted' | 'done' | 'failed';

/** Progress of the run being trained (a store adds the fields that name its job). */
export interface QueueCurrent {
  runId: string;
  index: number;
  started: boolean;
  tokens: number;
  total: number;
  startedAt: number;
}

export interface QueueState<C extends QueueCurrent> {
  status: QueueStatus;
  current: C | null;
  message: string | null;
}

/** What a store gives to start one job. */
interface QueueLaunch<C extends QueueCurrent> {
  /** the store's own fields of `current` */
  current: Omit<C, keyof QueueCurrent>;
  /** position of the job in the store's queue */
  index: number;
  /** runId suffix naming the job */
  name: string;
  run: SweepRunConfig;
  config: Partial<SaeConfig>;
  evalsPerRun: number;
  /** tolerance for the RunTracker (its default when undefined) */
  tol?: number;
}

export interface RunQueueOptions<S extends QueueState<C>, C extends QueueCurrent, J> {
  store: UseBoundStore<StoreApi<S>>;
  /** runId prefix of this queue's runs */
  prefix: string;
  storageKey: string;
  /** what to store (without the version), or null to forget the stored queue */
  stored: (s: S) => object | null;
  /** the next job to run, or undefined when none is left (or there is no definition) */
  pick: (s: S) => J | undefined;
  launch: (s: S, job: J) => QueueLaunch<C>;
  /** record a finished run (not called for a run stopped by the user) */
  record: (s: S, cur: C, rec: SweepRunRecord, final: EvalResult & { tokensPerS: number }) => void;
  /** extra fields of `current` from a held-out evaluation */
  onEval?: (cur: C, nmse: number) => Partial<C>;
  /**
   * A worker error before the current run started: true when the store recorded the run as
   * failed and the queue goes on; otherwise the whole queue fails.
   */
  refused?: (s: S, cur: C, message: string) => boolean;
}

/** The stored `{ version: 1, … }` object restored by `restore`, or `empty`. */
export function loadStored<P, R>(key: string, restore: (p: P) => R | null, empty: R): R {
  try {
    const raw = globalThis.localStorage?.getItem(key);
    if (!raw) return empty;
    const p = JSON.parse(raw) as P & { version: number };
    if (p.version !== 1) return empty;
    return restore(p) ?? empty;
  } catch {
    return empty;
  }
}

function saveStored(key: string, value: object | null) {
  try {
    if (!value) globalThis.localStorage?.removeItem(key);
    else globalThis.localStorage?.setItem(key, JSON.stringify({ version: 1, ...value }));
  } catch {
    // storage full or unavailable: the queue still runs, it just cannot be resumed
  }
}

export function runQueue<S extends QueueState<C>, C extends QueueCurrent, J>(o: RunQueueOptions<S, C, J>) {
  const { store } = o;
  let tracker: RunTracker | null = null;
  let nanMessage: string | undefined;
  const set = (patch: Partial<QueueState<C>>) => store.setState(patch as Partial<S>);

  const active = (s: S = store.getState()) => s.status === 'running' || s.status === 'stopping';
  const persist = () => saveStored(o.storageKey, o.stored(store.getState()));

  function startNext() {
    const s = store.getState();
    const job = o.pick(s);
    if (job === undefined) {
      tracker = null;
      set({ status: 'done', current: null });
      return;
    }
    const lab = useLab.getState();
    if (!lab.dataset.info) {
      set({ status: 'failed', current: null, message: 'no dataset is loaded' });
      return;
    }
    const l = o.launch(s, job);
    const runId = `${o.prefix}${Date.now().toString(36)}-${l.name}`;
    tracker = new RunTracker(l.run, l.tol);
    nanMessage = undefined;
    set({
      status: 'running',
      message: null,
      current: {
        ...l.current,
        runId,
        index: l.index,
        started: false,
        tokens: 0,
        total: l.config.tokens ?? 0,
        startedAt: performance.now(),
      } as C,
    });
    sendToWorker({
      type: 'train',
      start: {
        runId,
        config: { ...l.config, d: lab.dataset.info.d },
        evalEveryTokens: evalEveryFor(l.run.budget, l.config.batchSize ?? 4096, l.evalsPerRun),
      },
    });
  }

  /** Replace the queue's state (a new definition) and start it. */
  function start(patch: Partial<S>) {
    if (active()) return;
    store.setState(patch);
    persist();
    startNext();
  }

  /** Continue with the unfinished runs. */
  function resume() {
    if (active()) return;
    startNext();
  }

  /** Stop the current run and the queue (finished runs are kept; resume continues). */
  function stop() {
    if (!active()) return;
    set({ status: 'stopping' });
    sendToWorker({ type: 'stop' });
  }

  /** Forget the stored queue (`empty`: the store's own fields cleared). */
  function discard(empty: Partial<S>) {
    if (active()) return;
    store.setState({ ...empty, status: 'idle', current: null, message: null });
    persist();
  }

  /** Messages of this queue's runs: true when handled (the lab's run state must not see them). */
  function handle(m: FromWorker): boolean {
    const s = store.getState();
    if (m.type === 'error' || m.type === 'device-lost') {
      const cur = s.current;
      if (cur && active(s) && (!cur.started || m.type === 'device-lost')) {
        tracker = null;
        if (m.type === 'error' && o.refused?.(s, cur, m.message)) {
          if (s.status === 'stopping') set({ status: 'stopped', current: null });
          else startNext();
          return true;
        }
        set({ status: 'failed', current: null, message: m.message });
      }
      return false;
    }
    if (!('runId' in m) || !m.runId.startsWith(o.prefix)) return false;
    const cur = s.current;
    if (!cur || m.runId !== cur.runId) return true;
    switch (m.type) {
      case 'train-started':
        set({ current: { ...cur, started: true, total: m.totalSteps * m.config.batchSize } });
        break;
      case 'metrics': {
        const p = m.points[m.points.length - 1];
        if (p) set({ current: { ...cur, tokens: p.tokens } });
        break;
      }
      case 'eval':
        if (o.onEval) set({ current: { ...cur, ...o.onEval(cur, m.result.nmse) } });
        if (tracker?.push(m.result.tokens, m.result.nmse) && s.status === 'running')
          sendToWorker({ type: 'stop' });
        break;
      case 'nan':
        nanMessage = m.message;
        break;
      case 'run-error':
        // refused over a limit (before anything was allocated): recorded as failed when the store can,
        // and the queue goes on; a GPU error ends the queue (the finished runs are kept)
        tracker = null;
        if (m.kind === 'limit' && o.refused?.(s, cur, m.message)) {
          if (s.status === 'stopping') set({ status: 'stopped', current: null });
          else startNext();
          return true;
        }
        set({ status: 'failed', current: null, message: m.message });
        break;
      case 'train-done': {
        const wall = (performance.now() - cur.startedAt) / 1000;
        if (s.status === 'stopping') {
          // stopped by the user: the partial run is not a result
          tracker = null;
          set({ status: 'stopped', current: null });
          return true;
        }
        if (tracker) {
          o.record(s, cur, tracker.finish(m.final, wall, nanMessage), m.final);
          persist();
        }
        startNext();
        break;
      }
    }
    return true;
  }

  return { active, persist, start, resume, stop, discard, handle };
}
