import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../../cli/extract';
import { decodeNpy } from '../../../src/data/npy';
import {
  type ExtractProgress,
  extractActivations,
  extractWindows,
  splitParagraphs,
} from '../../../src/lm/extract';
import { type FloatArray, Llama } from '../../../src/lm/forward';
import { encode, unescapeVocabPiece } from '../../../src/lm/tokenizer';
import { maxAbsErr, ROOT, STORIES_BIN, STORIES_TOK, stories, text } from './helpers';

const D = 64;

describe('splitParagraphs', () => {
  it('splits on blank lines (also with spaces or CRLF) and records where each ends', () => {
    const s = 'a b\nc\n\n  d \r\n \r\ne\n\n\n';
    const ps = splitParagraphs(s);
    expect(ps.map((p) => p.text)).toEqual(['a b\nc', 'd', 'e']);
    expect(ps[ps.length - 1].end).toBe(s.length);
  });
});

describe('extractActivations', () => {
  const { ckpt, tok } = stories();
  const sample = text().slice(0, 3000);

  it('collects one row per non-BOS token, equal to the forward pass of each paragraph', () => {
    const model = new Llama(ckpt);
    const progress: ExtractProgress[] = [];
    const res = extractActivations(model, tok, sample, { layer: 2, onProgress: (p) => progress.push(p) });
    const paragraphs = splitParagraphs(sample);
    const encoded = paragraphs.map((p) => encode(tok, p.text));
    expect(res.nTokens).toBe(encoded.reduce((a, ids) => a + ids.length - 1, 0));
    expect(res.windows).toBe(paragraphs.length);
    expect(res.acts.length).toBe(res.nTokens * D);
    let row = 0;
    for (const ids of encoded) {
      const ref = model.run(ids, { resid: [2], logits: false }).resid.get(2) as FloatArray;
      expect(Array.from(res.tokens.subarray(row, row + ids.length - 1))).toEqual(Array.from(ids.subarray(1)));
      expect(res.positions[row]).toBe(1);
      expect(maxAbsErr(res.acts.subarray(row * D, (row + ids.length - 1) * D), ref.subarray(D)).err).toBe(0);
      row += ids.length - 1;
    }
    expect(progress.length).toBe(paragraphs.length);
    expect(progress[progress.length - 1].charsDone).toBe(sample.length);
    expect(progress[progress.length - 1].tokensDone).toBe(res.nTokens);
    for (let i = 1; i < progress.length; i++)
      expect(progress[i].charsDone).toBeGreaterThanOrEqual(progress[i - 1].charsDone);
  });

  it('cuts long paragraphs into BOS-led windows, keeps BOS rows on request, honours maxTokens', () => {
    const model = new Llama(ckpt);
    const para = splitParagraphs(sample)[0].text;
    const ids = encode(tok, para); // BOS + n tokens
    const W = 16;
    const chunks = [...extractWindows(model, tok, para, { layer: 1, window: W, keepBos: true })];
    expect(chunks.length).toBe(Math.ceil((ids.length - 1) / (W - 1)));
    for (const c of chunks) {
      expect(c.tokens[0]).toBe(1);
      expect(c.positions[0]).toBe(0);
      expect(c.tokens.length).toBeLessThanOrEqual(W);
    }
    // Window 2: BOS + the 15 tokens after the first window's.
    expect(Array.from(chunks[1].tokens.subarray(1))).toEqual(Array.from(ids.subarray(W, 2 * W - 1)));
    const ref = model
      .run([1, ...ids.subarray(W, 2 * W - 1)], { resid: [1], logits: false })
      .resid.get(1) as FloatArray;
    expect(maxAbsErr(chunks[1].acts, ref).err).toBe(0);
    // All BOS rows are the same vector.
    expect(maxAbsErr(chunks[0].acts.subarray(0, D), chunks[1].acts.subarray(0, D)).err).toBe(0);

    const capped = extractActivations(model, tok, sample, { layer: 1, window: W, maxTokens: 37 });
    expect(capped.nTokens).toBe(37);
    expect(capped.positions[0]).toBe(1);
  });

  it("site 'mlp' returns the FFN output and bad options throw", () => {
    const model = new Llama(ckpt);
    const res = extractActivations(model, tok, 'Once upon a time', { layer: 4, site: 'mlp' });
    const ids = encode(tok, 'Once upon a time');
    const ref = model.run(ids, { mlp: [4] }).mlp.get(4) as FloatArray;
    expect(maxAbsErr(res.acts, ref.subarray(D)).err).toBe(0);
    expect(() => extractActivations(model, tok, 'x', { layer: 5, site: 'mlp' })).toThrow(/outside 0\.\.4/);
    expect(() => extractActivations(model, tok, 'x', { layer: 6 })).toThrow(/outside 0\.\.5/);
    expect(() => extractActivations(model, tok, 'x', { layer: 1, window: 1000 })).toThrow(/window 1000/);
  });
});

describe('cli/extract', () => {
  it('writes <f4 activations, <i4 tokens and an escaped vocab; exit 2 on bad input', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lm-extract-'));
    const textPath = join(dir, 'in.txt');
    writeFileSync(textPath, text().slice(0, 1500));
    const out = join(dir, 'acts.npy');
    const args = [
      '--model',
      resolve(ROOT, STORIES_BIN),
      '--tokenizer',
      resolve(ROOT, STORIES_TOK),
      '--text',
      textPath,
    ];
    const errWrite = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      expect(await main([...args, '--layer', '3', '--max-tokens', '100', '--out', out])).toBe(0);
      expect(await main([...args, '--layer', '3', '--out', join(dir, 'x.bin')])).toBe(2);
      expect(await main([...args, '--layer', 'three', '--out', out])).toBe(2);
      expect(await main([...args, '--layer', '3', '--site', 'attn', '--out', out])).toBe(2);
      expect(
        await main([...args.slice(0, 4), '--text', join(dir, 'missing.txt'), '--layer', '1', '--out', out]),
      ).toBe(2);
    } finally {
      process.stderr.write = errWrite;
    }
    const acts = decodeNpy(readFileSync(out));
    expect(acts.descr).toBe('<f4');
    expect(acts.shape).toEqual([100, 64]);
    const toks = decodeNpy(readFileSync(join(dir, 'acts.tokens.npy')));
    expect(toks.descr).toBe('<i4');
    expect(toks.shape).toEqual([100]);
    const vocab = readFileSync(join(dir, 'acts.vocab.txt'), 'utf8')
      .split('\n')
      .slice(0, -1)
      .map(unescapeVocabPiece);
    const { tok } = stories();
    expect(vocab).toEqual(tok.pieces);
    rmSync(dir, { recursive: true });
  });
});
