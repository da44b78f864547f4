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
    send: (m: ToWorker) => {
      // The demo lives beside the page; a worker's own URL is under assets/, so resolve it here.
      if (
        m.type === 'open-dataset' &&
        m.spec.kind === 'demo' &&
        !m.spec.url &&
        typeof document !== 'undefined'
      ) {
        m = {
          ...m,
          spec: { ...m.spec, url: new URL('demo/stories260K_L2_resid.f16.npy', document.baseURI).href },
        };
      }
      // Bundled language models and texts ('extract-lm') resolve against the page's base too.
      if (m.type === 'extract-lm' && !m.request.baseUrl && typeof document !== 'undefined') {
        m = { ...m, request: { ...m.request, baseUrl: document.baseURI } };
      }
      worker.postMessage(m);
    },
    terminate: () => worker.terminate(),
  };
}
