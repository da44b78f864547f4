import { Rng } from '../src/data/rng';
import { createBufferFrom, STORAGE } from '../src/gpu/buffers';
import { createTopK, type TopKVariant } from '../src/gpu/kernels/topk';
import { STEP_PARAMS_BYTES } from '../src/gpu/step-params';
import { timeGpu } from '../src/gpu/timing';
import { resolveConfig } from '../src/sae/config';
import { stepParamsBytes } from '../src/sae/step-uniform';

/**
 * The main TopK alone over normal pre-activations [B, N], every variant that takes k, timed in
 * alternating rounds so each median is taken under the same load; ratios to 'insert' (the software
 * pick before 'chunked'). Variants named `chunked/CH` use chunks of CH latents.
 */
export async function benchTopK(device: GPUDevice, s: { B: number; N: number; k: number }, samples: number) {
  const { B, N, k } = s;
  const cfg = resolveConfig({ d: 2, nLatents: N, k, kAux: 1, batchSize: B, deadTokens: 1 });
  const params = device.createBuffer({
    size: STEP_PARAMS_BYTES,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(params, 0, stepParamsBytes(cfg, 1, 1e-3, 1));
  const rng = new Rng(3);
  const E = B * (k + 1);
  const bufs = [
    createBufferFrom(
      device,
      'pre',
      new Float32Array(B * N).map(() => rng.normal()),
    ),
    createBufferFrom(device, 'deadList', new Uint32Array(1)),
    createBufferFrom(device, 'deadInfo', new Uint32Array(4)),
    device.createBuffer({ label: 'idx', size: E * 4, usage: STORAGE }),
    device.createBuffer({ label: 'val', size: E * 4, usage: STORAGE }),
    params,
  ];
  const variants: [string, TopKVariant, number | undefined][] = [
    ['insert', 'insert', undefined],
    ['chunked/64', 'chunked', 64],
    ['chunked/16', 'chunked', 16],
    ['chunked/32', 'chunked', 32],
    ['bitonic', 'bitonic', undefined],
  ];
  const kernels = variants.map(([, variant, chunk]) => {
    const kernel = createTopK(device, { B, N, K: k, aux: false, variant, chunk });
    return { kernel, bg: kernel.bind('bench', bufs) };
  });
  const ms: number[][] = variants.map(() => []);
  for (let round = 0; round <= samples; round++) {
    for (const [i, { kernel, bg }] of kernels.entries()) {
      const r = await timeGpu(
        device,
        (enc) => {
          const pass = enc.beginComputePass();
          kernel.run(pass, bg);
          pass.end();
        },
        { warmup: 0, samples: 1 },
      );
      if (round > 0) ms[i].push(r.medianMs); // round 0 warms every pipeline up
    }
  }
  for (const { kernel } of kernels) kernel.destroy();
  for (const b of bufs) b.destroy();
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const median_ms = Object.fromEntries(variants.map(([name], i) => [name, med(ms[i])]));
  return {
    name: 'topk',
    shape: s,
    median_ms,
    ratio_to_insert: Object.fromEntries(variants.map(([name]) => [name, median_ms[name] / median_ms.insert])),
  };
}
