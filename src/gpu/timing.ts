/** Timing helpers for benchmarks and the autotuner: warm-up, repeat, median of wall-clock per submit. */

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Times `record` (which records work into a pass/encoder) by submitting it `inner` times per sample
 * and waiting for the queue; returns the median ms per call over `samples` after `warmup` samples.
 */
export async function timeGpu(
  device: GPUDevice,
  record: (enc: GPUCommandEncoder) => void,
  opts: { warmup?: number; samples?: number; inner?: number } = {},
): Promise<{ medianMs: number; samplesMs: number[] }> {
  const { warmup = 1, samples = 5, inner = 1 } = opts;
  const once = async () => {
    const t0 = performance.now();
    for (let i = 0; i < inner; i++) {
      const enc = device.createCommandEncoder();
      record(enc);
      device.queue.submit([enc.finish()]);
    }
    await device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / inner;
  };
  for (let i = 0; i < warmup; i++) await once();
  const ms: number[] = [];
  for (let i = 0; i < samples; i++) ms.push(await once());
  return { medianMs: median(ms), samplesMs: ms };
}
