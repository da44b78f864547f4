/**
 * GPT-2's byte-level BPE tokenizer, reproducing openai/gpt-2 `encoder.py` (and Hugging Face's
 * GPT2Tokenizer / tokenizers' ByteLevel BPE, which agree with it) id for id.
 *
 * Encoding:
 *  1. `<|endoftext|>` (and any other added token of a tokenizer.json) found in the text becomes its
 *     own id, unless `allowSpecial: false`; the text between is tokenized on its own.
 *  2. Pre-tokenization by GPT-2's pattern
 *     `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
 *  3. Each piece's UTF-8 bytes become one symbol per byte (GPT-2's bytes_to_unicode alphabet), then
 *     BPE: merge every occurrence of the adjacent pair with the lowest merge rank, left to right,
 *     until no pair has a rank.
 *
 * Files: `vocab.json` ({token: id}, tokens in the byte alphabet) with `merges.txt` (one "a b" per line
 * in rank order, an optional `#version` first line), or `tokenizer.json` (Hugging Face tokenizers:
 * model.vocab, model.merges as "a b" or ["a", "b"], added_tokens). Pure TS (node and workers).
 */

import { DataError } from '../../data/errors';

/** A file of a model folder: its name (a path is fine; only the base name is matched) and contents. */
export interface TokenizerFile {
  name: string;
  bytes: ArrayBuffer | ArrayBufferView;
}

export interface Gpt2Tokenizer {
  /** Number of ids, 0..vocabSize−1 (50257 for GPT-2). */
  vocabSize: number;
  /** Id of `<|endoftext|>` (50256 for GPT-2). */
  eotId: number;
  /** Each id's text for display: its bytes decoded as UTF-8, invalid sequences as U+FFFD. [vocabSize] */
  pieces: string[];
  /** The file the vocabulary came from, for messages. */
  name: string;
  /**
   * Token ids of `text`. `allowSpecial` (default true): `<|endoftext|>` in the text is the special
   * token, as Hugging Face's tokenizers do; false: it is tokenized as plain text, as encoder.py does.
   */
  encode(text: string, opts?: { allowSpecial?: boolean }): Int32Array;
  /** Text of `ids`: their bytes concatenated, decoded as UTF-8 with U+FFFD for invalid sequences. */
  decode(ids: ArrayLike<number>): string;
}

const EOT = '<|endoftext|>';

/**
 * `\s` as Python's `regex` module (encoder.py), tiktoken and tokenizers' Oniguruma read it: the 25
 * Unicode White_Space code points. JavaScript's `\s` differs: it lacks U+0085 and adds U+FEFF.
 */
const WS = '\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PRETOKEN = new RegExp(
  `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|[${WS}]+(?![^${WS}])|[${WS}]+`,
  'gu',
);

/**
 * GPT-2's bytes_to_unicode: the printable bytes 33..126, 161..172 and 174..255 stand for themselves;
 * the other 68 bytes, in increasing order, for code points 256, 257, …  [256] → one-char string.
 */
const BYTE_SYMBOL: string[] = (() => {
  const out: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    out.push(String.fromCharCode(printable ? b : next++));
  }
  return out;
})();
const SYMBOL_BYTE = new Map(BYTE_SYMBOL.map((s, b) => [s, b]));

/** Bounds the piece cache (encoder.py's grows without limit; a worker may tokenize a whole corpus). */
const CACHE_LIMIT = 1 << 16;

const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const utf8Lossy = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

function asBytes(b: ArrayBuffer | ArrayBufferView): Uint8Array {
  return b instanceof Uint8Array
    ? b
    : ArrayBuffer.isView(b)
      ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
      : new Uint8Array(b);
}

function baseName(name: string): string {
  return name.split(/[\\/]/).pop() ?? name;
}

function readText(f: TokenizerFile): string {
  try {
    return utf8Strict.decode(asBytes(f.bytes));
  } catch {
    throw new DataError(f.name, 'is not UTF-8 text');
  }
}

function readJson(f: TokenizerFile): unknown {
  const text = readText(f);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DataError(f.name, `is not valid JSON (${(e as Error).message})`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function quote(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

/** A vocabulary as read from a file, before the merges are resolved. */
interface Vocab {
  /** token string (byte alphabet) → id */
  ids: Map<string, number>;
  /** [vocabSize] bytes that each id decodes to */
  bytes: Uint8Array[];
}

/** Reads {token: id} (vocab.json, or tokenizer.json's model.vocab); `added` are tokens outside the byte alphabet. */
function readVocab(file: string, obj: unknown, what: string, added: Map<number, string>): Vocab {
  if (!isObject(obj)) throw new DataError(file, `${what} is not a JSON object of token → id`);
  const ids = new Map<string, number>();
  const byId = new Map<number, string>();
  for (const [tok, id] of Object.entries(obj)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= 1 << 24)
      throw new DataError(
        file,
        `${what}: token ${quote(tok)} has id ${JSON.stringify(id)}, not an integer id`,
      );
    const other = byId.get(id);
    if (other !== undefined)
      throw new DataError(file, `${what}: tokens ${quote(other)} and ${quote(tok)} share id ${id}`);
    ids.set(tok, id);
    byId.set(id, tok);
  }
  for (const [id, content] of added) {
    const other = byId.get(id);
    if (other !== undefined && other !== content)
      throw new DataError(
        file,
        `added token ${quote(content)} has id ${id}, which the vocabulary gives ${quote(other)}`,
      );
    byId.set(id, content);
  }
  const n = byId.size;
  const bytes: Uint8Array[] = new Array(n);
  for (let id = 0; id < n; id++) {
    const tok = byId.get(id);
    if (tok === undefined)
      throw new DataError(file, `${what}: ids are not 0..${n - 1} (no token has id ${id})`);
    if (added.has(id)) {
      bytes[id] = utf8Encoder.encode(tok);
      continue;
    }
    const b = new Uint8Array(tok.length);
    for (let i = 0; i < tok.length; i++) {
      const v = SYMBOL_BYTE.get(tok[i]);
      if (v === undefined)
        throw new DataError(
          file,
          `${what}: token ${quote(tok)} (id ${id}) has ${quote(tok[i])}, outside GPT-2's byte alphabet: not a byte-level BPE vocabulary`,
        );
      b[i] = v;
    }
    bytes[id] = b;
  }
  return { ids, bytes };
}

/**
 * Builds the tokenizer. `merges` are [left, right] symbol pairs in rank order, each with the place
 * it came from for messages; `specials` are matched in text before pre-tokenization.
 */
function build(
  name: string,
  vocab: Vocab,
  merges: Iterable<[string, string, string]>,
  mergesFile: string,
  specials: string[],
): Gpt2Tokenizer {
  const V = vocab.bytes.length;
  const eotId = vocab.ids.get(EOT);
  if (eotId === undefined) throw new DataError(name, `has no ${EOT} token: not a GPT-2 vocabulary`);
  const byteId = new Int32Array(256);
  for (let b = 0; b < 256; b++) {
    const id = vocab.ids.get(BYTE_SYMBOL[b]);
    if (id === undefined)
      throw new DataError(
        name,
        `has no token for byte 0x${b.toString(16).padStart(2, '0')}: not a byte-level vocabulary`,
      );
    byteId[b] = id;
  }
  // A pair (a, b) of ids is the number a·V + b (< 2^48, exact in a double).
  const rankOf = new Map<number, number>();
  const merged: number[] = [];
  for (const [a, b, where] of merges) {
    const ia = vocab.ids.get(a);
    const ib = vocab.ids.get(b);
    const im = vocab.ids.get(a + b);
    const missing = ia === undefined ? a : ib === undefined ? b : im === undefined ? a + b : null;
    if (missing !== null)
      throw new DataError(
        mergesFile,
        `${where}: merge ${quote(`${a} ${b}`)} uses ${quote(missing)}, which is not in the vocabulary`,
      );
    // A repeated pair keeps its last rank, as encoder.py's dict(zip(merges, range(...))) does.
    rankOf.set((ia as number) * V + (ib as number), merged.length);
    merged.push(im as number);
  }

  const cache = new Map<string, number[]>();
  const bpe = (piece: string): number[] => {
    const hit = cache.get(piece);
    if (hit) return hit;
    let word = Array.from(utf8Encoder.encode(piece), (b) => byteId[b]);
    while (word.length > 1) {
      let best = Number.POSITIVE_INFINITY;
      for (let i = 0; i + 1 < word.length; i++) {
        const r = rankOf.get(word[i] * V + word[i + 1]);
        if (r !== undefined && r < best) best = r;
      }
      if (best === Number.POSITIVE_INFINITY) break;
      // Every occurrence of the best pair, left to right without overlap (encoder.py's bpe()).
      const next: number[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && rankOf.get(word[i] * V + word[i + 1]) === best) {
          next.push(merged[best]);
          i++;
        } else next.push(word[i]);
      }
      word = next;
    }
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(piece, word);
    return word;
  };

  const specialId = new Map(specials.map((s) => [s, vocab.ids.get(s) as number]));
  // Longest first, so that at one position the longest added token wins (tokenizers' leftmost-longest).
  const specialRe = specials.length
    ? new RegExp(
        [...specials]
          .sort((x, y) => y.length - x.length)
          .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
          .join('|'),
        'g',
      )
    : null;

  const encodeOrdinary = (text: string, out: number[]) => {
    for (const m of text.matchAll(PRETOKEN)) for (const id of bpe(m[0])) out.push(id);
  };

  return {
    vocabSize: V,
    eotId,
    pieces: vocab.bytes.map((b) => utf8Lossy.decode(b)),
    name,
    encode(text, opts = {}) {
      const out: number[] = [];
      if (opts.allowSpecial === false || specialRe === null) encodeOrdinary(text, out);
      else {
        let start = 0;
        for (const m of text.matchAll(specialRe)) {
          encodeOrdinary(text.slice(start, m.index), out);
          out.push(specialId.get(m[0]) as number);
          start = m.index + m[0].length;
        }
        encodeOrdinary(text.slice(start), out);
      }
      return Int32Array.from(out);
    },
    decode(ids) {
      let total = 0;
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i];
        if (!Number.isInteger(id) || id < 0 || id >= V)
          throw new DataError(name, `token id ${id} is outside 0..${V - 1}`);
        total += vocab.bytes[id].length;
      }
      const all = new Uint8Array(total);
      let o = 0;
      for (let i = 0; i < ids.length; i++) {
        all.set(vocab.bytes[ids[i]], o);
        o += vocab.bytes[ids[i]].length;
      }
      return utf8Lossy.decode(all);
    },
  };
}

/** merges.txt lines as [left, right, "line N"]; a first line `#version…` and blank lines are skipped. */
function* mergesTxt(f: TokenizerFile, text: string): Generator<[string, string, string]> {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i];
    if ((i === 0 && line.startsWith('#version')) || line === '') continue;
    const parts = line.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '')
      throw new DataError(f.name, `line ${i + 1}: ${quote(line)} is not a merge "left right"`);
    yield [parts[0], parts[1], `line ${i + 1}`];
  }
}

function fromVocabMerges(vocabFile: TokenizerFile, mergesFile: TokenizerFile): Gpt2Tokenizer {
  const vocab = readVocab(vocabFile.name, readJson(vocabFile), 'vocabulary', new Map());
  const text = readText(mergesFile);
  // The only special token of GPT-2's vocab.json form (Hugging Face's GPT2Tokenizer bos/eos/unk).
  return build(vocabFile.name, vocab, mergesTxt(mergesFile, text), mergesFile.name, [EOT]);
}

function fromTokenizerJson(f: TokenizerFile): Gpt2Tokenizer {
  const root = readJson(f);
  if (!isObject(root) || !isObject(root.model))
    throw new DataError(f.name, 'has no "model" object: not a Hugging Face tokenizer.json');
  const model = root.model;
  if (model.type !== undefined && model.type !== 'BPE')
    throw new DataError(f.name, `model.type is ${JSON.stringify(model.type)}, not GPT-2's "BPE"`);
  const pre = root.pre_tokenizer;
  if (!isObject(pre) || pre.type !== 'ByteLevel')
    throw new DataError(
      f.name,
      `pre_tokenizer is ${isObject(pre) ? JSON.stringify(pre.type) : JSON.stringify(pre ?? null)}, not GPT-2's ByteLevel`,
    );
  if (pre.add_prefix_space === true || pre.use_regex === false)
    throw new DataError(
      f.name,
      'pre_tokenizer ByteLevel with add_prefix_space or without use_regex is not supported (GPT-2 uses neither)',
    );
  if (root.normalizer !== undefined && root.normalizer !== null)
    throw new DataError(f.name, 'has a normalizer; GPT-2 has none');
  for (const key of ['continuing_subword_prefix', 'end_of_word_suffix'] as const)
    if (typeof model[key] === 'string' && model[key] !== '')
      throw new DataError(f.name, `model.${key} is ${JSON.stringify(model[key])}; GPT-2 has none`);

  const added = new Map<number, string>();
  const rawAdded = root.added_tokens ?? [];
  if (!Array.isArray(rawAdded)) throw new DataError(f.name, 'added_tokens is not a list');
  for (const t of rawAdded) {
    if (
      !isObject(t) ||
      typeof t.content !== 'string' ||
      t.content === '' ||
      !Number.isInteger(t.id) ||
      (t.id as number) < 0
    )
      throw new DataError(
        f.name,
        `added_tokens has an entry without a content string and an integer id: ${JSON.stringify(t)}`,
      );
    added.set(t.id as number, t.content);
  }
  const vocab = readVocab(f.name, model.vocab, 'model.vocab', added);
  for (const [id, content] of added) vocab.ids.set(content, id);

  if (!Array.isArray(model.merges)) throw new DataError(f.name, 'model.merges is not a list');
  const list = model.merges;
  function* merges(): Generator<[string, string, string]> {
    for (let i = 0; i < list.length; i++) {
      const m = list[i];
      const pair = typeof m === 'string' ? m.split(' ') : m;
      if (
        !Array.isArray(pair) ||
        pair.length !== 2 ||
        typeof pair[0] !== 'string' ||
        typeof pair[1] !== 'string' ||
        !pair[0] ||
        !pair[1]
      )
        throw new DataError(
          f.name,
          `model.merges[${i}] is ${quote(JSON.stringify(m))}, not "left right" or ["left", "right"]`,
        );
      yield [pair[0], pair[1], `model.merges[${i}]`];
    }
  }
  return build(f.name, vocab, merges(), f.name, [...added.values()]);
}

/**
 * The tokenizer of a model folder: `tokenizer.json` if present, else `vocab.json` with `merges.txt`.
 * Other files are ignored (pass a folder's whole listing or just these). Throws a DataError (one
 * line naming the file) when they are missing or are not a GPT-2 byte-level BPE vocabulary.
 */
export function readGpt2Tokenizer(files: readonly TokenizerFile[]): Gpt2Tokenizer {
  const find = (base: string) => files.find((f) => baseName(f.name) === base);
  const json = find('tokenizer.json');
  if (json) return fromTokenizerJson(json);
  const vocab = find('vocab.json');
  const merges = find('merges.txt');
  if (vocab && merges) return fromVocabMerges(vocab, merges);
  if (vocab || merges)
    throw new DataError(
      (vocab ?? merges)!.name,
      `${vocab ? 'merges.txt' : 'vocab.json'} is missing beside it`,
    );
  const names = files.map((f) => f.name).join(', ') || 'none';
  throw new DataError(
    'tokenizer',
    `no tokenizer.json, or vocab.json with merges.txt, among the files (${names})`,
  );
}
