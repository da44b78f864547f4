/**
 * The page's one channel to the trainer worker: store/worker.ts opens it and routes what comes back;
 * every store that drives the worker (runs, sweeps, comparisons, checkpoints) sends through it.
 * Its own module so that those stores and the router do not import each other.
 */
import type { ToWorker } from '../worker/protocol';

let post: ((m: ToWorker) => void) | null = null;

/** Called by store/worker.ts once the worker has started. */
export function openChannel(send: (m: ToWorker) => void) {
  post = send;
}

/** Sends a message to the worker; nothing before the worker has started. */
export function sendToWorker(m: ToWorker) {
  post?.(m);
}
