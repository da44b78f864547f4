/**
 * The WGSL llama2.c forward pass: each lm-*.wgsl kernel against a plain CPU computation on small odd
 * shapes, then the whole GpuLlama on stories260K against the float64 numpy fixtures (all 6 residual
 * indices and the logits), against the CPU Llama (f32) on a second window, and the residual-replacement
 * hook (clean replacement is a no-op; another replacement matches the CPU intervention).
 */

import { decodeNpy } from '../../src/data/npy';
import { createBufferFrom, readF32, STORAGE } from '../../src/gpu/buffers';
import {
  createLmAttention,
  createLmEmbed,
  createLmMatmul,
  createLmRmsnorm,
  createLmRope,
  createLmSwiglu,
  LM_PARAMS_BYTES,
  type LmKernel,
  ropeTable,
  writeLmParams,
} from '../../src/gpu/kernels/lm-kernels';
import { type LlamaCheckpoint, readCheckpoint } from '../../src/lm/checkpoint';
import { Llama } from '../../src/lm/forward';
import { GpuLlama } from '../../src/lm/gpu-forward';
import { matmul, rmsnorm } from '../../src/lm/ops';
import { assert, assertClose, gpuTest, randn, rng } from './harness';

// ---------------------------------------------------------------- kernel helpers

/** Runs one kernel over T rows with `inputs` (after the params uniform, when `params`) and reads `out`. */
async function runKernel(
  device: GPUDevice,
  k: LmKernel,
  T: number,
  buffers: GPUBuffer[],
  out: GPUBuffer,
  outLen: number,
  withParams = true,
): Promise<Float32Array> {
  const params = device.createBuffer({
    label: 'lm-test:params',
    size: LM_PARAMS_BYTES,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  writeLmParams(device, params, T, 0);
  const bg = k.bind('test', withParams ? [params, ...buffers] : buffers);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  k.dispatch(pass, bg, T);
  pass.end();
  device.queue.submit([enc.finish()]);
  const got = await readF32(device, out, outLen);
  params.destroy();
  for (const b of buffers) b.destroy();
  return got;
}

const empty = (device: GPUDevice, n: number) =>
  device.createBuffer({ label: 'lm-test:out', size: Math.max(16, n * 4), usage: STORAGE });

// ---------------------------------------------------------------- kernels vs CPU

for (const { T, nIn, nOut, accum } of [
  { T: 7, nIn: 37, nOut: 45, accum: false },
  { T: 1, nIn: 5, nOut: 3, accum: false },
  { T: 33, nIn: 70, nOut: 66, accum: true },
]) {
  gpuTest(`lm matmul T=${T} ${nIn}→${nOut}${accum ? ' accum' : ''}`, async (device) => {
    const x = randn(T * nIn, 1);
    const w = randn(nOut * nIn, 2, 1 / Math.sqrt(nIn));
    const y0 = randn(T * nOut, 3);
    const want = new Float64Array(T * nOut);
    matmul(want, 0, x, w, 0, T, nIn, nOut);
    if (accum) for (let i = 0; i < want.length; i++) want[i] += y0[i];
    const y = accum ? createBufferFrom(device, 'y', y0) : empty(device, T * nOut);
    const xb = createBufferFrom(device, 'x', x);
    const wb = createBufferFrom(device, 'w', w);
    const got = await runKernel(
      device,
      createLmMatmul(device, { nIn, nOut, accum }),
      T,
      [xb, wb, y],
      y,
      T * nOut,
    );
    assertClose(got, want, 2e-6 * Math.sqrt(nIn), 1e-5, 'y');
  });
}

for (const { T, d } of [
  { T: 5, d: 70 },
  { T: 3, d: 3 },
]) {
  gpuTest(`lm rmsnorm T=${T} d=${d}`, async (device) => {
    const x = randn(T * d, 4, 3);
    const w = randn(d, 5);
    const want = new Float64Array(T * d);
    rmsnorm(want, x, w, 0, T, d);
    const out = empty(device, T * d);
    const bufs = [createBufferFrom(device, 'x', x), createBufferFrom(device, 'w', w), out];
    const got = await runKernel(device, createLmRmsnorm(device, { d }), T, bufs, out, T * d, false);
    assertClose(got, want, 1e-6, 1e-5, 'rmsnorm');
  });
}

gpuTest('lm rope T=9 headSize=6 q 3 heads, k 2 heads, row stride 40', async (device) => {
  const T = 9;
  const hs = 6;
  const nRot = 5 * hs;
  const stride = 40;
  const qk = randn(T * stride, 6);
  const table = ropeTable(16, hs);
  const want = Float64Array.from(qk);
  for (let t = 0; t < T; t++) {
    for (let c = 0; c < nRot; c += 2) {
      const j = (c % hs) / 2;
      const ang = t / 10000 ** ((2 * j) / hs);
      const [v0, v1] = [qk[t * stride + c], qk[t * stride + c + 1]];
      want[t * stride + c] = v0 * Math.cos(ang) - v1 * Math.sin(ang);
      want[t * stride + c + 1] = v0 * Math.sin(ang) + v1 * Math.cos(ang);
    }
  }
  const buf = createBufferFrom(device, 'qk', qk);
  const k = createLmRope(device, { headSize: hs, nRot, stride });
  const got = await runKernel(device, k, T, [createBufferFrom(device, 'table', table), buf], buf, T * stride);
  assertClose(got, want, 1e-6, 1e-6, 'rope');
});

/** Plain causal GQA on qkv rows [q | k | v], in float64. */
function attentionRef(qkv: Float32Array, T: number, nHeads: number, nKv: number, hs: number): Float64Array {
  const d = nHeads * hs;
  const stride = d + 2 * nKv * hs;
  const out = new Float64Array(T * d);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < nHeads; h++) {
      const kvh = Math.floor(h / (nHeads / nKv));
      const scores: number[] = [];
      for (let s = 0; s <= t; s++) {
        let dot = 0;
        for (let i = 0; i < hs; i++) dot += qkv[t * stride + h * hs + i] * qkv[s * stride + d + kvh * hs + i];
        scores.push(dot / Math.sqrt(hs));
      }
      const m = Math.max(...scores);
      const e = scores.map((x) => Math.exp(x - m));
      const sum = e.reduce((a, b) => a + b, 0);
      for (let s = 0; s <= t; s++)
        for (let i = 0; i < hs; i++)
          out[t * d + h * hs + i] += (e[s] / sum) * qkv[s * stride + d + nKv * hs + kvh * hs + i];
    }
  }
  return out;
}

for (const { T, nHeads, nKv, hs } of [
  { T: 1, nHeads: 4, nKv: 2, hs: 6 },
  { T: 13, nHeads: 4, nKv: 2, hs: 6 },
  { T: 29, nHeads: 3, nKv: 3, hs: 4 },
  { T: 70, nHeads: 8, nKv: 4, hs: 8 },
]) {
  gpuTest(`lm attention T=${T} heads=${nHeads}/${nKv} headSize=${hs}`, async (device) => {
    const d = nHeads * hs;
    const stride = d + 2 * nKv * hs;
    const qkv = randn(T * stride, 7, 2);
    const want = attentionRef(qkv, T, nHeads, nKv, hs);
    const out = empty(device, T * d);
    const k = createLmAttention(device, { nHeads, nKvHeads: nKv, headSize: hs });
    const got = await runKernel(device, k, T, [createBufferFrom(device, 'qkv', qkv), out], out, T * d);
    assertClose(got, want, 1e-5, 1e-5, 'attention');
  });
}

gpuTest('lm swiglu T=3 hidden=37 (incl. very negative gates)', async (device) => {
  const T = 3;
  const H = 37;
  const hb = randn(T * 2 * H, 8, 3);
  hb[0] = -200;
  hb[1] = 150;
  hb[2] = -88;
  const want = new Float64Array(T * H);
  for (let t = 0; t < T; t++)
    for (let j = 0; j < H; j++) {
      const g = hb[t * 2 * H + j];
      want[t * H + j] = (g / (1 + Math.exp(-g))) * hb[t * 2 * H + H + j];
    }
  const out = empty(device, T * H);
  const got = await runKernel(
    device,
    createLmSwiglu(device, { hidden: H }),
    T,
    [createBufferFrom(device, 'hb', hb), out],
    out,
    T * H,
  );
  assertClose(got, want, 1e-6, 1e-5, 'swiglu');
});

gpuTest('lm embed T=5 d=7', async (device) => {
  const d = 7;
  const emb = randn(11 * d, 9);
  const tokens = new Uint32Array([3, 0, 10, 3, 7]);
  const want = new Float32Array(tokens.length * d);
  for (let t = 0; t < tokens.length; t++) want.set(emb.subarray(tokens[t] * d, (tokens[t] + 1) * d), t * d);
  const out = empty(device, want.length);
  const bufs = [createBufferFrom(device, 'tokens', tokens), createBufferFrom(device, 'emb', emb), out];
  const got = await runKernel(device, createLmEmbed(device, { d }), tokens.length, bufs, out, want.length);
  assertClose(got, want, 0, 0, 'embed');
});

// ---------------------------------------------------------------- whole model: stories260K

const fetchBytes = async (url: string) => {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
};

let loaded: Promise<{
  ckpt: LlamaCheckpoint;
  tokens: Int32Array;
  resid: Float32Array;
  logits: Float32Array;
}> | null = null;
function stories() {
  loaded ??= (async () => {
    const ckpt = readCheckpoint(
      await fetchBytes('/public/models/stories260K/stories260K.bin'),
      'stories260K.bin',
    );
    const npy = async (n: string) =>
      decodeNpy(await fetchBytes(`/tests/fixtures/lm/stories260K_ref_${n}.npy`), n).data;
    return {
      ckpt,
      tokens: (await npy('tokens')) as Int32Array,
      resid: (await npy('resid')) as Float32Array, // [6, 128, 64]
      logits: (await npy('logits')) as Float32Array, // [128, 512]
    };
  })();
  return loaded;
}

const models = new WeakMap<GPUDevice, GpuLlama>();
async function gpuModel(device: GPUDevice) {
  const s = await stories();
  let m = models.get(device);
  if (!m) {
    m = GpuLlama.create(device, s.ckpt);
    models.set(device, m);
  }
  return { ...s, model: m };
}

/** max |a − b| / max |b|. */
function relMax(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert(a.length === b.length, `length ${a.length} vs ${b.length}`);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / scale;
}

// f32 storage and f32 accumulation (the CPU twin accumulates in double) over 5 layers: bound the max
// abs error by 1e-5 · max|ref|, the CPU f32 bound in tests/unit/lm/forward.test.ts
// (observed on SwiftShader: ≤ 1.1e-6 vs the float64 fixture, ≤ 1.8e-6 vs the CPU f32 forward).
const TOL = 1e-5;

function check(what: string, got: ArrayLike<number>, want: ArrayLike<number>, errs: string[]) {
  const r = relMax(got, want);
  errs.push(`${what} ${r.toExponential(2)}`);
  if (!(r < TOL)) throw new Error(`${what}: max abs err ${r.toExponential(3)} · max|ref| ≥ ${TOL}`);
}

gpuTest('lm stories260K T=128: residuals 0..5 and logits match the float64 reference', async (device) => {
  const { model, tokens, resid, logits } = await gpuModel(device);
  const T = 128;
  const D = 64;
  const out = await model.forward(tokens, { residLayers: [0, 1, 2, 3, 4, 5], logits: true });
  const errs: string[] = [];
  for (let i = 0; i <= 5; i++)
    check(`resid ${i}`, out.resid.get(i)!, resid.subarray(i * T * D, (i + 1) * T * D), errs);
  check('logits', out.logits!, logits, errs);
  console.log(`    max err / max|ref|: ${errs.join(', ')}`);
});

/** A second window: 77 random token ids (seeded), BOS first. */
function secondWindow(): Int32Array {
  const r = rng(11);
  const t = new Int32Array(77);
  t[0] = 1;
  for (let i = 1; i < t.length; i++) t[i] = Math.floor(r.u() * 512);
  return t;
}

gpuTest('lm stories260K second window T=77 matches the CPU Llama (f32)', async (device) => {
  const { model, ckpt } = await gpuModel(device);
  const tokens = secondWindow();
  const cpu = new Llama(ckpt, { dtype: 'f32' }).run(tokens, { resid: [0, 1, 2, 3, 4, 5] });
  const out = await model.forward(tokens, { residLayers: [0, 1, 2, 3, 4, 5] });
  const errs: string[] = [];
  for (let i = 0; i <= 5; i++) check(`resid ${i}`, out.resid.get(i)!, cpu.resid.get(i)!, errs);
  check('logits', out.logits!, cpu.logits!, errs);
  console.log(`    max err / max|cpu|: ${errs.join(', ')}`);
  // Without logits only the layers up to the deepest index run; the result is the same.
  const part = await model.forward(tokens, { residLayers: [2], logits: false });
  assert(part.logits === null && part.resid.size === 1, 'logits:false returns only resid 2');
  assertClose(part.resid.get(2)!, out.resid.get(2)!, 0, 0, 'resid 2 without logits');
  // T = 1
  const one = await model.forward(tokens.subarray(0, 1), { residLayers: [5] });
  assertClose(one.logits!, out.logits!.subarray(0, 512), 1e-5, 1e-5, 'T=1 logits = row 0 of the window');
});

gpuTest(
  'lm residual replacement: clean resid changes nothing; other values match the CPU intervention',
  async (device) => {
    const { model, ckpt } = await gpuModel(device);
    const tokens = secondWindow().subarray(0, 50);
    const T = tokens.length;
    const base = await model.forward(tokens, { residLayers: [0, 2, 3, 5] });
    for (const L of [0, 3]) {
      const clean = base.resid.get(L)!;
      const same = await model.forwardResid(tokens, L, clean, { residLayers: [L, 5] });
      assertClose(same.logits!, base.logits!, 0, 0, `logits with clean resid ${L} replaced`);
      assertClose(same.resid.get(5)!, base.resid.get(5)!, 0, 0, `resid 5 with clean resid ${L} replaced`);
      assertClose(same.resid.get(L)!, clean, 0, 0, `resid ${L} is recorded before the replacement`);
    }
    // A GPUBuffer source works the same way.
    const src = createBufferFrom(device, 'replacement', base.resid.get(2)!);
    const viaBuf = await model.forwardResid(tokens, 2, src, {});
    src.destroy();
    assertClose(viaBuf.logits!, base.logits!, 0, 0, 'logits with clean resid 2 replaced from a GPUBuffer');
    // A real edit: halve the residual at index 3; the CPU intervention gives the same downstream logits.
    const edited = base.resid.get(3)!.map((v) => v * 0.5);
    const gpu = await model.forwardResid(tokens, 3, edited);
    const cpu = new Llama(ckpt, { dtype: 'f32' }).run(tokens, {
      interventions: [{ index: 3, fn: (x) => x.set(edited.subarray(0, T * 64)) }],
    });
    const errs: string[] = [];
    check('edited logits', gpu.logits!, cpu.logits!, errs);
    assert(relMax(gpu.logits!, base.logits!) > 1e-2, 'halving resid 3 changes the logits');
    console.log(`    ${errs.join(', ')}`);
  },
);

gpuTest('lm stories260K full context T=seq_len=512 matches the CPU Llama (f32)', async (device) => {
  const { model, ckpt } = await gpuModel(device);
  const r = rng(12);
  const tokens = Int32Array.from({ length: ckpt.config.seqLen }, (_, i) =>
    i === 0 ? 1 : Math.floor(r.u() * 512),
  );
  const cpu = new Llama(ckpt, { dtype: 'f32' }).run(tokens, { resid: [5] });
  const out = await model.forward(tokens, { residLayers: [5] });
  const errs: string[] = [];
  check('resid 5', out.resid.get(5)!, cpu.resid.get(5)!, errs);
  check('logits', out.logits!, cpu.logits!, errs);
  console.log(`    ${errs.join(', ')}`);
  let threw = false;
  try {
    await model.forward(new Int32Array(ckpt.config.seqLen + 1));
  } catch {
    threw = true;
  }
  assert(threw, 'a window longer than the capacity is refused');
});
