/**
 * The headless runner's page: the same worker the lab page uses, driven from node through
 * playwright. Files come in through <input type=file> (real, disk-backed File objects, so nothing is
 * copied into memory); worker messages go out through window.__emit (playwright exposeFunction).
 */
import { startWorker } from '../src/worker/client';
import type { DatasetSpec, FromWorker, ToWorker } from '../src/worker/protocol';

declare global {
  interface Window {
    __emit?: (m: FromWorker) => void;
    __cli: {
      send(m: ToWorker): void;
      openFiles(
        opts: Omit<Extract<DatasetSpec, { kind: 'files' }>, 'kind' | 'files' | 'tokens' | 'vocab'>,
      ): void;
      ready: boolean;
    };
  }
}

const worker = startWorker((m) => window.__emit?.(m));
const input = (id: string) => document.getElementById(id) as HTMLInputElement;
window.__cli = {
  ready: true,
  send: (m) => worker.send(m),
  openFiles(opts) {
    const files = [...(input('files').files ?? [])].map((f) => ({ blob: f as Blob, name: f.name }));
    const tok = input('tokens').files?.[0];
    const voc = input('vocab').files?.[0];
    worker.send({
      type: 'open-dataset',
      spec: {
        kind: 'files',
        files,
        ...opts,
        tokens: tok ? { blob: tok, name: tok.name } : undefined,
        vocab: voc ? { blob: voc, name: voc.name } : undefined,
      },
    });
  },
};
