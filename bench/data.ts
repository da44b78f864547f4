/**
 * Data-layer benchmark (node): reader + conversion throughput, and bounded memory
 * when streaming a file much larger than a memory budget.
 *
 *   npx tsx bench/data.ts            (≈1 min; writes ~2.1 GB to the temp dir, deletes it)
 *   BENCH_DATA_SMALL=1 npx tsx bench/data.ts   (quick smoke run, 10x smaller files)
 *
 * 1. Writes 200 MB files (f32 .npy, f16 .npy, f32 .safetensors, bf16 .safetensors)
 *    and reads every row through openActivationFile(fs.openAsBlob(...)).readRows in
 *    1024-row (4 MB of f32) chunks. MB/s counts file bytes per second. The files were just written,
 *    so they come from the OS page cache: this measures our slicing + conversion, not
 *    the disk.
 * 2. Writes a 1.5 GB f32 .npy (6x the 256 MB budget), runs one full epoch of the
 *    shuffling Batcher over it and one computeStats pass, sampling RSS / heap /
 *    ArrayBuffer memory every 20 ms, and reports the peaks.
 *
 * Prints one JSON object.
 */
import { closeSync, mkdtempSync, openAsBlob, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeBf16, encodeF16 } from '../src/data/half.ts';
import { npyHeaderBytes } from '../src/data/npy.ts';
import { openActivationFile } from '../src/data/open.ts';
import { Rng } from '../src/data/rng.ts';
import { computeStats } from '../src/data/stats.ts';
import { Batcher } from '../src/data/stream.ts';

const SMALL = process.env.BENCH_DATA_SMALL === '1';
const MB = 1 << 20;
const THROUGHPUT_BYTES = (SMALL ? 20 : 200) * MB;
const BIG_BYTES = (SMALL ? 150 : 1536) * MB;
const BUDGET_BYTES = (SMALL ? 64 : 256) * MB;

/** A block of random floats repeated to fill files quickly (content does not matter for speed). */
function randomBlock(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.normal());
}

/** Writes header + `rows` rows, generating data with `rowBytes(i)` pieces of the repeated block. */
function writeFile(path: string, header: Uint8Array, dataBytes: number, piece: Uint8Array): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header);
    let left = dataBytes;
    while (left > 0) {
      const n = Math.min(left, piece.length);
      writeSync(fd, piece, 0, n);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
}

function safetensorsHeader(dtype: string, shape: number[], bytes: number): Uint8Array {
  let json = JSON.stringify({ acts: { dtype, shape, data_offsets: [0, bytes] } });
  json = json.padEnd(Math.ceil(json.length / 8) * 8, ' ');
  const out = new Uint8Array(8 + json.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  return out;
}

async function readAll(path: string, name: string, chunkRows = 1024) {
  const blob = await openAsBlob(path);
  const t0 = performance.now();
  const src = await openActivationFile(blob, name);
  let checksum = 0;
  for (let s = 0; s < src.rows; s += chunkRows) {
    const x = await src.readRows(s, Math.min(chunkRows, src.rows - s));
    checksum += x[0];
  }
  const sec = (performance.now() - t0) / 1000;
  return {
    file: name,
    dtype: src.dtype,
    rows: src.rows,
    d: src.d,
    fileMB: +(blob.size / MB).toFixed(1),
    seconds: +sec.toFixed(3),
    fileMBps: +(blob.size / MB / sec).toFixed(0),
    float32MBps: +((src.rows * src.d * 4) / MB / sec).toFixed(0),
    checksum,
  };
}

/** Samples process memory every 20 ms; peaks are over the sampling window. */
function memorySampler() {
  const peak = { rss: 0, heapUsed: 0, arrayBuffers: 0, external: 0 };
  const sample = () => {
    const m = process.memoryUsage();
    peak.rss = Math.max(peak.rss, m.rss);
    peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
    peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers);
    peak.external = Math.max(peak.external, m.external);
  };
  const timer = setInterval(sample, 20);
  return {
    sample,
    stop() {
      clearInterval(timer);
      sample();
      const mb = (x: number) => +(x / MB).toFixed(1);
      return {
        peakRssMB: mb(peak.rss),
        peakHeapUsedMB: mb(peak.heapUsed),
        peakArrayBuffersMB: mb(peak.arrayBuffers),
        peakExternalMB: mb(peak.external),
      };
    },
  };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'sae-bench-data-'));
  const t0 = performance.now();
  const result: Record<string, unknown> = { node: process.version, small: SMALL };
  try {
    // ---- 1. throughput -----------------------------------------------------------
    const d = 1024;
    const block = randomBlock(1 << 20, 1); // 4 MB of f32
    const blockBytes = new Uint8Array(block.buffer);
    const block16 = encodeF16(block);
    const block16Bytes = new Uint8Array(block16.buffer);
    const blockBf16Bytes = new Uint8Array(encodeBf16(block).buffer);

    const rows32 = Math.floor(THROUGHPUT_BYTES / (d * 4));
    const rows16 = Math.floor(THROUGHPUT_BYTES / (d * 2));
    const files: [string, Uint8Array, number, Uint8Array][] = [
      ['f32.npy', npyHeaderBytes('<f4', [rows32, d]), rows32 * d * 4, blockBytes],
      ['f16.npy', npyHeaderBytes('<f2', [rows16, d]), rows16 * d * 2, block16Bytes],
      ['f32.safetensors', safetensorsHeader('F32', [rows32, d], rows32 * d * 4), rows32 * d * 4, blockBytes],
      [
        'bf16.safetensors',
        safetensorsHeader('BF16', [rows16, d], rows16 * d * 2),
        rows16 * d * 2,
        blockBf16Bytes,
      ],
    ];
    const throughput = [];
    for (const [name, header, bytes, piece] of files) {
      const path = join(dir, name);
      writeFile(path, header, bytes, piece);
      await readAll(path, name); // warm-up (JIT, page cache)
      throughput.push(await readAll(path, name));
      rmSync(path);
    }
    result.throughput = throughput;

    // ---- 2. bounded memory on a file 6x the budget -------------------------------
    const dBig = 2048;
    const rowsBig = Math.floor(BIG_BYTES / (dBig * 4));
    const bigPath = join(dir, 'big_f32.npy');
    const tw = performance.now();
    writeFile(bigPath, npyHeaderBytes('<f4', [rowsBig, dBig]), rowsBig * dBig * 4, blockBytes);
    const writeSec = (performance.now() - tw) / 1000;
    const chunkRows = 1024;
    const shuffleRows = 8192;
    const prefetch = 2;
    // Planned memory: shuffle buffer + in-flight chunks (bytes + decoded floats) + one output batch.
    const batch = 4096;
    const planned =
      (shuffleRows * dBig * 4 + shuffleRows * 8 + prefetch * chunkRows * dBig * 8 + batch * dBig * 4) / MB;

    (globalThis as { gc?: () => void }).gc?.();
    const base = process.memoryUsage();
    const mem = memorySampler();
    const src = await openActivationFile(await openAsBlob(bigPath), 'big_f32.npy');
    const b = new Batcher(src, { chunkRows, shuffleRows, prefetch, seed: 0, heldOutFraction: 0.01 });
    const tb = performance.now();
    let batches = 0;
    const out = new Float32Array(batch * dBig); // reused, as the trainer does
    while (b.epoch < 1) {
      await b.nextBatch(batch, out);
      batches++;
      mem.sample();
    }
    const batchSec = (performance.now() - tb) / 1000;
    const ts = performance.now();
    const st = await computeStats(src, () => mem.sample(), { chunkRows: 2048 });
    const statsSec = (performance.now() - ts) / 1000;
    const peaks = mem.stop();
    result.boundedMemory = {
      fileMB: +((rowsBig * dBig * 4) / MB).toFixed(0),
      budgetMB: BUDGET_BYTES / MB,
      rows: rowsBig,
      d: dBig,
      chunkRows,
      shuffleRows,
      prefetch,
      batchRows: batch,
      plannedBuffersMB: +planned.toFixed(1),
      baselineRssMB: +(base.rss / MB).toFixed(1),
      ...peaks,
      peakRssAboveBaselineMB: +(peaks.peakRssMB - base.rss / MB).toFixed(1),
      withinBudget: peaks.peakRssMB - base.rss / MB < BUDGET_BYTES / MB,
      trainRowsPerEpoch: b.trainRows,
      rowsEmitted: b.rowsEmitted,
      batches,
      batcherSeconds: +batchSec.toFixed(2),
      batcherMBps: +((b.rowsEmitted * dBig * 4) / MB / batchSec).toFixed(0),
      statsSeconds: +statsSec.toFixed(2),
      statsMBps: +((rowsBig * dBig * 4) / MB / statsSec).toFixed(0),
      statsCount: st.count,
      writeSeconds: +writeSec.toFixed(2),
    };
    rmSync(bigPath);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  result.totalSeconds = +((performance.now() - t0) / 1000).toFixed(1);
  console.log(JSON.stringify(result, null, 2));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
