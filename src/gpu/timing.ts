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

/** Chromium's feature for GPUComputePassEncoder.writeTimestamp between dispatches. */
export const IN_PASS_TIMESTAMPS = 'chromium-experimental-timestamp-query-inside-passes';

/**
 * Each dispatch's time inside one pass, as the step runs it: `record` draws into a pass that writes a
 * timestamp after every dispatch (the device needs IN_PASS_TIMESTAMPS and 'timestamp-query'); one
 * warm-up submission, then `samples`, each read back. Per dispatch in recording order: its label
 * (`group`, as `setGroup` names it while recording, and the pipeline's label) and the median ms
 * since the previous timestamp. Null where the device lacks the features.
 */
export async function profileDispatches(
  device: GPUDevice,
  record: (pass: GPUComputePassEncoder, setGroup: (name: string) => void) => void,
  samples: number,
): Promise<{ label: string; ms: number }[] | null> {
  if (!device.features.has(IN_PASS_TIMESTAMPS) || !device.features.has('timestamp-query')) return null;
  const max = 4096;
  const qs = device.createQuerySet({ type: 'timestamp', count: max });
  const resolve = device.createBuffer({
    size: max * 8,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const read = device.createBuffer({
    size: max * 8,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const times: number[][] = [];
  let labels: string[] = [];
  try {
    for (let r = 0; r <= samples; r++) {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      const stamp = (
        pass as unknown as { writeTimestamp: (q: GPUQuerySet, i: number) => void }
      ).writeTimestamp.bind(pass);
      let n = 0;
      let group = '';
      let pipeline = '';
      labels = [];
      const after = () => {
        if (n + 1 >= max) throw new Error(`profileDispatches: over ${max - 1} dispatches`);
        labels.push(`${group}:${pipeline}`);
        stamp(qs, ++n);
      };
      // Only what the step's kernels call on a pass; anything else fails loudly rather than go untimed.
      const proxy = {
        setPipeline: (p: GPUComputePipeline) => {
          pipeline = p.label;
          pass.setPipeline(p);
        },
        setBindGroup: (i: number, bg: GPUBindGroup | null) => pass.setBindGroup(i, bg),
        dispatchWorkgroups: (x: number, y?: number, z?: number) => {
          pass.dispatchWorkgroups(x, y, z);
          after();
        },
        dispatchWorkgroupsIndirect: (b: GPUBuffer, o: number) => {
          pass.dispatchWorkgroupsIndirect(b, o);
          after();
        },
      } as unknown as GPUComputePassEncoder;
      stamp(qs, 0);
      record(proxy, (name) => {
        group = name;
      });
      pass.end();
      enc.resolveQuerySet(qs, 0, n + 1, resolve, 0);
      enc.copyBufferToBuffer(resolve, 0, read, 0, (n + 1) * 8);
      device.queue.submit([enc.finish()]);
      await read.mapAsync(GPUMapMode.READ);
      const t = new BigInt64Array(read.getMappedRange().slice(0, (n + 1) * 8));
      read.unmap();
      if (r > 0) times.push(labels.map((_, i) => Number(t[i + 1] - t[i]) / 1e6));
    }
  } finally {
    qs.destroy();
    resolve.destroy();
    read.destroy();
  }
  return labels.map((label, i) => ({ label, ms: median(times.map((row) => row[i])) }));
}
