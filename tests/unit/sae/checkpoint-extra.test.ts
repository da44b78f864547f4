/**
 * Checkpoints of the activation variants: the per-latent parameters `extra` [2N] (gated r_mag,
 * b_mag; jumprelu log_threshold) and their Adam moments and EMA are stored and restored bit for
 * bit; checkpoints written before `extra` existed still load.
 */
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../../src/data/crc32.ts';
import {
  type CheckpointData,
  parseCheckpoint,
  serializeCheckpoint,
} from '../../../src/sae/checkpoint-format.ts';
import type { TrainState } from '../../../src/sae/step-buffers.ts';
import { randn, randomState } from '../io/helpers.ts';

const d = 8;
const N = 20;

function withExtra(s: TrainState, seed: number): TrainState {
  const add = <P extends object>(p: P, i: number) => ({ ...p, extra: randn(2 * N, seed + i) });
  return {
    ...s,
    params: add(s.params, 1),
    m: add(s.m, 2),
    v: add(s.v, 3),
    ema: s.ema ? add(s.ema, 4) : null,
  };
}

function ck(state: TrainState, activation: 'gated' | 'topk' = 'gated'): CheckpointData {
  return {
    runId: 'run-x',
    step: 40,
    tokens: 40 * 64,
    config: { d, nLatents: N, k: 4, activation, batchSize: 64, tokens: 1e5 },
    data: { epoch: 0, rowsEmitted: 2560 },
    rng: [1, 2, 3, 4],
    metrics: [],
    state,
  };
}

/** Rewrites a blob's JSON (same length, space-padded) and its CRC, as an older writer would have. */
function rewriteMeta(bytes: Uint8Array, edit: (json: string) => string): Uint8Array {
  const out = bytes.slice();
  const dv = new DataView(out.buffer);
  const J = dv.getUint32(12, true);
  const json = new TextDecoder().decode(out.subarray(24, 24 + J));
  const next = edit(json);
  expect(next.length).toBeLessThanOrEqual(J);
  out.set(new TextEncoder().encode(next.padEnd(J, ' ')), 24);
  dv.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

describe('checkpoint: extra parameters', () => {
  it('params.extra, m.extra, v.extra and ema.extra round-trip bit for bit', () => {
    for (const ema of [true, false]) {
      const state = withExtra(randomState(d, N, 5, ema), 70);
      const back = parseCheckpoint(serializeCheckpoint(ck(state)), 'x');
      for (const g of ['params', 'm', 'v'] as const) {
        expect(back.state[g].extra).toEqual(state[g].extra);
        expect(back.state[g].W_enc).toEqual(state[g].W_enc);
      }
      if (ema) expect(back.state.ema?.extra).toEqual(state.ema?.extra);
      else expect(back.state.ema).toBeNull();
      expect(back.config.activation).toBe('gated');
    }
  });

  it('a checkpoint without extra (as written before it existed) loads, with no extra', () => {
    const plain = serializeCheckpoint(ck(randomState(d, N, 6, true), 'topk'));
    const old = rewriteMeta(plain, (j) => j.replace('"hasExtra":false,', ''));
    expect(new TextDecoder().decode(old)).not.toContain('hasExtra');
    const back = parseCheckpoint(old, 'old');
    expect(back.state.params.extra).toBeUndefined();
    expect(back.state.m.extra).toBeUndefined();
    expect(back.state.ema?.extra).toBeUndefined();
    expect(back.state.params.W_dec.length).toBe(N * d);
  });

  it('extra of the wrong length, or on params without its moments, is refused', () => {
    const s = randomState(d, N, 7, false);
    expect(() =>
      serializeCheckpoint(ck({ ...s, params: { ...s.params, extra: new Float32Array(N) } })),
    ).toThrow(/params\.extra has 20 values, expected 2N = 40/);
    const partial = serializeCheckpoint(
      ck({ ...s, params: { ...s.params, extra: new Float32Array(2 * N) } }),
    );
    expect(() => parseCheckpoint(partial, 'p')).toThrow(/extra parameters present in 1 of 3/);
  });
});
