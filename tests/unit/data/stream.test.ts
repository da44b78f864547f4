import { describe, expect, it } from 'vitest';
import { HoldoutSplit } from '../../../src/data/holdout.ts';
import { writeNpy } from '../../../src/data/npy.ts';
import { openActivationFile } from '../../../src/data/open.ts';
import type { ActivationSource } from '../../../src/data/source.ts';
import { computeStats } from '../../../src/data/stats.ts';
import { Batcher } from '../../../src/data/stream.ts';
import { expected, fixtureBlob } from './fixtures.ts';

/** [rows, d] source whose row r is (r, r + 0.25, r + 0.5, ...), so values identify rows. */
async function indexSource(rows: number, d: number): Promise<ActivationSource> {
  const x = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) for (let k = 0; k < d; k++) x[r * d + k] = r + k * 0.25;
  return openActivationFile(new Blob([writeNpy(x, [rows, d]) as Uint8Array<ArrayBuffer>]), 'index.npy');
}

/** Wraps a source to record read sizes and concurrency. */
function instrument(src: ActivationSource) {
  const log = { maxCount: 0, inFlight: 0, maxInFlight: 0, reads: 0 };
  const wrapped: ActivationSource = {
    ...src,
    async readRows(start, count) {
      log.reads++;
      log.maxCount = Math.max(log.maxCount, count);
      log.inFlight++;
      log.maxInFlight = Math.max(log.maxInFlight, log.inFlight);
      try {
        return await src.readRows(start, count);
      } finally {
        log.inFlight--;
      }
    },
  };
  return { wrapped, log };
}

describe('HoldoutSplit', () => {
  it('ranges, counts and membership agree with a brute-force scan', () => {
    for (const [rows, f, block] of [
      [1000, 0.1, 10],
      [1003, 0.25, 7],
      [50, 0.5, 1],
      [999, 0.013, 3],
      [100, 0, 5],
      [10, 0.05, 4],
    ] as const) {
      const s = new HoldoutSplit(rows, f, block);
      const brute: number[] = [];
      for (let r = 0; r < rows; r++) if (s.isHeldOut(r)) brute.push(r);
      const fromRanges: number[] = [];
      for (const [a, b] of s.heldOutRanges()) for (let r = a; r < b; r++) fromRanges.push(r);
      expect(fromRanges).toEqual(brute);
      expect(s.heldOutRows).toBe(brute.length);
      expect(s.trainRows).toBe(rows - brute.length);
      expect(s.trainRowsIn(0, rows)).toBe(s.trainRows);
      expect(Math.floor(s.nBlocks * f)).toBe(new Set(brute.map((r) => Math.floor(r / block))).size);
    }
  });

  it('blocks are spread through the file, not at the tail', () => {
    const s = new HoldoutSplit(10000, 0.1, 100);
    const starts = [...s.heldOutRanges()].map(([a]) => a);
    expect(starts.length).toBe(10);
    expect(starts[0]).toBeLessThan(1000);
    expect(starts[9]).toBeGreaterThan(9000);
  });
});

describe('Batcher', () => {
  it('exact epochs: each training row once per epoch, held-out rows never, values match ids', async () => {
    const rows = 1000;
    const d = 4;
    const src = await indexSource(rows, d);
    const b = new Batcher(src, {
      chunkRows: 64,
      shuffleRows: 256,
      seed: 5,
      heldOutFraction: 0.1,
      heldOutBlockRows: 10,
    });
    expect(b.trainRows).toBe(900);
    const seen: number[][] = [[], [], []];
    while (b.epoch < 3) {
      const before = b.epoch;
      const x = await b.nextBatch(37);
      const ids = b.lastRowIds;
      for (let i = 0; i < 37; i++) {
        expect(x[i * d]).toBe(ids[i]);
        expect(x[i * d + 3]).toBe(ids[i] + 0.75);
      }
      // assign each id to the epoch it was emitted in
      let e = before;
      let countInEpoch = seen[e]?.length ?? 0;
      for (const id of ids) {
        if (countInEpoch === 900) {
          e++;
          countInEpoch = 0;
        }
        if (e < 3) seen[e].push(id);
        countInEpoch++;
      }
    }
    const train = Array.from({ length: rows }, (_, r) => r).filter((r) => !b.split.isHeldOut(r));
    for (const ep of seen) expect([...ep].sort((p, q) => p - q)).toEqual(train);
    expect(seen[0]).not.toEqual(seen[1]); // different order per epoch
    expect(b.rowsEmitted).toBeGreaterThanOrEqual(2700);
  });

  it('is deterministic from the seed and independent of prefetch depth / I/O timing', async () => {
    const src = await indexSource(500, 3);
    const run = async (seed: number, prefetch: number) => {
      const b = new Batcher(src, { chunkRows: 32, shuffleRows: 100, seed, prefetch });
      const out: number[] = [];
      for (let i = 0; i < 20; i++) out.push(...(await b.nextBatch(50)));
      return out;
    };
    const a = await run(1, 1);
    expect(await run(1, 4)).toEqual(a);
    expect(await run(2, 2)).not.toEqual(a);
  });

  it('mixes rows from many chunks within a batch', async () => {
    const src = await indexSource(4096, 2);
    const b = new Batcher(src, { chunkRows: 64, shuffleRows: 1024, seed: 3 });
    await b.nextBatch(64);
    const chunks = new Set(Array.from(b.lastRowIds, (r) => Math.floor(r / 64)));
    expect(chunks.size).toBeGreaterThan(8);
  });

  it('memory is bounded: reads are chunk-sized and at most `prefetch` are in flight', async () => {
    const { wrapped, log } = instrument(await indexSource(3000, 8));
    const b = new Batcher(wrapped, { chunkRows: 50, shuffleRows: 200, prefetch: 2, seed: 1 });
    for (let i = 0; i < 40; i++) await b.nextBatch(100); // > 1 epoch
    expect(log.maxCount).toBe(50);
    expect(log.maxInFlight).toBeLessThanOrEqual(2);
    expect(b.capacity).toBe(200);
    expect(b.epoch).toBe(1);
  });

  it("policy 'skip' drops NaN/Inf rows and reports them", async () => {
    const src = await openActivationFile(await fixtureBlob('acts_nan.npy'), 'acts_nan.npy');
    const b = new Batcher(src, { chunkRows: 8, shuffleRows: 16, nonFinite: 'skip', seed: 2 });
    const x = await b.nextBatch(45);
    expect(b.epoch).toBe(1);
    expect(x.every(Number.isFinite)).toBe(true);
    const ids = Array.from(b.lastRowIds).sort((p, q) => p - q);
    expect(ids).toEqual(
      Array.from({ length: 48 }, (_, i) => i).filter((r) => !expected.nan_rows.includes(r)),
    );
    expect(b.skippedRows).toBeGreaterThanOrEqual(3);
    expect([...b.firstSkipped].sort((p, q) => p - q)).toEqual(expected.nan_rows);
  });

  it('held-out batches return exactly the held-out rows in file order', async () => {
    const src = await indexSource(777, 2);
    const b = new Batcher(src, { chunkRows: 16, heldOutFraction: 0.2, heldOutBlockRows: 5 });
    const ids: number[] = [];
    for await (const h of b.heldOutBatches(13)) {
      expect(h.data.length).toBe(h.rowIds.length * 2);
      for (let i = 0; i < h.rowIds.length; i++) expect(h.data[i * 2]).toBe(h.rowIds[i]);
      ids.push(...h.rowIds);
    }
    const want = Array.from({ length: 777 }, (_, r) => r).filter((r) => b.split.isHeldOut(r));
    expect(ids).toEqual(want);
    expect(ids.length).toBe(b.split.heldOutRows);
    const first = await b.readHeldOut(20);
    expect(Array.from({ length: 20 }, (_, i) => first[i * 2])).toEqual(want.slice(0, 20));
  });

  it('held-out fraction must be < 1 and always leaves a training block', async () => {
    const src = await indexSource(3, 2);
    expect(() => new Batcher(src, { heldOutFraction: 1 })).toThrow(RangeError);
    expect(new Batcher(src, { heldOutFraction: 0.999, heldOutBlockRows: 1 }).trainRows).toBe(1); // floor(3 * .999) = 2 held
  });
});

describe('computeStats', () => {
  it('matches numpy float64 statistics of the fixture', async () => {
    const src = await openActivationFile(await fixtureBlob('acts_f4.npy'), 'acts_f4.npy');
    const progress: number[] = [];
    const st = await computeStats(src, (done) => progress.push(done), { chunkRows: 5 });
    const e = expected.stats_f32;
    expect(st.count).toBe(48);
    for (let k = 0; k < 16; k++) expect(st.mean[k]).toBeCloseTo(e.mean[k], 10);
    expect(st.meanSqNorm / e.mean_sq_norm).toBeCloseTo(1, 12);
    expect(st.meanSqNormCentered / e.mean_sq_norm_centered).toBeCloseTo(1, 12);
    expect(st.scale).toBeCloseTo(Math.sqrt(16 / e.mean_sq_norm), 12);
    expect(st.maxAbs).toBe(70000);
    expect(progress.at(-1)).toBe(48);
    expect(progress.length).toBe(10);
  });

  it('after scaling by `scale`, E||x||^2 = d', async () => {
    const src = await indexSource(300, 6);
    const st = await computeStats(src, undefined, { chunkRows: 37 });
    const x = await src.readRows(0, 300);
    let s = 0;
    for (const v of x) s += (v * st.scale) ** 2;
    expect(s / 300).toBeCloseTo(6, 6);
  });

  it('stays accurate with a large mean (centered variance by chunk merging, not E||x||^2 - ||mean||^2)', async () => {
    const rows = 2000;
    const d = 4;
    const x = new Float32Array(rows * d);
    for (let r = 0; r < rows; r++)
      for (let k = 0; k < d; k++) x[r * d + k] = 1e4 + ((r * 7 + k * 3) % 11) / 10 - 0.5;
    const src = await openActivationFile(
      new Blob([writeNpy(x, [rows, d]) as Uint8Array<ArrayBuffer>]),
      'big_mean.npy',
    );
    const st = await computeStats(src, undefined, { chunkRows: 64 });
    // exact centered variance in float64
    const mean = new Float64Array(d);
    for (let r = 0; r < rows; r++) for (let k = 0; k < d; k++) mean[k] += x[r * d + k] / rows;
    let v = 0;
    for (let r = 0; r < rows; r++) for (let k = 0; k < d; k++) v += (x[r * d + k] - mean[k]) ** 2;
    expect(st.meanSqNormCentered / (v / rows)).toBeCloseTo(1, 9);
  });

  it('sampling (maxRows) reads evenly spaced chunks; a split excludes held-out rows', async () => {
    const src = await indexSource(1000, 2);
    const { wrapped, log } = instrument(src);
    const st = await computeStats(wrapped, undefined, { chunkRows: 10, maxRows: 100 });
    expect(log.reads).toBe(10);
    expect(st.count).toBe(100);
    expect(st.mean[0]).toBeGreaterThan(400); // spread over the file, not the first 100 rows
    const split = new HoldoutSplit(1000, 0.5, 500); // block 1 = rows 500..999 held out
    const st2 = await computeStats(src, undefined, { split });
    expect(st2.count).toBe(500);
    expect(st2.mean[0]).toBeCloseTo(249.5, 10);
  });

  it('can be aborted between chunks', async () => {
    const src = await indexSource(100, 2);
    const ac = new AbortController();
    const p = computeStats(src, () => ac.abort(), { chunkRows: 10, signal: ac.signal });
    await expect(p).rejects.toThrow(/aborted/);
  });
});

describe('Batcher state (checkpoints)', () => {
  const cases = [
    {
      name: 'mid-epoch, small buffer, held-out split',
      rows: 777,
      d: 3,
      opts: {
        chunkRows: 16,
        shuffleRows: 48,
        prefetch: 2,
        seed: 5,
        heldOutFraction: 0.2,
        heldOutBlockRows: 5,
      },
      before: 7,
      B: 13,
    },
    {
      name: 'across epochs, deep prefetch',
      rows: 200,
      d: 2,
      opts: { chunkRows: 10, shuffleRows: 30, prefetch: 3, seed: 9 },
      before: 23,
      B: 17,
    },
    { name: 'buffer holds everything', rows: 300, d: 4, opts: { chunkRows: 32, seed: 1 }, before: 3, B: 64 },
  ];
  for (const c of cases) {
    it(`state → restore → next batches identical: ${c.name}`, async () => {
      const src = await indexSource(c.rows, c.d);
      const a = new Batcher(src, c.opts);
      for (let i = 0; i < c.before; i++) await a.nextBatch(c.B);
      // Through JSON, as in a checkpoint.
      const state = JSON.parse(JSON.stringify(a.getState()));
      const b = new Batcher(src, c.opts);
      await b.setState(state);
      expect(b.epoch).toBe(a.epoch);
      expect(b.rowsEmitted).toBe(a.rowsEmitted);
      for (let i = 0; i < 30; i++) {
        const xa = await a.nextBatch(c.B);
        const xb = await b.nextBatch(c.B);
        expect(Array.from(b.lastRowIds)).toEqual(Array.from(a.lastRowIds));
        expect(Array.from(xb)).toEqual(Array.from(xa));
      }
      expect(b.epoch).toBe(a.epoch);
    });
  }

  it('skipped-row counts survive a restore without double counting', async () => {
    const src = await openActivationFile(await fixtureBlob('acts_nan.npy'), 'acts_nan.npy');
    const opts = { chunkRows: 8, shuffleRows: 16, nonFinite: 'skip' as const, seed: 2 };
    const a = new Batcher(src, opts);
    await a.nextBatch(10);
    const b = new Batcher(src, opts);
    await b.setState(a.getState());
    for (let i = 0; i < 6; i++) {
      await a.nextBatch(10);
      await b.nextBatch(10);
      expect(b.skippedRows).toBe(a.skippedRows);
      expect(Array.from(b.lastRowIds)).toEqual(Array.from(a.lastRowIds));
    }
  });

  it('refuses a state from another dataset shape', async () => {
    const a = new Batcher(await indexSource(100, 2), { chunkRows: 10 });
    await a.nextBatch(5);
    const b = new Batcher(await indexSource(120, 2), { chunkRows: 10 });
    await expect(b.setState(a.getState())).rejects.toThrow(/100 rows × 2, not 120 × 2/);
  });
});

describe('Batcher shuffle buffer size', () => {
  it('holds no more rows than the source, and a capacity past rows + chunkRows gives the same stream', async () => {
    const rows = 1000;
    const d = 4;
    const src = await indexSource(rows, d);
    const opts = { seed: 3, chunkRows: 64, heldOutFraction: 0.1 };
    const huge = new Batcher(src, { ...opts, shuffleRows: 1 << 20 });
    const snug = new Batcher(src, { ...opts, shuffleRows: rows + 64 });
    expect((huge as unknown as { buf: Float32Array }).buf.length).toBe(rows * d);
    expect(huge.capacity).toBe(1 << 20); // the logical capacity (saved in checkpoints) is kept
    for (let i = 0; i < 12; i++) {
      expect(await huge.nextBatch(256)).toEqual(await snug.nextBatch(256)); // three passes and more
      expect(huge.lastRowIds).toEqual(snug.lastRowIds);
    }
  });
});
