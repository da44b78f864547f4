/**
 * Training checkpoints: a store over the Origin Private File System (or memory) that keeps the
 * last K checkpoint blobs of each run and never loses the last good one. The blob format
 * (serialize, parse and verify) is checkpoint-format.ts.
 */
import { type OpfsDir, writeOpfsFile } from '../data/opfs.ts';
import { type Checkpoint, CheckpointError, parseCheckpoint } from './checkpoint-format.ts';

/** A file as listed by a CheckpointFs. */
interface FsEntry {
  name: string;
  size: number;
  /** ms since epoch */
  lastModified: number;
}

/**
 * The few file operations the store needs: one folder per run, flat files inside. Implemented
 * over OPFS (opfsFs) and in memory (memoryFs, for node tests and as a fallback).
 */
export interface CheckpointFs {
  dirs(): Promise<string[]>;
  /** Files of a folder; [] if the folder does not exist. */
  files(dir: string): Promise<FsEntry[]>;
  read(dir: string, name: string): Promise<Uint8Array>;
  /** Writes a whole file, creating the folder, replacing a file of that name. May throw QuotaExceededError. */
  write(dir: string, name: string, bytes: Uint8Array): Promise<void>;
  /** Renames within a folder, replacing `to`. Optional: without it the store writes in place. */
  rename?(dir: string, from: string, to: string): Promise<void>;
  remove(dir: string, name: string): Promise<void>;
  removeDir(dir: string): Promise<void>;
  /** navigator.storage.estimate(), or null when unknown. */
  estimate(): Promise<{ usage: number; quota: number } | null>;
}

/** Thrown when a checkpoint does not fit in the browser's storage quota. */
export class StorageFullError extends Error {
  constructor(
    readonly need: number,
    readonly free: number | null,
  ) {
    const mb = (n: number) => (n / 1e6).toFixed(1);
    super(
      `not enough browser storage for checkpoint (need ${mb(need)} MB, ${free === null ? 'unknown' : `${mb(Math.max(0, free))} MB`} free): delete old checkpoints`,
    );
    this.name = 'StorageFullError';
  }
}

const isQuotaError = (e: unknown) =>
  !!e &&
  typeof e === 'object' &&
  ((e as { name?: string }).name === 'QuotaExceededError' || (e as { code?: number }).code === 22);

export interface CheckpointInfo {
  runId: string;
  step: number;
  /** bytes */
  size: number;
  modified: Date;
  /** file name inside the run folder */
  file: string;
}

export interface LatestCheckpoint {
  checkpoint: Checkpoint;
  info: CheckpointInfo;
  /** Newer checkpoints that could not be used, newest first. */
  skipped: { info: CheckpointInfo; error: string }[];
  /** One line for the user when a newer checkpoint was skipped, else null. */
  warning: string | null;
}

const FILE_RE = /^step-(\d{12})\.ckpt$/;
const TMP_SUFFIX = '.tmp';
const fileName = (step: number) => `step-${String(step).padStart(12, '0')}.ckpt`;

function checkRunId(runId: string): void {
  if (!/^[\w.-]{1,128}$/.test(runId) || runId === '.' || runId === '..')
    throw new RangeError(`run id '${runId}' must be 1–128 characters of letters, digits, '_', '-', '.'`);
}

/**
 * Keeps the last K checkpoints of each run. A save writes the new file completely (to a
 * temporary name, then renames it into place) before deleting the oldest, so a crash or a full
 * disk at any moment leaves the previous good checkpoint intact; a half-written newest file is
 * caught by its checksum and `latest` falls back to the one before.
 */
export class CheckpointStore {
  readonly keep: number;

  constructor(
    readonly fs: CheckpointFs,
    opts: { keep?: number } = {},
  ) {
    this.keep = Math.max(1, Math.floor(opts.keep ?? 3));
  }

  /** A store over the Origin Private File System (main thread or worker). */
  static async opfs(opts: { keep?: number; folder?: string } = {}): Promise<CheckpointStore> {
    return new CheckpointStore(await opfsFs(opts.folder), opts);
  }

  /**
   * Saves a checkpoint blob (from serializeCheckpoint) as step `step` of run `runId`, then prunes
   * the run to the newest `keep`.
   * @throws StorageFullError when the quota does not allow it (nothing older is deleted)
   */
  async save(runId: string, step: number, bytes: Uint8Array): Promise<CheckpointInfo> {
    checkRunId(runId);
    if (!Number.isSafeInteger(step) || step < 0)
      throw new RangeError(`step must be a non-negative integer, got ${step}`);
    const est = await this.fs.estimate();
    const free = est ? est.quota - est.usage : null;
    if (free !== null && bytes.length > free) throw new StorageFullError(bytes.length, free);
    const final = fileName(step);
    const target = this.fs.rename ? final + TMP_SUFFIX : final;
    try {
      await this.fs.write(runId, target, bytes);
    } catch (e) {
      await this.fs.remove(runId, target).catch(() => {});
      if (isQuotaError(e)) {
        const after = await this.fs.estimate().catch(() => null);
        throw new StorageFullError(bytes.length, after ? after.quota - after.usage : free);
      }
      throw e;
    }
    // Cheap completeness check before the new file may replace anything.
    const written = (await this.fs.files(runId)).find((f) => f.name === target);
    if (!written || written.size !== bytes.length) {
      await this.fs.remove(runId, target).catch(() => {});
      throw new Error(
        `checkpoint ${runId} step ${step}: write incomplete (${written?.size ?? 0} of ${bytes.length} bytes)`,
      );
    }
    if (this.fs.rename) await this.fs.rename(runId, target, final);
    await this.prune(runId);
    const info = (await this.list(runId)).find((c) => c.step === step);
    if (!info) throw new Error(`checkpoint ${runId} step ${step} vanished after saving`);
    return info;
  }

  /** Deletes all but the newest `keep` checkpoints of a run, and leftover temporary files. */
  private async prune(runId: string): Promise<void> {
    const entries = await this.fs.files(runId);
    for (const f of entries) if (f.name.endsWith(TMP_SUFFIX)) await this.fs.remove(runId, f.name);
    const mine = (await this.list(runId)).sort((a, b) => b.step - a.step);
    for (const old of mine.slice(this.keep)) await this.fs.remove(runId, old.file);
  }

  /** Checkpoints (of one run, or all), sorted by run then step ascending. */
  async list(runId?: string): Promise<CheckpointInfo[]> {
    const runs = runId !== undefined ? [runId] : await this.fs.dirs();
    const out: CheckpointInfo[] = [];
    for (const r of runs) {
      for (const f of await this.fs.files(r)) {
        const m = FILE_RE.exec(f.name);
        if (m)
          out.push({
            runId: r,
            step: Number(m[1]),
            size: f.size,
            modified: new Date(f.lastModified),
            file: f.name,
          });
      }
    }
    return out.sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : a.step - b.step));
  }

  /** Deletes one checkpoint, or (without step) the whole run. */
  async delete(runId: string, step?: number): Promise<void> {
    checkRunId(runId);
    if (step === undefined) await this.fs.removeDir(runId);
    else await this.fs.remove(runId, fileName(step));
  }

  /** Reads and verifies one checkpoint. @throws CheckpointError */
  async load(runId: string, step: number): Promise<Checkpoint> {
    return parseCheckpoint(await this.fs.read(runId, fileName(step)), `${runId} step ${step}`);
  }

  /**
   * The newest usable checkpoint of a run, falling back to older ones when the newest is corrupt
   * or truncated; null when the run has none.
   * @throws CheckpointError when every checkpoint of the run is damaged
   */
  async latest(runId: string): Promise<LatestCheckpoint | null> {
    const all = (await this.list(runId)).sort((a, b) => b.step - a.step);
    if (all.length === 0) return null;
    const skipped: LatestCheckpoint['skipped'] = [];
    for (const info of all) {
      try {
        const checkpoint = await this.load(runId, info.step);
        const warning = skipped.length
          ? `${skipped[0].error}; an older checkpoint is available (step ${info.step}) and was loaded instead`
          : null;
        return { checkpoint, info, skipped, warning };
      } catch (e) {
        skipped.push({ info, error: e instanceof Error ? e.message : String(e) });
      }
    }
    const first = skipped[0];
    throw new CheckpointError(
      `${runId} step ${first.info.step}`,
      'corrupt',
      `${first.error.replace(/^checkpoint \S+ step \d+ is /, '')}; no older checkpoint is available`,
    );
  }
}

// ---------------------------------------------------------------------------
// Backends

/** In-memory CheckpointFs. `quota` (bytes) makes writes past it throw a QuotaExceededError. */
export function memoryFs(opts: { quota?: number } = {}): CheckpointFs & {
  /** Test hook: the next write stores only this many bytes and then throws (a crash mid-write). */
  crashNextWriteAt: number | null;
  readonly data: Map<string, Map<string, { bytes: Uint8Array; lastModified: number }>>;
} {
  const data = new Map<string, Map<string, { bytes: Uint8Array; lastModified: number }>>();
  let clock = 0;
  const usage = () => {
    let u = 0;
    for (const d of data.values()) for (const f of d.values()) u += f.bytes.length;
    return u;
  };
  const fs = {
    data,
    crashNextWriteAt: null as number | null,
    async dirs() {
      return [...data.keys()];
    },
    async files(dir: string) {
      const d = data.get(dir);
      return d
        ? [...d].map(([name, f]) => ({ name, size: f.bytes.length, lastModified: f.lastModified }))
        : [];
    },
    async read(dir: string, name: string) {
      const f = data.get(dir)?.get(name);
      if (!f) throw new DOMException(`${dir}/${name} not found`, 'NotFoundError');
      return f.bytes.slice();
    },
    async write(dir: string, name: string, bytes: Uint8Array) {
      const existing = data.get(dir)?.get(name)?.bytes.length ?? 0;
      if (opts.quota !== undefined && usage() - existing + bytes.length > opts.quota)
        throw new DOMException('quota exceeded', 'QuotaExceededError');
      if (!data.has(dir)) data.set(dir, new Map());
      const crash = fs.crashNextWriteAt;
      fs.crashNextWriteAt = null;
      data
        .get(dir)!
        .set(name, { bytes: bytes.slice(0, crash ?? bytes.length), lastModified: Date.now() + clock++ });
      if (crash !== null) throw new Error('simulated crash mid-write');
    },
    async rename(dir: string, from: string, to: string) {
      const d = data.get(dir);
      const f = d?.get(from);
      if (!d || !f) throw new DOMException(`${dir}/${from} not found`, 'NotFoundError');
      d.set(to, f);
      d.delete(from);
    },
    async remove(dir: string, name: string) {
      data.get(dir)?.delete(name);
    },
    async removeDir(dir: string) {
      data.delete(dir);
    },
    async estimate() {
      return opts.quota === undefined ? null : { usage: usage(), quota: opts.quota };
    },
  };
  return fs;
}

const notFound = (e: unknown) =>
  !!e && typeof e === 'object' && (e as { name?: string }).name === 'NotFoundError';

/**
 * CheckpointFs over the Origin Private File System: navigator.storage.getDirectory()/<folder>/<run>/.
 * Works on the main thread and in workers. Writes use createWritable (Chromium, Firefox, Safari 17+:
 * it writes a swap file and swaps it in on close) or, where only that exists (older Safari
 * workers), a sync access handle. Rename uses FileSystemFileHandle.move where available.
 */
export async function opfsFs(folder = 'sae-lab-checkpoints'): Promise<CheckpointFs> {
  const storage = (globalThis.navigator as Navigator | undefined)?.storage;
  if (!storage?.getDirectory)
    throw new Error('this browser has no Origin Private File System (navigator.storage.getDirectory)');
  const root = ((await await storage.getDirectory()) as unknown as OpfsDir).getDirectoryHandle(folder, {
    create: true,
  });
  const dir = async (name: string, create: boolean) => (await root).getDirectoryHandle(name, { create });
  const canMove = await (async () => {
    // Probe once: move() is missing on some engines.
    const r = await root;
    const h = await r.getFileHandle('.probe', { create: true });
    const ok = typeof h.move === 'function';
    await r.removeEntry('.probe').catch(() => {});
    return ok;
  })();
  const fs: CheckpointFs = {
    async dirs() {
      const out: string[] = [];
      for await (const e of (await root).values()) if (e.kind === 'directory') out.push(e.name);
      return out;
    },
    async files(name) {
      let d: OpfsDir;
      try {
        d = await dir(name, false);
      } catch (e) {
        if (notFound(e)) return [];
        throw e;
      }
      const out: FsEntry[] = [];
      for await (const e of d.values()) {
        if (e.kind !== 'file') continue;
        const f = await (await d.getFileHandle(e.name)).getFile();
        out.push({ name: e.name, size: f.size, lastModified: f.lastModified });
      }
      return out;
    },
    async read(name, file) {
      const f = await (await (await dir(name, false)).getFileHandle(file)).getFile();
      return new Uint8Array(await f.arrayBuffer());
    },
    async write(name, file, bytes) {
      await writeOpfsFile(await (await dir(name, true)).getFileHandle(file, { create: true }), bytes);
    },
    async remove(name, file) {
      try {
        await (await dir(name, false)).removeEntry(file);
      } catch (e) {
        if (!notFound(e)) throw e;
      }
    },
    async removeDir(name) {
      try {
        await (await root).removeEntry(name, { recursive: true });
      } catch (e) {
        if (!notFound(e)) throw e;
      }
    },
    async estimate() {
      if (!storage.estimate) return null;
      const e = await storage.estimate();
      return e.quota !== undefined && e.usage !== undefined ? { usage: e.usage, quota: e.quota } : null;
    },
  };
  if (canMove) {
    fs.rename = async (name, from, to) => {
      const d = await dir(name, false);
      // move() onto an existing name is not replace-everywhere; clear the target first (only ever
      // the same step being re-saved, so older checkpoints stay intact meanwhile).
      await d.removeEntry(to).catch(() => {});
      await (await d.getFileHandle(from)).move!(to);
    };
  }
  return fs;
}
