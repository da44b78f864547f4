/**
 * Headless activation extraction:
 *
 *   npx tsx cli/extract.ts --model M.bin --tokenizer T.bin --text FILE.txt --layer L
 *       [--site resid|mlp] [--window W] [--max-tokens N] [--keep-bos] [--split paragraph|none]
 *       --out FILE.npy
 *   npx tsx cli/extract.ts --model GPT2_DIR --text FILE.txt --layer L [--site resid_post] ...
 *
 * A llama2.c checkpoint is one file with its tokenizer beside it (--tokenizer). A GPT-2 model is a
 * Hugging Face folder (config.json, model.safetensors, and tokenizer.json or vocab.json + merges.txt,
 * unless --tokenizer names another folder or file); it runs on the CPU twin, its site is a
 * TransformerLens kind (resid_pre, resid_mid, resid_post, attn_out, mlp_out; default resid_post), a
 * hook name (blocks.8.hook_resid_post) or openai's location name (resid_post_mlp, …), and its windows
 * are 64 tokens by default (as the paper's GPT-2 runs), each opened by <|endoftext|>.
 * --context and --tokens are other names of --window and --max-tokens.
 *
 * Writes FILE.npy ('<f4', or '<f2' with --dtype f16; shape [n, d]), FILE.tokens.npy ('<i4', [n])
 * and FILE.vocab.txt (one piece per line, line index = token id; `\` `\n` `\r` `\t` escaped as in
 * src/lm/tokenizer.ts escapeVocabPiece). Rows stream to disk window by window (no whole-dataset
 * buffer): the headers are written first at their final length and rewritten with the row count at
 * the end. Progress goes to stderr.
 * Exit codes: 0 ok, 2 bad input (one-line message), 1 unexpected failure.
 */

import {
  closeSync,
  openAsBlob,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { f32ToF16Bits } from '../src/data/half';
import { npyHeaderBytes } from '../src/data/npy';
import { readCheckpoint } from '../src/lm/checkpoint';
import {
  type ExtractChunk,
  type ExtractProgress,
  extractGpt2WindowsAsync,
  extractWindows,
  type Site,
} from '../src/lm/extract';
import { Llama } from '../src/lm/forward';
import { readGpt2Checkpoint } from '../src/lm/gpt2/checkpoint';
import { Gpt2 } from '../src/lm/gpt2/forward';
import { parseGpt2Site } from '../src/lm/gpt2/sites';
import { readGpt2Tokenizer } from '../src/lm/gpt2/tokenizer';
import { escapeVocabPiece, readTokenizer } from '../src/lm/tokenizer';

export const USAGE = [
  'usage: extract --model M.bin --tokenizer T.bin --text FILE.txt --layer L [--site resid|mlp] [--window W] [--max-tokens N] [--keep-bos] [--split paragraph|none] [--dtype f32|f16] --out FILE.npy',
  '       extract --model GPT2_DIR [--tokenizer DIR|FILE] --text FILE.txt --layer L [--site resid_pre|resid_mid|resid_post|attn_out|mlp_out|blocks.L.hook_…|resid_post_mlp|…] [--context 64] [--tokens N] [--keep-bos] [--split paragraph|none] [--dtype f32|f16] --out FILE.npy',
].join('\n');

/** GPT-2's default window: the paper's 64-token contexts. */
const GPT2_WINDOW = 64;

interface Args {
  model: string;
  /** required for llama2.c; for GPT-2 the model folder's by default */
  tokenizer?: string;
  text: string;
  /** required for llama2.c and for a GPT-2 site name without a layer */
  layer?: number;
  /** as given: llama2.c's resid|mlp, or a GPT-2 site name (checked once the model is read) */
  site?: string;
  window?: number;
  maxTokens?: number;
  keepBos: boolean;
  split: 'paragraph' | 'none';
  /** stored dtype of the activations: float32 ('<f4') or float16 ('<f2', rounded to nearest even) */
  dtype: 'f32' | 'f16';
  out: string;
}

/** Bad-input errors: reported as one line with exit code 2. */
class UsageError extends Error {}

function parseArgs(argv: string[]): Args {
  const flags = new Map<string, string>();
  let keepBos = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--keep-bos') {
      keepBos = true;
      continue;
    }
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument '${a}'`);
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else {
      if (i + 1 >= argv.length) throw new UsageError(`${a} needs a value`);
      flags.set(a.slice(2), argv[++i]);
    }
  }
  const known = new Set([
    'model',
    'tokenizer',
    'text',
    'layer',
    'site',
    'window',
    'context',
    'max-tokens',
    'tokens',
    'split',
    'dtype',
    'out',
  ]);
  for (const k of flags.keys()) if (!known.has(k)) throw new UsageError(`unknown option --${k}`);
  const need = (k: string) => {
    const v = flags.get(k);
    if (v === undefined || v === '') throw new UsageError(`missing --${k}`);
    return v;
  };
  const int = (k: string, min: number): number | undefined => {
    const v = flags.get(k);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new UsageError(`--${k} must be an integer ≥ ${min}, got '${v}'`);
    return n;
  };
  for (const [alias, name] of [
    ['context', 'window'],
    ['tokens', 'max-tokens'],
  ]) {
    const v = flags.get(alias);
    if (v === undefined) continue;
    if (flags.has(name)) throw new UsageError(`--${alias} and --${name} are the same option; give one`);
    flags.set(name, v);
  }
  const split = flags.get('split') ?? 'paragraph';
  if (split !== 'paragraph' && split !== 'none')
    throw new UsageError(`--split must be paragraph or none, got '${split}'`);
  const dtype = flags.get('dtype') ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'f16') throw new UsageError(`--dtype must be f32 or f16, got '${dtype}'`);
  const out = need('out');
  if (!out.endsWith('.npy')) throw new UsageError(`--out must end in .npy, got '${out}'`);
  return {
    model: need('model'),
    tokenizer: flags.get('tokenizer'),
    text: need('text'),
    layer: int('layer', 0),
    site: flags.get('site'),
    window: int('window', 2),
    maxTokens: int('max-tokens', 1),
    keepBos,
    split,
    dtype,
    out,
  };
}

function readInput(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UsageError(
      `cannot read ${what} '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false; // readInput reports a missing file
  }
}

/** What either family's extraction hands to the writer. */
interface Extracted {
  /** the windows' rows, as they are computed */
  chunks: Iterable<ExtractChunk> | AsyncIterable<ExtractChunk>;
  /** residual width */
  d: number;
  /** the vocabulary sidecar, one display string per id */
  pieces: string[];
  /** the site, for the summary line */
  where: string;
}

/** Reader errors (DataError and the llama2.c reader's) are bad input: one line, exit 2. */
function asUsage<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError((e as Error).message);
  }
}

function extractLlama(args: Args, text: string, onProgress: (p: ExtractProgress) => void): Extracted {
  const site = args.site ?? 'resid';
  if (site !== 'resid' && site !== 'mlp')
    throw new UsageError(`--site must be resid or mlp for a llama2.c model, got '${site}'`);
  if (args.layer === undefined) throw new UsageError('missing --layer');
  if (args.tokenizer === undefined) throw new UsageError('missing --tokenizer');
  const tokPath = args.tokenizer;
  const { ckpt, tok } = asUsage(() => {
    const ckpt = readCheckpoint(readInput(args.model, 'model'), basename(args.model));
    const tok = readTokenizer(readInput(tokPath, 'tokenizer'), {
      vocabSize: ckpt.config.vocabSize,
      name: basename(tokPath),
    });
    return { ckpt, tok };
  });
  const model = new Llama(ckpt, { dtype: 'f32' });
  const maxLayer = site === 'resid' ? ckpt.config.nLayers : ckpt.config.nLayers - 1;
  if (args.layer > maxLayer)
    throw new UsageError(`--layer ${args.layer} is outside 0..${maxLayer} for site ${site}`);
  if (args.window !== undefined && args.window > model.capacity) {
    throw new UsageError(`--window ${args.window} exceeds the model's seq_len ${model.capacity}`);
  }
  const chunks = extractWindows(model, tok, text, {
    layer: args.layer,
    site: site as Site,
    window: args.window,
    maxTokens: args.maxTokens,
    keepBos: args.keepBos,
    split: args.split,
    onProgress,
  });
  return { chunks, d: ckpt.config.dim, pieces: tok.pieces, where: `${site} layer ${args.layer}` };
}

/** The files of a folder (or the one file) a GPT-2 tokenizer is read from. */
function tokenizerFiles(path: string): { name: string; bytes: Uint8Array }[] {
  const names = isDir(path) ? readdirSync(path).map((n) => join(path, n)) : [path];
  const wanted = new Set(['tokenizer.json', 'vocab.json', 'merges.txt']);
  return names
    .filter((n) => wanted.has(basename(n)))
    .map((n) => ({ name: n, bytes: readInput(n, 'tokenizer') }));
}

async function extractGpt2(
  args: Args,
  text: string,
  onProgress: (p: ExtractProgress) => void,
): Promise<Extracted> {
  const dir = args.model;
  const configPath = join(dir, 'config.json');
  const modelPath = join(dir, 'model.safetensors');
  const config = readInput(configPath, 'GPT-2 config').toString('utf8');
  if (!statSync(modelPath, { throwIfNoEntry: false })?.isFile()) {
    throw new UsageError(
      `cannot read GPT-2 weights '${modelPath}': ENOENT (a Hugging Face folder holds model.safetensors)`,
    );
  }
  let ckpt: Awaited<ReturnType<typeof readGpt2Checkpoint>>;
  try {
    ckpt = await readGpt2Checkpoint({
      config,
      // A lazy Blob: the reader takes one tensor at a time, never the whole file.
      model: await openAsBlob(modelPath),
      configName: configPath,
      modelName: modelPath,
      name: basename(dir),
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const tok = asUsage(() => readGpt2Tokenizer(tokenizerFiles(args.tokenizer ?? dir)));
  const site = asUsage(() => parseGpt2Site(args.site ?? 'resid_post', ckpt.config.nLayer, args.layer));
  const model = new Gpt2(ckpt, { dtype: 'f32' });
  const window = args.window ?? Math.min(GPT2_WINDOW, model.capacity);
  if (window > model.capacity) {
    throw new UsageError(`--window ${window} exceeds the model's n_positions ${model.capacity}`);
  }
  if (tok.vocabSize !== ckpt.config.vocabSize)
    throw new UsageError(
      `tokenizer has ${tok.vocabSize} tokens but the model expects ${ckpt.config.vocabSize}`,
    );
  const chunks = extractGpt2WindowsAsync(model, tok, text, site, {
    window,
    maxTokens: args.maxTokens,
    keepBos: args.keepBos,
    split: args.split,
    onProgress,
  });
  return {
    chunks,
    d: ckpt.config.nEmbd,
    pieces: tok.pieces,
    where: `blocks.${site.layer}.hook_${site.kind}`,
  };
}

/** Header bytes reserved before the row count is known: room for a 16-digit count (then rewritten). */
const HEADER_BYTES = 128;

/**
 * Writes the chunks' rows to `actsPath` ([n, d], '<f4' or '<f2') and their token ids to `tokensPath`
 * ([n], '<i4') as they come; the headers (reserved at HEADER_BYTES) get the final n at the end. A
 * failure (a bad window, Ctrl-C aside) removes both files.
 */
async function writeStreamed(
  chunks: Iterable<ExtractChunk> | AsyncIterable<ExtractChunk>,
  d: number,
  dtype: 'f32' | 'f16',
  actsPath: string,
  tokensPath: string,
): Promise<{ nTokens: number; windows: number }> {
  const header = (descr: string, shape: number[]) => {
    const h = npyHeaderBytes(descr, shape, HEADER_BYTES);
    if (h.length !== HEADER_BYTES) throw new Error(`npy header of ${h.length} bytes, not ${HEADER_BYTES}`);
    return h;
  };
  const descr = dtype === 'f16' ? '<f2' : '<f4';
  const fa = openSync(actsPath, 'w');
  const ft = openSync(tokensPath, 'w');
  let nTokens = 0;
  let windows = 0;
  try {
    writeSync(fa, header(descr, [1e15, d]));
    writeSync(ft, header('<i4', [1e15]));
    for await (const c of chunks) {
      windows++;
      const rows = c.tokens.length;
      if (rows === 0) continue;
      const bytes =
        dtype === 'f16'
          ? new Uint8Array(Uint16Array.from(c.acts, f32ToF16Bits).buffer)
          : new Uint8Array(c.acts.buffer, c.acts.byteOffset, rows * d * 4);
      writeSync(fa, bytes);
      writeSync(ft, new Uint8Array(c.tokens.buffer, c.tokens.byteOffset, rows * 4));
      nTokens += rows;
    }
    writeSync(fa, header(descr, [nTokens, d]), 0, HEADER_BYTES, 0);
    writeSync(ft, header('<i4', [nTokens]), 0, HEADER_BYTES, 0);
  } catch (e) {
    closeSync(fa);
    closeSync(ft);
    rmSync(actsPath, { force: true });
    rmSync(tokensPath, { force: true });
    throw e;
  }
  closeSync(fa);
  closeSync(ft);
  return { nTokens, windows };
}

/** Runs the command; returns the process exit code (never calls process.exit). */
export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    const args = parseArgs(argv);
    const text = readInput(args.text, 'text').toString('utf8');
    const t0 = performance.now();
    let lastReport = 0;
    const onProgress = (p: ExtractProgress) => {
      const now = performance.now();
      if (now - lastReport < 500) return;
      lastReport = now;
      const pct = ((100 * p.charsDone) / Math.max(1, p.charsTotal)).toFixed(1);
      process.stderr.write(`\rextract: ${p.tokensDone} tokens, ${p.windowsDone} windows, ${pct}% of text`);
    };
    const { chunks, d, pieces, where } = isDir(args.model)
      ? await extractGpt2(args, text, onProgress)
      : extractLlama(args, text, onProgress);
    const stem = args.out.slice(0, -'.npy'.length);
    const { nTokens, windows } = await writeStreamed(chunks, d, args.dtype, args.out, `${stem}.tokens.npy`);
    const secs = (performance.now() - t0) / 1000;
    process.stderr.write(
      `\rextract: ${nTokens} tokens × ${d} (${where}) from ${windows} windows in ${secs.toFixed(1)} s\n`,
    );
    writeFileSync(`${stem}.vocab.txt`, `${pieces.map(escapeVocabPiece).join('\n')}\n`);
    process.stderr.write(`wrote ${args.out}, ${stem}.tokens.npy, ${stem}.vocab.txt\n`);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`extract: ${e.message} (see --help)\n`);
      return 2;
    }
    process.stderr.write(`extract: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
