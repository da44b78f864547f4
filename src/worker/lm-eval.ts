/**
 * The language model behind the downstream measures of a full evaluation (./eval-downstream.ts), for either
 * family: the runner (src/eval/lm-runner.ts for llama2.c, src/eval/gpt2-runner.ts for GPT-2; WGSL
 * when a device is there, CPU otherwise) and the held-out windows, each opened as the extraction
 * opened its windows (llama2.c: BOS + the paragraph; GPT-2: <|endoftext|> + the paragraph).
 */
import { gpt2Runner } from '../eval/gpt2-runner';
import { cpuRunner, gpuRunner, type LmRunner } from '../eval/lm-runner';
import type { LlamaCheckpoint } from '../lm/checkpoint';
import { splitParagraphs } from '../lm/extract';
import { Llama } from '../lm/forward';
import { Gpt2 } from '../lm/gpt2/forward';
import { gpt2GpuFit } from '../lm/gpt2/gpu-forward';
import { llamaGpuFit } from '../lm/gpu-forward';
import { encode, type Tokenizer } from '../lm/tokenizer';
import { gpuGpt2For } from './gpt2-extract';
import type { Gpt2LmContext } from './lm-context';
import { gpuLlamaFor } from './lm-extract';

/** A llama2.c model with its text (the demo's, or an extracted dataset's), or a GPT-2 context. */
export type EvalLm =
  | { family?: 'llama2c'; ckpt: LlamaCheckpoint; tok: Tokenizer; text: string; charsUsed: number }
  | Gpt2LmContext;

/** The WGSL forward on `device` (the default when there is one and the model fits), or the CPU one. */
export function lmRunnerFor(lm: EvalLm, want: 'auto' | 'gpu' | 'cpu', device: GPUDevice | null): LmRunner {
  if (want === 'gpu' && !device) throw new Error('no WebGPU device for the WGSL forward pass');
  if (lm.family === 'gpt2') {
    const misfit = device && want !== 'cpu' ? gpt2GpuFit(lm.ckpt.config, lm.window, device.limits) : null;
    if (misfit && want === 'gpu') throw new Error(`${lm.name}: ${misfit}`);
    if (device && want !== 'cpu' && !misfit)
      return gpt2Runner(gpuGpt2For(device, lm.ckpt, lm.window), lm.site);
    return gpt2Runner(new Gpt2(lm.ckpt), lm.site);
  }
  const c = lm.ckpt.config;
  const misfit = device && want !== 'cpu' ? llamaGpuFit(c, c.seqLen, device.limits) : null;
  if (misfit && want === 'gpu') throw new Error(`${lm.ckpt.name}: ${misfit}`);
  if (device && want !== 'cpu' && !misfit) return gpuRunner(gpuLlamaFor(device, lm.ckpt));
  return cpuRunner(new Llama(lm.ckpt));
}

/**
 * Windows of held-out text (paragraphs after the part the dataset used), each from the model's
 * opening token, at most `windowLen` tokens (GPT-2: no longer than the extraction's windows, so
 * every position was seen in training) and `maxTokens` in all.
 */
export function heldOutWindows(
  lm: EvalLm,
  maxTokens: number,
  maxWindows: number,
  windowLen = 96,
): Int32Array[] {
  const paras = splitParagraphs(lm.text.slice(lm.charsUsed));
  const gpt2 = lm.family === 'gpt2';
  const cap = gpt2
    ? Math.min(lm.window, lm.ckpt.config.nPositions)
    : Math.min(windowLen, lm.ckpt.config.seqLen);
  const windows: Int32Array[] = [];
  let tokens = 0;
  for (const p of paras) {
    if (windows.length >= maxWindows || tokens >= maxTokens) break;
    let ids: Int32Array;
    if (gpt2) {
      const body = lm.tok.encode(p.text);
      ids = new Int32Array(body.length + 1);
      ids[0] = lm.tok.eotId;
      ids.set(body, 1);
    } else ids = encode(lm.tok, p.text, { bos: true });
    if (ids.length < 8) continue;
    const w = ids.slice(0, Math.min(cap, 1 + maxTokens - tokens));
    windows.push(w);
    tokens += w.length;
  }
  if (windows.length === 0)
    throw new Error(
      'no held-out text left for the language-model measures (the dataset used the whole text): extract fewer tokens',
    );
  return windows;
}
