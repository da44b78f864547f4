/**
 * Seeded fuzz of every file reader the lab has: valid files of each format are mutated (bytes
 * replaced, header fields and length fields edited) and truncated, and every case must end one
 * of three ways:
 *  - it reads exactly like the valid file (shape, dtype and every value, bit for bit);
 *  - it reads with changed values only where the changed bytes are stored data that the format
 *    cannot check (a float of a .npy, a score of a tokenizer: no checksum), and only there;
 *  - it is refused with an Error whose message is one line naming the file, and which is not a
 *    RangeError/TypeError from deep inside a reader (those mean an unchecked length or offset).
 * It must never take longer than CASE_LIMIT_MS (a hang in a synchronous reader runs into the
 * vitest timeout instead, which fails the test just the same).
 *
 * All problems are collected and reported together, so one run lists every reader bug.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type OpenOptions, openActivationFile } from '../../../src/data/open.ts';
import { Rng } from '../../../src/data/rng.ts';
import { exportSae } from '../../../src/io/export.ts';
import { importSae } from '../../../src/io/import.ts';
import type { ImportedSae } from '../../../src/io/sae-files.ts';
import { zipExport } from '../../../src/io/zip.ts';
import { readCheckpoint } from '../../../src/lm/checkpoint.ts';
import { readTokenizer } from '../../../src/lm/tokenizer.ts';
import { randomParams } from '../io/helpers.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const DATA = join(HERE, '../../fixtures/data');
const MODELS = join(HERE, '../../../public/models/stories260K');
const SEED = 20261130;
/** Per case: every reader here handles a few KB (the checkpoint 1 MB) in well under this. */
const CASE_LIMIT_MS = 2000;

/** What a reader produced, reduced to what must match: a description and the value arrays. */
interface Parsed {
  meta: string;
  arrays: ArrayLike<number>[];
}

/** Where a byte of the file ends up; elem -1: one element of that array, index not tracked. */
type Where = { array: number; elem: number } | null;

interface Target {
  /** File name as the user gave it: every refusal must name it. */
  name: string;
  bytes: Uint8Array;
  /** Bytes before this are headers / structure; the mutations favour them. */
  headerEnd: number;
  parse(bytes: Uint8Array): Promise<Parsed>;
  /**
   * For a byte of stored data that the format has no way to check, the parsed element it lands
   * in; null for every other byte (a change there must be refused or change nothing).
   */
  locate(p: number): Where;
  /** Formats without a length field (raw): a cut after `len` bytes reads as the first rows. */
  cutIsPrefix?(len: number): boolean;
  /** Targeted edits of header and length fields. */
  edits: [string, (b: Uint8Array) => Uint8Array][];
}

type Outcome = 'identical' | 'data-changed' | 'prefix' | 'refused';

const fixture = (f: string) => new Uint8Array(readFileSync(join(DATA, f)));

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`TIMEOUT ${what}`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });

// --- byte helpers ------------------------------------------------------------------------------

const copy = (b: Uint8Array) => b.slice();
const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
function setByte(b: Uint8Array, at: number, v: number): Uint8Array {
  const c = copy(b);
  c[at] = v;
  return c;
}
function setU16(b: Uint8Array, at: number, v: number): Uint8Array {
  const c = copy(b);
  dv(c).setUint16(at, v, true);
  return c;
}
function setU32(b: Uint8Array, at: number, v: number): Uint8Array {
  const c = copy(b);
  dv(c).setUint32(at, v >>> 0, true);
  return c;
}
function setI32(b: Uint8Array, at: number, v: number): Uint8Array {
  const c = copy(b);
  dv(c).setInt32(at, v, true);
  return c;
}
function setU64(b: Uint8Array, at: number, v: bigint): Uint8Array {
  const c = copy(b);
  dv(c).setBigUint64(at, v, true);
  return c;
}
/** Replaces the first occurrence of ASCII `from` (at or after `start`) by `to`, same length or not. */
function replaceText(b: Uint8Array, from: string, to: string, start = 0): Uint8Array {
  const latin = new TextDecoder('latin1').decode(b);
  const i = latin.indexOf(from, start);
  if (i < 0) throw new Error(`fixture lacks '${from}'`);
  const enc = Uint8Array.from(to, (ch) => ch.charCodeAt(0));
  const out = new Uint8Array(b.length - from.length + enc.length);
  out.set(b.subarray(0, i));
  out.set(enc, i);
  out.set(b.subarray(i + from.length), i + enc.length);
  return out;
}

// --- targets -----------------------------------------------------------------------------------

async function readActivations(bytes: Uint8Array, name: string, opts: OpenOptions): Promise<Parsed> {
  const src = await openActivationFile(new Blob([bytes as Uint8Array<ArrayBuffer>]), name, opts);
  const data = await src.readRows(0, src.rows);
  return {
    meta: JSON.stringify({ rows: src.rows, d: src.d, dtype: src.dtype, shape: src.shape }),
    arrays: [data],
  };
}

/** The .npy header length (magic, version, length field, dict) of a valid .npy at `at`. */
function npyDataOffset(b: Uint8Array, at = 0): number {
  const major = b[at + 6];
  return major === 1 ? 10 + dv(b).getUint16(at + 8, true) : 12 + dv(b).getUint32(at + 8, true);
}

function npyTarget(file: string, itemsize: number): Target {
  const bytes = fixture(file);
  const off = npyDataOffset(bytes);
  const major = bytes[6];
  const lenAt = 8;
  const setLen = (b: Uint8Array, v: number) => (major === 1 ? setU16(b, lenAt, v) : setU32(b, lenAt, v));
  const hl = off - (major === 1 ? 10 : 12);
  return {
    name: file,
    bytes,
    headerEnd: off,
    parse: (b) => readActivations(b, file, {}),
    locate: (p) => (p >= off ? { array: 0, elem: Math.floor((p - off) / itemsize) } : null),
    edits: [
      ['header length +1', (b) => setLen(b, hl + 1)],
      ['header length -1', (b) => setLen(b, hl - 1)],
      ['header length +64', (b) => setLen(b, hl + 64)],
      ['header length 0', (b) => setLen(b, 0)],
      ['header length max', (b) => setLen(b, major === 1 ? 0xffff : 0xffffffff)],
      ['version 4', (b) => setByte(b, 6, 4)],
      ['version 0', (b) => setByte(b, 6, 0)],
      ['rows 49', (b) => replaceText(b, '(48,', '(49,')],
      ['rows 47', (b) => replaceText(b, '(48,', '(47,')],
      ['rows 0', (b) => replaceText(b, '(48,', '(0,')],
      ['rows 2^53', (b) => replaceText(b, '(48,', '(9007199254740993,')],
      ['rows -48', (b) => replaceText(b, '(48,', '(-48,')],
      ['rows 4.8', (b) => replaceText(b, '(48,', '(4.8,')],
      ['width 8', (b) => replaceText(b, ' 16)', ' 8)')],
      ['width 1e400', (b) => replaceText(b, ' 16)', ` 1${'0'.repeat(400)})`)],
      ['shape unclosed', (b) => replaceText(b, ' 16)', ' 16')],
      ['descr <f3', (b) => replaceText(b, `f${itemsize}'`, "f3'")],
      ['descr <i4', (b) => replaceText(b, `f${itemsize}'`, "i4'")],
      ['descr unquoted', (b) => replaceText(b, "'descr': '", "'descr': ")],
      ['fortran_order garbage', (b) => replaceText(b, 'False', 'Flase')],
      ['no dict', (b) => replaceText(b, '{', ' ')],
    ],
  };
}

/** Data offset and size of a stored zip member `name` (found through its local header). */
function storedMember(b: Uint8Array, name: string): { start: number; size: number } {
  for (let i = 0; i + 30 < b.length; i++) {
    if (dv(b).getUint32(i, true) !== 0x04034b50) continue;
    const nameLen = dv(b).getUint16(i + 26, true);
    const extraLen = dv(b).getUint16(i + 28, true);
    const n = new TextDecoder().decode(b.subarray(i + 30, i + 30 + nameLen));
    if (n !== name) continue;
    let size = dv(b).getUint32(i + 18, true);
    if (size === 0xffffffff) size = Number(dv(b).getBigUint64(i + 30 + nameLen + 4 + 8, true));
    return { start: i + 30 + nameLen + extraLen, size };
  }
  throw new Error(`no member ${name}`);
}

function eocdAt(b: Uint8Array): number {
  for (let i = b.length - 22; i >= 0; i--) if (dv(b).getUint32(i, true) === 0x06054b50) return i;
  throw new Error('no EOCD');
}

function zipEdits(): Target['edits'] {
  return [
    ['EOCD entry count 0', (b) => setU16(b, eocdAt(b) + 10, 0)],
    ['EOCD entry count +1', (b) => setU16(b, eocdAt(b) + 10, dv(b).getUint16(eocdAt(b) + 10, true) + 1)],
    ['EOCD cd size +1', (b) => setU32(b, eocdAt(b) + 12, dv(b).getUint32(eocdAt(b) + 12, true) + 1)],
    ['EOCD cd offset +1', (b) => setU32(b, eocdAt(b) + 16, dv(b).getUint32(eocdAt(b) + 16, true) + 1)],
    ['EOCD cd offset max', (b) => setU32(b, eocdAt(b) + 16, 0xfffffffe)],
    ['EOCD signature broken', (b) => setU32(b, eocdAt(b), 0)],
    ['first local header signature broken', (b) => setU32(b, 0, 0)],
    ['first local name length +1', (b) => setU16(b, 26, dv(b).getUint16(26, true) + 1)],
    ['first local extra length +100', (b) => setU16(b, 28, dv(b).getUint16(28, true) + 100)],
    ['compression method 12', (b) => cdEdit(b, 10, 12, 2)],
    ['central compressed size -1', (b) => cdEdit(b, 20, -1, 4)],
    ['central size +1', (b) => cdEdit(b, 24, 1, 4, true)],
    ['central crc flipped', (b) => cdEdit(b, 16, 1, 4, true)],
    ['central local-header offset +1', (b) => cdEdit(b, 42, 1, 4, true)],
    ['central name length 0xffff', (b) => cdEdit(b, 28, 0xffff, 2)],
    ['central extra length +3', (b) => cdEdit(b, 30, 3, 2, true)],
  ];
}

/**
 * Edits a field of every central-directory entry: set it to `v` (or add `v` when `add`; -1 on a
 * 32-bit field with add=false means 0xffffffff, the zip64 marker).
 */
function cdEdit(b: Uint8Array, field: number, v: number, width: 2 | 4, add = false): Uint8Array {
  const c = copy(b);
  const e = eocdAt(c);
  const count = dv(c).getUint16(e + 10, true);
  let p = dv(c).getUint32(e + 16, true);
  for (let k = 0; k < count; k++) {
    const nameLen = dv(c).getUint16(p + 28, true);
    const extraLen = dv(c).getUint16(p + 30, true);
    const commentLen = dv(c).getUint16(p + 32, true);
    if (width === 2) dv(c).setUint16(p + field, add ? dv(c).getUint16(p + field, true) + v : v, true);
    else dv(c).setUint32(p + field, (add ? dv(c).getUint32(p + field, true) + v : v) >>> 0, true);
    p += 46 + nameLen + extraLen + commentLen;
  }
  return c;
}

function npzTarget(file: string, stored: boolean): Target {
  const bytes = fixture(file);
  // The array the reader picks by default ('acts', the first 2-D float one).
  let data = { start: -1, size: 0 };
  if (stored) {
    const m = storedMember(bytes, 'acts.npy');
    data = { start: m.start + npyDataOffset(bytes, m.start), size: m.size - npyDataOffset(bytes, m.start) };
  }
  return {
    name: file,
    bytes,
    headerEnd: Math.min(bytes.length, 400),
    parse: (b) => readActivations(b, file, {}),
    // Deflated members are checked by CRC-32, so no byte of them may change the values unseen.
    locate: (p) =>
      stored && p >= data.start && p < data.start + data.size
        ? { array: 0, elem: Math.floor((p - data.start) / 4) }
        : null,
    edits: zipEdits(),
  };
}

function safetensorsTarget(): Target {
  const file = 'acts.safetensors';
  const bytes = fixture(file);
  const n = Number(dv(bytes).getBigUint64(0, true));
  const dataStart = 8 + n;
  // The default tensor: acts_f32 [48, 16] F32 at data offsets [64, 3136].
  const a = dataStart + 64;
  const z = dataStart + 3136;
  return {
    name: file,
    bytes,
    headerEnd: dataStart,
    parse: (b) => readActivations(b, file, {}),
    locate: (p) => (p >= a && p < z ? { array: 0, elem: Math.floor((p - a) / 4) } : null),
    edits: [
      ['header length +1', (b) => setU64(b, 0, BigInt(n + 1))],
      ['header length -1', (b) => setU64(b, 0, BigInt(n - 1))],
      ['header length -2', (b) => setU64(b, 0, BigInt(n - 2))],
      ['header length +8', (b) => setU64(b, 0, BigInt(n + 8))],
      ['header length 0', (b) => setU64(b, 0, 0n)],
      ['header length 2^63', (b) => setU64(b, 0, 1n << 63n)],
      ['header length 2^40', (b) => setU64(b, 0, 1n << 40n)],
      ['offsets shifted by 4', (b) => replaceText(b, '[64, 3136]', '[68, 3140]')],
      ['offsets reversed', (b) => replaceText(b, '[64, 3136]', '[3136, 64]')],
      ['offset negative', (b) => replaceText(b, '[64, 3136]', '[-64, 3008]')],
      ['offset fractional', (b) => replaceText(b, '[64, 3136]', '[64.5, 3136]')],
      ['offsets overlap the previous tensor', (b) => replaceText(b, '[64, 3136]', '[0, 3072]')],
      // (A shape of the same size, [16, 48], is a valid file of another matrix: no reader can tell.)
      ['shape [48, 15]', (b) => replaceText(b, '[48, 16]', '[48, 15]')],
      ['shape 1e400', (b) => replaceText(b, '[48, 16]', `[48, 1${'0'.repeat(400)}]`)],
      ['shape with a string', (b) => replaceText(b, '[48, 16]', '["48", 16]')],
      ['dtype F16', (b) => replaceText(b, '"F32", "shape": [48', '"F16", "shape": [48')],
      ['dtype unknown', (b) => replaceText(b, '"F32", "shape": [48', '"X32", "shape": [48')],
      ['header an array', (b) => replaceText(b, '{', '[')],
      ['__metadata__ not an object', (b) => replaceText(b, '{"layer": "6", "model": "fixture"}', '7')],
    ],
  };
}

function rawTarget(file: string, itemsize: number): Target {
  const bytes = fixture(file);
  const rowBytes = 16 * itemsize;
  return {
    name: file,
    bytes,
    headerEnd: 0,
    parse: (b) => readActivations(b, file, { rawWidth: 16 }),
    locate: (p) => ({ array: 0, elem: Math.floor(p / itemsize) }),
    cutIsPrefix: (len) => len > 0 && len % rowBytes === 0,
    // (Appending a whole row makes a valid file of one more row: raw data has no length field.)
    edits: [['one byte appended', (b) => Uint8Array.of(...b, 0)]],
  };
}

function tokenizerTarget(): Target {
  const file = 'tok512.bin';
  const bytes = new Uint8Array(readFileSync(join(MODELS, file)));
  // Stored data: each token's float32 score and piece bytes (no checksum covers them).
  const where = new Map<number, Where>();
  let off = 4;
  let pieceAt = 0;
  for (let id = 0; off < bytes.length; id++) {
    const len = dv(bytes).getInt32(off + 4, true);
    for (let i = 0; i < 4; i++) where.set(off + i, { array: 0, elem: id });
    for (let i = 0; i < len; i++) where.set(off + 8 + i, { array: 1, elem: pieceAt + i });
    pieceAt += len;
    off += 8 + len;
  }
  const firstLen = dv(bytes).getInt32(8, true);
  return {
    name: file,
    bytes,
    headerEnd: 200,
    parse: async (b) => {
      const t = readTokenizer(b, { vocabSize: 512, name: file });
      const pieces = Uint8Array.from(t.pieceBytes.join(''), (c) => c.charCodeAt(0));
      return {
        meta: JSON.stringify({
          vocab: t.vocabSize,
          max: t.maxTokenLength,
          lens: t.pieceBytes.map((p) => p.length),
        }),
        arrays: [t.scores, pieces],
      };
    },
    locate: (p) => where.get(p) ?? null,
    edits: [
      ['max_token_length 0', (b) => setI32(b, 0, 0)],
      ['max_token_length -1', (b) => setI32(b, 0, -1)],
      ['max_token_length 1', (b) => setI32(b, 0, 1)],
      ['max_token_length +1', (b) => setI32(b, 0, dv(b).getInt32(0, true) + 1)],
      ['max_token_length 263', (b) => setI32(b, 0, dv(b).getInt32(0, true) + 256)],
      ['max_token_length 2^31-1', (b) => setI32(b, 0, 0x7fffffff)],
      ['first length +1', (b) => setI32(b, 8, firstLen + 1)],
      ['first length -1', (b) => setI32(b, 8, firstLen - 1)],
      ['first length -2^31', (b) => setI32(b, 8, -0x80000000)],
      ['first length 2^31-1', (b) => setI32(b, 8, 0x7fffffff)],
      ['one byte appended', (b) => Uint8Array.of(...b, 0)],
    ],
  };
}

function checkpointTarget(): Target {
  const file = 'stories260K.bin';
  const bytes = new Uint8Array(readFileSync(join(MODELS, file)));
  const valid = readCheckpoint(bytes, file);
  const c = valid.config;
  const order = [
    'tokenEmbedding',
    'rmsAtt',
    'wq',
    'wk',
    'wv',
    'wo',
    'rmsFfn',
    'w1',
    'w2',
    'w3',
    'rmsFinal',
  ] as const;
  // Float index in the file → weight array; freq_cis (unused) maps to nothing.
  const ranges: [number, number, number][] = []; // [first float, count, array]
  let at = 0;
  order.forEach((k, i) => {
    ranges.push([at, valid.weights[k].length, i]);
    at += valid.weights[k].length;
  });
  if (valid.hasFreqCis) at += c.seqLen * c.headSize;
  if (!c.sharedClassifier) ranges.push([at, c.vocabSize * c.dim, order.length]);
  const h = (i: number) => dv(bytes).getInt32(4 * i, true);
  const fields = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'];
  const edits: Target['edits'] = [];
  fields.forEach((f, i) => {
    for (const [what, v] of [
      ['0', 0],
      ['-1', -1],
      ['+1', h(i) + 1],
      ['x2', h(i) * 2],
      ['2^31-1', 0x7fffffff],
      ['-2^31', -0x80000000],
    ] as const)
      edits.push([`${f} ${what}`, (b) => setI32(b, 4 * i, v)]);
  });
  edits.push(['vocab_size negated', (b) => setI32(b, 20, -h(5))]);
  return {
    name: file,
    bytes,
    headerEnd: 28,
    parse: async (b) => {
      const ck = readCheckpoint(b, file);
      const arrays = order.map((k) => ck.weights[k]) as ArrayLike<number>[];
      if (!ck.config.sharedClassifier) arrays.push(ck.weights.wcls);
      return { meta: JSON.stringify({ ...ck.config, freq: ck.hasFreqCis }), arrays };
    },
    locate: (p) => {
      if (p < 28) return null;
      const f = Math.floor((p - 28) / 4);
      for (const [a, n, arr] of ranges) if (f >= a && f < a + n) return { array: arr, elem: f - a };
      return null;
    },
    edits,
  };
}

// SAE import: a small SAELens export and an openai one, as separate files and as a zip.
const D = 8;
const NL = 24;
const saeInput = {
  params: randomParams(D, NL, 7),
  config: { d: D, nLatents: NL, k: 4 },
  normalization: { kind: 'none' as const },
  tokensTrained: 1000,
  firesTotal: Uint32Array.from({ length: NL }, (_, i) => i * 3),
};

function importedParsed(s: ImportedSae): Parsed {
  const p = s.params;
  return {
    meta: JSON.stringify({
      format: s.format,
      d: s.d,
      n: s.nLatents,
      k: s.k,
      activation: s.activation,
      normalization: s.normalization,
    }),
    arrays: [p.W_enc, p.b_enc, p.W_dec, p.b_pre, s.logSparsity ?? []],
  };
}

/** Tensor data ranges of a valid safetensors file, by name. */
function tensorRanges(b: Uint8Array): Map<string, [number, number]> {
  const n = Number(dv(b).getBigUint64(0, true));
  const h = JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))) as Record<
    string,
    { data_offsets: [number, number] }
  >;
  const out = new Map<string, [number, number]>();
  for (const [k, v] of Object.entries(h))
    if (k !== '__metadata__') out.set(k, [8 + n + v.data_offsets[0], 8 + n + v.data_offsets[1]]);
  return out;
}

/** A member file of an SAE export, fuzzed while its companions stay valid. */
function importMemberTarget(
  format: 'saelens' | 'openai',
  member: string,
  arrayOf: Record<string, number>,
): Target {
  const files = exportSae(saeInput, { format });
  const bytes = files.get(member)!;
  const isSt = member.endsWith('.safetensors');
  const ranges = isSt ? tensorRanges(bytes) : new Map<string, [number, number]>();
  return {
    name: member,
    bytes,
    headerEnd: isSt ? Number(dv(bytes).getBigUint64(0, true)) + 8 : bytes.length,
    parse: async (b) => {
      const m = new Map(files);
      m.set(member, b);
      return importedParsed(importSae(m));
    },
    locate: (p) => {
      for (const [name, [a, z]] of ranges)
        if (p >= a && p < z && name in arrayOf) return { array: arrayOf[name], elem: -1 };
      return null;
    },
    edits: isSt
      ? [
          ['header length -1', (b) => setU64(b, 0, BigInt(Number(dv(b).getBigUint64(0, true)) - 1))],
          ['header length +1', (b) => setU64(b, 0, BigInt(Number(dv(b).getBigUint64(0, true)) + 1))],
          ['header length 2^63', (b) => setU64(b, 0, 1n << 63n)],
          [
            'a tensor renamed',
            (b) => replaceText(b, `"${[...ranges.keys()][0]}"`, `"${[...ranges.keys()][0]}x"`),
          ],
          ['a shape edited', (b) => replaceText(b, `[${NL}]`, `[${NL - 1}]`)],
        ]
      : [
          ['d_in wrong', (b) => replaceText(b, `"d_in": ${D}`, `"d_in": ${D + 1}`)],
          ['d_in zero', (b) => replaceText(b, `"d_in": ${D}`, '"d_in": 0')],
          ['d_in string', (b) => replaceText(b, `"d_in": ${D}`, `"d_in": "${D}"`)],
          ['k negative', (b) => replaceText(b, '"k": 4', '"k": -4')],
          ['k fractional', (b) => replaceText(b, '"k": 4', '"k": 4.5')],
          ['architecture unknown', (b) => replaceText(b, '"architecture": "topk"', '"architecture": "topq"')],
          ['not an object', () => new TextEncoder().encode('[1, 2]')],
          ['empty', () => new Uint8Array(0)],
        ],
  };
}

function importZipTarget(): Target {
  const files = exportSae(saeInput, { format: 'saelens' });
  const bytes = zipExport(files);
  const name = 'my-sae.zip';
  return {
    name,
    bytes,
    headerEnd: bytes.length,
    parse: async (b) => importedParsed(importSae(b, { name })),
    // Every member is deflated and CRC-checked: no byte may change the SAE unseen.
    locate: () => null,
    edits: zipEdits(),
  };
}

// --- the run -----------------------------------------------------------------------------------

function sameParsed(a: Parsed, b: Parsed): boolean {
  return a.meta === b.meta && diffs(a, b).length === 0;
}

/** [array, elem] of every value that differs (bitwise; NaN equals NaN). */
function diffs(a: Parsed, b: Parsed): [number, number][] {
  const out: [number, number][] = [];
  if (a.arrays.length !== b.arrays.length) return [[-1, -1]];
  for (let i = 0; i < a.arrays.length; i++) {
    const x = a.arrays[i];
    const y = b.arrays[i];
    if (x.length !== y.length) {
      out.push([i, -1]);
      continue;
    }
    for (let j = 0; j < x.length; j++) if (!Object.is(x[j], y[j])) out.push([i, j]);
  }
  return out;
}

interface Case {
  what: string;
  bytes: Uint8Array;
  /** Offsets whose byte changed (for locate); empty for cuts and edits. */
  changed: number[];
  cut?: number;
}

function cases(t: Target, rng: Rng): Case[] {
  const out: Case[] = [];
  const L = t.bytes.length;
  const flip = (ps: number[], what: string) => {
    const b = copy(t.bytes);
    for (const p of ps) b[p] ^= 1 + rng.nextInt(255); // always a different byte
    out.push({ what, bytes: b, changed: ps });
  };
  const inHeader = () => rng.nextInt(Math.max(1, Math.min(t.headerEnd, L)));
  for (let i = 0; i < 8; i++) {
    const p = inHeader();
    flip([p], `byte ${p} replaced (header)`);
  }
  for (let i = 0; i < 4; i++) {
    const p = rng.nextInt(L);
    flip([p], `byte ${p} replaced`);
  }
  for (let i = 0; i < 2; i++) {
    const ps = [inHeader(), inHeader(), rng.nextInt(L)];
    flip(ps, `bytes ${ps.join(', ')} replaced`);
  }
  const cuts = new Set([0, 1, Math.min(L - 1, t.headerEnd), Math.max(0, t.headerEnd - 1), L - 1]);
  while (cuts.size < 7) cuts.add(rng.nextInt(L));
  for (const c of cuts)
    out.push({ what: `cut to ${c} of ${L} bytes`, bytes: t.bytes.slice(0, c), changed: [], cut: c });
  for (const [what, f] of t.edits) out.push({ what, bytes: f(t.bytes), changed: [] });
  return out;
}

async function fuzz(t: Target, rng: Rng): Promise<{ counts: Record<Outcome, number>; problems: string[] }> {
  const valid = await t.parse(t.bytes);
  const counts: Record<Outcome, number> = { identical: 0, 'data-changed': 0, prefix: 0, refused: 0 };
  const problems: string[] = [];
  for (const c of cases(t, rng)) {
    const where = `${t.name}, ${c.what}`;
    const t0 = performance.now();
    let got: Parsed | undefined;
    let err: unknown;
    try {
      got = await withTimeout(t.parse(c.bytes), CASE_LIMIT_MS, where);
    } catch (e) {
      err = e;
    }
    const ms = performance.now() - t0;
    if (ms > CASE_LIMIT_MS) problems.push(`${where}: took ${ms.toFixed(0)} ms`);
    if (err !== undefined) {
      if (!(err instanceof Error)) problems.push(`${where}: threw a non-Error ${String(err)}`);
      else if (err instanceof RangeError || err instanceof TypeError)
        problems.push(`${where}: ${err.name} from inside a reader: ${err.message}`);
      else if (!err.message.includes(t.name))
        problems.push(`${where}: message does not name the file: ${err.message}`);
      else if (err.message.includes('\n')) problems.push(`${where}: message is not one line: ${err.message}`);
      else counts.refused++;
      continue;
    }
    const g = got!;
    if (sameParsed(g, valid)) {
      counts.identical++;
      continue;
    }
    if (c.cut !== undefined && t.cutIsPrefix?.(c.cut)) {
      // A raw file has no length: the first rows, exactly.
      const v = valid.arrays[0];
      const x = g.arrays[0];
      if (x.length > 0 && x.length < v.length && Array.from(x).every((y, i) => Object.is(y, v[i]))) {
        counts.prefix++;
        continue;
      }
    }
    if (g.meta === valid.meta && c.changed.length > 0) {
      // Changed header bytes may change nothing (numpy's padding); stored values may change
      // where their own bytes changed, and nowhere else.
      const allowed = c.changed.map((p) => t.locate(p)).filter((w) => w !== null);
      const ds = diffs(g, valid);
      const ok = ds.every(
        ([a, e]) =>
          e >= 0 &&
          allowed.some((w) => w.array === a && (w.elem === e || w.elem === -1)) &&
          // elem -1 (index not tracked): no more changed values than changed bytes in that array
          ds.filter(([b]) => b === a).length <= allowed.filter((w) => w.array === a).length,
      );
      if (ok) {
        counts['data-changed']++;
        continue;
      }
    }
    problems.push(`${where}: read without error but differs from the valid file (${g.meta.slice(0, 160)})`);
  }
  return { counts, problems };
}

describe('fuzz: mutated and truncated files of every format are read exactly or refused in one line', () => {
  it('every reader, a few hundred seeded cases', async () => {
    const targets: Target[] = [
      npyTarget('acts_f4.npy', 4),
      npyTarget('acts_f2.npy', 2),
      npyTarget('acts_f8.npy', 8),
      npyTarget('acts_be_f4.npy', 4),
      npyTarget('acts_v2_f4.npy', 4),
      npyTarget('acts_v3_f4.npy', 4),
      npzTarget('acts_savez.npz', true),
      npzTarget('acts_savez_compressed.npz', false),
      safetensorsTarget(),
      rawTarget('acts_f32.bin', 4),
      rawTarget('acts_f16.f16', 2),
      tokenizerTarget(),
      checkpointTarget(),
      importMemberTarget('saelens', 'sae_weights.safetensors', { W_enc: 0, b_enc: 1, W_dec: 2, b_dec: 3 }),
      importMemberTarget('saelens', 'cfg.json', {}),
      importMemberTarget('saelens', 'sparsity.safetensors', { sparsity: 4 }),
      importMemberTarget('openai', 'openai_sae.safetensors', {
        'encoder.weight': 0,
        latent_bias: 1,
        'decoder.weight': 2,
        pre_bias: 3,
      }),
      importZipTarget(),
    ];
    const total: Record<Outcome, number> = { identical: 0, 'data-changed': 0, prefix: 0, refused: 0 };
    const problems: string[] = [];
    const lines: string[] = [];
    for (const [i, t] of targets.entries()) {
      const r = await fuzz(t, Rng.derive(SEED, i));
      for (const k of Object.keys(total) as Outcome[]) total[k] += r.counts[k];
      problems.push(...r.problems);
      lines.push(`${t.name}: ${JSON.stringify(r.counts)}`);
    }
    const n = Object.values(total).reduce((a, b) => a + b, 0) + problems.length;
    console.log(`fuzz: ${n} cases ${JSON.stringify(total)}\n${lines.join('\n')}`);
    expect(problems).toEqual([]);
    // The oracle must have seen every outcome, or it is not testing what it claims.
    expect(n).toBeGreaterThanOrEqual(300);
    expect(total.refused).toBeGreaterThan(total.identical);
    expect(total['data-changed']).toBeGreaterThan(0);
    expect(total.prefix).toBeGreaterThan(0);
  }, 120_000);
});

describe('the reader bugs the fuzz found stay fixed, each with its message', () => {
  const npy = fixture('acts_f4.npy');
  const st = fixture('acts.safetensors');
  it('.npy: a header that claims fewer values than the file holds is refused (was read as another matrix)', async () => {
    // Header length one short: the data would start one byte early, misaligned.
    const hl = dv(npy).getUint16(8, true);
    await expect(readActivations(setU16(npy, 8, hl - 1), 'a.npy', {})).rejects.toThrow(
      'a.npy: 3073 bytes after the header, but shape (48, 16) of <f4 needs exactly 3072: corrupt header or extra data',
    );
    await expect(readActivations(replaceText(npy, '(48,', '(47,'), 'a.npy', {})).rejects.toThrow(
      'a.npy: 3072 bytes after the header, but shape (47, 16) of <f4 needs exactly 3008',
    );
  });
  it('safetensors: tensors must tile the data section (a short header length shifted them)', async () => {
    const n = Number(dv(st).getBigUint64(0, true));
    await expect(readActivations(setU64(st, 0, BigInt(n - 2)), 'a.safetensors', {})).rejects.toThrow(
      /^a\.safetensors: the tensors cover \d+ bytes of a \d+-byte data section/,
    );
    await expect(
      readActivations(replaceText(st, '[64, 3136]', '[68, 3140]'), 'a.safetensors', {}),
    ).rejects.toThrow("a.safetensors: tensor 'acts_f32' starts at data offset 68, expected 64");
  });
  it('SAE zip: a member that inflates to other bytes is refused by its CRC, naming the zip', () => {
    const zip = zipExport(exportSae(saeInput, { format: 'saelens' }));
    expect(() => importSae(cdEdit(zip, 16, 1, 4, true), { name: 'x.zip' })).toThrow(
      /^x\.zip: member [\w.]+: CRC mismatch, the archive is corrupt$/,
    );
    expect(() => importSae(zip.slice(0, 100), { name: 'x.zip' })).toThrow(/^x\.zip: not a readable zip file/);
  });
  it('tokenizer: a max_token_length other than the longest piece is refused', () => {
    const tok = new Uint8Array(readFileSync(join(MODELS, 'tok512.bin')));
    expect(() => readTokenizer(setI32(tok, 0, 8), { name: 't.bin', vocabSize: 512 })).toThrow(
      't.bin: max_token_length=8 but the longest token is 7 bytes',
    );
  });
});
