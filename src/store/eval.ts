/**
 * The evaluation view's state: the options of the next full evaluation, its progress and report,
 * the latent browser's table state and the open latent's detail. The worker messages that fill it
 * are routed in worker.ts; the actions that send requests live there too.
 */
import { create } from 'zustand';
import type { FullEvalReport, LatentDetail } from '../worker/protocol';

export type LatentSortKey = 'id' | 'freq' | 'meanAct' | 'maxAct' | 'f1';

export interface EvalOptions {
  maxRows: number;
  labels: File | null;
  directions: File | null;
  explainLatents: number;
  downstream: boolean;
  /** ablation sparsity (paper §4.5) of a sample of latents */
  ablation: boolean;
  ablationLatents: number;
  ablationTokens: number;
}

export interface EvalState {
  options: EvalOptions;
  busy: boolean;
  fraction: number;
  phase: string;
  report: FullEvalReport | null;
  /** the run the report belongs to */
  reportRunId: string | null;
  error: string | null;

  sort: LatentSortKey;
  desc: boolean;
  search: string;
  page: number;
  /** hide latents that never fired */
  liveOnly: boolean;

  selected: number | null;
  detail: LatentDetail | null;
  detailBusy: boolean;

  /** the dashboard folder download ('export-dashboards') */
  dash: {
    busy: boolean;
    fraction: number;
    error: string | null;
    last: { fileName: string; size: number; latents: number; files: number } | null;
  };
}

export const useEval = create<EvalState>(() => ({
  options: {
    maxRows: 16384,
    labels: null,
    directions: null,
    explainLatents: 64,
    downstream: true,
    ablation: false,
    ablationLatents: 64,
    ablationTokens: 512,
  },
  busy: false,
  fraction: 0,
  phase: '',
  report: null,
  reportRunId: null,
  error: null,
  sort: 'freq',
  desc: true,
  search: '',
  page: 0,
  liveOnly: false,
  selected: null,
  detail: null,
  detailBusy: false,
  dash: { busy: false, fraction: 0, error: null, last: null },
}));

export function setEvalOption<K extends keyof EvalOptions>(key: K, value: EvalOptions[K]) {
  useEval.setState((s) => ({ options: { ...s.options, [key]: value } }));
}

export function setSort(sort: LatentSortKey) {
  useEval.setState((s) => ({ sort, desc: s.sort === sort ? !s.desc : sort !== 'id', page: 0 }));
}

export function setSearch(search: string) {
  useEval.setState({ search, page: 0 });
}

export function setPage(page: number) {
  useEval.setState({ page: Math.max(0, page) });
}

export function setLiveOnly(liveOnly: boolean) {
  useEval.setState({ liveOnly, page: 0 });
}

/** A new run makes the last report stale: the worker dropped the model it describes. */
export function resetEval() {
  useEval.setState({
    report: null,
    reportRunId: null,
    selected: null,
    detail: null,
    busy: false,
    error: null,
  });
}

// ---- called by worker.ts on messages ----

export function evalStarted(runId: string | null) {
  useEval.setState({ busy: true, fraction: 0, phase: 'evaluating', error: null, reportRunId: runId });
}

export function evalProgress(fraction: number, phase: string) {
  useEval.setState({ busy: true, fraction, phase });
}

export function evalDone(report: FullEvalReport) {
  useEval.setState({ busy: false, fraction: 1, report, selected: null, detail: null, page: 0 });
}

export function evalFailed(message: string) {
  const s = useEval.getState();
  if (s.dash.busy) useEval.setState({ dash: { ...s.dash, busy: false, error: message } });
  else if (s.busy || s.detailBusy) useEval.setState({ busy: false, detailBusy: false, error: message });
}

export function dashboardsStarted() {
  useEval.setState((s) => ({ dash: { ...s.dash, busy: true, fraction: 0, error: null } }));
}

export function dashboardsProgress(fraction: number) {
  useEval.setState((s) => ({ dash: { ...s.dash, fraction } }));
}

export function dashboardsDone(last: NonNullable<EvalState['dash']['last']>) {
  useEval.setState({ dash: { busy: false, fraction: 1, error: null, last } });
}

export function latentRequested(id: number) {
  useEval.setState({ selected: id, detailBusy: true });
}

export function latentArrived(detail: LatentDetail) {
  if (useEval.getState().selected !== detail.id) return;
  useEval.setState({ detail, detailBusy: false });
}

/** Latent rows of the report after search, filter and sort. */
export function visibleLatents(s: Pick<EvalState, 'report' | 'sort' | 'desc' | 'search' | 'liveOnly'>) {
  const all = s.report?.latents ?? [];
  const q = s.search.trim().toLowerCase();
  let rows = all;
  if (s.liveOnly) rows = rows.filter((l) => l.freq > 0);
  if (q) {
    const asId = /^\d+$/.test(q) ? Number(q) : null;
    rows = rows.filter((l) =>
      asId !== null ? String(l.id).startsWith(q) : (l.explanation ?? '').toLowerCase().includes(q),
    );
  }
  const key = s.sort;
  const val = (l: (typeof all)[number]) => {
    const v = key === 'f1' ? l.f1 : l[key];
    return v === undefined || Number.isNaN(v) ? Number.NEGATIVE_INFINITY : v;
  };
  const sign = s.desc ? -1 : 1;
  return rows.slice().sort((a, b) => sign * (val(a) - val(b)) || a.id - b.id);
}
