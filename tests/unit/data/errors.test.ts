/**
 * Bad input: every case must raise a DataError whose message is one line,
 * "<file>: <problem>", and nothing may allocate according to a lying header.
 */
import { describe, expect, it } from 'vitest';
import { DataError } from '../../../src/data/errors.ts';
import { readZipDirectory } from '../../../src/data/npz.ts';
import { openActivationFile } from '../../../src/data/open.ts';
import { readSafetensors } from '../../../src/data/safetensors.ts';
import { openShards } from '../../../src/data/source.ts';
import { assertFinite, computeStats } from '../../../src/data/stats.ts';
import { Batcher } from '../../../src/data/stream.ts';
import { fixtureBlob } from './fixtures.ts';

async function openErr(name: string, opts?: Parameters<typeof openActivationFile>[2]): Promise<DataError> {
  try {
    await openActivationFile(await fixtureBlob(name), name, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    const err = e as DataError;
    expect(err.message).not.toContain('\n');
    expect(err.message).toBe(`${err.file}: ${err.problem}`);
    return err;
  }
  throw new Error(`${name} opened without error`);
}

describe('bad files give one-line DataErrors naming the file', () => {
  it.each([
    ['bad_empty.npy', undefined, 'bad_empty.npy', /file is empty \(0 bytes\)/],
    ['bad_magic.npy', undefined, 'bad_magic.npy', /not a \.npy file: wrong magic bytes 4e 4f 54 4e 55 4d/],
    [
      'bad_truncated.npy',
      undefined,
      'bad_truncated.npy',
      /shape \(48, 16\) needs 3.00 KB of data but the file holds 2.90 KB .*truncated/,
    ],
    [
      'bad_header_cut.npy',
      undefined,
      'bad_header_cut.npy',
      /truncated \.npy header: header claims 128 bytes, file has 40/,
    ],
    [
      'bad_huge_shape.npy',
      undefined,
      'bad_huge_shape.npy',
      /shape \(1000000000000, 1000000\) is impossibly large/,
    ],
    [
      'bad_big_shape.npy',
      undefined,
      'bad_big_shape.npy',
      /shape \(1000000, 4096\) needs 15.3 GB of data but the file holds 64 bytes/,
    ],
    ['bad_object.npy', undefined, 'bad_object.npy', /dtype object \(\|O\) holds pickled Python objects/],
    ['bad_int.npy', undefined, 'bad_int.npy', /dtype <i4 is integer, not float activations/],
    ['bad_1d.npy', undefined, 'bad_1d.npy', /1-D array of shape \(16,\): activations must be 2-D/],
    ['bad_4d.npy', undefined, 'bad_4d.npy', /4-D array of shape \(2, 2, 12, 16\)/],
    [
      'bad_not_json.safetensors',
      undefined,
      'bad_not_json.safetensors',
      /safetensors header is not valid JSON/,
    ],
    [
      'bad_offsets.safetensors',
      undefined,
      'bad_offsets.safetensors',
      /tensor 'acts' data_offsets \[0, 3072\] point outside the file/,
    ],
    [
      'bad_header_len.safetensors',
      undefined,
      'bad_header_len.safetensors',
      /header length 1000000000000000 is impossible/,
    ],
    ['bad_truncated.npz', undefined, 'bad_truncated.npz', /end-of-central-directory record not found/],
    ['bad_raw_size.bin', { rawWidth: 16 }, 'bad_raw_size.bin', /not a multiple of the row size 64 bytes/],
    ['acts_f32.bin', undefined, 'acts_f32.bin', /raw file needs the row width d/],
    ['tokens_i4.npy', undefined, 'tokens_i4.npy', /integer, not float/],
  ] as const)('%s', async (name, opts, file, re) => {
    const err = await openErr(name, opts);
    expect(err.file).toBe(file);
    expect(err.problem).toMatch(re);
  });

  it('an unknown format says what is expected', async () => {
    const blob = new Blob(['hello world, not activations']);
    await expect(openActivationFile(blob, 'notes.txt')).rejects.toThrow(
      /^notes.txt: unrecognised format .* expected \.npy, \.npz/,
    );
  });

  it('wrong magic in a .npz / .safetensors name', async () => {
    const blob = new Blob([new Uint8Array(64).fill(7)]);
    await expect(openActivationFile(blob, 'x.npz')).rejects.toThrow(/^x.npz: not a \.npz \(zip\) file/);
    await expect(openActivationFile(blob, 'x.safetensors')).rejects.toThrow(
      /^x.safetensors: not a safetensors file/,
    );
  });

  it('corrupt deflated .npz member is caught (deflate error or CRC mismatch)', async () => {
    const bytes = new Uint8Array(await (await fixtureBlob('acts_savez_compressed.npz')).arrayBuffer());
    const dir = await readZipDirectory(new Blob([bytes]), 'z.npz');
    const acts = dir.find((e) => e.name === 'acts.npy')!;
    // flip bytes in the middle of the compressed data (past the local header)
    const mid = acts.localHeaderOffset + 100 + Math.floor(acts.compressedSize / 2);
    for (let i = 0; i < 8; i++) bytes[mid + i] ^= 0x5a;
    const err = await openActivationFile(new Blob([bytes]), 'z.npz', { tensor: 'acts' }).catch((e) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err.message).toMatch(/^z.npz: member acts.npy: (corrupt deflate data|CRC mismatch|inflated to)/);
  });

  it('Fortran-order 3-D arrays are refused with advice', async () => {
    let dict = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3, 4), }";
    dict = dict.padEnd(128 - 11, ' ') + '\n';
    const head = new Uint8Array([
      0x93,
      0x4e,
      0x55,
      0x4d,
      0x50,
      0x59,
      1,
      0,
      dict.length,
      0,
      ...Array.from(dict, (c) => c.charCodeAt(0)),
    ]);
    const blob = new Blob([head, new Uint8Array(2 * 3 * 4 * 4)]);
    await expect(openActivationFile(blob, 'f3.npy')).rejects.toThrow(
      /^f3.npy: Fortran-order 3-D array is not supported; save np.ascontiguousarray/,
    );
  });

  it('huge claimed shape is refused without allocating (fast, tiny memory)', async () => {
    const before = process.memoryUsage().arrayBuffers;
    const t = performance.now();
    await openErr('bad_huge_shape.npy');
    expect(performance.now() - t).toBeLessThan(1000);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20);
  });

  it('shards of different width', async () => {
    const a = await openActivationFile(await fixtureBlob('shard_a.npy'), 'shard_a.npy');
    const b = await openActivationFile(await fixtureBlob('shard_width8.npy'), 'shard_width8.npy');
    expect(() => openShards([a, b])).toThrow(DataError);
  });

  it('readSafetensors on bytes: not JSON, bad offsets, empty', async () => {
    const bytes = async (name: string) => new Uint8Array(await (await fixtureBlob(name)).arrayBuffer());
    const notJson = await bytes('bad_not_json.safetensors');
    const badOffsets = await bytes('bad_offsets.safetensors');
    expect(() => readSafetensors(notJson, 'm.safetensors')).toThrow(
      /^m.safetensors: safetensors header is not valid JSON/,
    );
    expect(() => readSafetensors(badOffsets, 'm.safetensors')).toThrow(/point outside the file/);
    expect(() => readSafetensors(new Uint8Array(0), 'm.safetensors')).toThrow(/file is empty/);
  });
});

describe('NaN / Inf rows', () => {
  it("computeStats counts them with the first indices; assertFinite ('stop') names file and row", async () => {
    const s = await openActivationFile(await fixtureBlob('acts_nan.npy'), 'acts_nan.npy');
    const st = await computeStats(s, undefined, { chunkRows: 7 });
    expect(st.nonFiniteRows).toBe(3);
    expect(st.firstNonFinite).toEqual([5, 17, 40]);
    expect(st.count).toBe(45);
    expect(() => assertFinite(s, st)).toThrow(
      /^acts_nan.npy: 3 row\(s\) contain NaN or Inf, first at row 5 \(rows 5, 17, 40 of the dataset\)$/,
    );
  });

  it("the batcher with policy 'stop' throws naming file and row", async () => {
    const s = await openActivationFile(await fixtureBlob('acts_nan.npy'), 'acts_nan.npy');
    const b = new Batcher(s, { chunkRows: 48, shuffleRows: 48, nonFinite: 'stop' });
    await expect(b.nextBatch(4)).rejects.toThrow(/^acts_nan.npy: row 5 contains NaN or Inf/);
  });

  it('in shards the error names the shard file and its local row', async () => {
    const a = await openActivationFile(await fixtureBlob('shard_a.npy'), 'shard_a.npy');
    const n = await openActivationFile(await fixtureBlob('acts_nan.npy'), 'acts_nan.npy');
    const s = openShards([a, n]);
    const st = await computeStats(s);
    expect(st.firstNonFinite).toEqual([25, 37, 60]);
    expect(() => assertFinite(s, st)).toThrow(
      /^acts_nan.npy: 3 row\(s\) contain NaN or Inf, first at row 5 /,
    );
  });
});
