/**
 * The headless runner's page: the same worker the lab page uses, driven from node through
 * playwright. Files come in through <input type=file> (real, disk-backed File objects, so nothing is
 * copied into memory); worker messages go out through window.__emit (playwright exposeFunction).
 */
import { startWorker } from '../src/worker/client';
import type { DatasetSpec, ExtractLmRequest, FromWorker, ToWorker } from '../src/worker/protocol';

declare global {
  interface Window {
    __emit?: (m: FromWorker) => void;
    __cli: {
      send(m: ToWorker): void;
      openFiles(
        opts: Omit<Extract<DatasetSpec, { kind: 'files' }>, 'kind' | 'files' | 'tokens' | 'vocab'>,
      ): void;
      /** 'extract-lm' with the checkpoint, tokenizer and text of the lm-* inputs */
      extractLm(opts: Omit<ExtractLmRequest, 'checkpoint' | 'tokenizer' | 'text'>): void;
      ready: boolean;
    };
  }
}

const worker = startWorker((m) => window.__emit?.(m));
const input = (id: string) => document.getElementById(id) as HTMLInputElement;
window.__cli = {
  ready: true,
  send: (m) => worker.send(m),
  extractLm(opts) {
    const spec = (id: string) => {
      const f = input(id).files![0];
      return { kind: 'file' as const, blob: f as Blob, name: f.name };
    };
    worker.send({
      type: 'extract-lm',
      request: {
        ...opts,
        checkpoint: spec('lm-model'),
        tokenizer: spec('lm-tokenizer'),
        text: spec('lm-text'),
      },
    });
  },
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
