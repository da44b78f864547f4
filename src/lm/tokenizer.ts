/**
 * llama2.c tokenizer.bin reader, BPE encoder and decoder that reproduce
 * karpathy/llama2.c run.c `encode()` / `decode()` token for token.
 *
 * tokenizer.bin layout (little endian): int32 max_token_length, then for each
 * token: float32 score, int32 len, `len` bytes of the piece (UTF-8, no NUL).
 * The file does not store the vocabulary size (run.c takes it from the model
 * header), so by default we read entries until the buffer ends.
 *
 * Strings are handled as raw bytes: every piece is kept as a "byte string"
 * (a JS string whose char codes are the bytes 0..255, i.e. latin1), so that
 * concatenating two pieces and looking the result up in a Map behaves exactly
 * like run.c's sprintf("%s%s") + bsearch over C strings.
 *
 * Pure TS; no fs, runs in node and in browser workers.
 */

export interface Tokenizer {
  /** Number of tokens. */
  vocabSize: number;
  /** max_token_length from the file header (bytes). */
  maxTokenLength: number;
  /** Raw bytes of each piece, as a byte string (char codes 0..255). */
  pieceBytes: string[];
  /** Each piece decoded as UTF-8 for display (invalid sequences become U+FFFD). */
  pieces: string[];
  /** Merge priority: a higher score merges first. [vocab] */
  scores: Float32Array;
  /** Byte string → id (the first id if a piece were duplicated). */
  lookup: Map<string, number>;
  /**
   * run.c rule for code points that are not in the vocabulary:
   * true → one `<0xXX>` token (id = byte + 3) per UTF-8 byte (sentencepiece byte_fallback);
   * false → one `<unk>` (id 0) per code point, the rule of character models trained
   *         with byte_fallback=False (e.g. BabyLlama tok105), whose vocab has no byte tokens.
   */
  byteFallback: boolean;
  /** For each id, the byte value when the piece is `<0xXX>`, else -1 (decode maps these to raw bytes). */
  byteOfToken: Int16Array;
  unkId: number;
  bosId: number;
  eosId: number;
  name: string;
}

export interface ReadTokenizerOptions {
  /** Expected vocabulary size (the model's); the file must hold exactly this many entries. */
  vocabSize?: number;
  /** Override the byte-fallback rule; default: true iff ids 3..258 are `<0x00>`..`<0xFF>`. */
  byteFallback?: boolean;
  /** For error messages. */
  name?: string;
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/** Parses a llama2.c tokenizer.bin. Throws an Error naming the file on malformed input. */
export function readTokenizer(
  buf: ArrayBuffer | ArrayBufferView,
  opts: ReadTokenizerOptions = {},
): Tokenizer {
  const name = opts.name ?? 'tokenizer';
  const bytes =
    buf instanceof Uint8Array
      ? buf
      : ArrayBuffer.isView(buf)
        ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
        : new Uint8Array(buf);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 4)
    throw new Error(`${name}: too short for a llama2.c tokenizer (${bytes.byteLength} bytes)`);
  const maxTokenLength = dv.getInt32(0, true);
  if (maxTokenLength < 1 || maxTokenLength > 1 << 16) {
    throw new Error(`${name}: not a llama2.c tokenizer: max_token_length=${maxTokenLength}`);
  }
  const scores: number[] = [];
  const pieceBytes: string[] = [];
  let off = 4;
  while (off < bytes.byteLength && (opts.vocabSize === undefined || scores.length < opts.vocabSize)) {
    const id = scores.length;
    if (off + 8 > bytes.byteLength)
      throw new Error(`${name}: truncated in the header of token ${id} at byte ${off}`);
    const score = dv.getFloat32(off, true);
    const len = dv.getInt32(off + 4, true);
    off += 8;
    if (len < 0 || len > maxTokenLength || off + len > bytes.byteLength) {
      throw new Error(
        `${name}: token ${id} has length ${len} (max_token_length=${maxTokenLength}, ${bytes.byteLength - off} bytes left)`,
      );
    }
    let s = '';
    for (let i = 0; i < len; i++) s += String.fromCharCode(bytes[off + i]);
    off += len;
    scores.push(score);
    pieceBytes.push(s);
  }
  if (opts.vocabSize !== undefined && scores.length < opts.vocabSize) {
    throw new Error(`${name}: holds ${scores.length} tokens but the model expects ${opts.vocabSize}`);
  }
  if (off !== bytes.byteLength) {
    throw new Error(
      `${name}: ${bytes.byteLength - off} bytes left after ${scores.length} tokens (the model expects ${opts.vocabSize}); wrong tokenizer for this model?`,
    );
  }
  const vocabSize = scores.length;
  if (vocabSize < 3) throw new Error(`${name}: only ${vocabSize} tokens; need at least <unk>, BOS, EOS`);
  // llama2.c's tokenizer.py writes the longest piece's length; any other value means the header
  // is not the one written with these tokens (a larger one would otherwise pass unnoticed).
  const longest = pieceBytes.reduce((m, p) => Math.max(m, p.length), 0);
  if (maxTokenLength !== longest) {
    throw new Error(
      `${name}: max_token_length=${maxTokenLength} but the longest token is ${longest} bytes (tokenizer.py writes the longest); corrupt header?`,
    );
  }

  const lookup = new Map<string, number>();
  for (let i = 0; i < vocabSize; i++) if (!lookup.has(pieceBytes[i])) lookup.set(pieceBytes[i], i);

  const byteOfToken = new Int16Array(vocabSize).fill(-1);
  for (let i = 0; i < vocabSize; i++) {
    const m = BYTE_PIECE.exec(pieceBytes[i]);
    if (m) byteOfToken[i] = Number.parseInt(m[1], 16);
  }
  let hasByteTokens = vocabSize >= 259;
  for (let b = 0; hasByteTokens && b < 256; b++) hasByteTokens = byteOfToken[b + 3] === b;
  const byteFallback = opts.byteFallback ?? hasByteTokens;
  if (byteFallback && !hasByteTokens) {
    throw new Error(`${name}: byteFallback requested but ids 3..258 are not <0x00>..<0xFF>`);
  }

  const utf8 = new TextDecoder('utf-8');
  const pieces = pieceBytes.map((p) => utf8.decode(byteStringToBytes(p)));
  return {
    vocabSize,
    maxTokenLength,
    pieceBytes,
    pieces,
    scores: Float32Array.from(scores),
    lookup,
    byteFallback,
    byteOfToken,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    name,
  };
}

export interface EncodeOptions {
  /** Prepend BOS (id 1). Default true. */
  bos?: boolean;
  /** Append EOS (id 2). Default false. */
  eos?: boolean;
}

/**
 * Encodes text exactly as run.c `encode()`:
 *  1. optional BOS;
 *  2. if the text is non-empty, the dummy-prefix token for " " (sentencepiece add_dummy_prefix);
 *  3. one token per UTF-8 code point (at most 4 bytes, as run.c groups them) when the
 *     code point is a piece, else byte fallback (`<0xXX>` = byte + 3) or `<unk>`;
 *  4. repeatedly merge the adjacent pair whose concatenation is a piece with the highest
 *     score (ties: leftmost pair, because run.c scans left to right with a strict `>`).
 *     BOS takes part in the scan as in run.c (its piece never forms a merge in practice).
 *
 * run.c rescans the whole sequence per merge (O(n²)); here a max-heap over the
 * adjacent pairs with lazy invalidation yields the same merge order in O(n log n):
 * the key (score desc, left position asc) is exactly run.c's choice, because a
 * linked list of symbols keeps the left-to-right order of original positions.
 *
 * @returns token ids, Int32Array [n]
 */
export function encode(tok: Tokenizer, text: string, opts: EncodeOptions = {}): Int32Array {
  const bos = opts.bos ?? true;
  const eos = opts.eos ?? false;
  const ids: number[] = [];
  if (bos) ids.push(tok.bosId);
  const utf8 = new TextEncoder().encode(text);
  if (utf8.length > 0) {
    const space = tok.lookup.get(' ');
    if (space === undefined) throw new Error(`${tok.name}: no " " piece for the dummy prefix`);
    ids.push(space);
  }
  // Step 3: code points. The (b & 0xC0) === 0x80 test is run.c's continuation-byte test;
  // a code point ends at a non-continuation byte or after 4 bytes.
  let i = 0;
  while (i < utf8.length) {
    let j = i + 1;
    while (j < utf8.length && (utf8[j] & 0xc0) === 0x80 && j - i < 4) j++;
    let s = '';
    for (let k = i; k < j; k++) s += String.fromCharCode(utf8[k]);
    const id = tok.lookup.get(s);
    if (id !== undefined) ids.push(id);
    else if (tok.byteFallback) for (let k = i; k < j; k++) ids.push(utf8[k] + 3);
    else ids.push(tok.unkId);
    i = j;
  }
  const merged = mergePairs(tok, ids);
  if (eos) merged.push(tok.eosId);
  return Int32Array.from(merged);
}

/** Step 4 of encode: best-score-first pair merging on a doubly linked list. */
function mergePairs(tok: Tokenizer, ids: number[]): number[] {
  const n = ids.length;
  if (n < 2) return ids;
  const token = Int32Array.from(ids);
  const prev = new Int32Array(n);
  const next = new Int32Array(n);
  const alive = new Uint8Array(n).fill(1);
  // version[i] changes whenever symbol i's token or its right neighbour changes, so
  // heap entries made before that are recognised as stale.
  const version = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  const heap = new PairHeap();
  const consider = (left: number) => {
    const right = next[left];
    if (right < 0) return;
    const id = tok.lookup.get(tok.pieceBytes[token[left]] + tok.pieceBytes[token[right]]);
    // run.c only accepts a pair when score > best_score, best_score starting at -1e10.
    if (id !== undefined && tok.scores[id] > -1e10) heap.push(tok.scores[id], left, id, version[left]);
  };
  for (let i = 0; i + 1 < n; i++) consider(i);
  while (heap.size > 0) {
    const e = heap.pop();
    const left = e.pos;
    if (!alive[left] || version[left] !== e.version) continue;
    const right = next[left];
    // Merge right into left.
    token[left] = e.id;
    alive[right] = 0;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    version[left]++;
    const p = prev[left];
    if (p >= 0) {
      version[p]++; // its right neighbour's token changed
      consider(p);
    }
    consider(left);
  }
  const out: number[] = [];
  for (let i = 0; i >= 0; i = next[i]) out.push(token[i]);
  return out;
}

/** Binary max-heap on (score desc, pos asc) with parallel arrays. */
class PairHeap {
  private score: number[] = [];
  private posArr: number[] = [];
  private idArr: number[] = [];
  private verArr: number[] = [];
  get size(): number {
    return this.score.length;
  }
  private before(a: number, b: number): boolean {
    const sa = this.score[a];
    const sb = this.score[b];
    return sa > sb || (sa === sb && this.posArr[a] < this.posArr[b]);
  }
  private swap(a: number, b: number): void {
    for (const arr of [this.score, this.posArr, this.idArr, this.verArr]) {
      const t = arr[a];
      arr[a] = arr[b];
      arr[b] = t;
    }
  }
  push(score: number, pos: number, id: number, version: number): void {
    this.score.push(score);
    this.posArr.push(pos);
    this.idArr.push(id);
    this.verArr.push(version);
    let i = this.score.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }
  pop(): { pos: number; id: number; version: number } {
    const top = { pos: this.posArr[0], id: this.idArr[0], version: this.verArr[0] };
    const last = this.score.length - 1;
    this.swap(0, last);
    this.score.pop();
    this.posArr.pop();
    this.idArr.pop();
    this.verArr.pop();
    const n = this.score.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < n && this.before(l, best)) best = l;
      if (r < n && this.before(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return top;
  }
}

/**
 * Bytes that run.c `decode(prev_token, token)` prints for `token`:
 * the piece, minus its leading space when the previous token is BOS
 * (sentencepiece's dummy prefix), and the raw byte for `<0xXX>` pieces.
 */
function decodePieceBytes(tok: Tokenizer, prevToken: number, token: number): Uint8Array {
  const b = tok.byteOfToken[token];
  if (b >= 0) return Uint8Array.of(b);
  let s = tok.pieceBytes[token];
  if (prevToken === tok.bosId && s.charCodeAt(0) === 0x20) s = s.slice(1);
  return byteStringToBytes(s);
}

export interface DecodeOptions {
  /** Print BOS/EOS pieces ("\n<s>\n", "\n</s>\n"); default false (they act as separators). */
  keepSpecial?: boolean;
}

/**
 * Decodes a token sequence to text as run.c's generate loop would print it,
 * concatenating bytes first so that multi-byte characters split over byte tokens
 * come out whole.
 */
export function decode(tok: Tokenizer, ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
  const chunks: Uint8Array[] = [];
  let total = 0;
  let prev = -1;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id < 0 || id >= tok.vocabSize)
      throw new Error(`${tok.name}: token id ${id} is outside 0..${tok.vocabSize - 1}`);
    if (opts.keepSpecial || (id !== tok.bosId && id !== tok.eosId)) {
      const b = decodePieceBytes(tok, prev, id);
      chunks.push(b);
      total += b.length;
    }
    prev = id;
  }
  const all = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  return new TextDecoder('utf-8').decode(all);
}

function byteStringToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/**
 * One vocabulary entry per line, for `*.vocab.txt`: the display piece (UTF-8) with
 * `\` → `\\`, newline → `\n`, CR → `\r`, tab → `\t`, so that line index = token id.
 */
export function escapeVocabPiece(piece: string): string {
  return piece.replace(/[\\\n\r\t]/g, (c) =>
    c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t',
  );
}

/** Inverse of {@link escapeVocabPiece}. */
export function unescapeVocabPiece(line: string): string {
  return line.replace(/\\([\\nrt])/g, (_, c: string) =>
    c === '\\' ? '\\' : c === 'n' ? '\n' : c === 'r' ? '\r' : '\t',
  );
}
