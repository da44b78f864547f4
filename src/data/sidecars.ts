/**
 * Sidecar files that give activation rows meaning: the token id of each row, and the
 * vocabulary to turn ids into text (for the latent browser).
 *
 * Token ids: a .npy of integers with one id per activation row: shape [rows] or
 * [batch, seq] (matching 3-D [batch, seq, d] activations, flattened the same C-order
 * way). Read lazily like the activations.
 * Vocabulary: a HuggingFace tokenizer.json (model.vocab as {token: id} for BPE /
 * WordPiece, or [[token, score], ...] for Unigram, plus added_tokens), a plain
 * {token: id} vocab.json, or a text file with one token per line (line i = id i).
 */
import { DataError, fmtShape } from './errors.ts';
import { parseDescr, readNpyHeader } from './npy.ts';
import { byteSwapInPlace, checkDataFits, checkRowRange, HOST_LITTLE_ENDIAN } from './source.ts';

export interface TokenIdSource {
  readonly name: string;
  /** One id per activation row. */
  readonly rows: number;
  /** numpy descr as stored, e.g. '<i4', '<u2', '<i8'. */
  readonly dtype: string;
  readonly shape: number[];
  /** Ids of rows [start, start + count). Values outside int32 raise a DataError. */
  readIds(start: number, count: number): Promise<Int32Array>;
}

/**
 * Opens a .npy of integer token ids lazily.
 * @param expectedRows if given, the id count must equal it (the activation rows).
 */
export async function openTokenIds(blob: Blob, name: string, expectedRows?: number): Promise<TokenIdSource> {
  const h = await readNpyHeader(blob, name);
  const dt = parseDescr(h.descr);
  if ((dt.kind !== 'i' && dt.kind !== 'u') || ![1, 2, 4, 8].includes(dt.itemsize)) {
    throw new DataError(
      name,
      `token ids must be an integer array (int8..int64, uint8..uint64), got dtype ${h.descr}`,
    );
  }
  if (h.shape.length !== 1 && h.shape.length !== 2) {
    throw new DataError(
      name,
      `token ids must be 1-D [rows] or 2-D [batch, seq], got shape ${fmtShape(h.shape)}`,
    );
  }
  if (h.fortranOrder && h.shape.length === 2 && h.shape[0] > 1 && h.shape[1] > 1) {
    throw new DataError(
      name,
      'Fortran-order token id arrays are not supported; save np.ascontiguousarray(ids)',
    );
  }
  const rows = h.shape.reduce((a, b) => a * b, 1);
  checkDataFits(name, fmtShape(h.shape), rows, dt.itemsize, blob.size - h.dataOffset);
  if (expectedRows !== undefined && rows !== expectedRows) {
    throw new DataError(
      name,
      `has ${rows} token ids but the activations have ${expectedRows} rows; they must match one to one`,
    );
  }
  const size = dt.itemsize;
  const signed = dt.kind === 'i';
  return {
    name,
    rows,
    dtype: h.descr,
    shape: h.shape,
    async readIds(start: number, count: number): Promise<Int32Array> {
      checkRowRange(name, rows, start, count);
      const a = h.dataOffset + start * size;
      const buf = await blob.slice(a, a + count * size).arrayBuffer();
      if (dt.littleEndian !== HOST_LITTLE_ENDIAN && size > 1) byteSwapInPlace(new Uint8Array(buf), size);
      const out = new Int32Array(count);
      let src: ArrayLike<number | bigint>;
      if (size === 1) src = signed ? new Int8Array(buf) : new Uint8Array(buf);
      else if (size === 2) src = signed ? new Int16Array(buf) : new Uint16Array(buf);
      else if (size === 4) src = signed ? new Int32Array(buf) : new Uint32Array(buf);
      else src = signed ? new BigInt64Array(buf) : new BigUint64Array(buf);
      for (let i = 0; i < count; i++) {
        const v = Number(src[i]);
        if (v > 2147483647 || v < -2147483648)
          throw new DataError(name, `token id ${v} at row ${start + i} does not fit in int32`);
        out[i] = v;
      }
      return out;
    },
  };
}

/**
 * Parses a vocabulary file into id -> token string (raw tokenizer spelling, e.g.
 * "Ġthe"; see displayToken). Ids not covered are left as undefined holes filled
 * with `<id>` placeholders.
 */
export function parseVocab(text: string, name: string): string[] {
  const t = text.replace(/^\uFEFF/, '');
  if (t.trim() === '') throw new DataError(name, 'vocabulary file is empty');
  if (t.trimStart().startsWith('{')) {
    let obj: unknown;
    try {
      obj = JSON.parse(t);
    } catch (e) {
      throw new DataError(
        name,
        `vocabulary looks like JSON but does not parse (${(e as Error).message.split('\n')[0]})`,
      );
    }
    const pairs: [string, number][] = [];
    const o = obj as { model?: { vocab?: unknown }; added_tokens?: { id: number; content: string }[] };
    const vocab: unknown = o.model ? o.model.vocab : obj;
    if (vocab === undefined) throw new DataError(name, 'tokenizer.json has no model.vocab');
    if (Array.isArray(vocab)) {
      // Unigram: [[piece, score], ...]; the id is the position.
      vocab.forEach((e, i) => {
        pairs.push([Array.isArray(e) ? String(e[0]) : String(e), i]);
      });
    } else if (vocab && typeof vocab === 'object') {
      for (const [tok, id] of Object.entries(vocab as Record<string, unknown>)) {
        if (typeof id === 'number' && Number.isInteger(id) && id >= 0) pairs.push([tok, id]);
      }
    } else {
      throw new DataError(name, 'model.vocab is neither a {token: id} map nor a list');
    }
    for (const a of o.added_tokens ?? [])
      if (typeof a?.id === 'number' && typeof a.content === 'string') pairs.push([a.content, a.id]);
    if (pairs.length === 0) throw new DataError(name, 'vocabulary has no tokens');
    const maxId = pairs.reduce((m, p) => Math.max(m, p[1]), 0);
    if (maxId > 10_000_000)
      throw new DataError(name, `token id ${maxId} is implausibly large for a vocabulary`);
    const out: string[] = Array.from({ length: maxId + 1 }, (_, i) => `<${i}>`);
    for (const [tok, id] of pairs) out[id] = tok;
    return out;
  }
  // One token per line; a trailing newline does not make an extra empty token.
  const lines = t.split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Vocabulary from a file (Blob), see parseVocab. */
export async function loadVocab(blob: Blob, name: string): Promise<string[]> {
  if (blob.size === 0) throw new DataError(name, 'file is empty (0 bytes)');
  return parseVocab(await blob.text(), name);
}

let byteDecoder: Map<string, number> | null = null;

/** GPT-2 byte-level BPE: inverse of bytes_to_unicode (printable stand-ins for bytes). */
function gpt2ByteDecoder(): Map<string, number> {
  if (byteDecoder) return byteDecoder;
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  byteDecoder = new Map(bs.map((b, i) => [String.fromCharCode(cs[i]), b]));
  return byteDecoder;
}

/**
 * Human-readable text of a raw token: GPT-2 byte-level spellings ("Ġthe", "Ċ") are
 * decoded to their UTF-8 bytes (" the", "\n"); SentencePiece "▁" becomes a space.
 * Incomplete UTF-8 (a token that is part of a character) shows as U+FFFD.
 */
export function displayToken(tok: string): string {
  if (tok.includes('\u2581')) return tok.replace(/\u2581/g, ' ');
  const dec = gpt2ByteDecoder();
  const bytes: number[] = [];
  for (const ch of tok) {
    const b = dec.get(ch);
    if (b === undefined) return tok; // not a byte-level token (e.g. "<|endoftext|>" has only printable ASCII anyway)
    bytes.push(b);
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
