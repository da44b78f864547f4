/**
 * The kernels GPT-2 adds to the WGSL forward (src/gpu/kernels/gpt2-kernels.ts): LayerNorm, bias,
 * GELU (tanh form), residual add and token + position embedding, each against a few lines of float64
 * on small odd shapes, and at T past the 256-workgroup cap so the strided loops wrap.
 *
 * Tolerances (|got − want| ≤ atol + rtol·|want|, float64 reference): element-wise kernels do one or
 * two f32 operations per element, so rtol 1e-6 (≈ 8 ulp) with atol 1e-7 for values near zero;
 * LayerNorm sums d values in f32 for the mean and variance, atol 1e-6 · |gain| scale, rtol 1e-5.
 */
import { createBufferFrom, readF32, STORAGE } from '../../src/gpu/buffers';
import {
  createLmAdd,
  createLmBias,
  createLmEmbedPos,
  createLmGelu,
  createLmLayernorm,
} from '../../src/gpu/kernels/gpt2-kernels';
import { LM_PARAMS_BYTES, type LmKernel, writeLmParams } from '../../src/gpu/kernels/lm-kernels';
import { assertClose, gpuTest, randn } from './harness';

/** Runs one kernel over T rows with `buffers` after the params uniform (startPos 0) and reads `out`. */
async function run(
  device: GPUDevice,
  k: LmKernel,
  T: number,
  buffers: GPUBuffer[],
  out: GPUBuffer,
  outLen: number,
): Promise<Float32Array> {
  const params = device.createBuffer({
    label: 'gpt2-test:params',
    size: LM_PARAMS_BYTES,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  writeLmParams(device, params, T, 0);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  k.dispatch(pass, k.bind('test', [params, ...buffers]), T);
  pass.end();
  device.queue.submit([enc.finish()]);
  const got = await readF32(device, out, outLen);
  params.destroy();
  for (const b of buffers) b.destroy();
  return got;
}

const buf = (device: GPUDevice, data: Float32Array | Uint32Array) => createBufferFrom(device, 'in', data);
const empty = (device: GPUDevice, n: number) =>
  device.createBuffer({ label: 'gpt2-test:out', size: Math.max(16, n * 4), usage: STORAGE });

/** torch.nn.LayerNorm in float64. */
function layerNorm64(x: Float32Array, g: Float32Array, b: Float32Array, T: number, d: number, eps: number) {
  const out = new Float64Array(T * d);
  for (let t = 0; t < T; t++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[t * d + i];
    mean /= d;
    let v = 0;
    for (let i = 0; i < d; i++) v += (x[t * d + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / d + eps);
    for (let i = 0; i < d; i++) out[t * d + i] = (x[t * d + i] - mean) * inv * g[i] + b[i];
  }
  return out;
}

for (const { T, d, eps, offset } of [
  { T: 5, d: 70, eps: 1e-5, offset: 0 },
  { T: 3, d: 3, eps: 1e-5, offset: 0 },
  // A row mean 100× its spread: the variance is taken about the mean, so nothing cancels.
  { T: 9, d: 768, eps: 1e-5, offset: 100 },
  // More rows than workgroups (256): each workgroup takes several rows.
  { T: 300, d: 24, eps: 1e-3, offset: 0 },
]) {
  gpuTest(`gpt2 layernorm T=${T} d=${d} eps=${eps}${offset ? ` mean ${offset}` : ''}`, async (device) => {
    const x = randn(T * d, 21, 2).map((v) => v + offset);
    const g = randn(d, 22).map((v) => 1 + 0.3 * v);
    const b = randn(d, 23, 0.5);
    const want = layerNorm64(x, g, b, T, d, eps);
    const out = empty(device, T * d);
    const k = createLmLayernorm(device, { d, eps });
    const got = await run(device, k, T, [buf(device, x), buf(device, g), buf(device, b), out], out, T * d);
    assertClose(got, want, 2e-6, 1e-5, 'layernorm');
  });
}

gpuTest('gpt2 layernorm: a constant row gives the bias (variance 0, eps keeps it finite)', async (device) => {
  const d = 16;
  const x = new Float32Array(d).fill(3.5);
  const g = randn(d, 24);
  const b = randn(d, 25);
  const out = empty(device, d);
  const k = createLmLayernorm(device, { d, eps: 1e-5 });
  const got = await run(device, k, 1, [buf(device, x), buf(device, g), buf(device, b), out], out, d);
  assertClose(got, b, 0, 0, 'layernorm of a constant row');
});

for (const { T, n } of [
  { T: 7, n: 45 },
  { T: 300, n: 67 },
]) {
  gpuTest(`gpt2 bias T=${T} n=${n}`, async (device) => {
    const y0 = randn(T * n, 26);
    const bias = randn(n, 27);
    const want = new Float64Array(T * n);
    for (let i = 0; i < T * n; i++) want[i] = y0[i] + bias[i % n];
    const y = buf(device, y0);
    const got = await run(device, createLmBias(device, { n }), T, [buf(device, bias), y], y, T * n);
    assertClose(got, want, 1e-7, 1e-6, 'bias');
  });
}

/** ½x(1 + tanh(√(2/π)(x + 0.044715x³))) in float64. */
const gelu64 = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

gpuTest('gpt2 gelu (tanh form) T=300 n=37, incl. 0, ±1e-20, ±9, ±30, ±1e30', async (device) => {
  const T = 300;
  const n = 37;
  const y0 = randn(T * n, 28, 3);
  y0.set([0, 1e-20, -1e-20, 9, -9, 30, -30, 1e30, -1e30, -5, -4.5], 0);
  const want = Float64Array.from(y0, gelu64);
  const y = buf(device, y0);
  const got = await run(device, createLmGelu(device, { n }), T, [y], y, T * n);
  assertClose(got, want, 1e-7, 1e-6, 'gelu');
});

gpuTest('gpt2 residual add T=300 n=70', async (device) => {
  const T = 300;
  const n = 70;
  const a = randn(T * n, 29);
  const x0 = randn(T * n, 30);
  const want = Float64Array.from(x0, (v, i) => v + a[i]);
  const x = buf(device, x0);
  const got = await run(device, createLmAdd(device, { n }), T, [buf(device, a), x], x, T * n);
  assertClose(got, want, 1e-7, 1e-6, 'add');
});

for (const { T, d } of [
  { T: 5, d: 7 },
  { T: 300, d: 64 },
]) {
  gpuTest(`gpt2 token + position embedding T=${T} d=${d}`, async (device) => {
    const V = 11;
    const wte = randn(V * d, 31);
    const wpe = randn(T * d, 32);
    const tokens = Uint32Array.from({ length: T }, (_, t) => (t * 7 + 3) % V);
    const want = new Float64Array(T * d);
    for (let t = 0; t < T; t++)
      for (let i = 0; i < d; i++) want[t * d + i] = wte[tokens[t] * d + i] + wpe[t * d + i];
    const out = empty(device, T * d);
    const k = createLmEmbedPos(device, { d });
    const bufs = [buf(device, tokens), buf(device, wte), buf(device, wpe), out];
    const got = await run(device, k, T, bufs, out, T * d);
    assertClose(got, want, 1e-7, 1e-6, 'embed');
  });
}
