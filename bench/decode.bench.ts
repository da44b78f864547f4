import { Rng } from '../src/data/rng';
import { createBufferFrom, STORAGE } from '../src/gpu/buffers';
import { createDecode } from '../src/gpu/kernels/decode';
import { setGpuForms } from '../src/gpu/kernels/kernel';
import { STEP_PARAMS_BYTES } from '../src/gpu/step-params';
import { timeGpu } from '../src/gpu/timing';
import { resolveConfig } from '../src/sae/config';
import { stepParamsBytes } from '../src/sae/step-uniform';

/**
 * The main sparse decode alone, x̂ = b_pre + Σ val·W_dec[idx] over B rows of k entries, in both of
 * its forms (the GPU form, a workgroup per row striding over columns; the software form, 4 lanes per
 * row walking the list once), timed in alternating rounds: medians and the ratio software / GPU form.
 */
export async function benchDecode(
  device: GPUDevice,
  s: { B: number; d: number; N: number; k: number },
  samples: number,
) {
  const { B, d, N, k } = s;
  const cfg = resolveConfig({ d, nLatents: N, k, kAux: 1, batchSize: B, deadTokens: 1 });
  const params = device.createBuffer({
    size: STEP_PARAMS_BYTES,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(params, 0, stepParamsBytes(cfg, 1, 1e-3, 1));
  const rng = new Rng(5);
  const idx = new Uint32Array(B * (k + 1)).map(() => rng.nextInt(N));
  const bufs = [
    createBufferFrom(device, 'idx', idx),
    createBufferFrom(
      device,
      'val',
      new Float32Array(B * (k + 1)).map(() => rng.nextFloat()),
    ),
    createBufferFrom(
      device,
      'b_pre',
      new Float32Array(d).map(() => rng.normal()),
    ),
    device.createBuffer({ label: 'xHat', size: B * d * 4, usage: STORAGE }),
    params,
    createBufferFrom(
      device,
      'W_dec',
      new Float32Array(N * d).map(() => rng.normal()),
    ),
  ];
  const forms = [true, false].map((gpu) => {
    setGpuForms(device, gpu);
    const kernel = createDecode(device, { B, d, aux: false });
    return { name: gpu ? 'gpu_form' : 'software_form', kernel, bg: kernel.bind('bench', bufs) };
  });
  setGpuForms(device, null);
  const ms: number[][] = forms.map(() => []);
  for (let round = 0; round <= samples; round++) {
    for (const [i, { kernel, bg }] of forms.entries()) {
      const r = await timeGpu(
        device,
        (enc) => {
          const pass = enc.beginComputePass();
          kernel.run(pass, bg);
          pass.end();
        },
        { warmup: 0, samples: 1 },
      );
      if (round > 0) ms[i].push(r.medianMs);
    }
  }
  for (const b of bufs) b.destroy();
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const median_ms = Object.fromEntries(forms.map(({ name }, i) => [name, med(ms[i])]));
  return {
    name: 'decode',
    shape: s,
    median_ms,
    ratio_software_over_gpu_form: median_ms.software_form / median_ms.gpu_form,
  };
}
