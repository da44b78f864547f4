import { describe, expect, it } from 'vitest';
import { DataError } from '../../../src/data/errors.ts';
import { listNpz } from '../../../src/data/npz.ts';
import { openActivationFile } from '../../../src/data/open.ts';
import { readSafetensorsHeader } from '../../../src/data/safetensors.ts';
import { openShards } from '../../../src/data/source.ts';
import { expected, fixtureBlob, flat } from './fixtures.ts';

const { n, d } = expected;
const X32 = flat(expected.x_f32);
const X16 = flat(expected.x_f16);
const XBF = flat(expected.x_bf16);
/** X rounded to float32 from float64 (what reading an f8 file gives). */
const X64as32 = flat(expected.x_f64);

async function open(name: string, opts?: Parameters<typeof openActivationFile>[2]) {
  return openActivationFile(await fixtureBlob(name), name, opts);
}

/** Exact comparison that treats NaN == NaN and keeps -0 vs 0 distinct. */
function expectSame(a: Float32Array, b: Float32Array) {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) throw new Error(`index ${i}: got ${a[i]}, want ${b[i]}`);
  }
}

describe('npy reader', () => {
  it.each([
    ['acts_f4.npy', 'float32', X32],
    ['acts_be_f4.npy', 'float32', X32],
    ['acts_f8.npy', 'float64', X64as32],
    ['acts_be_f8.npy', 'float64', X64as32],
    ['acts_f2.npy', 'float16', X16],
    ['acts_be_f2.npy', 'float16', X16],
    ['acts_v2_f4.npy', 'float32', X32],
    ['acts_v3_f4.npy', 'float32', X32],
    ['acts_fortran_f4.npy', 'float32', X32],
  ])('%s reads exact values as %s', async (name, dtype, want) => {
    const s = await open(name);
    expect([s.rows, s.d, s.dtype]).toEqual([n, d, dtype]);
    expect(s.byteSize).toBe(n * d * { float32: 4, float64: 8, float16: 2 }[dtype]!);
    expectSame(await s.readRows(0, n), want);
  });

  it('f16 special values survive: overflow -> inf, subnormal, -0', async () => {
    const x = await (await open('acts_f2.npy')).readRows(0, 1);
    expect(x[0]).toBe(Infinity);
    expect(x[1]).toBe(17 * 2 ** -24); // 1e-6 is the float16 subnormal 17 * 2^-24
    expect(Object.is(x[2], -0)).toBe(true);
  });

  it('reads arbitrary row windows (C and Fortran order agree)', async () => {
    const c = await open('acts_f4.npy');
    const f = await open('acts_fortran_f4.npy');
    for (const [s, k] of [
      [0, 1],
      [7, 13],
      [47, 1],
      [20, 0],
    ]) {
      const want = X32.subarray(s * d, (s + k) * d);
      expectSame(await c.readRows(s, k), want);
      expectSame(await f.readRows(s, k), want);
    }
    await expect(c.readRows(40, 9)).rejects.toThrow(RangeError);
  });

  it('3-D [batch, seq, d] flattens to batch*seq rows in C order', async () => {
    const s = await open('acts_3d_f4.npy');
    expect(s.shape).toEqual([expected.b, expected.s, d]);
    expect([s.rows, s.d]).toEqual([n, d]);
    expectSame(await s.readRows(13, 5), X32.subarray(13 * d, 18 * d));
  });
});

describe('npz reader', () => {
  it('np.savez (stored): default picks the first float 2-D array, skipping int "tokens"', async () => {
    const s = await open('acts_savez.npz');
    expect(s.name).toBe('acts_savez.npz[acts]');
    expectSame(await s.readRows(0, n), X32);
  });

  it('np.savez_compressed (deflated): values and named choice', async () => {
    const a = await open('acts_savez_compressed.npz');
    expectSame(await a.readRows(3, 10), X32.subarray(3 * d, 13 * d));
    const b = await open('acts_savez_compressed.npz', { tensor: 'acts16' });
    expect(b.dtype).toBe('float16');
    expectSame(await b.readRows(0, n), X16);
    const c = await open('acts_savez_compressed.npz', { tensor: 'acts16.npy' });
    expect(c.rows).toBe(n);
  });

  it('lists members with dtype and shape', async () => {
    const list = await listNpz(await fixtureBlob('acts_savez.npz'), 'acts_savez.npz');
    expect(list.map((x) => [x.name, x.descr, x.shape, x.compressed])).toEqual([
      ['tokens', '<i4', [n], false],
      ['acts', '<f4', [n, d], false],
      ['bias', '<f4', [d], false],
    ]);
  });

  it('naming a missing array lists the available ones; naming a 1-D one is refused', async () => {
    await expect(open('acts_savez.npz', { tensor: 'nope' })).rejects.toThrow(
      /no array named 'nope'; arrays: tokens, acts, bias/,
    );
    await expect(open('acts_savez.npz', { tensor: 'bias' })).rejects.toThrow(
      /acts_savez.npz\[bias\]: 1-D array/,
    );
    await expect(open('acts_savez.npz', { tensor: 'tokens' })).rejects.toThrow(
      /integer, not float activations/,
    );
  });
});

describe('safetensors reader', () => {
  it('default is the first 2-D/3-D float tensor in the file', async () => {
    const s = await open('acts.safetensors');
    expect(s.name).toBe('acts.safetensors[acts_f32]');
    expectSame(await s.readRows(0, n), X32);
  });

  it.each([
    ['acts_f32', 'float32', X32],
    ['acts_f16', 'float16', X16],
    ['acts_bf16', 'bfloat16', XBF],
    ['acts_f64', 'float64', X64as32],
  ])('tensor %s (%s) has exact values', async (tensor, dtype, want) => {
    const s = await open('acts.safetensors', { tensor });
    expect(s.dtype).toBe(dtype);
    expect(s.rows).toBe(n);
    expectSame(await s.readRows(0, n), want);
    expectSame(await s.readRows(30, 11), want.subarray(30 * d, 41 * d));
  });

  it('header exposes metadata and all entries', async () => {
    const h = await readSafetensorsHeader(await fixtureBlob('acts.safetensors'), 'acts.safetensors');
    expect(h.metadata).toEqual({ layer: '6', model: 'fixture' });
    expect(h.entries.map((e) => e.name)).toEqual([
      'bias',
      'acts_f32',
      'acts_f16',
      'acts_bf16',
      'acts_f64',
      'ids',
    ]);
  });

  it('refuses integer / 1-D tensors by name', async () => {
    await expect(open('acts.safetensors', { tensor: 'ids' })).rejects.toThrow(
      /\[ids\]: dtype I64 is not float/,
    );
    await expect(open('acts.safetensors', { tensor: 'bias' })).rejects.toThrow(/1-D tensor/);
  });
});

describe('raw reader', () => {
  it('f32 with width', async () => {
    const s = await open('acts_f32.bin', { rawWidth: d });
    expect([s.rows, s.d, s.dtype]).toEqual([n, d, 'float32']);
    expectSame(await s.readRows(0, n), X32);
  });
  it('f16 by extension and by option', async () => {
    const s = await open('acts_f16.f16', { rawWidth: d });
    expect(s.dtype).toBe('float16');
    expectSame(await s.readRows(0, n), X16);
    const t = await open('acts_f16.f16', { rawWidth: d, rawDtype: 'f16' });
    expectSame(await t.readRows(5, 5), X16.subarray(5 * d, 10 * d));
  });
  it('a different width gives a different matrix of the same bytes', async () => {
    const s = await open('acts_f32.bin', { rawWidth: 8 });
    expect([s.rows, s.d]).toEqual([2 * n, 8]);
    expectSame(await s.readRows(0, 2 * n), X32);
  });
});

describe('shards', () => {
  it('concatenate rows across files, including reads that span the boundary', async () => {
    const s = openShards([await open('shard_a.npy'), await open('shard_b.npy')]);
    expect([s.rows, s.d, s.dtype]).toEqual([n, d, 'float32']);
    expectSame(await s.readRows(0, n), X32);
    expectSame(await s.readRows(15, 10), X32.subarray(15 * d, 25 * d));
    expect(s.locate!(25)).toEqual({ file: 'shard_b.npy', row: 5 });
    expect(s.locate!(19)).toEqual({ file: 'shard_a.npy', row: 19 });
  });

  it('mixed formats of the same width combine; mixed dtypes report "mixed"', async () => {
    const s = openShards([await open('acts_f2.npy'), await open('acts.safetensors')]);
    expect(s.rows).toBe(2 * n);
    expect(s.dtype).toBe('mixed');
    expectSame(
      await s.readRows(n - 1, 2),
      Float32Array.from([...X16.subarray((n - 1) * d), ...X32.subarray(0, d)]),
    );
  });

  it('different widths are an error naming the odd shard', async () => {
    const a = await open('shard_a.npy');
    const w = await open('shard_width8.npy');
    expect(() => openShards([a, w])).toThrow(DataError);
    expect(() => openShards([a, w])).toThrow(/^shard_width8.npy: width d=8 differs from d=16 of shard_a.npy/);
  });
});
