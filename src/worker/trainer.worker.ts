/// <reference lib="webworker" />
/**
 * The worker owns the GPUDevice (DESIGN §3). It opens datasets, runs the Trainer, and reports over
 * the typed protocol. Device loss and uncaptured GPU errors are handled here, in one place.
 */
import { DataError } from '../data/errors';
import { createGpu, type GpuContext, WebGPUUnavailableError } from '../gpu/device';
import type { EncodeVariant } from '../gpu/kernels/encode';
import type { KernelChoice } from '../sae/step';
import { Trainer } from '../sae/trainer';
import { type OpenedDataset, openDataset } from './datasets';
import type { FromWorker, ToWorker } from './protocol';
import { encodeSelfCheck } from './selfcheck';

const post = (m: FromWorker) => (self as unknown as DedicatedWorkerGlobalScope).postMessage(m);
let gpu: GpuContext | null = null;
let dataset: OpenedDataset | null = null;
let trainer: Trainer | null = null;
let runId = '';

async function ensureGpu(): Promise<GpuContext> {
  if (gpu) return gpu;
  gpu = await createGpu({
    onLost: (info) => {
      gpu = null;
      trainer?.stop();
      post({ type: 'device-lost', message: `${info.reason}: ${info.message}` });
    },
    onUncapturedError: (message) => post({ type: 'gpu-error', message }),
  });
  return gpu;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function train(msg: Extract<ToWorker, { type: 'train' }>) {
  if (!dataset) throw new Error('no dataset is open: drop a file or load the demo first');
  if (trainer) throw new Error('a run is already in progress: stop it first');
  const g = await ensureGpu();
  runId = msg.start.runId;
  const id = runId;
  const t = new Trainer(
    g.device,
    dataset.source,
    dataset.stats,
    msg.start.config,
    {
      onMetrics: (points) => post({ type: 'metrics', runId: id, points }),
      onEval: (result) => post({ type: 'eval', runId: id, result }),
      onStatus: (status, message) => post({ type: 'status', runId: id, status, message }),
      onNaN: (step, message) => post({ type: 'nan', runId: id, step, message }),
      onStarted: ({ kernels, autotune }) =>
        post({
          type: 'train-started',
          runId: id,
          config: t.cfg,
          kernels,
          autotune: autotune?.timings ?? null,
          gpuBytes: t.sae.bytes,
          totalSteps: t.totalSteps,
        }),
    },
    {
      kernels: msg.start.kernels as Partial<KernelChoice> | undefined,
      evalEveryTokens: msg.start.evalEveryTokens,
      autotuneAdapter: `${g.report.vendor}/${g.report.architecture}/${g.report.device}`,
    },
  );
  trainer = t;
  try {
    const r = await t.run();
    post({ type: 'train-done', runId: id, final: r.final, curve: r.curve });
  } finally {
    t.destroy();
    trainer = null;
  }
}

self.onmessage = async (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  try {
    switch (msg.type) {
      case 'init': {
        const g = await ensureGpu();
        post({ type: 'ready', adapter: g.report });
        break;
      }
      case 'selfcheck': {
        const g = await ensureGpu();
        post({ type: 'selfcheck', result: await encodeSelfCheck(g.device, (msg.variant ?? 'blocked4x4') as EncodeVariant) });
        break;
      }
      case 'open-dataset': {
        if (trainer) throw new Error('stop the current run before opening another dataset');
        try {
          dataset = await openDataset(msg.spec, (fraction, phase) => post({ type: 'dataset-progress', fraction, phase }));
          post({ type: 'dataset-ready', info: dataset.info });
        } catch (e) {
          const file = e instanceof DataError ? e.file : msg.spec.kind === 'files' ? msg.spec.files.map((f) => f.name).join(', ') : msg.spec.kind;
          post({ type: 'dataset-error', file, message: errorMessage(e) });
        }
        break;
      }
      case 'train':
        await train(msg);
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
    }
  } catch (e) {
    if (e instanceof WebGPUUnavailableError) post({ type: 'no-webgpu', message: e.message });
    else post({ type: 'error', message: errorMessage(e) });
  }
};
