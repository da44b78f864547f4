/// <reference lib="webworker" />
/**
 * The worker owns the GPUDevice (docs/DESIGN.md §3). It opens datasets, runs the Trainer, and reports over
 * the typed protocol. Device loss and uncaptured GPU errors are handled here, in one place.
 */
import { DataError } from '../data/errors';
import { createGpu, type GpuContext, GpuError, WebGPUUnavailableError, withErrorScopes } from '../gpu/device';
import type { EncodeVariant } from '../gpu/kernels/encode';
import type { ImportedSae } from '../io/sae-files';
import { zipExport } from '../io/zip';
import { seedAutotune } from '../sae/autotune';
import type { Checkpoint } from '../sae/checkpoint-format';
import { bufferPlan, LimitError, outOfMemoryError } from '../sae/plan';
import { DeviceLostError, GpuRunError } from '../sae/run-errors';
import type { KernelChoice } from '../sae/step-host';
import { Trainer } from '../sae/trainer';
import type { TrainerCheckpointExtra } from '../sae/trainer-checkpoint';
import { type TrainerHooks, trainerConfig } from '../sae/trainer-options';
import { exportDashboards, latentDetail } from './dashboards';
import { noteDataset, noteLmDataset } from './dataset-lm';
import { type OpenedDataset, openDataset } from './datasets';
import { fullEvaluate, releaseTrainer, retainedTrainer, retainTrainer } from './evaluate';
import { extractGpt2Lm } from './gpt2-extract';
import { extractLm } from './lm-extract';
import * as models from './models';
import type { ExtractLmProgress, FromWorker, ToWorker, TrainStart } from './protocol';
import { encodeSelfCheck } from './selfcheck';

const post = (m: FromWorker, transfer: Transferable[] = []) =>
  (self as unknown as DedicatedWorkerGlobalScope).postMessage(m, transfer);
let gpu: GpuContext | null = null;
let dataset: OpenedDataset | null = null;
let trainer: Trainer | null = null;
let runId = '';
/** An SAE imported from files; the current model (for export / evaluation) while `current` says so. */
let imported: ImportedSae | null = null;
let current: 'trained' | 'imported' = 'trained';
/** The extraction in progress ('extract-lm'), cancelled by 'cancel-extract'. */
let extracting: AbortController | null = null;

async function ensureGpu(): Promise<GpuContext> {
  if (gpu) return gpu;
  gpu = await createGpu({
    onLost: (info) => {
      // A running Trainer notices by itself (DeviceLostError); train() then recovers from the last checkpoint.
      gpu = null;
      post({ type: 'device-lost', message: `${info.reason}: ${info.message}` });
    },
    // During a run the Trainer catches these itself, stops, and its 'run-error' says so.
    onUncapturedError: (message) => {
      if (!trainer) post({ type: 'gpu-error', message });
    },
  });
  return gpu;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Runs (or, with `resumeFrom`, continues) a run. Checkpoints go to OPFS; when the GPU device is
 * lost the run continues on a new device from its latest checkpoint (a few times at most).
 * A config that breaks a limit of the device is refused before anything is allocated, and a GPU
 * error stops the run: both end with 'run-error' (kind 'limit' or 'gpu'), not 'train-done'.
 */
async function train(start: TrainStart, resumeFrom?: Checkpoint) {
  if (start.autotuneCache) seedAutotune(start.autotuneCache);
  try {
    await trainOrRecover(start, resumeFrom);
  } catch (e) {
    if (e instanceof LimitError)
      post({
        type: 'run-error',
        runId: start.runId,
        kind: 'limit',
        message: e.message,
        problems: e.problems,
      });
    else if (e instanceof GpuError)
      post({
        type: 'run-error',
        runId: start.runId,
        kind: 'gpu',
        message: e.message,
        phase: e.phase,
        ...(e instanceof GpuRunError ? { step: e.step, lastCheckpointStep: e.lastCheckpointStep } : {}),
      });
    else throw e;
  }
}

/** The run's hooks: each posts its message for run `id`; `t` is the run's Trainer (built by then). */
function runHooks(id: string, t: () => Trainer): TrainerHooks {
  return {
    onMetrics: (points) => post({ type: 'metrics', runId: id, points }),
    onEval: (result) => post({ type: 'eval', runId: id, result }),
    onStatus: (status, message) => post({ type: 'status', runId: id, status, message }),
    onNaN: (step, message) => post({ type: 'nan', runId: id, step, message }),
    onStarted: ({ kernels, autotune }) => {
      const run = t();
      post({
        type: 'train-started',
        runId: id,
        config: run.cfg,
        kernels,
        autotune: autotune && !autotune.cached ? autotune.timings : null,
        autotuneKey: autotune?.key ?? null,
        gpuBytes: run.sae.bytes,
        layout: {
          shards: run.sae.plan.shards.length,
          tiles: run.sae.plan.tiles.length,
          tileLatents: run.sae.plan.tileLatents,
          microBatch: run.sae.plan.microBatch,
          bindingCap: run.sae.plan.bindingCap,
        },
        totalSteps: run.totalSteps,
      });
    },
    onCheckpoint: (c) => {
      models.listCheckpoints(c.error).then(post, () => {});
    },
  };
}

async function trainOrRecover(start: TrainStart, resumeFrom?: Checkpoint) {
  if (!dataset) throw new Error('no dataset is open: drop a file or load the demo first');
  if (trainer) throw new Error('a run is already in progress: stop it first');
  releaseTrainer(); // the previous run's model, kept for evaluation (src/worker/evaluate.ts)
  const ds = dataset;
  runId = start.runId;
  const id = runId;
  current = 'trained';
  const store = await models.checkpointStore();
  let ck = resumeFrom;
  // After a device loss before any checkpoint the run starts again from step 0 with the kernels it
  // had (no autotuning, whose timing could pick others): the same seed gives the same run.
  let kernels = start.kernels as Partial<KernelChoice> | undefined;
  for (let recoveries = 0; ; recoveries++) {
    const g = await ensureGpu();
    // Every buffer the run will hold, checked against this device's limits before any is allocated.
    const plan = bufferPlan(trainerConfig(start.config, ds.source.d, ck), g.device.limits);
    if (plan.problems.length) throw new LimitError(plan.problems);
    let built: Trainer | null = null;
    await withErrorScopes(g.device, "building the SAE's buffers and pipelines", () => {
      built = new Trainer(
        g.device,
        ds.source,
        ds.stats,
        start.config,
        runHooks(id, () => t),
        {
          kernels,
          evalEveryTokens: start.evalEveryTokens,
          autotuneAdapter: `${g.report.vendor}/${g.report.architecture}/${g.report.device}`,
          checkpoints: { store, runId: id, everySteps: start.checkpointEverySteps },
          resumeFrom: ck,
          injectGpuErrorAtStep: start.injectGpuError,
          // the test hook loses the first device (or the first loseDeviceTimes); the recovered run goes on
          loseDeviceAtStep: recoveries < (start.loseDeviceTimes ?? 1) ? start.loseDeviceAtStep : undefined,
        },
      );
    }).catch((e) => {
      (built as Trainer | null)?.destroy();
      // A refused allocation is the device's memory limit: refused like any other limit (kind 'limit').
      if (e instanceof GpuError && e.kind === 'GPUOutOfMemoryError')
        throw outOfMemoryError(plan, /BufferDescriptor ""?([^"]+)"/.exec(e.detail)?.[1] ?? 'a buffer');
      throw e;
    });
    const t = built as unknown as Trainer;
    trainer = t;
    let lost = false;
    let broken = false;
    try {
      const r = await t.run();
      post({ type: 'train-done', runId: id, final: r.final, curve: r.curve });
      return;
    } catch (e) {
      // A GPU error leaves buffers that cannot be trusted: the model is not kept for evaluation or export.
      if (e instanceof GpuError) broken = true;
      if (!(e instanceof DeviceLostError)) throw e;
      lost = true;
      if (recoveries >= 3)
        throw new Error(
          `${e.message}; gave up after ${recoveries} recoveries (resume it from the checkpoint list)`,
        );
      const latest = await store.latest(id).catch(() => null);
      // Lost again with no checkpoint since the last loss: the same work would be lost the same way
      // (a run the device cannot hold took SwiftShader's GPU process down at the same point each time).
      const next = latest?.checkpoint ?? resumeFrom;
      if (recoveries > 0 && (next?.step ?? 0) === (ck?.step ?? 0))
        throw new Error(
          `${e.message}; lost again before a new checkpoint (${ck ? `step ${ck.step}` : 'none yet'}), so not retried. This run holds ${(plan.totalBytes / 2 ** 20).toFixed(1)} MiB on the GPU: if the device ran out of memory, lower N or the batch size`,
        );
      kernels = t.kernels;
      ck = next;
      post({
        type: 'status',
        runId: id,
        status: 'preparing',
        message: ck
          ? `GPU device lost; resuming from checkpoint step ${ck.step}`
          : 'GPU device lost before the first checkpoint; starting again from step 0 (same seed, same kernels)',
      });
    } finally {
      // kept (GPU buffers included) for 'full-eval' / 'latent' until the next run starts
      if (lost || broken) t.destroy();
      else retainTrainer(t, ds);
      trainer = null;
    }
  }
}

/** Makes the imported SAE the model evaluation reads, when a dataset of its width is open. */
async function adoptImported(): Promise<string> {
  if (!imported) return '';
  if (!dataset) return `; open a dataset with d=${imported.d} to evaluate it`;
  if (dataset.info.d !== imported.d)
    return `; the open dataset has d=${dataset.info.d}, not ${imported.d}: open a matching one to evaluate it`;
  const g = await ensureGpu();
  retainTrainer(models.trainerForImported(g.device, imported, dataset), dataset);
  return '';
}

/** 'open-dataset': opens the files, the demo or a URL; a failure is a 'dataset-error' naming the file. */
async function onOpenDataset(msg: Extract<ToWorker, { type: 'open-dataset' }>) {
  if (trainer) throw new Error('stop the current run before opening another dataset');
  try {
    dataset = await openDataset(msg.spec, (fraction, phase) =>
      post({ type: 'dataset-progress', fraction, phase }),
    );
    noteDataset(dataset, msg.spec);
    if (current === 'imported') await adoptImported();
    post({ type: 'dataset-ready', info: dataset.info });
  } catch (e) {
    const file =
      e instanceof DataError
        ? e.file
        : msg.spec.kind === 'files'
          ? msg.spec.files.map((f) => f.name).join(', ')
          : msg.spec.kind;
    post({ type: 'dataset-error', file, message: errorMessage(e) });
  }
}

/** 'extract-lm': runs a language model over its text into a dataset (cancellable); a failure names the file. */
async function onExtractLm(msg: Extract<ToWorker, { type: 'extract-lm' }>) {
  if (trainer) throw new Error('stop the current run before extracting activations');
  if (extracting) throw new Error('an extraction is already running: cancel it first');
  const ctl = new AbortController();
  extracting = ctl;
  const r = msg.request;
  try {
    const getDevice = async () => (await ensureGpu()).device;
    const onProgress = (progress: ExtractLmProgress) => post({ type: 'extract-progress', progress });
    const x =
      r.family === 'gpt2'
        ? await extractGpt2Lm(r, getDevice, onProgress, ctl.signal)
        : await extractLm(r, getDevice, onProgress, ctl.signal);
    dataset = x.dataset;
    noteLmDataset(x.dataset, x.context);
    if (current === 'imported') await adoptImported();
    post({ type: 'extract-done', lm: x.lm });
    post({ type: 'dataset-ready', info: x.dataset.info });
  } catch (e) {
    const cancelled = ctl.signal.aborted;
    // the LM readers start their messages with the file's name
    const names = [
      ...(r.family === 'gpt2'
        ? r.files.map((f) => ({ kind: 'file' as const, ...f }))
        : [r.checkpoint, r.tokenizer]),
      r.text,
    ].map((f) => (f.kind === 'file' ? f.name : (f.path.split('/').pop() ?? f.path)));
    const file =
      e instanceof DataError ? e.file : (names.find((n) => errorMessage(e).startsWith(`${n}:`)) ?? '');
    post({
      type: 'extract-error',
      file,
      message: cancelled ? 'extraction cancelled' : errorMessage(e),
      cancelled,
    });
  } finally {
    extracting = null;
  }
}

/** 'check-plans': each config's buffer plan on this device (problems and bytes), nothing allocated. */
async function onCheckPlans(msg: Extract<ToWorker, { type: 'check-plans' }>) {
  if (!dataset) throw new Error('no dataset is open: drop a file or load the demo first');
  const g = await ensureGpu();
  const d = dataset.source.d;
  const results = msg.configs.map(({ label, config }) => {
    try {
      const plan = bufferPlan(trainerConfig(config, d), g.device.limits);
      return { label, problems: plan.problems, totalBytes: plan.totalBytes };
    } catch (e) {
      return { label, problems: [], totalBytes: 0, error: errorMessage(e) };
    }
  });
  post({ type: 'plan-check', results });
}

/** 'delete-checkpoint': never the checkpoints of the run in progress. */
async function onDeleteCheckpoint(msg: Extract<ToWorker, { type: 'delete-checkpoint' }>) {
  if (trainer && msg.runId === runId)
    throw new Error('this run is in progress: stop it before deleting its checkpoints');
  await (await models.checkpointStore()).delete(msg.runId, msg.step);
  post(await models.listCheckpoints());
}

/** 'resume-checkpoint': trains on from a saved checkpoint with its config and kernels. */
async function onResumeCheckpoint(msg: Extract<ToWorker, { type: 'resume-checkpoint' }>) {
  if (trainer) throw new Error('a run is already in progress: stop it first');
  const { checkpoint, warning } = await models.loadForResume(msg.runId, msg.step, dataset);
  if (warning) post(await models.listCheckpoints(warning));
  const kernels = (checkpoint.extra as Partial<TrainerCheckpointExtra> | undefined)?.kernels;
  await train({ runId: msg.runId, config: checkpoint.config, kernels }, checkpoint);
}

/** 'export': the current model (a run's, live or finished, or the imported one) as a zip. */
async function onExport(msg: Extract<ToWorker, { type: 'export' }>) {
  const source: models.ModelSource =
    current === 'imported'
      ? { runId: 'imported', trainer: null, imported }
      : { runId, trainer: trainer ?? retainedTrainer(), imported: null };
  const { fileName, files } = await models.exportModel(source, msg);
  const bytes = zipExport(files);
  post({ type: 'export', fileName, bytes }, [bytes.buffer]);
}

/** 'export-run-config': the config of the current model as a run-config zip. */
function onExportRunConfig() {
  const t = current === 'imported' ? null : (trainer ?? retainedTrainer());
  const config = t
    ? t.cfg
    : imported
      ? { ...imported.config, d: imported.d, nLatents: imported.nLatents, k: imported.k }
      : null;
  if (!config) throw new Error('nothing to export: train or import an SAE first');
  const { fileName, bytes } = models.exportRunConfigZip(config, t ? runId : 'imported');
  post({ type: 'export', fileName, bytes }, [bytes.buffer]);
}

/** 'import-sae': makes the imported SAE the current model. */
async function onImportSae(msg: Extract<ToWorker, { type: 'import-sae' }>) {
  if (trainer) throw new Error('stop the current run before importing an SAE');
  imported = await models.importFiles(msg.files);
  current = 'imported';
  const note = await adoptImported();
  post({ type: 'imported', summary: models.importSummary(imported) + note });
}

/** 'full-eval': full evaluation of the run in progress, or else of the retained one. */
async function onFullEval(msg: Extract<ToWorker, { type: 'full-eval' }>) {
  const live = trainer ? { trainer, dataset } : null;
  const report = await fullEvaluate(live, msg.request, (fraction, phase) =>
    post({ type: 'dataset-progress', fraction, phase }),
  );
  post({ type: 'full-eval', report });
}

/** 'export-dashboards': the last evaluation's latent dashboards as a zip. */
async function onExportDashboards(msg: Extract<ToWorker, { type: 'export-dashboards' }>) {
  const d = await exportDashboards(msg.title ?? 'SAE Lab latent dashboards', (fraction) =>
    post({ type: 'dataset-progress', fraction, phase: 'dashboards' }),
  );
  post({ type: 'dashboards', ...d }, [d.bytes.buffer]);
}

self.onmessage = async (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  try {
    switch (msg.type) {
      case 'init':
        post({ type: 'ready', adapter: (await ensureGpu()).report });
        break;
      case 'selfcheck': {
        const g = await ensureGpu();
        post({
          type: 'selfcheck',
          result: await encodeSelfCheck(g.device, (msg.variant ?? 'blocked4x4') as EncodeVariant),
        });
        break;
      }
      case 'open-dataset':
        await onOpenDataset(msg);
        break;
      case 'extract-lm':
        await onExtractLm(msg);
        break;
      case 'cancel-extract':
        extracting?.abort(new Error('extraction cancelled'));
        break;
      case 'train':
        await train(msg.start);
        break;
      case 'check-plans':
        await onCheckPlans(msg);
        break;
      case 'list-checkpoints':
        post(await models.listCheckpoints());
        break;
      case 'delete-checkpoint':
        await onDeleteCheckpoint(msg);
        break;
      case 'resume-checkpoint':
        await onResumeCheckpoint(msg);
        break;
      case 'export':
        await onExport(msg);
        break;
      case 'export-run-config':
        onExportRunConfig();
        break;
      case 'import-sae':
        await onImportSae(msg);
        break;
      case 'pause':
        trainer?.pause();
        break;
      case 'resume':
        trainer?.resume();
        break;
      case 'stop':
        trainer?.stop();
        break;
      case 'evaluate':
        if (trainer) post({ type: 'eval', runId, result: await trainer.evaluate() });
        break;
      case 'full-eval':
        await onFullEval(msg);
        break;
      case 'latent':
        post({ type: 'latent', detail: await latentDetail(msg.latent) });
        break;
      case 'export-dashboards':
        await onExportDashboards(msg);
        break;
    }
  } catch (e) {
    if (e instanceof WebGPUUnavailableError) post({ type: 'no-webgpu', message: e.message });
    else post({ type: 'error', message: errorMessage(e) });
  }
};
