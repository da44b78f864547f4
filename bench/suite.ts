import { createGpu } from '../src/gpu/device';
import type { EncodeVariant } from '../src/gpu/kernels/encode';
import type { EncodeTopKVariant } from '../src/gpu/kernels/encode-topk';
import { setLoopGroupsCap } from '../src/gpu/kernels/kernel';
import type { TopKVariant } from '../src/gpu/kernels/topk';
import { IN_PASS_TIMESTAMPS } from '../src/gpu/timing';
import { benchDispatch } from './dispatch.bench';
import { benchEncode } from './encode.bench';
import { benchForms } from './forms.bench';
import { benchGpt2 } from './gpt2.bench';
import { benchScale } from './scale.bench';
import { benchSoak } from './soak.bench';
import { benchStep, benchVariants } from './step.bench';
import { benchTopK } from './topk.bench';

/**
 * Issue #19's two step shapes: the peer-sized d = 64 and GPT-2 small's width d = 768 with AuxK's
 * paper-sized kAux (the step, forms and step-idle profiles use them).
 */
const STEP_SHAPES = [
  { B: 4096, d: 64, N: 1024, k: 8, kAux: 32 },
  { B: 1024, d: 768, N: 4096, k: 32, kAux: 384 },
] as const;

/**
 * The benchmark suite behind `npm run bench` (bench/main.ts in headless Chromium) and `npm run
 * bench:dawn` (bench/dawn.ts under Node with Dawn's own binding): `params` are the page's query
 * (only, samples, max-n, encode, topk, fused, shape, gpt2-layers, gpt2-T, minutes, soak-tokens,
 * loop-groups: the grid-stride loops' workgroup cap, e.g. 256, the software cap, on a GPU).
 * Returns { adapter, when, entries }; destroys the device it creates.
 */
export async function runBenchSuite(params: URLSearchParams) {
  const only = params.get('only') ?? '';
  const samples = Number(params.get('samples') ?? 3);
  /** --max-n: the largest N of the scale bench, as a number (65536) or a power (2^16); default 2^20. */
  const maxN = params.get('max-n') ?? '2^20';
  const maxLog2N = /^2\^\d+$/.test(maxN) ? Number(maxN.slice(2)) : Math.floor(Math.log2(Number(maxN)));

  const gpu = await createGpu(
    { onUncapturedError: (m) => console.log(`[gpu error] ${m}`) },
    'sae-lab-bench',
    [IN_PASS_TIMESTAMPS],
  );
  if (params.get('loop-groups')) setLoopGroupsCap(gpu.device, Number(params.get('loop-groups')));
  const entries: unknown[] = [];
  // only=adapter matches no bench: the page just reports its adapter (bench/hw.ts checks it first).
  const want = (name: string) => !only || only.split(',').includes(name);
  if (want('dispatch')) entries.push(await benchDispatch(gpu.device, samples));
  if (want('topk')) {
    entries.push(await benchTopK(gpu.device, { B: 4096, N: 1024, k: 8 }, samples));
    entries.push(await benchTopK(gpu.device, { B: 1024, N: 4096, k: 32 }, samples));
  }
  if (want('forms')) {
    // The step's two shapes with the software picks (--encode/--topk name others).
    const kernels = {
      encode: (params.get('encode') ?? 'unroll16x16') as EncodeVariant,
      topk: (params.get('topk') ?? 'chunked') as TopKVariant,
    };
    for (const shape of STEP_SHAPES) entries.push(await benchForms(gpu.device, shape, samples, kernels));
  }
  if (want('encode')) entries.push(await benchEncode(gpu.device, 1024, 768, 4096, samples));
  if (want('encode-mid')) entries.push(await benchEncode(gpu.device, 256, 256, 1024, samples));
  // The training CLI's peer configuration (issue #19: B=2048, d=64, N=1024).
  if (want('encode-peer')) entries.push(await benchEncode(gpu.device, 2048, 64, 1024, samples));
  if (want('step-small'))
    entries.push(await benchStep(gpu.device, { B: 256, d: 64, N: 256, k: 8, kAux: 32 }, samples));
  const stepPicks = {
    encode: (params.get('encode') ?? 'unroll16x16') as EncodeVariant,
    topk: (params.get('topk') ?? 'chunkmax') as TopKVariant,
  };
  if (want('step')) {
    // The variants the autotuner picks on SwiftShader (the unrolled 16×16 encoder tile, the chunked
    // TopK over the encoder's chunk maxima); --encode/--topk bench others (unroll8x8 + insert were the
    // picks before 2026-12-01, unroll16x16 + chunked until 2026-12-01 12:30), and
    // --encode auto lets the autotuner pick at each shape (on a real GPU its pick differs).
    const tune = params.get('encode') === 'auto';
    const kernels = tune ? {} : stepPicks;
    for (const shape of STEP_SHAPES) entries.push(await benchStep(gpu.device, shape, samples, kernels, tune));
  }
  if (want('step-idle')) {
    // d = 768 with AuxK idle (no latent dead, as in a healthy run): what AuxK adds at 'step''s second
    // shape. 'step''s first shape has no dead latent already.
    entries.push(await benchStep(gpu.device, STEP_SHAPES[1], samples, stepPicks, false, true));
  }
  if (want('step-shape')) {
    // --shape B,d,N,k,kAux: the step profile at one shape of the user's (e.g. a scale shape).
    const [B, d, N, k, kAux] = (params.get('shape') ?? '').split(',').map(Number);
    if (![B, d, N, k, kAux].every((v) => Number.isInteger(v) && v > 0))
      throw new Error(`--shape ${params.get('shape')}: expected B,d,N,k,kAux as positive integers`);
    const tune = params.get('encode') === 'auto';
    const kernels = {
      ...(params.get('encode') && !tune ? { encode: params.get('encode') as EncodeVariant } : {}),
      ...(params.get('topk') ? { topk: params.get('topk') as TopKVariant } : {}),
      ...(params.get('fused') ? { fused: params.get('fused') as EncodeTopKVariant } : {}),
    };
    entries.push(await benchStep(gpu.device, { B, d, N, k, kAux }, samples, kernels, tune));
  }
  if (want('variants'))
    entries.push(await benchVariants(gpu.device, { B: 1024, d: 64, N: 1024, k: 8, kAux: 32 }, samples));
  if (want('scale')) {
    if (!Number.isFinite(maxLog2N)) throw new Error(`--max-n ${maxN}: expected a number or 2^E`);
    // One sample by default: at N = 2^20 a step takes minutes on SwiftShader.
    // DEFAULT_KERNELS unless ?encode= / ?topk= say otherwise.
    // --encode auto: the autotuner's pick, as when no encoder is named.
    const encode = params.get('encode');
    const kernels = {
      ...(encode && encode !== 'auto' ? { encode: encode as EncodeVariant } : {}),
      ...(params.get('topk') ? { topk: params.get('topk') as TopKVariant } : {}),
    };
    entries.push(
      await benchScale(gpu.device, {
        samples: Number(params.get('samples') ?? 1),
        maxLog2N,
        kernels,
        fusedVariant: params.get('fused') ?? undefined,
      }),
    );
  }
  if (want('gpt2')) {
    // GPT-2 small's widths, WGSL vs CPU forward; ?gpt2-layers= (default 12) and ?gpt2-T= (default 64,
    // the paper's context) shorten it on SwiftShader.
    const nLayer = Number(params.get('gpt2-layers') ?? 12);
    const T = Number(params.get('gpt2-T') ?? 64);
    entries.push(await benchGpt2(gpu.device, { nLayer, T, samples }));
  }
  // Only when named: it trains for --minutes (default 30) while bench/soak.ts samples it.
  if (only.split(',').includes('soak')) {
    const minutes = Number(params.get('minutes') ?? 30);
    entries.push(
      await benchSoak(gpu.device, {
        maxMinutes: minutes + 5,
        tokensPerRun: Number(params.get('soak-tokens') ?? 2 ** 18),
      }),
    );
  }
  const result = { adapter: gpu.report, when: new Date().toISOString(), entries };
  gpu.destroy();
  return result;
}
