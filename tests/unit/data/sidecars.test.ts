import { describe, expect, it } from 'vitest';
import { DataError } from '../../../src/data/errors.ts';
import { displayToken, loadVocab, openTokenIds, parseVocab } from '../../../src/data/sidecars.ts';
import { expected, fixtureBlob } from './fixtures.ts';

describe('token id sidecars', () => {
  it.each(['tokens_i4.npy', 'tokens_i8_2d.npy', 'tokens_u2.npy', 'tokens_be_i4.npy'])(
    '%s reads the ids',
    async (name) => {
      const t = await openTokenIds(await fixtureBlob(name), name, expected.n);
      expect(t.rows).toBe(expected.n);
      expect(Array.from(await t.readIds(0, expected.n))).toEqual(expected.tokens);
      expect(Array.from(await t.readIds(10, 3))).toEqual(expected.tokens.slice(10, 13));
    },
  );

  it('row count must match the activations', async () => {
    const name = 'tokens_wrong_rows.npy';
    const err = await openTokenIds(await fixtureBlob(name), name, 48).catch((e) => e);
    expect(err).toBeInstanceOf(DataError);
    expect(err.message).toBe(
      'tokens_wrong_rows.npy: has 47 token ids but the activations have 48 rows; they must match one to one',
    );
  });

  it('float arrays are not token ids', async () => {
    await expect(openTokenIds(await fixtureBlob('acts_f4.npy'), 'acts_f4.npy')).rejects.toThrow(
      /must be an integer array .* got dtype <f4/,
    );
  });
});

describe('vocabulary', () => {
  it('tokenizer.json (BPE model.vocab + added_tokens)', async () => {
    const v = await loadVocab(await fixtureBlob('tokenizer.json'), 'tokenizer.json');
    expect(v.length).toBe(51);
    expect(v.slice(0, 50)).toEqual(expected.vocab);
    expect(v[50]).toBe('<|pad|>');
  });

  it('one token per line', async () => {
    const v = await loadVocab(await fixtureBlob('vocab.txt'), 'vocab.txt');
    expect(v).toEqual(expected.vocab);
  });

  it('unigram list vocab and plain vocab.json', () => {
    expect(
      parseVocab(
        JSON.stringify({
          model: {
            type: 'Unigram',
            vocab: [
              ['<unk>', 0],
              ['\u2581the', -1.5],
            ],
          },
        }),
        't.json',
      ),
    ).toEqual(['<unk>', '\u2581the']);
    expect(parseVocab('{"a": 1, "b": 0, "c": 3}', 'vocab.json')).toEqual(['b', 'a', '<2>', 'c']);
  });

  it('bad vocab files', () => {
    expect(() => parseVocab('', 'v.txt')).toThrow(/^v.txt: vocabulary file is empty/);
    expect(() => parseVocab('{"model": {', 'tokenizer.json')).toThrow(
      /^tokenizer.json: vocabulary looks like JSON but does not parse/,
    );
  });

  it('displayToken decodes byte-level BPE and SentencePiece spellings', () => {
    expect(displayToken('\u0120the')).toBe(' the');
    expect(displayToken('\u010a')).toBe('\n');
    expect(displayToken('\u0120caf\u00c3\u00a9')).toBe(' café');
    expect(displayToken('\u2581the')).toBe(' the');
    expect(displayToken('<|endoftext|>')).toBe('<|endoftext|>');
  });
});
