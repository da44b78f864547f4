/**
 * A PyTorch state dict saved with torch.save (the zip format torch writes since 1.6: `<name>/data.pkl`
 * and one `<name>/data/<key>` file of raw little-endian bytes per storage), read without torch, as
 * openai/sparse_autoencoder ships its GPT-2 SAEs (`Autoencoder.state_dict()`: tensors plus
 * `activation` and `activation_state_dict`). Only what a state dict of tensors needs is understood:
 * pickle's data opcodes (protocols 2–4), `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`
 * / `_rebuild_parameter` and the `torch.*Storage` classes; anything else (arbitrary classes, code) is
 * refused in one line, never run. The result is the same state dict as safetensors, non-tensor
 * entries in `__metadata__` (JSON where they are not strings), for import.ts and openai.ts.
 */
import { unzipSync } from 'fflate';
import { DataError } from '../data/errors.ts';
import { bf16BitsToF32, f16BitsToF32 } from '../data/half.ts';
import { type StTensorIn, writeSafetensors } from '../data/safetensors.ts';

class Global {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
}
class Mark {}
/** A storage reference: dtype (from its class) and the key of its data file. */
interface Storage {
  kind: 'storage';
  dtype: string;
  key: string;
}
/** A tensor: a strided view of a storage. */
interface Tensor {
  kind: 'tensor';
  storage: Storage;
  offset: number;
  size: number[];
  stride: number[];
}

const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
};
const ITEM: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4 };

/** Runs pickle's data opcodes over `b`; returns the unpickled object (dicts as Maps, tuples as arrays). */
function unpickle(b: Uint8Array, file: string): unknown {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  const dec = new TextDecoder();
  let i = 0;
  const bad = (why: string): never => {
    throw new DataError(file, `not a state dict of tensors: ${why}`);
  };
  const pop = () => (stack.length ? stack.pop() : bad('pickle stack underflow'));
  const popMark = (): unknown[] => {
    let m = stack.length - 1;
    while (m >= 0 && !(stack[m] instanceof Mark)) m--;
    if (m < 0) bad('pickle MARK missing');
    const items = stack.splice(m + 1);
    stack.pop();
    return items;
  };
  const str = (n: number) => {
    const s = dec.decode(b.subarray(i, i + n));
    i += n;
    return s;
  };
  const line = () => {
    const e = b.indexOf(10, i);
    if (e < 0) bad('truncated GLOBAL');
    return str(e - i + 1).slice(0, -1);
  };
  const call = (f: unknown, args: unknown): unknown => {
    if (!(f instanceof Global)) return bad('REDUCE of a non-global');
    const a = args as unknown[];
    const what = `${f.module}.${f.name}`;
    if (what === 'collections.OrderedDict') return new Map();
    if (what === 'torch._utils._rebuild_tensor_v2') {
      const [storage, offset, size, stride] = a as [Storage, number, number[], number[]];
      if ((storage as Storage)?.kind !== 'storage') bad('a tensor without a storage');
      return { kind: 'tensor', storage, offset, size: [...size], stride: [...stride] } satisfies Tensor;
    }
    if (what === 'torch._utils._rebuild_parameter') return a[0];
    return bad(`it holds ${what}, which this reader does not run`);
  };
  for (;;) {
    if (i >= b.length) bad('pickle ends before STOP');
    const op = b[i++];
    switch (op) {
      case 0x80: // PROTO
        i++;
        break;
      case 0x95: // FRAME
        i += 8;
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x28: // MARK
        stack.push(new Mark());
        break;
      case 0x71: // BINPUT
        memo.set(b[i++], stack[stack.length - 1]);
        break;
      case 0x72: // LONG_BINPUT
        memo.set(dv.getUint32(i, true), stack[stack.length - 1]);
        i += 4;
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, stack[stack.length - 1]);
        break;
      case 0x68: // BINGET
        stack.push(memo.get(b[i++]));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memo.get(dv.getUint32(i, true)));
        i += 4;
        break;
      case 0x58: // BINUNICODE
      case 0x54: // BINSTRING
        i += 4;
        stack.push(str(dv.getUint32(i - 4, true)));
        break;
      case 0x8c: // SHORT_BINUNICODE
      case 0x55: // SHORT_BINSTRING
        i++;
        stack.push(str(b[i - 1]));
        break;
      case 0x63: {
        // GLOBAL
        const module = line();
        stack.push(new Global(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop() as string;
        stack.push(new Global(pop() as string, name));
        break;
      }
      case 0x51: {
        // BINPERSID: ('storage', torch.<X>Storage, key, location, numel)
        const pid = pop() as unknown[];
        const cls = pid?.[1];
        const dtype = cls instanceof Global ? STORAGE_DTYPES[cls.name] : undefined;
        if (pid?.[0] !== 'storage' || !dtype)
          bad(`unsupported storage ${cls instanceof Global ? cls.name : String(cls)}`);
        stack.push({ kind: 'storage', dtype, key: String(pid[2]) } as Storage);
        break;
      }
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85:
      case 0x86:
      case 0x87: {
        // TUPLE1..3
        const n = op - 0x84;
        stack.push(stack.splice(stack.length - n, n));
        break;
      }
      case 0x4b: // BININT1
        stack.push(b[i++]);
        break;
      case 0x4d: // BININT2
        stack.push(dv.getUint16(i, true));
        i += 2;
        break;
      case 0x4a: // BININT
        stack.push(dv.getInt32(i, true));
        i += 4;
        break;
      case 0x8a: {
        // LONG1: n-byte two's complement
        const n = b[i++];
        let v = 0n;
        for (let j = n - 1; j >= 0; j--) v = (v << 8n) | BigInt(b[i + j]);
        if (n > 0 && b[i + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        i += n;
        stack.push(Number(v));
        break;
      }
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x47: // BINFLOAT (big-endian)
        stack.push(dv.getFloat64(i, false));
        i += 8;
        break;
      case 0x52: {
        // REDUCE
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x62: // BUILD: a state dict's _metadata (per-module versions), not needed
        pop();
        break;
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        (stack[stack.length - 1] as Map<unknown, unknown>).set(k, v);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        const d = stack[stack.length - 1] as Map<unknown, unknown>;
        if (!(d instanceof Map)) bad('SETITEMS on a non-dict');
        for (let j = 0; j + 1 < items.length; j += 2) d.set(items[j], items[j + 1]);
        break;
      }
      case 0x61: // APPEND
        (stack[stack.length - 2] as unknown[]).push(pop());
        break;
      case 0x65: {
        // APPENDS
        const items = popMark();
        (stack[stack.length - 1] as unknown[]).push(...items);
        break;
      }
      case 0x2e: // STOP
        return pop();
      default:
        bad(`unsupported pickle opcode 0x${op.toString(16)} at byte ${i - 1}`);
    }
  }
}

/** A tensor's values in C order: float tensors as Float32Array, integer ones as Int32Array (clamped). */
function tensorData(t: Tensor, raw: Uint8Array, file: string): Float32Array | Int32Array {
  const n = t.size.reduce((a, x) => a * x, 1);
  const item = ITEM[t.storage.dtype];
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const read = (e: number): number => {
    const o = e * item;
    if (o + item > raw.byteLength)
      throw new DataError(file, `storage ${t.storage.key} is too short for its tensor`);
    switch (t.storage.dtype) {
      case 'F32':
        return dv.getFloat32(o, true);
      case 'F64':
        return dv.getFloat64(o, true);
      case 'F16':
        return f16BitsToF32(dv.getUint16(o, true));
      case 'BF16':
        return bf16BitsToF32(dv.getUint16(o, true));
      case 'I32':
        return dv.getInt32(o, true);
      default:
        return Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Number(dv.getBigInt64(o, true))));
    }
  };
  const out = /^I/.test(t.storage.dtype) ? new Int32Array(n) : new Float32Array(n);
  const idx = new Array(t.size.length).fill(0);
  for (let j = 0; j < n; j++) {
    let e = t.offset;
    for (let a = 0; a < idx.length; a++) e += idx[a] * t.stride[a];
    out[j] = read(e);
    for (let a = idx.length - 1; a >= 0; a--) {
      if (++idx[a] < t.size[a]) break;
      idx[a] = 0;
    }
  }
  return out;
}

/**
 * A torch.save'd state dict (`bytes` of `file`) as safetensors: every tensor (floats as F32,
 * integers as I64), the other top-level entries in `__metadata__`.
 * @throws DataError naming the file: not a torch zip, not a dict, an object this reader does not run
 */
export function torchStateDictToSafetensors(bytes: Uint8Array, file: string): Uint8Array {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (e) {
    throw new DataError(
      file,
      `not a torch.save zip (${(e as Error).message}); legacy .pt files are not read`,
    );
  }
  const pkl = Object.keys(entries).find((k) => /^[^/]+\/data\.pkl$/.test(k));
  if (!pkl) throw new DataError(file, 'not a torch.save zip: no <name>/data.pkl inside');
  const root = pkl.slice(0, -'data.pkl'.length);
  const obj = unpickle(entries[pkl], file);
  if (!(obj instanceof Map)) throw new DataError(file, 'holds a pickled object that is not a state dict');
  const tensors: Record<string, StTensorIn> = {};
  const metadata: Record<string, string> = {};
  const plain = (v: unknown): unknown =>
    v instanceof Map ? Object.fromEntries([...v].map(([k, x]) => [String(k), plain(x)])) : v;
  for (const [k, v] of obj) {
    const name = String(k);
    const t = v as Tensor;
    if (t?.kind === 'tensor') {
      const raw = entries[`${root}data/${t.storage.key}`];
      if (!raw) throw new DataError(file, `tensor ${name}: storage ${t.storage.key} is missing from the zip`);
      const data = tensorData(t, raw, file);
      tensors[name] = { dtype: data instanceof Int32Array ? 'I64' : 'F32', shape: t.size, data };
    } else metadata[name] = typeof v === 'string' ? v : JSON.stringify(plain(v));
  }
  return writeSafetensors(tensors, metadata);
}
