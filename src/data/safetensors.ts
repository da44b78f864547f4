/**
 * safetensors: lazy activation reader, and whole-file reader/writer for small files
 * (model export/import).
 *
 * Format (huggingface/safetensors): u64 LE header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {str: str}}, then the data buffer; offsets are relative to the
 * start of the data buffer (byte 8 + N). Tensors are little-endian, C order.
 */

import { DataError, fmtBytes, fmtShape } from './errors.ts';
import { encodeBf16, encodeF16 } from './half.ts';
import {
  type ActivationSource,
  byteSwapInPlace,
  contiguousSource,
  decodeFloats,
  type FloatDtype,
  HOST_LITTLE_ENDIAN,
} from './source.ts';

/** Largest header the reference implementation accepts (100 MB); guards against garbage lengths. */
const MAX_HEADER = 100_000_000;

const ST_ITEMSIZE: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

const ST_FLOAT: Record<string, FloatDtype> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
};

interface SafetensorsEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
  /** Absolute offset of the data buffer (8 + header length). */
  dataStart: number;
}

/**
 * Parses and validates a safetensors header given the 8 length bytes' value, the
 * header bytes and the total file size: dtype known, offsets inside the file and
 * consistent with shape * itemsize. Entries are sorted by data offset.
 */
function parseHeader(json: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const dataStart = 8 + json.length;
  let obj: unknown;
  try {
    obj = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (e) {
    throw new DataError(
      file,
      `safetensors header is not valid JSON (${(e as Error).message.split('\n')[0]})`,
    );
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    throw new DataError(file, 'safetensors header is not a JSON object');
  }
  const dataSize = fileSize - dataStart;
  const entries: SafetensorsEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(obj as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (v && typeof v === 'object') metadata = v as Record<string, string>;
      continue;
    }
    const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (
      !t ||
      typeof t.dtype !== 'string' ||
      !Array.isArray(t.shape) ||
      !Array.isArray(t.data_offsets) ||
      t.data_offsets.length !== 2
    ) {
      throw new DataError(file, `safetensors entry '${name}' lacks dtype/shape/data_offsets`);
    }
    const itemsize = ST_ITEMSIZE[t.dtype];
    if (itemsize === undefined) throw new DataError(file, `tensor '${name}' has unknown dtype ${t.dtype}`);
    const shape = t.shape as number[];
    const [b, e] = t.data_offsets as number[];
    if (
      !shape.every((x) => Number.isSafeInteger(x) && x >= 0) ||
      !Number.isSafeInteger(b) ||
      !Number.isSafeInteger(e) ||
      b < 0 ||
      e < b
    ) {
      throw new DataError(
        file,
        `tensor '${name}' has invalid shape ${JSON.stringify(shape)} or offsets [${b}, ${e}]`,
      );
    }
    if (e > dataSize) {
      throw new DataError(
        file,
        `tensor '${name}' data_offsets [${b}, ${e}] point outside the file (data section is ${fmtBytes(dataSize)}; truncated?)`,
      );
    }
    const n = shape.reduce((a, x) => a * x, 1);
    if (n * itemsize !== e - b) {
      throw new DataError(
        file,
        `tensor '${name}' shape ${fmtShape(shape)} ${t.dtype} needs ${n * itemsize} bytes but data_offsets span ${e - b}`,
      );
    }
    entries.push({ name, dtype: t.dtype, shape, begin: dataStart + b, end: dataStart + e });
  }
  entries.sort((x, y) => x.begin - y.begin);
  // As the reference reader (safetensors' Metadata::validate): the tensors tile the data section
  // exactly, in offset order, with no gap, overlap or unused tail. A wrong header length or an
  // edited offset would otherwise shift a tensor onto bytes that are not its own.
  let at = dataStart;
  for (const e of entries) {
    if (e.begin !== at) {
      throw new DataError(
        file,
        `tensor '${e.name}' starts at data offset ${e.begin - dataStart}, expected ${at - dataStart} (tensors must follow one another with no gap or overlap; corrupt header?)`,
      );
    }
    at = e.end;
  }
  if (at !== fileSize) {
    throw new DataError(
      file,
      `the tensors cover ${at - dataStart} bytes of a ${fileSize - dataStart}-byte data section (wrong header length or extra data; corrupt file?)`,
    );
  }
  return { entries, metadata, dataStart };
}

/** Reads only the header of a safetensors file (2 small Blob reads). */
export async function readSafetensorsHeader(blob: Blob, file: string): Promise<SafetensorsHeader> {
  if (blob.size === 0) throw new DataError(file, 'file is empty (0 bytes)');
  if (blob.size < 8) throw new DataError(file, `not a safetensors file: only ${blob.size} bytes`);
  const lenBytes = new DataView(await blob.slice(0, 8).arrayBuffer());
  const n = Number(lenBytes.getBigUint64(0, true));
  if (n > MAX_HEADER || n > blob.size - 8 || n < 2) {
    throw new DataError(
      file,
      `not a safetensors file: header length ${n} is impossible for a file of ${fmtBytes(blob.size)}`,
    );
  }
  const json = new Uint8Array(await blob.slice(8, 8 + n).arrayBuffer());
  return parseHeader(json, blob.size, file);
}

/**
 * Opens one tensor of a safetensors file lazily.
 * @param tensor name; default: the first (lowest data offset) 2-D or 3-D float tensor.
 */
export async function openSafetensors(blob: Blob, file: string, tensor?: string): Promise<ActivationSource> {
  const h = await readSafetensorsHeader(blob, file);
  let e: SafetensorsEntry | undefined;
  if (tensor !== undefined) {
    e = h.entries.find((x) => x.name === tensor);
    if (!e)
      throw new DataError(
        file,
        `no tensor named '${tensor}'; tensors: ${h.entries.map((x) => x.name).join(', ')}`,
      );
  } else {
    e = h.entries.find((x) => x.dtype in ST_FLOAT && (x.shape.length === 2 || x.shape.length === 3));
    if (!e) {
      const desc = h.entries.map((x) => `${x.name} ${x.dtype} ${JSON.stringify(x.shape)}`).join(', ');
      throw new DataError(file, `no 2-D or 3-D float tensor (${desc || 'file has no tensors'})`);
    }
  }
  const member = `${file}[${e.name}]`;
  const dtype = ST_FLOAT[e.dtype];
  if (!dtype)
    throw new DataError(member, `dtype ${e.dtype} is not float activations (F32, F16, BF16 or F64)`);
  const s = e.shape;
  let rows: number;
  let d: number;
  if (s.length === 2) [rows, d] = s;
  else if (s.length === 3) [rows, d] = [s[0] * s[1], s[2]];
  else {
    throw new DataError(
      member,
      `${s.length}-D tensor of shape ${fmtShape(s)}: activations must be 2-D [rows, d] or 3-D [batch, seq, d]`,
    );
  }
  if (rows === 0 || d === 0) throw new DataError(member, `tensor of shape ${fmtShape(s)} has no data`);
  return contiguousSource({
    blob,
    name: member,
    dataOffset: e.begin,
    rows,
    d,
    dtype,
    littleEndian: true,
    shape: s,
  });
}

// ---------------------------------------------------------------------------
// Whole-file writer / reader for small files (trained models).

type StDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I32' | 'I64';

/**
 * A tensor to write. `data` is row-major with prod(shape) elements:
 *  F32/F16/BF16: Float32Array (F16/BF16 are rounded to nearest even) or, for F16/BF16,
 *                a Uint16Array of ready bit patterns;
 *  F64: Float64Array or Float32Array; I32: Int32Array; I64: BigInt64Array or Int32Array (widened).
 */
export interface StTensorIn {
  dtype: StDtype;
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint16Array;
}

/** Element bytes of a tensor in little-endian file order. */
function tensorBytes(name: string, t: StTensorIn): Uint8Array {
  const n = t.shape.reduce((a, x) => a * x, 1);
  if (t.data.length !== n) {
    throw new RangeError(
      `writeSafetensors: '${name}' shape ${fmtShape(t.shape)} has ${n} elements, data has ${t.data.length}`,
    );
  }
  const d = t.data;
  let arr: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint16Array;
  switch (t.dtype) {
    case 'F32':
      arr = d instanceof Float32Array ? d : Float32Array.from(d as Float64Array);
      break;
    case 'F64':
      arr = d instanceof Float64Array ? d : Float64Array.from(d as Float32Array);
      break;
    case 'F16':
      arr = d instanceof Uint16Array ? d : encodeF16(d as Float32Array);
      break;
    case 'BF16':
      arr = d instanceof Uint16Array ? d : encodeBf16(d as Float32Array);
      break;
    case 'I32':
      arr = d instanceof Int32Array ? d : Int32Array.from(d as Float32Array);
      break;
    case 'I64':
      arr = d instanceof BigInt64Array ? d : BigInt64Array.from(d as Int32Array, (x) => BigInt(x));
      break;
  }
  const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength).slice();
  if (!HOST_LITTLE_ENDIAN) byteSwapInPlace(bytes, ST_ITEMSIZE[t.dtype]);
  return bytes;
}

/**
 * Serializes tensors to safetensors bytes. Tensors are laid out largest item size
 * first, then by name (as the reference writer does), so every tensor is aligned to
 * its item size; the header is space-padded to a multiple of 8 bytes.
 */
export function writeSafetensors(
  tensors: Record<string, StTensorIn>,
  metadata?: Record<string, string>,
): Uint8Array {
  const names = Object.keys(tensors).sort((a, b) => {
    const s = ST_ITEMSIZE[tensors[b].dtype] - ST_ITEMSIZE[tensors[a].dtype];
    return s !== 0 ? s : a < b ? -1 : a > b ? 1 : 0;
  });
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let off = 0;
  for (const name of names) {
    if (name === '__metadata__')
      throw new RangeError('writeSafetensors: tensor name __metadata__ is reserved');
    const bytes = tensorBytes(name, tensors[name]);
    header[name] = {
      dtype: tensors[name].dtype,
      shape: tensors[name].shape,
      data_offsets: [off, off + bytes.length],
    };
    blobs.push(bytes);
    off += bytes.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let p = 8 + json.length;
  for (const b of blobs) {
    out.set(b, p);
    p += b.length;
  }
  return out;
}

/**
 * A tensor read by readSafetensors. F32/F16/BF16 come back as Float32Array (halves
 * converted), F64 as Float64Array, I64/U64 as BigInt64Array/BigUint64Array, other
 * integers and BOOL as their typed array, F8 types as raw Uint8Array bytes.
 */
export interface StTensorOut {
  dtype: string;
  shape: number[];
  data:
    | Float32Array
    | Float64Array
    | Int32Array
    | Int16Array
    | Int8Array
    | Uint32Array
    | Uint16Array
    | Uint8Array
    | BigInt64Array
    | BigUint64Array;
}

/**
 * Parses a whole safetensors file held in memory.
 * @param file name used in error messages
 */
export function readSafetensors(
  bytes: Uint8Array,
  file = 'safetensors',
): { tensors: Record<string, StTensorOut>; metadata: Record<string, string> } {
  if (bytes.length === 0) throw new DataError(file, 'file is empty (0 bytes)');
  if (bytes.length < 8) throw new DataError(file, `not a safetensors file: only ${bytes.length} bytes`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > MAX_HEADER || n > bytes.length - 8 || n < 2) {
    throw new DataError(
      file,
      `not a safetensors file: header length ${n} is impossible for a file of ${fmtBytes(bytes.length)}`,
    );
  }
  const h = parseHeader(bytes.subarray(8, 8 + n), bytes.length, file);
  const tensors: Record<string, StTensorOut> = {};
  for (const e of h.entries) {
    // Copy into a fresh aligned buffer (offsets in the file need not be aligned).
    const raw = bytes.slice(e.begin, e.end);
    const size = ST_ITEMSIZE[e.dtype];
    const count = raw.length / size;
    if (!HOST_LITTLE_ENDIAN && size > 1) byteSwapInPlace(raw, size);
    let data: StTensorOut['data'];
    const fl = ST_FLOAT[e.dtype];
    if (fl === 'float64') data = new Float64Array(raw.buffer);
    else if (fl) {
      data = new Float32Array(count);
      decodeFloats(raw.buffer, 0, count, fl, HOST_LITTLE_ENDIAN, data);
    } else {
      const ctor = {
        I64: BigInt64Array,
        U64: BigUint64Array,
        I32: Int32Array,
        U32: Uint32Array,
        I16: Int16Array,
        U16: Uint16Array,
        I8: Int8Array,
        U8: Uint8Array,
        BOOL: Uint8Array,
        F8_E4M3: Uint8Array,
        F8_E5M2: Uint8Array,
      }[e.dtype]!;
      data = new ctor(raw.buffer);
    }
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data };
  }
  return { tensors, metadata: h.metadata };
}
