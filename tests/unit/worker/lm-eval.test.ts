/**
 * The downstream measures' model for a GPT-2 dataset (src/worker/lm-eval.ts), without a device: the
 * held-out windows open with <|endoftext|>, start after the text the rows used and are no longer
 * than the extraction's windows; the runner reads and splices at the extracted site kind (its index
 * is the block), on the CPU twin when there is no device.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readGpt2Checkpoint } from '../../../src/lm/gpt2/checkpoint';
import { Gpt2 } from '../../../src/lm/gpt2/forward';
import { readGpt2Tokenizer } from '../../../src/lm/gpt2/tokenizer';
import type { Gpt2LmContext } from '../../../src/worker/lm-context';
import { defineWebGpuFlags } from '../webgpu-flags';

type LmEval = typeof import('../../../src/worker/lm-eval');
let heldOutWindows: LmEval['heldOutWindows'];
let lmRunnerFor: LmEval['lmRunnerFor'];
beforeAll(async () => {
  defineWebGpuFlags();
  ({ heldOutWindows, lmRunnerFor } = await import('../../../src/worker/lm-eval'));
});

const DIR = resolve(import.meta.dirname, '../../fixtures/gpt2/bytes');

async function context(): Promise<Gpt2LmContext> {
  const ckpt = await readGpt2Checkpoint({
    config: readFileSync(resolve(DIR, 'config.json'), 'utf8'),
    model: new Blob([readFileSync(resolve(DIR, 'model.safetensors'))]),
    name: 'bytes',
  });
  const tok = readGpt2Tokenizer(
    ['vocab.json', 'merges.txt'].map((n) => ({ name: n, bytes: readFileSync(resolve(DIR, n)) })),
  );
  const used = 'USED paragraph, never held out.\n\n';
  const text = `${used}First held-out paragraph is long enough to be cut at the window.\n\nShort.\n\nThird one, also held out.`;
  return {
    family: 'gpt2',
    name: 'bytes',
    ckpt,
    tok,
    text,
    charsUsed: used.length,
    layer: 1,
    site: 'attn_out',
    window: 12,
    keepBos: false,
    positions: new Int32Array(0),
  };
}

describe('GPT-2 behind the evaluation worker', () => {
  it('held-out windows: <|endoftext|> first, after the used text, at most the extraction window', async () => {
    const lm = await context();
    const w = heldOutWindows(lm, 1000, 10);
    // "Short." gives 7 ids (< 8) and is skipped, as for llama2.c
    expect(w.map((x) => x.length)).toEqual([12, 12]);
    for (const x of w) expect(x[0]).toBe(256);
    expect(lm.tok.decode(w[0].subarray(1))).toBe('First held-');
    expect(lm.tok.decode(w[1].subarray(1))).toBe('Third one, ');
    expect(heldOutWindows(lm, 15, 10).map((x) => x.length)).toEqual([12, 4]);
  });

  it('the runner reads and replaces the extracted site kind at the block (CPU twin without a device)', async () => {
    const lm = await context();
    const runner = lmRunnerFor(lm, 'auto', null);
    expect([runner.backend, runner.config.dim, runner.config.vocabSize]).toEqual(['cpu', 24, 257]);
    expect(() => lmRunnerFor(lm, 'gpu', null)).toThrow('no WebGPU device for the WGSL forward pass');
    const win = heldOutWindows(lm, 1000, 1)[0];
    const twin = new Gpt2(lm.ckpt);
    const ref = twin.run(win, { sites: [{ kind: 'attn_out', layer: 1 }] });
    const got = await runner.run(win, { resid: 1, logits: true });
    expect(Array.from(got.resid as Float64Array)).toEqual(
      Array.from(ref.sites.get('blocks.1.hook_attn_out') as Float64Array),
    );
    const zero = new Float32Array(win.length * 24);
    const z = await runner.run(win, { replace: { index: 1, data: zero } });
    const zref = twin.run(win, { replace: { site: { kind: 'attn_out', layer: 1 }, data: zero } });
    expect(Array.from(z.logits as Float64Array)).toEqual(Array.from(zref.logits as Float64Array));
    expect(Array.from(z.logits as Float64Array)).not.toEqual(Array.from(got.logits as Float64Array));
  });
});
