/**
 * The CLI's file of the autotuner's choices (cli/autotune-cache.ts): what is remembered reads back,
 * a damaged file reads as none (the autotuner then times again), and SAE_LAB_AUTOTUNE_CACHE=off
 * neither reads nor writes. The worker's side (a remembered key is not timed) is in dashboards.test.ts.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { readAutotuneCache, rememberAutotune } from '../../../cli/autotune-cache';
import type { KernelChoice } from '../../../src/sae/step-host';

const dir = mkdtempSync(join(tmpdir(), 'sae-autotune-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const saved = process.env.SAE_LAB_AUTOTUNE_CACHE;
afterEach(() => {
  if (saved === undefined) delete process.env.SAE_LAB_AUTOTUNE_CACHE;
  else process.env.SAE_LAB_AUTOTUNE_CACHE = saved;
});

const A: KernelChoice = { encode: 'unroll8x8', topk: 'chunked', topkTile: 2048, fused: null };
const B: KernelChoice = { encode: 'vec4x8', topk: 'bitonic', topkTile: 4096, fused: null };

describe('the CLI autotune cache', () => {
  it('remembers choices by key in the named file, keeping the others', () => {
    const file = join(dir, 'sub', 'autotune.json');
    process.env.SAE_LAB_AUTOTUNE_CACHE = file;
    expect(readAutotuneCache()).toEqual({});
    rememberAutotune('swiftshader|B256|d64', A);
    rememberAutotune('swiftshader|B1024|d768', B);
    rememberAutotune('swiftshader|B256|d64', B);
    expect(readAutotuneCache()).toEqual({ 'swiftshader|B256|d64': B, 'swiftshader|B1024|d768': B });
  });

  it('leaves out the compiled copy of the encoder (it belongs to the run that compiled it)', () => {
    const file = join(dir, 'copy.json');
    process.env.SAE_LAB_AUTOTUNE_CACHE = file;
    rememberAutotune('k', { ...A, encodeCopy: 2 });
    expect(readAutotuneCache()).toEqual({ k: A });
  });

  it('a damaged file reads as none', () => {
    const file = join(dir, 'bad.json');
    process.env.SAE_LAB_AUTOTUNE_CACHE = file;
    for (const text of ['{"swiftshader|B256', '[1, 2]', 'null']) {
      writeFileSync(file, text);
      expect(readAutotuneCache()).toEqual({});
    }
    rememberAutotune('k', A);
    expect(readAutotuneCache()).toEqual({ k: A });
  });

  it('off: nothing read, nothing written', () => {
    process.env.SAE_LAB_AUTOTUNE_CACHE = 'off';
    rememberAutotune('k', A);
    expect(readAutotuneCache()).toEqual({});
    expect(existsSync(join(process.cwd(), 'off'))).toBe(false);
  });
});
