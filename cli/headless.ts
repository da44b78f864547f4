/**
 * Drives the worker in headless Chromium from node: open a session on cli/index.html, hand it files,
 * send messages, receive worker messages as an async stream.
 */

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { DatasetInfo, FromWorker, ToWorker } from '../src/worker/protocol';
import { GpuFailure, RunFailure, UsageError } from './args';
import { openSession, type Session } from './browser';

/** Messages that end whatever the CLI is waiting for. */
const FATAL = ['error', 'no-webgpu', 'device-lost', 'run-error', 'gpu-error'];

/** The error a fatal worker message becomes: a refused config is bad input (exit 2), a GPU error exit 1. */
function fatalError(m: FromWorker): Error {
  if (m.type === 'run-error')
    return m.kind === 'limit' ? new UsageError(m.message) : new GpuFailure(m.message);
  if (m.type === 'gpu-error') return new GpuFailure(`GPU error: ${m.message}`);
  if (m.type === 'device-lost') return new RunFailure(`GPU device lost: ${m.message}`);
  return new RunFailure('message' in m ? String(m.message) : m.type);
}

export interface Headless {
  session: Session;
  send(m: ToWorker): Promise<void>;
  /**
   * Waits for the next message of one of `types` (others only pass through onMessage); a fatal one
   * (FATAL) throws, except those in `survive` (a run's 'device-lost': the worker recovers by itself).
   */
  next<T extends FromWorker['type']>(
    types: T[],
    timeoutMs?: number,
    survive?: FromWorker['type'][],
  ): Promise<Extract<FromWorker, { type: T }>>;
  onMessage: ((m: FromWorker) => void) | null;
  setFiles(
    id: 'files' | 'tokens' | 'vocab' | 'lm-model' | 'lm-tokenizer' | 'lm-text',
    paths: string[],
  ): Promise<void>;
  close(): Promise<void>;
}

export async function openHeadless(): Promise<Headless> {
  const queue: FromWorker[] = [];
  let waiter: (() => void) | null = null;
  const session = await openSession('/cli/index.html', {
    log: (l) => {
      if (/error|fail/i.test(l) && process.env.SAE_LAB_DEBUG) process.stderr.write(`[page] ${l}\n`);
    },
  });
  const h: Headless = {
    session,
    onMessage: null,
    async send(m) {
      await session.page.evaluate((msg) => window.__cli.send(msg), m);
    },
    async next(types, timeoutMs = 24 * 3600_000, survive = []) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        for (let j = queue.length - 1; j >= 0; j--) if (survive.includes(queue[j].type)) queue.splice(j, 1);
        const i = queue.findIndex((m) => (types as string[]).includes(m.type) || FATAL.includes(m.type));
        if (i >= 0) {
          const m = queue.splice(i, 1)[0];
          if ((types as string[]).includes(m.type))
            return m as Extract<FromWorker, { type: (typeof types)[number] }>;
          throw fatalError(m);
        }
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${types.join('/')}`);
        await new Promise<void>((r) => {
          waiter = r;
          setTimeout(r, 1000);
        });
      }
    },
    async setFiles(id, paths) {
      await session.page.setInputFiles(
        `#${id}`,
        paths.map((p) => resolve(p)),
      );
    },
    close: () => session.close(),
  };
  // The tab gone (the kernel's OOM killer took it at d = 4096, N = 65536 on 24 GiB, 2026-12-02): no
  // worker message will come, so whatever is awaited fails now instead of at next()'s 24 h deadline.
  const gone = (what: string) => {
    queue.push({
      type: 'error',
      message: `${what}; the run is lost (most often: this machine ran out of memory)`,
    });
    waiter?.();
  };
  session.page.on('crash', () => gone('the headless browser tab running the worker crashed'));
  session.browser.on('disconnected', () => gone('the headless browser exited'));
  // SAE_LAB_DEBUG=1: the page's and worker's console on stderr (diagnosing a stall inside the worker).
  if (process.env.SAE_LAB_DEBUG)
    session.page.on('console', (m) => process.stderr.write(`[page] ${m.text()}\n`));
  // A large export (or dashboard zip) arrives in chunks before its message (cli/page.ts), which gets their bytes.
  const chunks: Uint8Array[] = [];
  await session.page.exposeFunction('__emitChunk', (c: unknown) => {
    chunks.push(bytesOf(c));
  });
  await session.page.exposeFunction('__emit', (msg: FromWorker) => {
    let m = msg;
    if ((m.type === 'export' || m.type === 'dashboards') && chunks.length) {
      m = { ...m, bytes: joinBytes(chunks) };
      chunks.length = 0;
    }
    h.onMessage?.(m);
    queue.push(m);
    waiter?.();
  });
  await session.page.waitForFunction(() => window.__cli?.ready === true);
  return h;
}

/**
 * Opens `--data` in the session's worker: "demo" (the bundled demo) or files (shards comma-separated),
 * with the reader flags --tensor / --raw-width / --raw-dtype and --non-finite (skip|stop). A bad file
 * (with 'stop', one holding NaN or Inf: file and row named) is a UsageError (exit 2).
 */
export async function openDataFlag(h: Headless, flags: Record<string, unknown>): Promise<DatasetInfo> {
  const data = String(flags.data);
  if (data === 'demo') {
    await h.send({
      type: 'open-dataset',
      spec: { kind: 'demo', url: `${h.session.baseUrl}/public/demo/stories260K_L2_resid.f16.npy` },
    });
  } else {
    const paths = data.split(',');
    const nonFinite = flags['non-finite'] as string | undefined;
    if (nonFinite !== undefined && nonFinite !== 'skip' && nonFinite !== 'stop')
      throw new UsageError(`--non-finite must be skip|stop, got '${nonFinite}'`);
    for (const p of paths) if (!existsSync(p)) throw new UsageError(`${p}: no such file`);
    await h.setFiles('files', paths);
    await h.session.page.evaluate((o) => window.__cli.openFiles(o), {
      tensor: flags.tensor as string | undefined,
      rawWidth: flags['raw-width'] as number | undefined,
      rawDtype: flags['raw-dtype'] as 'f32' | 'f16' | undefined,
      nonFinite: nonFinite as 'skip' | 'stop' | undefined,
    });
  }
  const opened = await h.next(['dataset-ready', 'dataset-error']);
  if (opened.type === 'dataset-error') throw new UsageError(opened.message);
  warnDataset(opened.info);
  return opened.info;
}

/**
 * The dataset card's problems on stderr, one line each, whatever --quiet says: rows skipped for NaN or
 * Inf (the page shows them on its card; a run must not drop rows without saying so), identical rows.
 */
export function warnDataset(info: DatasetInfo) {
  for (const p of info.problems) process.stderr.write(`warning: ${info.name}: ${p}\n`);
}

/** The dataset as metrics.json records it: what was read, and how many rows were skipped and why. */
export function datasetRecord(info: DatasetInfo) {
  return {
    name: info.name,
    rows: info.rows,
    d: info.d,
    dtype: info.dtype,
    description: info.description,
    // rows holding NaN or Inf: skipped in training and evaluation (--non-finite stop refuses the file)
    non_finite_rows: info.stats.nonFiniteRows,
    problems: info.problems,
  };
}

/** Bytes from playwright's serialization of a Uint8Array (a typed array, or an index-keyed object). */
export function bytesOf(b: unknown): Uint8Array {
  if (b instanceof Uint8Array) return b;
  if (b && typeof b === 'object') return Uint8Array.from(Object.values(b as Record<string, number>));
  throw new Error('no bytes came back from the worker');
}

function joinBytes(parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.byteLength;
  }
  return all;
}
