import { createBufferFrom, STORAGE } from '../src/gpu/buffers';
import { createEncode, encodeVariantsFor } from '../src/gpu/kernels/encode';
import { timeGpu } from '../src/gpu/timing';

function rand(n: number, scale: number) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (Math.random() * 2 - 1) * scale;
  return a;
}

/** Encode variants at one shape, in alternating rounds; GFLOP/s = 2·B·d·N / median time. */
export async function benchEncode(device: GPUDevice, B: number, d: number, N: number, samples: number) {
  const bufs = {
    x: createBufferFrom(device, 'bench:x', rand(B * d, 1)),
    b_pre: createBufferFrom(device, 'bench:b_pre', rand(d, 0.1)),
    W_enc: createBufferFrom(device, 'bench:W_enc', rand(N * d, 0.05)),
    b_enc: createBufferFrom(device, 'bench:b_enc', rand(N, 0.1)),
    pre: device.createBuffer({ label: 'bench:pre', size: B * N * 4, usage: STORAGE }),
  };
  const variants: Record<string, { median_ms: number; gflops: number }> = {};
  // Every variant once per round (round 0 warms the pipelines up), so the medians share the load.
  const kernels = encodeVariantsFor(d).map((v) => {
    return { v, k: createEncode(device, { B, d, N }, v), ms: [] as number[] };
  });
  for (let round = 0; round <= samples; round++) {
    for (const e of kernels) {
      const t = await timeGpu(
        device,
        (enc) => {
          const pass = enc.beginComputePass();
          e.k.run(pass, bufs);
          pass.end();
        },
        { warmup: 0, samples: 1 },
      );
      if (round > 0) e.ms.push(t.medianMs);
    }
  }
  for (const e of kernels) {
    const median = [...e.ms].sort((a, b) => a - b)[e.ms.length >> 1];
    variants[e.v] = { median_ms: median, gflops: e.k.flops / (median * 1e6) };
    e.k.destroy();
  }
  for (const b of Object.values(bufs)) b.destroy();
  const best = Object.entries(variants).sort((a, b) => a[1].median_ms - b[1].median_ms)[0];
  return {
    name: 'encode',
    shape: { B, d, N },
    variants,
    best: best[0],
    ratio_best_over_naive_gflops: best[1].gflops / variants.naive.gflops,
  };
}
