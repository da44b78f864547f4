/**
 * GPT-2 extraction on the CPU twin (extractGpt2Activations and `extract --model DIR`), on the tiny
 * fixture model with its embedding grown to a byte-level vocabulary: the 256 byte symbols, two
 * merges and <|endoftext|>, written as vocab.json + merges.txt beside config.json.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../../cli/extract';
import { decodeNpy, parseNpyHeader } from '../../../src/data/npy';
import { Rng } from '../../../src/data/rng';
import { readSafetensors, type StTensorIn, writeSafetensors } from '../../../src/data/safetensors';
import { extractGpt2Activations, splitParagraphs } from '../../../src/lm/extract';
import { readGpt2Checkpoint } from '../../../src/lm/gpt2/checkpoint';
import { Gpt2 } from '../../../src/lm/gpt2/forward';
import { readGpt2Tokenizer } from '../../../src/lm/gpt2/tokenizer';
import { unescapeVocabPiece } from '../../../src/lm/tokenizer';
import { fixtureBytes, maxRowRelErr, REF_KINDS } from './gpt2-helpers';

const D = 24;
const V = 259;
const EOT = 256;

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest for 256, 257, … */
function byteSymbols(): string[] {
  const out: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    out.push(String.fromCharCode(printable ? b : next++));
  }
  return out;
}

/** A Hugging Face folder: the fixture's weights with wte grown to V rows, and its tokenizer files. */
function makeFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gpt2-extract-'));
  const config = JSON.parse(readFileSync(resolve(__dirname, '../../fixtures/gpt2/f32/config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, vocab_size: V }));
  const { tensors } = readSafetensors(fixtureBytes('f32/model.safetensors'));
  const t: Record<string, StTensorIn> = {};
  for (const [k, v] of Object.entries(tensors))
    t[k] = { dtype: 'F32', shape: v.shape, data: v.data as Float32Array };
  const wte = new Float32Array(V * D);
  wte.set(t['wte.weight'].data as Float32Array);
  const rng = new Rng(7);
  for (let i = 80 * D; i < V * D; i++) wte[i] = 0.5 * rng.normal();
  t['wte.weight'] = { dtype: 'F32', shape: [V, D], data: wte };
  writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(t));
  const vocab: Record<string, number> = {};
  byteSymbols().forEach((s, b) => {
    vocab[s] = b;
  });
  vocab['<|endoftext|>'] = EOT;
  vocab.Ġt = 257;
  vocab.he = 258;
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify(vocab));
  writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\nĠ t\nh e\n');
  return dir;
}

const DIR = makeFolder();
afterAll(() => rmSync(DIR, { recursive: true }));
const TEXT = 'the theme of the text\n\nthe end, then the rest.\n\n\nA third paragraph: that is the test.';

async function load() {
  const ckpt = await readGpt2Checkpoint({
    config: readFileSync(join(DIR, 'config.json'), 'utf8'),
    model: new Blob([Uint8Array.from(readFileSync(join(DIR, 'model.safetensors')))]),
  });
  const tok = readGpt2Tokenizer(
    ['vocab.json', 'merges.txt'].map((n) => ({ name: n, bytes: readFileSync(join(DIR, n)) })),
  );
  return { model: new Gpt2(ckpt, { dtype: 'f32' }), tok };
}

describe('GPT-2 extraction (CPU)', () => {
  it('windows open with <|endoftext|>; rows equal the forward of each window', async () => {
    const { model, tok } = await load();
    const W = 8;
    const site = { kind: 'resid_mid' as const, layer: 1 };
    const res = extractGpt2Activations(model, tok, TEXT, site, { window: W });
    // The same windows by hand: <|endoftext|> + the next W − 1 ids of each paragraph.
    const want: number[] = [];
    const tokens: number[] = [];
    let windows = 0;
    for (const p of splitParagraphs(TEXT)) {
      const ids = tok.encode(p.text);
      expect(ids).toContain(257); // the merges are used
      for (let s = 0; s < ids.length; s += W - 1) {
        const win = [EOT, ...ids.subarray(s, s + W - 1)];
        const a = model.run(win, { sites: [site], logits: false }).sites.get('blocks.1.hook_resid_mid')!;
        want.push(...a.subarray(D));
        tokens.push(...win.slice(1));
        windows++;
      }
    }
    expect(res.windows).toBe(windows);
    expect(Array.from(res.tokens)).toEqual(tokens);
    expect(res.positions[0]).toBe(1);
    expect(Array.from(res.acts)).toEqual(want);

    const withEot = extractGpt2Activations(model, tok, TEXT, site, {
      window: W,
      keepBos: true,
      maxTokens: 10,
    });
    expect(withEot.tokens[0]).toBe(EOT);
    expect(withEot.nTokens).toBe(10);
    expect(() => extractGpt2Activations(model, tok, TEXT, site, { window: 25 })).toThrow(/window 25 must be/);
  });

  it('extract --model DIR writes the rows, token ids and vocabulary; bad input exits 2 with one line', async () => {
    const out = mkdtempSync(join(tmpdir(), 'gpt2-extract-out-'));
    const textPath = join(out, 'in.txt');
    writeFileSync(textPath, TEXT);
    const acts = join(out, 'acts.npy');
    const base = ['--model', DIR, '--text', textPath, '--out', acts];
    const errors: string[] = [];
    const errWrite = process.stderr.write;
    process.stderr.write = ((s: string) => {
      errors.push(s);
      return true;
    }) as typeof process.stderr.write;
    let codes: number[];
    try {
      expect(
        await main([
          ...base,
          '--layer',
          '1',
          '--site',
          'resid_post_attn',
          '--context',
          '8',
          '--tokens',
          '20',
        ]),
      ).toBe(0);
      codes = [
        await main([...base, '--site', 'resid', '--layer', '1']),
        await main([...base, '--site', 'blocks.2.hook_resid_post']),
        await main([...base, '--site', 'mlp_out']),
        await main([...base, '--layer', '1', '--context', '30']),
        await main([...base, '--layer', '1', '--tokenizer', textPath]),
        await main(['--model', out, '--text', textPath, '--layer', '1', '--out', acts]),
      ];
    } finally {
      process.stderr.write = errWrite;
    }
    expect(codes).toEqual([2, 2, 2, 2, 2, 2]);
    const lines = errors.filter((e) => e.startsWith('extract: ') && !e.includes('tokens ×'));
    expect(lines.map((l) => l.trim())).toEqual([
      expect.stringMatching(/^extract: unknown GPT-2 site 'resid': use blocks\.L\.hook_/),
      expect.stringContaining("site 'blocks.2.hook_resid_post': layer 2 is outside 0..1 (n_layer = 2)"),
      expect.stringContaining("site 'mlp_out' needs a layer (0..1)"),
      expect.stringContaining("--window 30 exceeds the model's n_positions 24"),
      expect.stringContaining('tokenizer: no tokenizer.json, or vocab.json with merges.txt'),
      expect.stringContaining('config.json'),
    ]);

    const { model, tok } = await load();
    const ref = extractGpt2Activations(
      model,
      tok,
      TEXT,
      { kind: 'resid_mid', layer: 1 },
      { window: 8, maxTokens: 20 },
    );
    const a = decodeNpy(readFileSync(acts));
    expect(a.shape).toEqual([20, D]);
    expect(Array.from(a.data)).toEqual(Array.from(ref.acts));
    expect(Array.from(decodeNpy(readFileSync(join(out, 'acts.tokens.npy'))).data)).toEqual(
      Array.from(ref.tokens),
    );
    const vocab = readFileSync(join(out, 'acts.vocab.txt'), 'utf8')
      .split('\n')
      .slice(0, -1)
      .map(unescapeVocabPiece);
    expect(vocab).toEqual(tok.pieces);
    expect(vocab[EOT]).toBe('<|endoftext|>');

    // Another folder's tokenizer by --tokenizer; the hook name carries the layer.
    const other = mkdtempSync(join(tmpdir(), 'gpt2-tok-'));
    for (const n of ['vocab.json', 'merges.txt']) copyFileSync(join(DIR, n), join(other, n));
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      expect(
        await main([...base, '--tokenizer', other, '--site', 'blocks.0.hook_attn_out', '--tokens', '5']),
      ).toBe(0);
    } finally {
      process.stderr.write = errWrite;
    }
    expect(decodeNpy(readFileSync(acts)).shape).toEqual([5, D]);
    rmSync(other, { recursive: true });
    rmSync(out, { recursive: true });
  });
});

describe('extract --model on a Hugging Face folder vs the independent float64 numpy forward', () => {
  // tests/fixtures/gpt2/bytes: F16 weights with `transformer.` keys, a byte-level vocab.json +
  // merges.txt, text.txt, and numpy's float64 sites for <|endoftext|> + the text's bytes.
  const FOLDER = resolve(__dirname, '../../fixtures/gpt2/bytes');
  const f64 = (name: string) => {
    const b = Uint8Array.from(readFileSync(join(FOLDER, name)));
    const h = parseNpyHeader(b, name);
    if ('needMore' in h) throw new Error(name);
    return { shape: h.shape, data: b.slice(h.dataOffset) };
  };

  it('every site of every layer within 1e-4 of the row norm (the text through the tokenizer too)', async () => {
    const refTokens = new Int32Array(f64('ref_tokens.npy').data.buffer);
    const sites = f64('ref_sites.npy');
    const ref = new Float64Array(sites.data.buffer);
    const [L, , T] = sites.shape;
    const out = mkdtempSync(join(tmpdir(), 'gpt2-extract-ref-'));
    const acts = join(out, 'acts.npy');
    const errWrite = process.stderr.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    let worst = 0;
    try {
      for (let l = 0; l < L; l++) {
        for (let k = 0; k < 5; k++) {
          const site = `blocks.${l}.hook_${REF_KINDS[k]}`;
          const args = ['--model', FOLDER, '--text', join(FOLDER, 'text.txt'), '--site', site, '--keep-bos'];
          expect(await main([...args, '--out', acts]), site).toBe(0);
          const a = decodeNpy(readFileSync(acts));
          expect(a.shape).toEqual([T, D]);
          const e = maxRowRelErr(
            a.data as Float32Array,
            ref.subarray((l * 5 + k) * T * D, (l * 5 + k + 1) * T * D),
            D,
          );
          expect(e, site).toBeLessThan(1e-4);
          worst = Math.max(worst, e);
        }
      }
    } finally {
      process.stderr.write = errWrite;
    }
    expect(Array.from(decodeNpy(readFileSync(join(out, 'acts.tokens.npy'))).data)).toEqual(
      Array.from(refTokens),
    );
    // The float32 twin and float32 rows: measured 2.5e-7.
    expect(worst).toBeLessThan(1e-6);
    rmSync(out, { recursive: true });
  });
});
