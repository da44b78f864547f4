import type { FromWorker, ToWorker } from './protocol';

/** Starts the trainer worker and routes its messages to one listener. */
export function startWorker(onMessage: (m: FromWorker) => void) {
  const worker = new Worker(new URL('./trainer.worker.ts', import.meta.url), {
    type: 'module',
    name: 'sae-trainer',
  });
  worker.onmessage = (ev: MessageEvent<FromWorker>) => onMessage(ev.data);
  worker.onerror = (ev) => onMessage({ type: 'error', message: ev.message || 'worker failed to start' });
  return {
    send: (m: ToWorker) => worker.postMessage(m),
    terminate: () => worker.terminate(),
  };
}
