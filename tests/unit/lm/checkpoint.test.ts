import { describe, expect, it } from 'vitest';
import { checkpointByteLength, readCheckpoint } from '../../../src/lm/checkpoint';
import { Llama } from '../../../src/lm/forward';
import { BABY_BIN, file, maxAbsErr, STORIES_BIN } from './helpers';

function withHeader(bytes: Uint8Array, field: number, value: number): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setInt32(4 * field, value, true);
  return copy;
}

describe('readCheckpoint', () => {
  it('reads the stories260K header and consumes the file exactly (with freq_cis)', () => {
    const bytes = file(STORIES_BIN);
    const { config, hasFreqCis, weights } = readCheckpoint(bytes, 'stories260K.bin');
    expect(config).toEqual({
      dim: 64,
      hiddenDim: 172,
      nLayers: 5,
      nHeads: 8,
      nKvHeads: 4,
      vocabSize: 512,
      seqLen: 512,
      headSize: 8,
      kvDim: 32,
      sharedClassifier: true,
    });
    expect(hasFreqCis).toBe(true);
    expect(checkpointByteLength(config, true)).toBe(1056540);
    expect(weights.wcls).toBe(weights.tokenEmbedding);
    expect(weights.wk.length).toBe(5 * 32 * 64);
    expect(weights.w2.length).toBe(5 * 64 * 172);
    expect(weights.rmsFinal.length).toBe(64);
  });

  it('reads the BabyLlama tok105 header', () => {
    const { config } = readCheckpoint(file(BABY_BIN), 'model5000.bin');
    expect(config).toMatchObject({
      dim: 128,
      hiddenDim: 352,
      nLayers: 5,
      nHeads: 8,
      nKvHeads: 4,
      vocabSize: 105,
      seqLen: 256,
    });
    expect(checkpointByteLength(config, true)).toBe(3762204);
  });

  it('accepts a file without the freq_cis tables and an unaligned buffer', () => {
    const bytes = file(STORIES_BIN);
    const freqBytes = 512 * 8 * 4;
    const stripped = bytes.slice(0, bytes.length - freqBytes);
    const a = readCheckpoint(stripped, 'nofreq.bin');
    expect(a.hasFreqCis).toBe(false);
    const unaligned = new Uint8Array(bytes.length + 1).subarray(1);
    unaligned.set(bytes);
    const b = readCheckpoint(unaligned, 'unaligned.bin');
    expect(Array.from(b.weights.rmsFinal)).toEqual(Array.from(a.weights.rmsFinal));
  });

  it('reads a separate classifier when vocab_size is negative', () => {
    const bytes = file(STORIES_BIN);
    const emb = bytes.subarray(28, 28 + 512 * 64 * 4);
    const unshared = new Uint8Array(bytes.length + emb.length);
    unshared.set(withHeader(bytes, 5, -512));
    unshared.set(emb, bytes.length); // wcls = a copy of the embedding: same logits as the shared model
    const c = readCheckpoint(unshared, 'unshared.bin');
    expect(c.config.sharedClassifier).toBe(false);
    expect(c.weights.wcls).not.toBe(c.weights.tokenEmbedding);
    const shared = readCheckpoint(bytes);
    const la = new Llama(shared).run([1, 385, 328]).logits!;
    const lb = new Llama(c).run([1, 385, 328]).logits!;
    expect(maxAbsErr(la, lb).err).toBe(0);
  });

  it('gives clear errors for short files, absurd headers and size mismatches', () => {
    const bytes = file(STORIES_BIN);
    expect(() => readCheckpoint(bytes.slice(0, 10), 'x.bin')).toThrow(/x\.bin: too short .*10 bytes/);
    expect(() => readCheckpoint(withHeader(bytes, 0, 0), 'x.bin')).toThrow(
      /x\.bin: not a valid llama2\.c checkpoint: dim=0/,
    );
    expect(() => readCheckpoint(withHeader(bytes, 2, 1e9), 'x.bin')).toThrow(
      /n_layers=1000000000 is outside/,
    );
    expect(() => readCheckpoint(withHeader(bytes, 4, 3), 'x.bin')).toThrow(
      /n_heads=8 is not a multiple of n_kv_heads=3/,
    );
    expect(() => readCheckpoint(withHeader(bytes, 4, 16), 'x.bin')).toThrow(
      /n_kv_heads=16 is outside 1\.\.8/,
    );
    expect(() => readCheckpoint(withHeader(bytes, 3, 7), 'x.bin')).toThrow(
      /dim=64 is not a multiple of n_heads=7/,
    );
    // Text files are common wrong inputs: "Once upo…" as int32s.
    expect(() =>
      readCheckpoint(new TextEncoder().encode('Once upon a time there was a file'), 'story.txt'),
    ).toThrow(/story\.txt: not a valid llama2\.c checkpoint/);
    expect(() => readCheckpoint(bytes.slice(0, bytes.length - 4), 'x.bin')).toThrow(
      /x\.bin: size mismatch: the file is 1056536 bytes .* implies 1056540 bytes .*4 bytes short of the full size \(truncated\?\)/,
    );
    const extra = new Uint8Array(bytes.length + 8);
    extra.set(bytes);
    expect(() => readCheckpoint(extra, 'x.bin')).toThrow(/size mismatch.*has 8 extra bytes/);
    // Wrong sign of vocab_size: the file lacks the separate classifier.
    expect(() => readCheckpoint(withHeader(bytes, 5, -512), 'x.bin')).toThrow(
      /size mismatch.*vocab_size=-512/,
    );
  });
});
