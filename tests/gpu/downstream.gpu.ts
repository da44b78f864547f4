/**
 * The language-model measures on the WGSL forward (what the worker's full evaluation runs) against
 * the CPU ones, on the bundled stories260K: the FFN-output read-out of GpuLlama (the extractor's
 * site 'mlp'), the downstream loss with a random TopK SAE spliced in at residual index 2, and the
 * ablation sparsity of a few latents.
 *
 * Tolerances: the two forwards differ by float32 rounding (≤ 1.1e-6 × max|ref| on logits, see
 * lm.gpu.ts), so mean losses agree to ~1e-6 nats; we allow 2e-4 nats absolute on every loss and on
 * the KL, 1e-3 on the fraction recovered (a TopK tie flipped by rounding moves a loss by less), and
 * 2% relative on each latent's ablation count (a difference of two forwards amplifies rounding).
 */
import { encodeSparse } from '../../src/eval/codes';
import { ablationSparsity, downstreamLoss, type SaeOnRaw, saeReconstructor } from '../../src/eval/downstream';
import { ablationSparsityOn, downstreamLossOn, gpuRunner } from '../../src/eval/lm-runner';
import { type LlamaCheckpoint, readCheckpoint } from '../../src/lm/checkpoint';
import { type FloatArray, Llama } from '../../src/lm/forward';
import { GpuLlama } from '../../src/lm/gpu-forward';
import { encode, readTokenizer, type Tokenizer } from '../../src/lm/tokenizer';
import { assert, assertClose, gpuTest, randn } from './harness';

const LAYER = 2;

const fetchBytes = async (url: string) => {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
};

let loaded: Promise<{ ckpt: LlamaCheckpoint; tok: Tokenizer; windows: Int32Array[] }> | null = null;
function stories() {
  loaded ??= (async () => {
    const ckpt = readCheckpoint(
      await fetchBytes('/public/models/stories260K/stories260K.bin'),
      'stories260K.bin',
    );
    const tok = readTokenizer(await fetchBytes('/public/models/stories260K/tok512.bin'), {
      vocabSize: ckpt.config.vocabSize,
      name: 'tok512.bin',
    });
    const text = new TextDecoder().decode(await fetchBytes('/public/text/tinystories_train_head.txt'));
    const ids = encode(tok, text.slice(0, 2500), { bos: true });
    // two BOS-led windows of 48 tokens
    const windows = [ids.slice(0, 48), Int32Array.from([tok.bosId, ...ids.subarray(48, 95)])];
    return { ckpt, tok, windows };
  })();
  return loaded;
}

/** A random TopK SAE, N=128, k=8, unit decoder rows, tied encoder, with the demo's input scale. */
function randomSae(d: number): SaeOnRaw {
  const N = 128;
  const W = randn(N * d, 11);
  for (let i = 0; i < N; i++) {
    let n = 0;
    for (let c = 0; c < d; c++) n += W[i * d + c] ** 2;
    for (let c = 0; c < d; c++) W[i * d + c] /= Math.sqrt(n);
  }
  return {
    params: { W_enc: W.slice(), W_dec: W, b_enc: new Float32Array(N), b_pre: new Float32Array(d) },
    k: 8,
    inputScale: Math.sqrt(64 / 26.33), // E‖x‖² of the demo rows is 26.33
  };
}

gpuTest('lm stories260K: GpuLlama MLP-output read-out equals the CPU Llama', async (device) => {
  const { ckpt, windows } = await stories();
  const g = GpuLlama.create(device, ckpt, { capacity: 64 });
  try {
    const w = windows[0];
    const got = await g.forward(w, { mlpLayers: [1, 3], residLayers: [2], logits: false });
    const cpu = new Llama(ckpt).run(w, { mlp: [1, 3], resid: [2], logits: false });
    for (const l of [1, 3]) {
      const want = cpu.mlp.get(l) as Float32Array;
      let scale = 0;
      for (const v of want) scale = Math.max(scale, Math.abs(v));
      assertClose(got.mlp.get(l) as Float32Array, want, 2e-6 * scale, 0, `mlp ${l}`);
    }
    assertClose(got.resid.get(2) as Float32Array, cpu.resid.get(2) as Float32Array, 1e-5, 1e-5, 'resid 2');
    assert(got.logits === null, 'no logits were asked for');
  } finally {
    g.destroy();
  }
});

gpuTest(
  'lm stories260K: downstream loss on the WGSL forward equals the CPU one (random SAE at layer 2)',
  async (device) => {
    const { ckpt, windows } = await stories();
    const g = GpuLlama.create(device, ckpt, { capacity: 64 });
    try {
      const sae = randomSae(ckpt.config.dim);
      const t0 = performance.now();
      const cpu = downstreamLoss(new Llama(ckpt), windows, LAYER, saeReconstructor(sae));
      const t1 = performance.now();
      const gpu = await downstreamLossOn(gpuRunner(g), windows, LAYER, saeReconstructor(sae));
      const t2 = performance.now();
      console.log(
        `    downstream: cpu ${(t1 - t0).toFixed(0)} ms, gpu ${(t2 - t1).toFixed(0)} ms; clean ${gpu.cleanLoss.toFixed(5)} spliced ${gpu.splicedLoss.toFixed(5)} (cpu ${cpu.splicedLoss.toFixed(5)}) zero ${gpu.zeroLoss.toFixed(5)}`,
      );
      assert(gpu.tokens === cpu.tokens, `tokens ${gpu.tokens} vs ${cpu.tokens}`);
      for (const key of ['cleanLoss', 'splicedLoss', 'zeroLoss', 'kl'] as const)
        assert(Math.abs(gpu[key] - cpu[key]) <= 2e-4, `${key}: gpu ${gpu[key]} vs cpu ${cpu[key]}`);
      assert(
        Math.abs(gpu.fractionRecovered - cpu.fractionRecovered) <= 1e-3,
        `fraction recovered: gpu ${gpu.fractionRecovered} vs cpu ${cpu.fractionRecovered}`,
      );
      assert(gpu.zeroLoss > gpu.splicedLoss && gpu.splicedLoss > gpu.cleanLoss, 'clean < spliced < zero');
    } finally {
      g.destroy();
    }
  },
);

gpuTest('lm stories260K: ablation sparsity on the WGSL forward equals the CPU one', async (device) => {
  const { ckpt, windows } = await stories();
  const g = GpuLlama.create(device, ckpt, { capacity: 64 });
  try {
    const d = ckpt.config.dim;
    const sae = randomSae(d);
    const model = new Llama(ckpt);
    const w = windows[0].subarray(0, 24);
    const resid = model.run(w, { resid: [LAYER], logits: false }).resid.get(LAYER) as FloatArray;
    const xs = Float32Array.from(resid.subarray(d, 3 * d), (v) => v * (sae.inputScale as number));
    const latents = [...new Set(Array.from(encodeSparse(sae.params, xs, 2, d, sae.k).idx))].slice(0, 3);
    const opts = { latents, positionsPerLatent: 1, futureTokens: 8 };
    const cpu = ablationSparsity(model, [w], LAYER, sae, opts);
    const gpu = await ablationSparsityOn(gpuRunner(g), [w], LAYER, { sae }, opts);
    assert(gpu.latents.length === cpu.latents.length && gpu.latents.length > 0, 'same latents measured');
    gpu.latents.forEach((i, j) => {
      const c = cpu.effectiveCount[Array.from(cpu.latents).indexOf(i)];
      assert(
        Math.abs(gpu.effectiveCount[j] - c) <= 0.02 * c,
        `latent ${i}: gpu (L1/L2)² ${gpu.effectiveCount[j]} vs cpu ${c}`,
      );
    });
  } finally {
    g.destroy();
  }
});
