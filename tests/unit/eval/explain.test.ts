import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/data/rng';
import { codesByLatent, type SparseCodes } from '../../../src/eval/codes';
import {
  contextFromPositions,
  type ExplainSource,
  explainAll,
  explainLatent,
} from '../../../src/eval/explain';

const rows = 4000;
const W = 50; // window length
const V = 10;
const N = 8;
const k = 3;

/** Random token stream in windows of W; latent 5 fires on "3 7" (same window), latent 2 on every 7, latent 6 at random. */
function setup(): ExplainSource {
  const rng = new Rng(42);
  const tokens = Int32Array.from({ length: rows }, () => rng.nextInt(V));
  const positions = Int32Array.from({ length: rows }, (_, r) => r % W);
  const idx = new Uint32Array(rows * k);
  const val = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const planted = tokens[r] === 7 && positions[r] > 0 && tokens[r - 1] === 3;
    idx[r * k] = 5;
    val[r * k] = planted ? 1 + rng.nextFloat() : 0;
    idx[r * k + 1] = 2;
    val[r * k + 1] = tokens[r] === 7 ? 0.5 + rng.nextFloat() : 0;
    idx[r * k + 2] = 6;
    val[r * k + 2] = rng.nextFloat() < 0.05 ? rng.nextFloat() + 0.1 : 0;
  }
  const codes: SparseCodes = { rows, k, idx, val };
  return {
    csc: codesByLatent(codes, N),
    contextOf: contextFromPositions(tokens, positions),
    trainRows: [0, rows / 2],
    testRows: [rows / 2, rows],
    vocab: Array.from({ length: V }, (_, i) => `t${i}`),
  };
}

describe('N2G-style explanations', () => {
  const src = setup();

  it('contextOf never crosses a window start', () => {
    expect(Array.from(src.contextOf(W, 3))).toEqual([src.contextOf(W, 1)[0]]);
    expect(src.contextOf(W + 2, 3).length).toBe(3);
  });

  it('finds the planted bigram "3 7" with high held-out precision', () => {
    const e = explainLatent(5, src);
    expect(e).not.toBeNull();
    if (!e) return;
    expect(e.pattern).toEqual([3, 7]);
    expect(e.text).toBe('"t3" "t7"');
    expect(e.precision).toBeGreaterThanOrEqual(0.9);
    expect(e.recall).toBeGreaterThanOrEqual(0.9);
    expect(e.heldOutFires).toBeGreaterThan(5);
  });

  it('prefers the shorter pattern when the token alone explains the latent', () => {
    const e = explainLatent(2, src);
    expect(e?.pattern).toEqual([7]);
    expect(e?.precision).toBe(1);
    expect(e?.recall).toBe(1);
  });

  it('explainAll: distribution, silent latents and budget', () => {
    const all = explainAll([5, 2, 6, 0], src);
    expect(all.explanations.map((e) => e.latent)).toEqual([5, 2, 6]);
    expect(all.silent).toEqual([0]);
    expect(all.f1.length).toBe(3);
    expect(all.f1[0]).toBeLessThan(0.3); // the random latent
    expect(all.f1[2]).toBeGreaterThan(0.9);
    expect(all.f1Histogram.reduce((a, b) => a + b, 0)).toBe(3);
    const none = explainAll([5, 2], src, { budgetMs: -1 });
    expect(none.skipped).toEqual([5, 2]);
  });
});
