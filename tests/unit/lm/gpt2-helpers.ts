/** Loaders for the GPT-2 fixtures of scripts/fixtures/gpt2_fixture.py (tests/fixtures/gpt2/). */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseNpyHeader } from '../../../src/data/npy';
import { readGpt2Checkpoint } from '../../../src/lm/gpt2/checkpoint';
import type { Gpt2Checkpoint } from '../../../src/lm/gpt2/types';

const DIR = resolve(__dirname, '../../fixtures/gpt2');

/** The four layouts of one tiny model: F32 bare keys, F32 `transformer.` + buffers + lm_head, F16, BF16. */
export const VARIANTS = ['f32', 'f32_prefixed', 'f16', 'bf16'] as const;

export const fixtureBytes = (rel: string): Uint8Array<ArrayBuffer> =>
  Uint8Array.from(readFileSync(resolve(DIR, rel)));

export function loadVariant(v: string): Promise<Gpt2Checkpoint> {
  return readGpt2Checkpoint({
    config: readFileSync(resolve(DIR, v, 'config.json'), 'utf8'),
    model: new Blob([fixtureBytes(`${v}/model.safetensors`)]),
    name: v,
  });
}

/** A whole '<f8' or '<i4' .npy (the references are float64). */
function npy(name: string): { shape: number[]; data: Float64Array | Int32Array } {
  const bytes = fixtureBytes(name);
  const h = parseNpyHeader(bytes, name);
  if ('needMore' in h) throw new Error(`${name}: truncated header`);
  const copy = bytes.slice(h.dataOffset);
  if (h.descr === '<f8') return { shape: h.shape, data: new Float64Array(copy.buffer) };
  if (h.descr === '<i4') return { shape: h.shape, data: new Int32Array(copy.buffer) };
  throw new Error(`${name}: dtype ${h.descr}`);
}

/** tokens [T]; sites [L, 5, T, d] in the order resid_pre, attn_out, resid_mid, mlp_out, resid_post; logits [T, V]. */
export function reference() {
  return {
    tokens: npy('ref_tokens.npy').data as Int32Array,
    sites: npy('ref_sites.npy') as { shape: number[]; data: Float64Array },
    logits: npy('ref_logits.npy') as { shape: number[]; data: Float64Array },
  };
}

export const REF_KINDS = ['resid_pre', 'attn_out', 'resid_mid', 'mlp_out', 'resid_post'] as const;

/** max over rows of ‖a_t − b_t‖∞ / ‖b_t‖₂ for [T, n] arrays: error relative to each row's norm. */
export function maxRowRelErr(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let worst = 0;
  for (let o = 0; o < a.length; o += n) {
    let norm = 0;
    let err = 0;
    for (let i = 0; i < n; i++) {
      norm += b[o + i] * b[o + i];
      err = Math.max(err, Math.abs(a[o + i] - b[o + i]));
    }
    worst = Math.max(worst, err / Math.sqrt(norm));
  }
  return worst;
}
