import { describe, expect, it } from 'vitest';
import { splitParagraphs } from '../../../src/lm/extract';
import {
  decode,
  encode,
  escapeVocabPiece,
  readTokenizer,
  type Tokenizer,
  unescapeVocabPiece,
} from '../../../src/lm/tokenizer';
import { babyLlama, file, fixture, STORIES_TOK, stories, text } from './helpers';

/** Literal transcription of run.c encode(): rescans all pairs per merge (O(n²)), used as the oracle. */
function runcEncode(tok: Tokenizer, s: string): number[] {
  const ids: number[] = [1];
  const u = new TextEncoder().encode(s);
  if (u.length > 0) ids.push(tok.lookup.get(' ') as number);
  for (let i = 0; i < u.length; ) {
    let j = i + 1;
    while (j < u.length && (u[j] & 0xc0) === 0x80 && j - i < 4) j++;
    let piece = '';
    for (let k = i; k < j; k++) piece += String.fromCharCode(u[k]);
    const id = tok.lookup.get(piece);
    if (id !== undefined) ids.push(id);
    else if (tok.byteFallback) for (let k = i; k < j; k++) ids.push(u[k] + 3);
    else ids.push(0);
    i = j;
  }
  for (;;) {
    let bestScore = -1e10;
    let bestIdx = -1;
    let bestId = -1;
    for (let k = 0; k + 1 < ids.length; k++) {
      const id = tok.lookup.get(tok.pieceBytes[ids[k]] + tok.pieceBytes[ids[k + 1]]);
      if (id !== undefined && tok.scores[id] > bestScore) {
        bestScore = tok.scores[id];
        bestIdx = k;
        bestId = id;
      }
    }
    if (bestIdx < 0) break;
    ids.splice(bestIdx, 2, bestId);
  }
  return ids;
}

describe('tok512 (stories260K)', () => {
  const { tok } = stories();

  it('reads 512 tokens with byte fallback', () => {
    expect(tok.vocabSize).toBe(512);
    expect(tok.maxTokenLength).toBe(7);
    expect(tok.byteFallback).toBe(true);
    expect(tok.pieces.slice(0, 4)).toEqual(['<unk>', '\n<s>\n', '\n</s>\n', '<0x00>']);
    expect(tok.byteOfToken[3 + 0x41]).toBe(0x41);
  });

  it('encodes the text prefix to the reference tokens (BOS + first 127)', () => {
    const ref = fixture('stories260K_ref_tokens.npy');
    expect(ref.shape).toEqual([128]);
    const ids = encode(tok, text().slice(0, 2000));
    expect(Array.from(ids.subarray(0, 128))).toEqual(Array.from(ref.data));
  });

  it('matches a literal run.c encode() on the first 200 paragraphs and on a 6000-char block with newlines', () => {
    const paragraphs = splitParagraphs(text());
    let n = 0;
    for (const p of paragraphs.slice(0, 200)) {
      const ids = Array.from(encode(tok, p.text));
      expect(ids).toEqual(runcEncode(tok, p.text));
      n += ids.length;
    }
    expect(n).toBeGreaterThan(15000);
    const block = text().slice(0, 6000);
    expect(Array.from(encode(tok, block))).toEqual(runcEncode(tok, block));
  });

  it('encodes 200 KB of text quickly', () => {
    const t0 = performance.now();
    const ids = encode(tok, text());
    const ms = performance.now() - t0;
    expect(ids.length).toBeGreaterThan(90000);
    expect(ms).toBeLessThan(3000);
  });

  it('falls back to bytes for unknown characters and decodes them back', () => {
    const s = 'Zoë said 日本 ok\n';
    const ids = encode(tok, s);
    // 日 = e6 97 a5 is not a piece: three byte tokens 0xe6+3, …
    const i = Array.from(ids).indexOf(0xe6 + 3);
    expect(Array.from(ids.subarray(i, i + 3))).toEqual([0xe6 + 3, 0x97 + 3, 0xa5 + 3]);
    expect(ids[ids.length - 1]).toBe(0x0a + 3); // '\n' → <0x0A>
    expect(decode(tok, ids)).toBe(s); // leading dummy space stripped after BOS
    expect(decode(tok, encode(tok, 'Hi', { bos: false }))).toBe(' Hi'); // no BOS: the space stays
  });

  it('handles empty text, BOS/EOS flags and special tokens', () => {
    expect(Array.from(encode(tok, ''))).toEqual([1]);
    expect(Array.from(encode(tok, '', { bos: false }))).toEqual([]);
    const e = encode(tok, 'a', { eos: true });
    expect(e[0]).toBe(1);
    expect(e[e.length - 1]).toBe(2);
    expect(decode(tok, [1, 2], { keepSpecial: true })).toBe('\n<s>\n\n</s>\n');
    expect(() => decode(tok, [600])).toThrow(/outside 0\.\.511/);
  });

  it('rejects a truncated file and a vocab-size mismatch with the file name', () => {
    const bytes = file(STORIES_TOK);
    expect(() => readTokenizer(bytes.slice(0, 2), { name: 't.bin' })).toThrow(/t\.bin: too short/);
    expect(() => readTokenizer(bytes.slice(0, 101), { name: 't.bin' })).toThrow(
      /t\.bin: (truncated|token \d+ has length)/,
    );
    expect(() => readTokenizer(bytes, { name: 't.bin', vocabSize: 105 })).toThrow(
      /t\.bin: .*bytes left after 105 tokens/,
    );
    expect(() => readTokenizer(bytes, { name: 't.bin', vocabSize: 600 })).toThrow(
      /holds 512 tokens but the model expects 600/,
    );
  });
});

describe('tok105 (BabyLlama, character model without byte fallback)', () => {
  const { tok } = babyLlama();

  it('maps unknown characters, including newline, to <unk> = 0 one per character', () => {
    expect(tok.vocabSize).toBe(105);
    expect(tok.byteFallback).toBe(false);
    const ids = encode(tok, 'Once\n日x');
    expect(Array.from(ids)).toEqual([
      1,
      3,
      ...Array.from('Once').map((c) => tok.lookup.get(c)),
      0,
      0,
      tok.lookup.get('x'),
    ]);
    expect(Math.max(...ids)).toBeLessThan(105);
    expect(Array.from(encode(tok, 'Once upon'))).toEqual(runcEncode(tok, 'Once upon'));
    expect(decode(tok, encode(tok, 'Once upon a time.'))).toBe('Once upon a time.');
  });
});

describe('vocab escaping', () => {
  it('round-trips backslash, newline, CR, tab', () => {
    for (const s of ['\n<s>\n', 'a\\nb', '\\', '\t\r', ' the']) {
      const e = escapeVocabPiece(s);
      expect(e).not.toMatch(/[\n\r\t]/);
      expect(unescapeVocabPiece(e)).toBe(s);
    }
    expect(escapeVocabPiece('\n<s>\n')).toBe('\\n<s>\\n');
  });
});
