import { Rng } from '../src/data/rng';
import { setGpuForms } from '../src/gpu/kernels/kernel';
import { timeGpu } from '../src/gpu/timing';
import { resolveConfig } from '../src/sae/config';
import { initParams } from '../src/sae/init';
import { GpuSae } from '../src/sae/step';
import { DEFAULT_KERNELS, type KernelChoice } from '../src/sae/step-host';
import type { StepShape } from './step.bench';

/**
 * Each phase of the step in its GPU forms and in its software forms (kernel.ts gpuForms: the sort,
 * column sums, gradient sums, decode and gv take another form on a software adapter, same bits), on
 * this adapter, timed in alternating rounds so both medians are taken under the same load. Half the
 * latents are made dead, as in the step bench. Ratios software / GPU form per phase.
 */
export async function benchForms(
  device: GPUDevice,
  s: StepShape,
  samples: number,
  kernels: Partial<KernelChoice>,
) {
  const cfg = resolveConfig({ d: s.d, nLatents: s.N, k: s.k, kAux: s.kAux, batchSize: s.B, deadTokens: 1 });
  const build = (gpu: boolean) => {
    const rng = new Rng(1);
    const sample = new Float32Array(256 * s.d).map(() => rng.normal());
    setGpuForms(device, gpu);
    const sae = new GpuSae(device, cfg, { ...DEFAULT_KERNELS, ...kernels });
    setGpuForms(device, null);
    const tokensSince = new Uint32Array(s.N);
    for (let i = 0; i < s.N; i += 2) tokensSince[i] = 10;
    sae.setState({ params: initParams({ ...cfg, k: Math.min(cfg.k, 8) }, sample, rng), tokensSince });
    sae.writeBatch(
      new Float32Array(s.B * s.d).map(() => rng.normal()),
      new Float32Array(s.B).fill(1),
    );
    sae.step(1, cfg.lr, 1 / s.B);
    return sae;
  };
  const forms = { gpu: build(true), software: build(false) };
  await device.queue.onSubmittedWorkDone();
  const ms: Record<string, { gpu: number[]; software: number[] }> = {};
  for (let round = 0; round <= samples; round++) {
    for (const ph of forms.gpu.phases) {
      ms[ph.name] ??= { gpu: [], software: [] };
      for (const form of ['gpu', 'software'] as const) {
        const phase = forms[form].phases.find((p) => p.name === ph.name);
        if (!phase) throw new Error(`forms bench: no phase ${ph.name} in the ${form} forms`);
        const r = await timeGpu(
          device,
          (enc) => {
            const pass = enc.beginComputePass();
            phase.record(pass);
            pass.end();
          },
          { warmup: 0, samples: 1 },
        );
        if (round > 0) ms[ph.name][form].push(r.medianMs); // round 0 warms every pipeline up
      }
    }
  }
  forms.gpu.destroy();
  forms.software.destroy();
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const phases = Object.fromEntries(
    Object.entries(ms).map(([name, m]) => {
      const gpu = med(m.gpu);
      const software = med(m.software);
      return [name, { gpu_form_ms: gpu, software_form_ms: software, ratio: software / gpu }];
    }),
  );
  return { name: 'forms', shape: s, phases };
}
