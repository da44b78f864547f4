/** Typed messages between the page (or the CLI page) and trainer.worker.ts, which owns the GPUDevice. */
import type { AdapterReport } from '../gpu/device';
import type { SelfCheckResult } from './selfcheck';

export type ToWorker = { type: 'init' } | { type: 'selfcheck'; variant?: string };

export type FromWorker =
  | { type: 'ready'; adapter: AdapterReport }
  | { type: 'no-webgpu'; message: string }
  | { type: 'selfcheck'; result: SelfCheckResult }
  | { type: 'device-lost'; message: string }
  | { type: 'gpu-error'; message: string }
  | { type: 'error'; message: string };
