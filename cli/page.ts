/**
 * The headless runner's page: the same worker the lab page uses, driven from node through
 * playwright. Files come in through <input type=file> (real, disk-backed File objects, so nothing is
 * copied into memory); worker messages go out through window.__emit (playwright exposeFunction).
 */
import { startWorker } from '../src/worker/client';
import type {
  DatasetSpec,
  FromWorker,
  Gpt2ExtractRequest,
  LlamaExtractRequest,
  ToWorker,
} from '../src/worker/protocol';

declare global {
  interface Window {
    __emit?: (m: FromWorker) => Promise<void>;
    __emitChunk?: (bytes: Uint8Array) => Promise<void>;
    __cli: {
      send(m: ToWorker): void;
      openFiles(
        opts: Omit<Extract<DatasetSpec, { kind: 'files' }>, 'kind' | 'files' | 'tokens' | 'vocab'>,
      ): void;
      /**
       * 'extract-lm' with the text of lm-text and the model of lm-model: llama2.c's checkpoint (and
       * lm-tokenizer), or a GPT-2 folder's files (family 'gpt2')
       */
      extractLm(
        opts:
          | Omit<LlamaExtractRequest, 'checkpoint' | 'tokenizer' | 'text'>
          | Omit<Gpt2ExtractRequest, 'files' | 'text'>,
      ): void;
      ready: boolean;
    };
  }
}

/**
 * Bytes per call into node. One message over the DevTools protocol must stay far below V8's largest
 * string (2^29 characters): an export at N = 2^20, d = 64 is 512 MiB. Ours.
 */
const CHUNK_BYTES = 32 << 20;

// In order: each call into node is awaited before the next message goes out.
let out = Promise.resolve();
const worker = startWorker((m) => {
  out = out.then(async () => {
    if ((m.type === 'export' || m.type === 'dashboards') && m.bytes.byteLength > CHUNK_BYTES) {
      // Large exports go in chunks; node joins them into the message's bytes (cli/headless.ts).
      for (let o = 0; o < m.bytes.byteLength; o += CHUNK_BYTES)
        await window.__emitChunk?.(m.bytes.subarray(o, o + CHUNK_BYTES));
      await window.__emit?.({ ...m, bytes: new Uint8Array(0) });
    } else await window.__emit?.(m);
  });
});
const input = (id: string) => document.getElementById(id) as HTMLInputElement;
window.__cli = {
  ready: true,
  send: (m) => worker.send(m),
  extractLm(opts) {
    const spec = (id: string) => {
      const f = input(id).files![0];
      return { kind: 'file' as const, blob: f as Blob, name: f.name };
    };
    const text = spec('lm-text');
    if (opts.family === 'gpt2') {
      const files = [...(input('lm-model').files ?? [])].map((f) => ({ blob: f as Blob, name: f.name }));
      worker.send({ type: 'extract-lm', request: { ...opts, files, text } });
    } else
      worker.send({
        type: 'extract-lm',
        request: { ...opts, checkpoint: spec('lm-model'), tokenizer: spec('lm-tokenizer'), text },
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
