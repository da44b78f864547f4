/**
 * Runs & export: checkpoints in OPFS (list / resume / delete), export of the current model in the
 * PyTorch tools' layouts (downloaded from a Blob URL, nothing leaves the machine), run-config export
 * and import of an SAE trained elsewhere. worker.ts hands every FromWorker message to
 * handlePersistMessage first; the ones it consumes ('export', 'imported', 'checkpoints') stop there.
 */
import { create } from 'zustand';
import type { CheckpointEntry, FromWorker } from '../worker/protocol';
import { sendToWorker } from './channel';
import { resetEval } from './eval';
import { clearBanners, isActive, useLab } from './lab';
import { resetSeries } from './series';

export type ExportDtype = 'F32' | 'F16' | 'BF16';
type PersistOp = 'saelens' | 'openai' | 'run-config' | 'import' | 'resume' | 'delete' | 'list';

export interface PersistState {
  checkpoints: CheckpointEntry[];
  /** true once the first list arrived */
  listed: boolean;
  quota: { usage: number; quota: number } | null;
  /** the worker's warning text (a failed save, e.g. disk full; a corrupt checkpoint skipped) */
  warning: string | null;
  /** the offer shown after a page load when checkpoints exist; null once dismissed or a run starts */
  offer: { runId: string; step: number } | null;
  /** an operation waiting on the worker */
  busy: PersistOp | null;
  /** the last error of an operation started here */
  error: string | null;
  /** the last download: file name and size */
  lastExport: { fileName: string; size: number } | null;
  importSummary: string | null;
  dtype: ExportDtype;
  modelName: string;
  hookName: string;
}

export const usePersist = create<PersistState>(() => ({
  checkpoints: [],
  listed: false,
  quota: null,
  warning: null,
  offer: null,
  busy: null,
  error: null,
  lastExport: null,
  importSummary: null,
  dtype: 'F32',
  // the demo dataset: stories260K, residual stream before block 2
  modelName: 'stories260K',
  hookName: 'blocks.2.hook_resid_pre',
}));

/**
 * Newest checkpoint of the most recently written run. Files written in the same clock tick (OPFS
 * times are coarse) go to the later run — run ids grow with their start time — and only then to the
 * higher step: a run started right after another finished is the one to offer, not the finished one.
 */
function newestRun(list: CheckpointEntry[]): { runId: string; step: number } | null {
  let best: CheckpointEntry | null = null;
  const later = (a: CheckpointEntry, b: CheckpointEntry) =>
    a.modified !== b.modified
      ? a.modified > b.modified
      : a.runId !== b.runId
        ? a.runId.length > b.runId.length || (a.runId.length === b.runId.length && a.runId > b.runId)
        : a.step > b.step;
  for (const c of list) if (!best || later(c, best)) best = c;
  if (!best) return null;
  const steps = list.filter((c) => c.runId === best.runId).map((c) => c.step);
  return { runId: best.runId, step: Math.max(...steps) };
}

/** Saves bytes as a file through a Blob URL and an <a download>. */
export function downloadBytes(fileName: string, bytes: Uint8Array, type = 'application/zip') {
  const blob = new Blob([bytes as Uint8Array<ArrayBuffer>], { type });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Returns true when the message was consumed here. */
export function handlePersistMessage(m: FromWorker): boolean {
  const set = usePersist.setState;
  switch (m.type) {
    case 'ready':
      refreshCheckpoints();
      return false;
    case 'train-done':
      refreshCheckpoints();
      return false;
    case 'run-error': {
      // a run resumed from the list may end here; its earlier checkpoints are kept
      refreshCheckpoints();
      if (usePersist.getState().busy === 'resume') set({ busy: null, error: m.message });
      return false;
    }
    case 'train-started':
      if (usePersist.getState().busy === 'resume') set({ busy: null });
      return false;
    case 'export':
      downloadBytes(m.fileName, m.bytes);
      set({ busy: null, error: null, lastExport: { fileName: m.fileName, size: m.bytes.byteLength } });
      return true;
    case 'imported':
      set({ busy: null, error: null, importSummary: m.summary });
      return true;
    case 'checkpoints': {
      const s = usePersist.getState();
      const first = !s.listed;
      const offer = first && !useLab.getState().run ? newestRun(m.list) : s.offer;
      set({
        checkpoints: m.list,
        quota: m.quota,
        listed: true,
        // a list without a warning (a periodic refresh) keeps the last one visible until dismissed
        warning: m.warning ?? s.warning,
        offer: offer && m.list.some((c) => c.runId === offer.runId) ? offer : null,
        busy: s.busy === 'list' || s.busy === 'delete' ? null : s.busy,
      });
      return true;
    }
    case 'error': {
      const s = usePersist.getState();
      if (s.busy) set({ busy: null, error: m.message });
      return false;
    }
    default:
      return false;
  }
}

export function refreshCheckpoints() {
  sendToWorker({ type: 'list-checkpoints' });
}

export function setExportField<K extends 'dtype' | 'modelName' | 'hookName'>(key: K, value: PersistState[K]) {
  usePersist.setState({ [key]: value } as Pick<PersistState, K>);
}

export function exportSae(format: 'saelens' | 'openai') {
  const { dtype, modelName, hookName } = usePersist.getState();
  usePersist.setState({ busy: format, error: null });
  sendToWorker({
    type: 'export',
    format,
    dtype,
    ...(modelName.trim() ? { modelName: modelName.trim() } : {}),
    ...(hookName.trim() ? { hookName: hookName.trim() } : {}),
  });
}

export function exportRunConfig() {
  usePersist.setState({ busy: 'run-config', error: null });
  sendToWorker({ type: 'export-run-config' });
}

export function importSae(files: File[]) {
  if (!files.length) return;
  usePersist.setState({ busy: 'import', error: null, importSummary: null });
  sendToWorker({
    type: 'import-sae',
    files: files.map((f) => ({ blob: f, name: f.webkitRelativePath || f.name })),
  });
}

/** Continues a run from its newest usable checkpoint (or `step`). The open dataset must be the run's. */
export function resumeCheckpoint(runId: string, step?: number) {
  const { run, dataset } = useLab.getState();
  if ((run && isActive(run.status)) || !dataset.info) return;
  resetSeries();
  resetEval();
  clearBanners('nan');
  clearBanners('error');
  useLab.setState({
    run: {
      runId,
      status: 'preparing',
      message: `resuming from checkpoint${step === undefined ? '' : ` step ${step}`}`,
      config: null,
      kernels: null,
      gpuBytes: 0,
      totalSteps: 0,
      final: null,
      nanAt: null,
    },
  });
  usePersist.setState({ offer: null, error: null, busy: 'resume' });
  sendToWorker({ type: 'resume-checkpoint', runId, ...(step === undefined ? {} : { step }) });
}

export function deleteCheckpoint(runId: string, step?: number) {
  usePersist.setState({ busy: 'delete', error: null });
  sendToWorker({ type: 'delete-checkpoint', runId, ...(step === undefined ? {} : { step }) });
}

export function dismissOffer() {
  usePersist.setState({ offer: null });
}

export function dismissPersistMessages() {
  usePersist.setState({ warning: null, error: null });
}
