/// <reference lib="webworker" />
import { createGpu, type GpuContext, WebGPUUnavailableError } from '../gpu/device';
import type { EncodeVariant } from '../gpu/kernels/encode';
import type { FromWorker, ToWorker } from './protocol';
import { encodeSelfCheck } from './selfcheck';

const post = (m: FromWorker) => (self as unknown as DedicatedWorkerGlobalScope).postMessage(m);
let gpu: GpuContext | null = null;

async function ensureGpu(): Promise<GpuContext> {
  if (gpu) return gpu;
  gpu = await createGpu({
    onLost: (info) => {
      gpu = null;
      post({ type: 'device-lost', message: `${info.reason}: ${info.message}` });
    },
    onUncapturedError: (message) => post({ type: 'gpu-error', message }),
  });
  return gpu;
}

self.onmessage = async (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  try {
    if (msg.type === 'init') {
      const g = await ensureGpu();
      post({ type: 'ready', adapter: g.report });
    } else if (msg.type === 'selfcheck') {
      const g = await ensureGpu();
      post({
        type: 'selfcheck',
        result: await encodeSelfCheck(g.device, (msg.variant ?? 'blocked4x4') as EncodeVariant),
      });
    }
  } catch (e) {
    if (e instanceof WebGPUUnavailableError) post({ type: 'no-webgpu', message: e.message });
    else post({ type: 'error', message: e instanceof Error ? e.message : String(e) });
  }
};
