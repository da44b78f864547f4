import { Rng } from '../src/data/rng';
import { Gpt2 } from '../src/lm/gpt2/forward';
import { GpuGpt2 } from '../src/lm/gpt2/gpu-forward';
import type { Gpt2Checkpoint, Gpt2Config } from '../src/lm/gpt2/types';

/** GPT-2 small's shape (124M parameters) with `nLayer` blocks. */
const gpt2Small = (nLayer: number): Gpt2Config => ({
  nLayer,
  nHead: 12,
  nEmbd: 768,
  nPositions: 1024,
  nInner: 3072,
  vocabSize: 50257,
  layerNormEps: 1e-5,
  headSize: 64,
});

/** Weights ~ uniform(±scale): the timing does not depend on their values, only on the shape. */
function randomWeights(c: Gpt2Config, r: Rng): Gpt2Checkpoint {
  const { nLayer: L, nEmbd: d, nInner: F, vocabSize: V, nPositions: P } = c;
  const u = (n: number, scale: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (r.nextFloat() * 2 - 1) * scale;
    return a;
  };
  const s = 1 / Math.sqrt(d);
  return {
    name: 'bench-gpt2-small',
    config: c,
    weights: {
      wte: u(V * d, 0.1),
      wpe: u(P * d, 0.01),
      ln1G: u(L * d, 1),
      ln1B: u(L * d, 0.1),
      attnW: u(L * 3 * d * d, s),
      attnB: u(L * 3 * d, 0.1),
      attnProjW: u(L * d * d, s),
      attnProjB: u(L * d, 0.1),
      ln2G: u(L * d, 1),
      ln2B: u(L * d, 0.1),
      fcW: u(L * F * d, s),
      fcB: u(L * F, 0.1),
      projW: u(L * d * F, 1 / Math.sqrt(F)),
      projB: u(L * d, 0.1),
      lnFG: u(d, 1),
      lnFB: u(d, 0.1),
    },
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/**
 * Tokens/s of one window's forward (T tokens from position 0, logits [T, 50257] read back) on the
 * WGSL GpuGpt2 and on the CPU twin Gpt2 (float32, this page's main thread), at GPT-2 small's widths
 * with `nLayer` blocks (12 is GPT-2 small; fewer keep SwiftShader runs short — the blocks are equal,
 * so the time is about a + b·nLayer). Wall clock per forward, including upload of the tokens and the
 * read-back; median of `samples` after one warm-up (the GPU's first call also builds its pipelines).
 */
export async function benchGpt2(device: GPUDevice, opts: { nLayer: number; T: number; samples: number }) {
  const { nLayer, T, samples } = opts;
  const config = gpt2Small(nLayer);
  const r = new Rng(1);
  const ckpt = randomWeights(config, r);
  const tokens = Int32Array.from({ length: T }, () => r.nextInt(config.vocabSize));
  const time = async (f: () => unknown) => {
    await f();
    const ms: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      await f();
      ms.push(performance.now() - t0);
    }
    return median(ms);
  };
  const gpu = GpuGpt2.create(device, ckpt, T);
  const gpuMs = await time(() => gpu.forward(tokens));
  const gpuMiB = gpu.bytes / 2 ** 20;
  gpu.destroy();
  const cpu = new Gpt2(ckpt, { dtype: 'f32' });
  const cpuMs = await time(() => cpu.run(tokens));
  return {
    name: 'gpt2-forward',
    shape: { ...config, T },
    samples,
    gpu: { median_ms: gpuMs, tokens_per_s: (T * 1000) / gpuMs, gpu_mib: gpuMiB },
    cpu_f32: { median_ms: cpuMs, tokens_per_s: (T * 1000) / cpuMs },
    gpu_over_cpu_speed: cpuMs / gpuMs,
  };
}
