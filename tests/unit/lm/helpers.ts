/** Shared loaders for the LM tests: the bundled real models, text and float64-derived fixtures. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { decodeNpy, type NpyArray } from '../../../src/data/npy';
import { type LlamaCheckpoint, readCheckpoint } from '../../../src/lm/checkpoint';
import { readTokenizer, type Tokenizer } from '../../../src/lm/tokenizer';

export const ROOT = resolve(__dirname, '../../..');
export const file = (rel: string): Uint8Array => new Uint8Array(readFileSync(resolve(ROOT, rel)));

export const STORIES_BIN = 'public/models/stories260K/stories260K.bin';
export const STORIES_TOK = 'public/models/stories260K/tok512.bin';
export const BABY_BIN = 'public/models/babyllama_tok105/model5000.bin';
const BABY_TOK = 'public/models/babyllama_tok105/tok105.bin';
const TEXT = 'public/text/tinystories_train_head.txt';

export function stories(): { ckpt: LlamaCheckpoint; tok: Tokenizer } {
  const ckpt = readCheckpoint(file(STORIES_BIN), 'stories260K.bin');
  const tok = readTokenizer(file(STORIES_TOK), { vocabSize: ckpt.config.vocabSize, name: 'tok512.bin' });
  return { ckpt, tok };
}

export function babyLlama(): { ckpt: LlamaCheckpoint; tok: Tokenizer } {
  const ckpt = readCheckpoint(file(BABY_BIN), 'model5000.bin');
  const tok = readTokenizer(file(BABY_TOK), { vocabSize: ckpt.config.vocabSize, name: 'tok105.bin' });
  return { ckpt, tok };
}

export const text = (): string => readFileSync(resolve(ROOT, TEXT), 'utf8');

export const fixture = (name: string): NpyArray => decodeNpy(file(`tests/fixtures/lm/${name}`), name);

/** max |a − b| and max |b| over two equal-length arrays. */
export function maxAbsErr(a: ArrayLike<number>, b: ArrayLike<number>): { err: number; scale: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { err, scale };
}
