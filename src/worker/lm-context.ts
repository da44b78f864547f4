/**
 * The language model an extracted dataset came from, as downstream evaluation (./eval-downstream.ts)
 * needs it: a llama2.c one (./lm-extract.ts) or a GPT-2 one (./gpt2-extract.ts).
 */
import type { LlamaCheckpoint } from '../lm/checkpoint';
import type { Gpt2Tokenizer } from '../lm/gpt2/tokenizer';
import type { Gpt2Checkpoint, Gpt2SiteKind } from '../lm/gpt2/types';
import type { Tokenizer } from '../lm/tokenizer';

export type LmContext = LlamaLmContext | Gpt2LmContext;

export interface LlamaLmContext {
  family: 'llama2c';
  name: string;
  ckpt: LlamaCheckpoint;
  tok: Tokenizer;
  text: string;
  /** characters of the text the dataset used (the rest is held-out text) */
  charsUsed: number;
  layer: number;
  site: 'resid' | 'mlp';
  /** [rows] position of each row in its window */
  positions: Int32Array;
}

/** What downstream evaluation needs of a dataset extracted from GPT-2. */
export interface Gpt2LmContext {
  family: 'gpt2';
  name: string;
  ckpt: Gpt2Checkpoint;
  tok: Gpt2Tokenizer;
  text: string;
  /** characters of the text the dataset used (the rest is held-out text) */
  charsUsed: number;
  /** block of `site` */
  layer: number;
  site: Gpt2SiteKind;
  /** tokens per window the rows came from (held-out windows are no longer) */
  window: number;
  /** the dataset holds position 0's rows (then the splice replaces them too) */
  keepBos: boolean;
  /** [rows] position of each row in its window */
  positions: Int32Array;
}
