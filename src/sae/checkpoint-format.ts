/**
 * The training checkpoint format: one self-checking binary blob per checkpoint (the store that
 * keeps them is checkpoint.ts).
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
 *   readers without U32 still load them; values ≥ 2^31 appear negative there),
 *   inferenceThreshold [1] (BatchTopK only: the running threshold θ, −1 until learned).
 */
import { crc32 } from '../data/crc32.ts';
import { fmtBytes } from '../data/errors.ts';
import { readSafetensors, type StTensorIn, writeSafetensors } from '../data/safetensors.ts';
import type { SaeConfig } from './config.ts';
import type { Normalization } from './normalize.ts';
import type { ParamsF32, TrainState } from './step-buffers.ts';

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
  if (s.inferenceThreshold !== undefined)
    tensors.inferenceThreshold = { dtype: 'F32', shape: [1], data: new Float32Array([s.inferenceThreshold]) };
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
 * The checks run in the order the layout is read (length, magic, CRC, version, JSON, tensors).
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
  const theta = t.inferenceThreshold;
  if (theta) {
    if (!(theta.data instanceof Float32Array) || theta.data.length !== 1)
      throw new CheckpointError(
        name,
        'invalid',
        'invalid (tensor inferenceThreshold is not one float32 value)',
      );
    state.inferenceThreshold = theta.data[0];
  }
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
