/**
 * Training checkpoints: one self-checking binary blob per checkpoint, and a store over the
 * Origin Private File System that never loses the last good one.
 *
 * Blob layout (all integers little-endian):
 *
 *   [0, 8)        magic "SAELABCK"
 *   [8, 12)       u32 format version (1)
 *   [12, 16)      u32 J: byte length of the JSON metadata (space-padded to a multiple of 8 so
 *                 the tensor section starts 8-aligned)
 *   [16, 24)      u64 T: byte length of the tensor section
 *   [24, 24+J)    JSON: step, tokens, config, data position, RNG state, metrics curve, …
 *   [24+J, +T)    a safetensors file holding the TrainState tensors (names below)
 *   [end-4, end)  u32 CRC-32 (IEEE, as zip/PNG) of every byte before it
 *
 * A truncated blob fails the length check, any flipped bit fails the CRC, so a crash mid-write
 * or a damaged file is reported instead of silently resuming from garbage.
 *
 * Tensors (float32 unless noted), W_* [N, d] latent-major as everywhere in SAE Lab:
 *   params.{W_enc,b_enc,W_dec,b_pre}, m.{…}, v.{…} (Adam moments), ema.{…} (if EMA is on),
 *   and params.extra / m.extra / v.extra / ema.extra [2N] when the activation has per-latent
 *   parameters (gated: r_mag, b_mag; jumprelu: log_threshold, then N unused); checkpoints written
 *   before these existed simply have none and still load,
 *   tokensSince [N], firesTotal [N]: uint32 counters stored bit-for-bit as I32 (safetensors
 *   readers without U32 still load them; values ≥ 2^31 appear negative there).
 */
import { crc32 } from '../data/crc32.ts';
import { fmtBytes } from '../data/errors.ts';
import { type OpfsDir, writeOpfsFile } from '../data/opfs.ts';
import { readSafetensors, type StTensorIn, writeSafetensors } from '../data/safetensors.ts';
import type { SaeConfig } from './config.ts';
import type { Normalization } from './normalize.ts';
import type { ParamsF32, TrainState } from './step.ts';

const CKPT_MAGIC = 'SAELABCK';
const CKPT_VERSION = 1;
const HEADER = 24;
const TRAILER = 4;
const PARAM_KEYS = ['W_enc', 'b_enc', 'W_dec', 'b_pre'] as const;

/** Where the data stream was: resume continues from the same epoch and row. */
interface DataPosition {
  epoch: number;
  rowsEmitted: number;
}

/** Everything needed to resume a run bit-for-bit (given the same data and adapter). */
export interface CheckpointData {
  runId?: string;
  /** Steps taken. */
  step: number;
  /** Tokens trained on. */
  tokens: number;
  /** The run's config; d and nLatents give the tensor shapes. */
  config: Pick<SaeConfig, 'd' | 'nLatents'> & Partial<SaeConfig>;
  data: DataPosition;
  /** RNG state words (shuffle, sampling), restored verbatim. */
  rng: number[];
  /** Metric curve so far (e.g. MetricPoint[]); JSON-serializable, NaN/±Infinity kept. */
  metrics: unknown[];
  normalization?: Normalization;
  state: TrainState;
  /** Anything else the trainer wants back (JSON). */
  extra?: Record<string, unknown>;
}

export interface Checkpoint extends CheckpointData {
  version: number;
  /** ISO time the blob was written. */
  createdAt: string;
}

export type CheckpointProblem = 'corrupt' | 'truncated' | 'not-a-checkpoint' | 'version' | 'invalid';

/** A checkpoint that cannot be used; `message` is one line for the user. */
export class CheckpointError extends Error {
  constructor(
    readonly checkpoint: string,
    readonly problem: CheckpointProblem,
    detail: string,
  ) {
    super(`checkpoint ${checkpoint} is ${detail}`);
    this.name = 'CheckpointError';
  }
}

// ---------------------------------------------------------------------------
// JSON with non-finite numbers (metrics curves contain NaN before the first eval, etc.)

const NUM_TAG = '$num';
const jsonReplacer = (_k: string, v: unknown) =>
  typeof v === 'number' && !Number.isFinite(v) ? { [NUM_TAG]: String(v) } : v;
const jsonReviver = (_k: string, v: unknown) => {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === NUM_TAG) return Number((v as Record<string, string>)[NUM_TAG]);
  }
  return v;
};

// ---------------------------------------------------------------------------
// Serialize / parse

function paramTensors(prefix: string, p: ParamsF32, d: number, N: number, out: Record<string, StTensorIn>) {
  const shapes = { W_enc: [N, d], b_enc: [N], W_dec: [N, d], b_pre: [d] };
  for (const k of PARAM_KEYS) out[`${prefix}.${k}`] = { dtype: 'F32', shape: shapes[k], data: p[k] };
  if (p.extra) {
    if (p.extra.length !== 2 * N)
      throw new RangeError(
        `checkpoint: ${prefix}.extra has ${p.extra.length} values, expected 2N = ${2 * N}`,
      );
    out[`${prefix}.extra`] = { dtype: 'F32', shape: [2 * N], data: p.extra };
  }
}

const asI32 = (u: Uint32Array) => new Int32Array(u.buffer, u.byteOffset, u.length);

/**
 * Serializes a full training checkpoint into one blob (layout in the file comment).
 * Memory: the tensors are copied about three times transiently (safetensors writer + final blob).
 */
export function serializeCheckpoint(ck: CheckpointData): Uint8Array {
  const { d, nLatents: N } = ck.config;
  const s = ck.state;
  const tensors: Record<string, StTensorIn> = {};
  paramTensors('params', s.params, d, N, tensors);
  paramTensors('m', s.m, d, N, tensors);
  paramTensors('v', s.v, d, N, tensors);
  if (s.ema) paramTensors('ema', s.ema, d, N, tensors);
  tensors.tokensSince = { dtype: 'I32', shape: [N], data: asI32(s.tokensSince) };
  tensors.firesTotal = { dtype: 'I32', shape: [N], data: asI32(s.firesTotal) };
  const st = writeSafetensors(tensors);

  const meta = {
    format: 'sae-lab-checkpoint',
    version: CKPT_VERSION,
    createdAt: new Date().toISOString(),
    runId: ck.runId ?? null,
    step: ck.step,
    tokens: ck.tokens,
    config: ck.config,
    data: ck.data,
    rng: ck.rng,
    metrics: ck.metrics,
    normalization: ck.normalization ?? null,
    hasEma: s.ema !== null,
    hasExtra: s.params.extra !== undefined,
    extra: ck.extra ?? null,
  };
  let json = new TextEncoder().encode(JSON.stringify(meta, jsonReplacer));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const total = HEADER + json.length + st.length + TRAILER;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) out[i] = CKPT_MAGIC.charCodeAt(i);
  dv.setUint32(8, CKPT_VERSION, true);
  dv.setUint32(12, json.length, true);
  dv.setBigUint64(16, BigInt(st.length), true);
  out.set(json, HEADER);
  out.set(st, HEADER + json.length);
  dv.setUint32(total - TRAILER, crc32(out.subarray(0, total - TRAILER)), true);
  return out;
}

function takeParams(
  name: string,
  tensors: ReturnType<typeof readSafetensors>['tensors'],
  prefix: string,
  d: number,
  N: number,
): ParamsF32 {
  const want = { W_enc: N * d, b_enc: N, W_dec: N * d, b_pre: d };
  const p = {} as ParamsF32;
  for (const k of PARAM_KEYS) {
    const t = tensors[`${prefix}.${k}`];
    if (!t || !(t.data instanceof Float32Array) || t.data.length !== want[k]) {
      throw new CheckpointError(
        name,
        'invalid',
        `invalid (tensor ${prefix}.${k} is ${t ? `${t.dtype} ${JSON.stringify(t.shape)}` : 'missing'}; expected ${want[k]} float32 values for d=${d}, N=${N})`,
      );
    }
    p[k] = t.data;
  }
  const extra = tensors[`${prefix}.extra`];
  if (extra) {
    if (!(extra.data instanceof Float32Array) || extra.data.length !== 2 * N)
      throw new CheckpointError(
        name,
        'invalid',
        `invalid (tensor ${prefix}.extra is ${extra.dtype} ${JSON.stringify(extra.shape)}; expected ${2 * N} float32 values for N=${N})`,
      );
    p.extra = extra.data;
  }
  return p;
}

function takeU32(
  name: string,
  tensors: ReturnType<typeof readSafetensors>['tensors'],
  key: string,
  N: number,
) {
  const t = tensors[key];
  if (!t || !(t.data instanceof Int32Array) || t.data.length !== N)
    throw new CheckpointError(name, 'invalid', `invalid (tensor ${key} missing or not ${N} int32 values)`);
  return new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);
}

/**
 * Parses and verifies a checkpoint blob.
 * @param name how the checkpoint is named in errors (e.g. "run-a step 200")
 * @throws CheckpointError: truncated, corrupt (checksum mismatch), not a checkpoint, newer version
 */
export function parseCheckpoint(bytes: Uint8Array, name = '(unnamed)'): Checkpoint {
  if (bytes.length < HEADER + TRAILER) {
    if (bytes.length >= 8 && !hasMagic(bytes))
      throw new CheckpointError(name, 'not-a-checkpoint', 'not an SAE Lab checkpoint (no SAELABCK header)');
    throw new CheckpointError(
      name,
      'truncated',
      `truncated (${bytes.length} bytes; the header alone is ${HEADER})`,
    );
  }
  if (!hasMagic(bytes))
    throw new CheckpointError(name, 'not-a-checkpoint', 'not an SAE Lab checkpoint (no SAELABCK header)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true);
  const J = dv.getUint32(12, true);
  const T = Number(dv.getBigUint64(16, true));
  const expected = HEADER + J + T + TRAILER;
  if (bytes.length < expected) {
    throw new CheckpointError(
      name,
      'truncated',
      `truncated (${fmtBytes(bytes.length)} of ${fmtBytes(expected)}; the write did not finish)`,
    );
  }
  const stored = dv.getUint32(expected - TRAILER, true);
  if (bytes.length > expected || crc32(bytes.subarray(0, expected - TRAILER)) !== stored) {
    throw new CheckpointError(name, 'corrupt', 'corrupt (checksum mismatch)');
  }
  // Checked after the CRC: a flipped bit in the version field is corruption, not a new version.
  if (version > CKPT_VERSION) {
    throw new CheckpointError(
      name,
      'version',
      `from a newer SAE Lab (format version ${version}; this one reads ${CKPT_VERSION})`,
    );
  }
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(new TextDecoder().decode(bytes.subarray(HEADER, HEADER + J)), jsonReviver);
  } catch (e) {
    throw new CheckpointError(name, 'invalid', `invalid (metadata is not JSON: ${(e as Error).message})`);
  }
  const config = meta.config as CheckpointData['config'];
  const d = config?.d;
  const N = config?.nLatents;
  if (!Number.isInteger(d) || !Number.isInteger(N))
    throw new CheckpointError(name, 'invalid', 'invalid (config lacks d / nLatents)');
  let st: ReturnType<typeof readSafetensors>;
  try {
    st = readSafetensors(bytes.subarray(HEADER + J, HEADER + J + T), `checkpoint ${name}`);
  } catch (e) {
    throw new CheckpointError(name, 'invalid', `invalid (${(e as Error).message})`);
  }
  const t = st.tensors;
  const state: TrainState = {
    params: takeParams(name, t, 'params', d, N),
    m: takeParams(name, t, 'm', d, N),
    v: takeParams(name, t, 'v', d, N),
    ema: meta.hasEma ? takeParams(name, t, 'ema', d, N) : null,
    tokensSince: takeU32(name, t, 'tokensSince', N),
    firesTotal: takeU32(name, t, 'firesTotal', N),
  };
  // All or none: the Adam moments (and the EMA) of `extra` exist exactly when the parameter does.
  const parts = [state.params, state.m, state.v, ...(state.ema ? [state.ema] : [])];
  const withExtra = parts.filter((p) => p.extra !== undefined).length;
  if ((meta.hasExtra === true && withExtra !== parts.length) || (withExtra > 0 && withExtra !== parts.length))
    throw new CheckpointError(
      name,
      'invalid',
      `invalid (extra parameters present in ${withExtra} of ${parts.length} of params/m/v${state.ema ? '/ema' : ''})`,
    );
  return {
    version,
    createdAt: String(meta.createdAt),
    runId: (meta.runId as string | null) ?? undefined,
    step: meta.step as number,
    tokens: meta.tokens as number,
    config,
    data: meta.data as DataPosition,
    rng: meta.rng as number[],
    metrics: meta.metrics as unknown[],
    normalization: (meta.normalization as Normalization | null) ?? undefined,
    state,
    extra: (meta.extra as Record<string, unknown> | null) ?? undefined,
  };
}

function hasMagic(b: Uint8Array): boolean {
  for (let i = 0; i < 8; i++) if (b[i] !== CKPT_MAGIC.charCodeAt(i)) return false;
  return true;
}

// ---------------------------------------------------------------------------
// Storage

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
