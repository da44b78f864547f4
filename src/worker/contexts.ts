/**
 * Token contexts of the evaluated rows (moved out of ./evaluate.ts): each evaluated row's token and
 * the tokens around it in the dataset, cut at window starts, and for every token shown the
 * evaluated row it is (so a dashboard can shade each token by a latent's value there).
 */
import { displayToken } from '../data/sidecars';
import type { OpenedDataset } from './datasets';

/**
 * Token contexts of the evaluated rows: for each row, its token and the tokens around it in the
 * dataset, cut at window starts (a position that does not increase, or a BOS token).
 */
export class Contexts {
  private constructor(
    /** flat token ids of the read ranges */
    private readonly tok: Int32Array,
    /** [rows] index into tok of the row's token; first and one-past-last index of its window */
    private readonly at: Uint32Array,
    private readonly lo: Uint32Array,
    private readonly hi: Uint32Array,
    private readonly vocab: string[] | null,
    /** [tok.length] the evaluated row each token is, −1 for a token read only as context */
    private readonly evalRow: Int32Array,
  ) {}

  static async build(
    ids: NonNullable<OpenedDataset['tokenIds']>,
    positions: Int32Array | null,
    vocab: string[] | null,
    rowIds: Float64Array,
    rows: number,
  ): Promise<Contexts> {
    const BEFORE = 16;
    const AFTER = 8;
    const bos = new Set<number>();
    const BOS_PIECES = ['<s>', '<|endoftext|>', '<bos>', '<|begin_of_text|>'];
    for (let i = 0; vocab && i < vocab.length; i++) if (BOS_PIECES.includes(vocab[i]?.trim())) bos.add(i);
    const n = rowIds.length;
    const at = new Uint32Array(n);
    const lo = new Uint32Array(n);
    const hi = new Uint32Array(n);
    const parts: Int32Array[] = [];
    const evalRows: [number, number][] = [];
    let base = 0;
    for (let j = 0; j < n; ) {
      let e = j + 1;
      while (e < n && rowIds[e] === rowIds[e - 1] + 1) e++;
      const g0 = rowIds[j];
      const g1 = rowIds[e - 1] + 1;
      const r0 = Math.max(0, g0 - BEFORE);
      const r1 = Math.min(rows, g1 + AFTER);
      const t = await ids.readIds(r0, r1 - r0);
      const L = t.length;
      // window start / end (exclusive) per read index
      const starts = (q: number) =>
        (positions !== null && q > 0 && positions[r0 + q] <= positions[r0 + q - 1]) || bos.has(t[q]);
      const ws = new Uint32Array(L);
      for (let q = 1; q < L; q++) ws[q] = starts(q) ? q : ws[q - 1];
      const we = new Uint32Array(L);
      we[L - 1] = L;
      for (let q = L - 2; q >= 0; q--) we[q] = starts(q + 1) ? q + 1 : we[q + 1];
      for (let r = j; r < e; r++) {
        const q = rowIds[r] - r0;
        at[r] = base + q;
        lo[r] = base + ws[q];
        hi[r] = base + we[q];
        evalRows.push([base + q, r]);
      }
      parts.push(t);
      base += L;
      j = e;
    }
    const tok = new Int32Array(base);
    let o = 0;
    for (const p of parts) {
      tok.set(p, o);
      o += p.length;
    }
    const evalRow = new Int32Array(base).fill(-1);
    for (const [p, r] of evalRows) evalRow[p] = r;
    return new Contexts(tok, at, lo, hi, vocab, evalRow);
  }

  /** Up to n token ids ending with row's token, within its window. */
  contextOf(row: number, n: number): Int32Array {
    return this.tok.subarray(Math.max(this.lo[row], this.at[row] - n + 1), this.at[row] + 1);
  }

  /**
   * Pieces around row's token: up to `before` before and `after` after, the index of the row's
   * token, and [T] the evaluated row of each piece (−1: read as context only, not evaluated).
   */
  display(
    row: number,
    before: number,
    after: number,
  ): { tokens: string[]; active: number; rows: Int32Array } {
    const a = Math.max(this.lo[row], this.at[row] - before);
    const b = Math.min(this.hi[row], this.at[row] + after + 1);
    return {
      tokens: Array.from(this.tok.subarray(a, b), (t) => this.piece(t)),
      active: this.at[row] - a,
      rows: this.evalRow.slice(a, b),
    };
  }

  /** Display text of token id t (`<t>` without a vocabulary entry). */
  piece(t: number): string {
    return this.vocab?.[t] !== undefined ? displayToken(this.vocab[t]) : `<${t}>`;
  }
}
