/**
 * Node's side of the soak (bench/soak.bench.ts runs in the page): once a minute, the page's JS heap
 * after a forced garbage collection (CDP HeapProfiler.collectGarbage, then Runtime.getHeapUsage;
 * with the embedder heap and ArrayBuffer backing stores beside it; `performance.memory.usedJSHeapSize`,
 * which headless Chromium gives with cli/browser.ts's flags, is recorded too: it follows that sum), the live GPU buffers and
 * their bytes (trackBuffers' counter) and the tokens trained; at the end the least-squares slope of
 * each per minute, and that slope over the mean level (flat: |relative slope| well under 1%/min).
 */
import type { Page } from 'playwright-core';
import type { SoakLive } from './soak.bench';

export interface SoakSample {
  minute: number;
  heapUsed: number;
  heapTotal: number;
  /** ArrayBuffer backing stores (typed arrays live here, outside heapUsed) */
  backingStorage: number;
  /** heapUsed + embedder heap (Blink's DOM and WebGPU wrappers) + backingStorage */
  jsMemory: number;
  /** performance.memory.usedJSHeapSize (Chromium; null where absent) */
  perfMemoryUsed: number | null;
  gpuBytes: number;
  gpuBuffers: number;
  tokens: number;
  runs: number;
  curveLength: number;
}

interface Fit {
  slope_per_min: number;
  mean: number;
  relative_slope_per_min: number;
}

/** Least-squares slope of y on x, with the mean of y and slope / mean. */
function fitSlope(x: number[], y: number[]): Fit {
  const n = x.length;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  return { slope_per_min: slope, mean: my, relative_slope_per_min: my !== 0 ? slope / my : 0 };
}

/** One line per figure: level, slope per minute and slope / level. */
export function soakSummary(fits: ReturnType<typeof soakFits>): string {
  const f = fits.after_warmup.heap_used.mean ? fits.after_warmup : fits.all;
  const line = (name: string, x: Fit) =>
    `[soak] ${name}: level ${x.mean.toFixed(0)}, slope ${x.slope_per_min.toFixed(1)}/min, relative ${(100 * x.relative_slope_per_min).toFixed(3)}%/min`;
  return [
    `[soak] fits from minute ${f.from_minute.toFixed(1)}:`,
    line('JS heap used (bytes)', f.heap_used),
    line('JS heap + embedder + ArrayBuffers (bytes)', f.js_memory),
    line('GPU bytes', f.gpu_bytes),
    line('GPU buffers', f.gpu_buffers),
    line('tokens', f.tokens),
  ].join('\n');
}

export function soakFits(samples: SoakSample[]) {
  const fits = (s: SoakSample[]) => {
    const m = s.map((p) => p.minute);
    const slopeOf = (f: (p: SoakSample) => number) => fitSlope(m, s.map(f));
    return {
      from_minute: s[0]?.minute ?? 0,
      heap_used: slopeOf((p) => p.heapUsed),
      js_memory: slopeOf((p) => p.jsMemory),
      gpu_bytes: slopeOf((p) => p.gpuBytes),
      gpu_buffers: slopeOf((p) => p.gpuBuffers),
      tokens: slopeOf((p) => p.tokens),
    };
  };
  // all samples, and past the first two minutes (start-up: JIT, caches, the first run's allocations)
  return { all: fits(samples), after_warmup: fits(samples.filter((p) => p.minute >= 2)) };
}

/**
 * Samples the soak page every minute for `minutes`, then sets window.__soakStop so the page ends its
 * run and returns; the samples come back.
 */
export async function sampleSoak(
  page: Page,
  minutes: number,
  log: (l: string) => void,
): Promise<SoakSample[]> {
  // the page sets __soak once training starts, or __benchDone at once if it failed first
  await page.waitForFunction(() => window.__soak !== undefined || window.__benchDone !== undefined, null, {
    timeout: 10 * 60_000,
    polling: 500,
  });
  const cdp = await page.context().newCDPSession(page);
  const samples: SoakSample[] = [];
  const t0 = Date.now();
  for (let i = 0; i <= minutes; i++) {
    const wait = t0 + i * 60_000 - Date.now();
    if (wait > 0)
      await page
        .waitForFunction(() => window.__benchDone !== undefined, null, { timeout: wait, polling: 1000 })
        .catch(() => {});
    if (await page.evaluate(() => window.__benchDone !== undefined || window.__soak === undefined)) break;
    await cdp.send('HeapProfiler.collectGarbage');
    const heap = (await cdp.send('Runtime.getHeapUsage')) as {
      usedSize: number;
      totalSize: number;
      embedderHeapUsedSize?: number;
      backingStorageSize?: number;
    };
    const live = (await page.evaluate(() => ({
      ...(window.__soak as SoakLive),
      gpu: { ...(window.__soak as SoakLive).gpu },
      perf:
        (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? null,
    }))) as SoakLive & { perf: number | null };
    const s: SoakSample = {
      minute: (Date.now() - t0) / 60_000,
      heapUsed: heap.usedSize,
      heapTotal: heap.totalSize,
      backingStorage: heap.backingStorageSize ?? 0,
      jsMemory: heap.usedSize + (heap.embedderHeapUsedSize ?? 0) + (heap.backingStorageSize ?? 0),
      perfMemoryUsed: live.perf,
      gpuBytes: live.gpu.bytes,
      gpuBuffers: live.gpu.live,
      tokens: live.tokens,
      runs: live.runs,
      curveLength: live.curveLength,
    };
    samples.push(s);
    log(
      `[soak] min ${s.minute.toFixed(1)}: heap ${(s.heapUsed / 2 ** 20).toFixed(2)} MiB (with backing stores ${(s.jsMemory / 2 ** 20).toFixed(2)} MiB), gpu ${(s.gpuBytes / 2 ** 20).toFixed(2)} MiB in ${s.gpuBuffers} buffers, ${s.tokens} tokens, ${s.runs} runs`,
    );
  }
  await page.evaluate(() => {
    window.__soakStop = true;
  });
  await cdp.detach().catch(() => {});
  return samples;
}
