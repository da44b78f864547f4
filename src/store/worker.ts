/**
 * The one connection to trainer.worker.ts: starts it, routes every FromWorker message into the stores,
 * and exposes the page's actions (open a dataset, train, pause, resume, stop, evaluate).
 */
import { reportLimits } from '../gpu/device';
import { resolveConfig, validateConfig } from '../sae/config';
import { bufferPlan, DEFAULT_LIMITS } from '../sae/plan';
import { startWorker } from '../worker/client';
import type { DatasetSpec, FromWorker } from '../worker/protocol';
import { openChannel, sendToWorker } from './channel';
import { handleCompareMessage } from './compare';
import {
  dashboardsDone,
  dashboardsProgress,
  dashboardsStarted,
  evalDone,
  evalFailed,
  evalProgress,
  evalStarted,
  latentArrived,
  latentRequested,
  resetEval,
  useEval,
} from './eval';
import {
  extractDone,
  extractFailed,
  extractProgress,
  extractRequest,
  extractStarted,
  useExtract,
} from './extract';
import { isRaw } from './files';
import { addBanner, clearBanners, isActive, saveMeasured, updateRun, useLab } from './lab';
import { downloadBytes, handlePersistMessage } from './persist';
import { pushEval, pushPoints, replacePoints, resetSeries, seriesSnapshot } from './series';
import { handleSweepMessage } from './sweep';

let worker: ReturnType<typeof startWorker> | null = null;
let autoDemo = true;

const send = sendToWorker;

export function connectWorker(opts: { autoDemo?: boolean } = {}) {
  if (worker) return;
  autoDemo = opts.autoDemo ?? true;
  try {
    const w = startWorker(onMessage);
    worker = w;
    openChannel((m) => w.send(m));
  } catch (e) {
    onMessage({ type: 'error', message: `could not start the trainer worker: ${(e as Error).message}` });
    return;
  }
  send({ type: 'init' });
}

const runIdOk = (runId: string) => useLab.getState().run?.runId === runId;

function onMessage(m: FromWorker) {
  if (handleSweepMessage(m)) return;
  if (handleCompareMessage(m)) return;
  if (handlePersistMessage(m)) return;
  const set = useLab.setState;
  switch (m.type) {
    case 'ready':
      set({ adapter: m.adapter, webgpu: 'ok' });
      clearBanners('no-webgpu');
      if (autoDemo && useLab.getState().dataset.status === 'none') openDemo();
      break;
    case 'no-webgpu':
      set({ webgpu: 'missing' });
      addBanner({
        kind: 'no-webgpu',
        title: 'WebGPU is not available',
        message: m.message,
        next: 'Use a recent Chrome, Edge or Safari (or Firefox Nightly) with hardware acceleration on; on Linux Chrome, start it with --enable-unsafe-webgpu. Then reload this page.',
      });
      break;
    case 'selfcheck':
      set({ selfcheck: m.result, selfcheckBusy: false });
      break;
    case 'dataset-progress':
      // the full evaluation reports its progress on this channel too (src/worker/evaluate.ts)
      if (m.phase.startsWith('evaluating')) {
        evalProgress(m.fraction, m.phase);
        break;
      }
      // and the dashboard folder its writing (src/worker/dashboards.ts)
      if (m.phase === 'dashboards') {
        dashboardsProgress(m.fraction);
        break;
      }
      set((s) => ({ dataset: { ...s.dataset, status: 'loading', fraction: m.fraction, phase: m.phase } }));
      break;
    case 'dataset-ready': {
      set((s) => ({ dataset: { ...s.dataset, status: 'ready', fraction: 1, phase: 'ready', info: m.info } }));
      clearBanners('dataset-error');
      break;
    }
    case 'dataset-error':
      set((s) => ({
        dataset: { ...s.dataset, status: s.dataset.info ? 'ready' : 'error', fraction: 0, phase: '' },
      }));
      addBanner({
        kind: 'dataset-error',
        title: `Could not read ${m.file || 'the file'}`,
        message: m.message,
        next: useLab.getState().dataset.info
          ? `The previous dataset (${useLab.getState().dataset.info?.name}) is still loaded. Check the file's format (.npy/.npz/.safetensors, or raw .bin/.f32/.f16 with the width set) and drop it again.`
          : 'Check the file format (.npy/.npz/.safetensors of shape [tokens, d], or raw .bin/.f32/.f16 with the width set) and drop it again, or load the demo dataset.',
      });
      break;
    case 'train-started':
      if (!runIdOk(m.runId)) break;
      updateRun({
        config: m.config,
        kernels: m.kernels,
        gpuBytes: m.gpuBytes,
        totalSteps: m.totalSteps,
        status: 'running',
      });
      break;
    case 'metrics':
      if (runIdOk(m.runId)) pushPoints(m.points);
      break;
    case 'eval':
      if (runIdOk(m.runId)) pushEval(m.result);
      break;
    case 'status':
      if (runIdOk(m.runId)) {
        updateRun({ status: m.status, message: m.message });
        if (m.message?.startsWith('GPU device lost')) updateRun({ recovery: m.message });
        if (m.status === 'stopped' || m.status === 'done') recordSpeed();
      }
      break;
    case 'train-done':
      if (!runIdOk(m.runId)) break;
      if (m.curve?.length) replacePoints(m.curve);
      {
        const st = useLab.getState().run?.status;
        // a diverged run ('nan' came first) reports no final metrics: its weights are not finite
        updateRun({
          status: st === 'stopped' || st === 'failed' ? st : 'done',
          final: st === 'failed' ? null : m.final,
        });
      }
      recordSpeed(m.final.tokensPerS);
      break;
    case 'nan':
      if (runIdOk(m.runId)) updateRun({ status: 'failed', nanAt: m.step, message: m.message });
      addBanner({
        kind: 'nan',
        title: `Training produced NaN at step ${m.step}`,
        message: m.message,
        next: 'Lower the learning rate, turn on gradient clipping, or check the dataset card for non-finite rows; then start again.',
      });
      break;
    case 'device-lost': {
      const run = useLab.getState().run;
      const training = !!run && isActive(run.status);
      // During a run the worker continues it on a new device from its last checkpoint (its 'status'
      // says from which step); otherwise the page asks for a new device at once.
      if (training) updateRun({ status: 'preparing', message: 'GPU device lost: resuming on a new device' });
      else {
        set({ adapter: null, webgpu: 'pending' });
        send({ type: 'init' });
      }
      addBanner({
        kind: 'device-lost',
        title: 'The GPU device was lost',
        message: m.message,
        next: training
          ? 'The run continues on a new device from its last checkpoint and repeats the steps since, bit for bit: nothing to do. If it repeats, try a smaller N or batch.'
          : 'This happens when the GPU driver resets or memory runs out. A new device is being requested; try a smaller N or batch if it repeats.',
      });
      break;
    }
    case 'gpu-error':
      // outside a run (a run's GPU error comes as 'run-error')
      addBanner({
        kind: 'gpu-error',
        title: 'GPU error',
        message: m.message,
        next: 'The last GPU operation (evaluation, extraction or export) cannot be trusted: try again, with a smaller configuration if it repeats, and report the message.',
      });
      break;
    case 'run-error':
      if (!runIdOk(m.runId)) break;
      updateRun({ status: 'failed', message: m.message });
      if (m.kind === 'limit')
        addBanner({
          kind: 'error',
          title: 'The configuration does not fit this GPU',
          message: (m.problems ?? [m.message]).join('\n'),
          next: 'Nothing was allocated. Change what the message names (batch, N, k, or the binding cap) and start again.',
        });
      else
        addBanner({
          kind: 'gpu-error',
          title: 'GPU error: the run stopped',
          message: m.message,
          next: `Nothing computed after the error was reported${m.lastCheckpointStep != null ? `; the checkpoint of step ${m.lastCheckpointStep} is kept (resume it from the checkpoint list)` : ''}. Try a smaller N or batch, or report the message if it repeats; you can start another run now.`,
        });
      break;
    case 'full-eval':
      evalDone(m.report);
      break;
    case 'extract-progress':
      extractProgress(m.progress);
      break;
    case 'extract-done':
      extractDone(m.lm);
      break;
    case 'extract-error':
      extractFailed(m.message, m.cancelled);
      if (!m.cancelled)
        addBanner({
          kind: 'dataset-error',
          title: `Could not extract activations${m.file ? ` (${m.file})` : ''}`,
          message: m.message,
          next: useLab.getState().dataset.info
            ? `The previous dataset (${useLab.getState().dataset.info?.name}) is still loaded. Check that the checkpoint is a llama2.c .bin (legacy/version-0 export), the tokenizer its tokenizer .bin, and the text UTF-8.`
            : 'Check that the checkpoint is a llama2.c .bin (legacy/version-0 export), the tokenizer its tokenizer .bin, and the text UTF-8; or load the demo dataset.',
        });
      break;
    case 'latent':
      latentArrived(m.detail);
      break;
    case 'dashboards':
      downloadBytes(m.fileName, m.bytes);
      dashboardsDone({ fileName: m.fileName, size: m.bytes.byteLength, latents: m.latents, files: m.files });
      break;
    case 'error': {
      evalFailed(m.message);
      extractFailed(m.message);
      set({ selfcheckBusy: false });
      const run = useLab.getState().run;
      if (run && run.status === 'preparing') updateRun({ status: 'failed', message: m.message });
      if (useLab.getState().dataset.status === 'loading')
        set((s) => ({ dataset: { ...s.dataset, status: s.dataset.info ? 'ready' : 'error' } }));
      addBanner({
        kind: 'error',
        title: 'Something went wrong',
        message: m.message,
        next: 'Check the configuration and the dataset, then try again; reload the page if it persists.',
      });
      break;
    }
  }
}

function recordSpeed(tps?: number) {
  const { run } = useLab.getState();
  const cfg = run?.config;
  if (!cfg) return;
  const t = tps ?? seriesSnapshot().latest?.tokensPerS;
  if (t && t > 0) saveMeasured({ tokensPerS: t, d: cfg.d, nLatents: cfg.nLatents, batchSize: cfg.batchSize });
}

// ---- actions ----

export function runSelfCheck() {
  useLab.setState({ selfcheckBusy: true });
  send({ type: 'selfcheck' });
}

export function openDemo() {
  useLab.setState((s) => ({
    picked: [],
    dataset: { ...s.dataset, status: 'loading', source: 'demo', fraction: 0, phase: 'loading demo' },
  }));
  send({ type: 'open-dataset', spec: { kind: 'demo' } });
}

/** Extracts activations from a language model in the worker (the form in the dataset panel). */
export function startExtract() {
  const { options, status } = useExtract.getState();
  if (status === 'running') return;
  extractStarted();
  clearBanners('dataset-error');
  send({ type: 'extract-lm', request: extractRequest(options) });
}

export function cancelExtract() {
  send({ type: 'cancel-extract' });
}

/** Files that can be opened now; returns a reason when they cannot. */
export function filesProblem(): string | null {
  const { picked, rawWidth } = useLab.getState();
  const acts = picked.filter((p) => p.role === 'activations');
  if (!acts.length) return 'no activation file (.npy, .npz, .safetensors, .bin/.f32/.f16) among the files';
  if (acts.some((p) => isRaw(p.file.name))) {
    const w = Number(rawWidth);
    if (!Number.isInteger(w) || w < 1) return 'raw files need the width (d, values per row)';
  }
  return null;
}

export function openFiles() {
  const s = useLab.getState();
  if (filesProblem()) return;
  const acts = s.picked.filter((p) => p.role === 'activations');
  const tokens = s.picked.find((p) => p.role === 'tokens');
  const vocab = s.picked.find((p) => p.role === 'vocab');
  const raw = acts.some((p) => isRaw(p.file.name));
  const spec: DatasetSpec = {
    kind: 'files',
    files: acts.map((p) => ({ blob: p.file, name: p.file.name })),
    ...(s.tensor.trim() ? { tensor: s.tensor.trim() } : {}),
    ...(raw ? { rawDtype: s.rawDtype, rawWidth: Number(s.rawWidth) } : {}),
    ...(tokens ? { tokens: { blob: tokens.file, name: tokens.file.name } } : {}),
    ...(vocab ? { vocab: { blob: vocab.file, name: vocab.file.name } } : {}),
  };
  useLab.setState((st) => ({
    dataset: { ...st.dataset, status: 'loading', source: 'files', fraction: 0, phase: 'opening' },
  }));
  send({ type: 'open-dataset', spec: { ...spec, nonFinite: s.nonFinite } });
}

/**
 * Problems with the current form for the loaded dataset (empty when it can start): invalid fields,
 * then the limits its buffer plan breaks on this adapter (WebGPU's defaults until it is known).
 */
export function configProblems(): string[] {
  const { config, dataset, adapter } = useLab.getState();
  const d = dataset.info?.d ?? 1;
  try {
    const r = resolveConfig({ ...config, d });
    const invalid = validateConfig(r);
    return invalid.length ? invalid : bufferPlan(r, reportLimits(adapter, DEFAULT_LIMITS)).problems;
  } catch (e) {
    return [(e as Error).message.replace(/^invalid config: /, '')];
  }
}

/**
 * TEST HOOK: `?inject-gpu-error=STEP` in the page's URL makes the next run record a genuinely invalid
 * GPU command right after step STEP (TrainStart.injectGpuError), so e2e tests can exercise the
 * GPU-error path. Absent (the default), nothing is injected.
 */
function injectedGpuErrorStep(): number | undefined {
  return stepParam('inject-gpu-error');
}

/**
 * TEST HOOKS: `?lose-device=STEP` makes the next run destroy its GPU device right after step STEP
 * (TrainStart.loseDeviceAtStep), so e2e tests drive the recovery from the last checkpoint;
 * `?checkpoint-every=STEPS` adds a checkpoint every STEPS steps. Absent (the default), nothing changes.
 */
function stepParam(name: string): number | undefined {
  const v = new URLSearchParams(globalThis.location?.search ?? '').get(name);
  const n = v === null ? Number.NaN : Number(v);
  return Number.isInteger(n) && n >= 1 ? n : undefined;
}

export function startTraining() {
  const { config, dataset, run } = useLab.getState();
  if (!dataset.info || (run && isActive(run.status))) return;
  if (configProblems().length) return;
  const runId = `run-${Date.now().toString(36)}`;
  const inject = injectedGpuErrorStep();
  const loseDevice = stepParam('lose-device');
  const checkpointEvery = stepParam('checkpoint-every');
  resetSeries();
  resetEval();
  clearBanners('nan');
  useLab.setState({
    run: {
      runId,
      status: 'preparing',
      config: null,
      kernels: null,
      gpuBytes: 0,
      totalSteps: 0,
      final: null,
      nanAt: null,
    },
  });
  send({
    type: 'train',
    start: {
      runId,
      config: { ...config, d: dataset.info.d },
      // about 8 held-out evaluations per run, never more often than every 16 steps
      evalEveryTokens: Math.max(16 * config.batchSize, Math.floor(config.tokens / 8)),
      ...(inject !== undefined ? { injectGpuError: inject } : {}),
      ...(loseDevice !== undefined ? { loseDeviceAtStep: loseDevice } : {}),
      ...(checkpointEvery !== undefined ? { checkpointEverySteps: checkpointEvery } : {}),
    },
  });
}

export function pauseTraining() {
  send({ type: 'pause' });
}
export function resumeTraining() {
  send({ type: 'resume' });
}
export function stopTraining() {
  const run = useLab.getState().run;
  if (run && isActive(run.status)) updateRun({ status: 'stopping' });
  send({ type: 'stop' });
}
export function evaluateNow() {
  send({ type: 'evaluate' });
}

/** Full evaluation of the current (paused) or last finished run: see src/worker/evaluate.ts. */
export function runFullEval() {
  const { options } = useEval.getState();
  evalStarted(useLab.getState().run?.runId ?? null);
  send({
    type: 'full-eval',
    request: {
      maxRows: options.maxRows,
      explainLatents: options.explainLatents,
      downstream: options.downstream && lmDataset(),
      ...(options.ablation && lmDataset()
        ? { ablation: { latents: options.ablationLatents, tokens: options.ablationTokens } }
        : {}),
      ...(options.labels ? { labels: { blob: options.labels, name: options.labels.name } } : {}),
      ...(options.directions
        ? { directions: { blob: options.directions, name: options.directions.name } }
        : {}),
    },
  });
}

/** The open dataset came from a language model whose residual stream the worker can splice into. */
export function lmDataset(): boolean {
  const info = useLab.getState().dataset.info;
  return !!info && (info.kind === 'demo' || !!info.lm?.spliceable);
}

/** Downloads every latent's dashboard of the last evaluation as a static folder (zip). */
export function exportDashboards() {
  dashboardsStarted();
  const info = useLab.getState().dataset.info;
  send({
    type: 'export-dashboards',
    title: `SAE Lab latent dashboards${info ? ` · ${info.name}` : ''}`,
  });
}

/** Opens one latent of the last evaluation in the latent browser. */
export function openLatent(id: number) {
  latentRequested(id);
  send({ type: 'latent', latent: id });
}
