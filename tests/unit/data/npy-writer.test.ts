/**
 * NpyRowWriter: a .npy streamed row by row equals writeNpy's of the whole array (f4, f2, i4 vector),
 * and the sink sees writes of at most one chunk of rows: what the writer holds is bounded by the
 * chunk, whatever the array's length.
 */
import { describe, expect, it } from 'vitest';
import { encodeF16 } from '../../../src/data/half.ts';
import { decodeNpy, writeNpy } from '../../../src/data/npy.ts';
import { type ByteSink, chunkRowsFor, memorySink, NpyRowWriter } from '../../../src/data/npy-writer.ts';
import { openActivationFile } from '../../../src/data/open.ts';

/** A memory sink that records the offset and length of every write. */
function recordingSink(): ByteSink & { writes: { at: number; bytes: number }[] } {
  const inner = memorySink();
  const writes: { at: number; bytes: number }[] = [];
  return {
    writes,
    write(b, at) {
      writes.push({ at, bytes: b.length });
      return inner.write(b, at);
    },
    close: () => inner.close(),
    abort: () => inner.abort(),
  };
}

/** Rows in windows of irregular sizes (as extraction windows are), values distinct per element. */
function windows(d: number, sizes: number[]): Float32Array[] {
  let v = 0;
  return sizes.map((n) => Float32Array.from({ length: n * d }, () => Math.sin(v++) * 3.5));
}

const concat = (parts: Float32Array[]) => {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

const HEADER = 128;

describe('NpyRowWriter', () => {
  it('streams f4 rows in chunks of at most chunkRows rows; the file equals writeNpy of all rows', async () => {
    const d = 24;
    const sizes = [23, 1, 0, 63, 63, 40, 7, 100];
    const parts = windows(d, sizes);
    const sink = recordingSink();
    const w = new NpyRowWriter(sink, '<f4', d, 50);
    let peak = 0;
    for (const p of parts) {
      await w.append(p);
      // rows held and not yet written: never a full chunk after append returns
      peak = Math.max(peak, w.rows - sink.writes.slice(1).reduce((a, x) => a + x.bytes / (4 * d), 0));
    }
    const blob = await w.finish();
    const all = concat(parts);
    const n = all.length / d;
    expect(n).toBe(297);
    const a = decodeNpy(await blob.arrayBuffer());
    expect(a.descr).toBe('<f4');
    expect(a.shape).toEqual([n, d]);
    expect(Array.from(a.data)).toEqual(Array.from(all));
    // same data bytes as the whole-array writer (the header is longer: reserved for the final count)
    const whole = writeNpy(all, [n, d]);
    const ref = new Uint8Array(whole.buffer, whole.length - all.byteLength);
    expect(new Uint8Array(await blob.slice(HEADER).arrayBuffer())).toEqual(ref);
    // writes: header, then data chunks of ≤ 50 rows at consecutive offsets, then the header again
    const data = sink.writes.filter((x) => x.at >= HEADER);
    expect(Math.max(...data.map((x) => x.bytes))).toBe(50 * d * 4);
    expect(data.map((x) => x.bytes / (d * 4))).toEqual([50, 50, 50, 50, 50, 47]);
    let at = HEADER;
    for (const x of data) {
      expect(x.at).toBe(at);
      at += x.bytes;
    }
    expect(sink.writes[0]).toEqual({ at: 0, bytes: HEADER });
    expect(sink.writes[sink.writes.length - 1]).toEqual({ at: 0, bytes: HEADER });
    expect(peak).toBeLessThan(50);
    // and the dataset reader opens it in chunks like any dropped file
    const src = await openActivationFile(blob, 'streamed.npy');
    expect([src.rows, src.d]).toEqual([n, d]);
  });

  it('rounds to float16 for <f2, and writes 1-D int32 vectors', async () => {
    const d = 5;
    const parts = windows(d, [3, 9, 4]);
    const w = new NpyRowWriter(memorySink(), '<f2', d, 4);
    for (const p of parts) await w.append(p);
    const a = decodeNpy(await (await w.finish()).arrayBuffer());
    expect(a.descr).toBe('<f2');
    expect(a.shape).toEqual([16, d]);
    expect(Array.from(a.data)).toEqual(Array.from(encodeF16(concat(parts))));

    const ids = new NpyRowWriter(memorySink(), '<i4', 1, 3, true);
    await ids.append(Int32Array.from([5, -1, 7, 2 ** 31 - 1]));
    await ids.append(Int32Array.from([9]));
    const v = decodeNpy(await (await ids.finish()).arrayBuffer());
    expect(v.shape).toEqual([5]);
    expect(Array.from(v.data)).toEqual([5, -1, 7, 2 ** 31 - 1, 9]);
  });

  it('an empty array has shape [0, d]; a partial row is refused; abort drops the parts', async () => {
    const e = decodeNpy(await (await new NpyRowWriter(memorySink(), '<f4', 3, 8).finish()).arrayBuffer());
    expect(e.shape).toEqual([0, 3]);
    const w = new NpyRowWriter(memorySink(), '<f4', 3, 8);
    await expect(w.append(new Float32Array(4))).rejects.toThrow(/rows of 3/);
    const sink = memorySink();
    const x = new NpyRowWriter(sink, '<f4', 2, 1);
    await x.append(new Float32Array(6));
    await x.abort();
    expect((await sink.close()).size).toBe(0);
    await expect(sink.write(new Uint8Array(3), 999)).rejects.toThrow(/append or replace/);
  });

  it('chunkRowsFor keeps a chunk within its byte budget, at least one row', () => {
    expect(chunkRowsFor(768 * 4)).toBe(1365); // GPT-2 small, float32: 4 MiB of rows
    expect(chunkRowsFor(768 * 4) * 768 * 4).toBeLessThanOrEqual(4 << 20);
    expect(chunkRowsFor(10 << 20)).toBe(1);
  });
});
