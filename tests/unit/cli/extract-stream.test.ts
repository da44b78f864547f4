/**
 * `extract` streams rows to disk (headers reserved, then rewritten with the count) and stores
 * float16 with --dtype f16: on the byte-level GPT-2 fixture, the f16 file holds exactly the f32
 * file's values rounded to binary16, both parse as ordinary .npy of the final shape (numpy's reader
 * rules: decodeNpy refuses a file whose bytes disagree with its header), and the token ids agree.
 */
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../../cli/extract';
import { f16BitsToF32, f32ToF16Bits } from '../../../src/data/half';
import { decodeNpy } from '../../../src/data/npy';

const MODEL = resolve(import.meta.dirname, '../../fixtures/gpt2/bytes');

describe('extract: streamed to disk, --dtype f16', () => {
  it('f16 rows are the f32 rows rounded; shapes and token ids agree', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'extract-stream-'));
    const text = join(MODEL, 'text.txt');
    const errWrite = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      const base = ['--model', MODEL, '--text', text, '--layer', '1', '--site', 'mlp_out', '--keep-bos'];
      expect(await main([...base, '--out', join(dir, 'a.npy')])).toBe(0);
      expect(await main([...base, '--dtype', 'f16', '--out', join(dir, 'h.npy')])).toBe(0);
      expect(await main([...base, '--dtype', 'bf16', '--out', join(dir, 'x.npy')])).toBe(2);
    } finally {
      process.stderr.write = errWrite;
    }
    const a = decodeNpy(readFileSync(join(dir, 'a.npy')));
    const h = decodeNpy(readFileSync(join(dir, 'h.npy')));
    // "The lab reads GPT-2.\n": 20 bytes after <|endoftext|>, position 0 kept
    const n = readFileSync(text, 'utf8').trim().length + 1;
    expect([a.descr, a.shape]).toEqual(['<f4', [n, 24]]);
    expect([h.descr, h.shape]).toEqual(['<f2', [n, 24]]);
    expect(statSync(join(dir, 'h.npy')).size).toBe(128 + n * 24 * 2);
    const f32 = a.data as Float32Array;
    const f16 = h.data as Uint16Array;
    for (let i = 0; i < f32.length; i++) expect(f16[i]).toBe(f32ToF16Bits(f32[i]));
    expect(Math.max(...Array.from(f16, (b, i) => Math.abs(f16BitsToF32(b) - f32[i])))).toBeGreaterThan(0);
    const ta = decodeNpy(readFileSync(join(dir, 'a.tokens.npy')));
    const th = decodeNpy(readFileSync(join(dir, 'h.tokens.npy')));
    expect(ta.shape).toEqual([n]);
    expect(Array.from(th.data)).toEqual(Array.from(ta.data));
    expect(ta.data[0]).toBe(256);
  });
});
