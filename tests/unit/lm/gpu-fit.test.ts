/**
 * The WGSL forwards' fit checks, before anything is allocated (src/lm/gpu-forward.ts llamaGpuFit,
 * src/lm/gpu-window.ts lmFit and checkStaging): a model that a device's limits refuse gets one line
 * naming the buffer or dispatch, and the evaluation falls back to the CPU forward ('auto') or stops
 * with that line ('gpu'). GPT-2's twin (gpt2GpuFit) is tested in tests/gpu/gpt2.gpu.ts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { LlamaConfig } from '../../../src/lm/checkpoint';
import { defineWebGpuFlags } from '../webgpu-flags';
import { stories } from './helpers';

type GpuForward = typeof import('../../../src/lm/gpu-forward');
type GpuWindow = typeof import('../../../src/lm/gpu-window');
type LmEval = typeof import('../../../src/worker/lm-eval');
let llamaGpuFit: GpuForward['llamaGpuFit'];
let checkStaging: GpuWindow['checkStaging'];
let lmRunnerFor: LmEval['lmRunnerFor'];
beforeAll(async () => {
  defineWebGpuFlags();
  ({ llamaGpuFit } = await import('../../../src/lm/gpu-forward'));
  ({ checkStaging } = await import('../../../src/lm/gpu-window'));
  ({ lmRunnerFor } = await import('../../../src/worker/lm-eval'));
});

/** WebGPU's default limits (what a device gets when it asks for nothing more). */
const DEFAULTS = {
  maxStorageBufferBindingSize: 2 ** 27,
  maxBufferSize: 2 ** 28,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeWorkgroupsPerDimension: 65535,
};
const BIG = { ...DEFAULTS, maxStorageBufferBindingSize: 2 ** 32, maxBufferSize: 2 ** 32 };

/** Llama 2 7B as llama2.c's export writes it. */
const LLAMA7B: LlamaConfig = {
  dim: 4096,
  hiddenDim: 11008,
  nLayers: 32,
  nHeads: 32,
  nKvHeads: 32,
  vocabSize: 32000,
  seqLen: 2048,
  sharedClassifier: false,
  headSize: 128,
  kvDim: 4096,
};

describe('llamaGpuFit', () => {
  it('stories260K fits the default limits at its whole context', () => {
    const c = stories().ckpt.config;
    expect(llamaGpuFit(c, c.seqLen, DEFAULTS)).toBeNull();
  });

  it('names the first buffer over the binding limit', () => {
    expect(llamaGpuFit(LLAMA7B, 256, DEFAULTS)).toBe(
      'token_embedding needs 500.0 MiB in one GPU buffer; this device binds less than 128.0 MiB',
    );
    // a binding limit above maxBufferSize does not help
    expect(llamaGpuFit(LLAMA7B, 256, { ...DEFAULTS, maxStorageBufferBindingSize: 2 ** 32 })).toContain(
      'binds less than 256.0 MiB',
    );
  });

  it('refuses dispatches past the per-dimension workgroup count, with the way out', () => {
    // SwiGLU dispatches T·hidden/64 workgroups: 381 rows fit 65,535, 382 do not
    const wide = { ...LLAMA7B, dim: 512, kvDim: 512, headSize: 16 };
    expect(llamaGpuFit(wide, 381, BIG)).toBeNull();
    expect(llamaGpuFit(wide, 382, BIG)).toBe(
      'the SwiGLU needs 65704 workgroups in one dimension; this device dispatches at most 65535; use a shorter window',
    );
    // the token embedding (T·dim/64) goes first at the 7B's full context
    expect(llamaGpuFit(LLAMA7B, 2048, BIG)).toMatch(/^the token embedding needs 131072 workgroups/);
    expect(llamaGpuFit(LLAMA7B, 256, BIG)).toBeNull();
  });

  it('refuses heads wider than the attention kernel holds, and checks each weight buffer', () => {
    expect(llamaGpuFit({ ...LLAMA7B, nHeads: 8, nKvHeads: 8, headSize: 512 }, 64, BIG)).toBe(
      "head size 512 is over the attention kernel's 256",
    );
    // a 128 MiB embedding on a 128 MiB binding: refused, as SwiftShader refused a buffer of exactly its
    // limit (src/gpu/limits.ts); 4 KiB less fits, and then a layer's concatenated wq|wk|wv does not
    const at128 = { ...BIG, maxStorageBufferBindingSize: 2 ** 27, maxBufferSize: 2 ** 27 };
    expect(llamaGpuFit({ ...LLAMA7B, vocabSize: 8192 }, 8, at128)).toBe(
      'token_embedding needs 128.0 MiB in one GPU buffer; this device binds less than 128.0 MiB',
    );
    const oneRowLess = { ...LLAMA7B, vocabSize: 8192 - 1 };
    expect(llamaGpuFit(oneRowLess, 8, at128)).toBe(
      "a layer's wq|wk|wv needs 192.0 MiB in one GPU buffer; this device binds less than 128.0 MiB",
    );
  });
});

describe('the staging buffer and the evaluation runner', () => {
  it('read-outs over the largest buffer are refused with what to do', () => {
    expect(() => checkStaging(2 ** 29, { maxBufferSize: 2 ** 28 }, '3 read-outs of 512 tokens')).toThrow(
      "3 read-outs of 512 tokens need 512.0 MiB at once; this device's buffers hold less than 256.0 MiB: read fewer sites or a shorter window",
    );
    // exactly the limit is refused (src/gpu/limits.ts), a page less is not
    expect(() => checkStaging(2 ** 28, { maxBufferSize: 2 ** 28 }, 'x')).toThrow('x need 256.0 MiB');
    expect(() => checkStaging(2 ** 28 - 4096, { maxBufferSize: 2 ** 28 }, 'x')).not.toThrow();
  });

  it("a llama2.c model the device cannot hold: CPU forward under 'auto', the reason under 'gpu'", () => {
    const { ckpt, tok } = stories();
    const lm = { ckpt, tok, text: 'Once upon a time.', charsUsed: 0 };
    // limits this model's 512 × 64 embedding (128 KiB) does not fit; nothing is allocated on it
    const limits = { ...DEFAULTS, maxStorageBufferBindingSize: 2 ** 16, maxBufferSize: 2 ** 16 };
    const device = { limits } as unknown as GPUDevice;
    expect(lmRunnerFor(lm, 'auto', device).backend).toBe('cpu');
    expect(() => lmRunnerFor(lm, 'gpu', device)).toThrow(
      'stories260K.bin: token_embedding needs 128.0 KiB in one GPU buffer; this device binds less than 64.0 KiB',
    );
  });
});
