/**
 * Headless activation extraction:
 *
 *   npx tsx cli/extract.ts --model M.bin --tokenizer T.bin --text FILE.txt --layer L
 *       [--site resid|mlp] [--window W] [--max-tokens N] [--keep-bos] [--split paragraph|none]
 *       --out FILE.npy
 *
 * Writes FILE.npy ('<f4', shape [n, d]), FILE.tokens.npy ('<i4', [n]) and
 * FILE.vocab.txt (one piece per line, line index = token id; `\` `\n` `\r` `\t`
 * escaped as in src/lm/tokenizer.ts escapeVocabPiece). Progress goes to stderr.
 * Exit codes: 0 ok, 2 bad input (one-line message), 1 unexpected failure.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeNpy } from '../src/data/npy';
import { readCheckpoint } from '../src/lm/checkpoint';
import { extractActivations, type Site } from '../src/lm/extract';
import { Llama } from '../src/lm/forward';
import { escapeVocabPiece, readTokenizer } from '../src/lm/tokenizer';

export const USAGE =
  'usage: extract --model M.bin --tokenizer T.bin --text FILE.txt --layer L [--site resid|mlp] [--window W] [--max-tokens N] [--keep-bos] [--split paragraph|none] --out FILE.npy';

interface Args {
  model: string;
  tokenizer: string;
  text: string;
  layer: number;
  site: Site;
  window?: number;
  maxTokens?: number;
  keepBos: boolean;
  split: 'paragraph' | 'none';
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
    'max-tokens',
    'split',
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
  const site = flags.get('site') ?? 'resid';
  if (site !== 'resid' && site !== 'mlp') throw new UsageError(`--site must be resid or mlp, got '${site}'`);
  const split = flags.get('split') ?? 'paragraph';
  if (split !== 'paragraph' && split !== 'none')
    throw new UsageError(`--split must be paragraph or none, got '${split}'`);
  const out = need('out');
  if (!out.endsWith('.npy')) throw new UsageError(`--out must end in .npy, got '${out}'`);
  need('layer');
  return {
    model: need('model'),
    tokenizer: need('tokenizer'),
    text: need('text'),
    layer: int('layer', 0) as number,
    site,
    window: int('window', 2),
    maxTokens: int('max-tokens', 1),
    keepBos,
    split,
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

/** Runs the command; returns the process exit code (never calls process.exit). */
export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    const args = parseArgs(argv);
    let ckpt: ReturnType<typeof readCheckpoint>;
    let tok: ReturnType<typeof readTokenizer>;
    try {
      ckpt = readCheckpoint(readInput(args.model, 'model'), basename(args.model));
      tok = readTokenizer(readInput(args.tokenizer, 'tokenizer'), {
        vocabSize: ckpt.config.vocabSize,
        name: basename(args.tokenizer),
      });
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError((e as Error).message);
    }
    const text = readInput(args.text, 'text').toString('utf8');
    const model = new Llama(ckpt, { dtype: 'f32' });
    const maxLayer = args.site === 'resid' ? ckpt.config.nLayers : ckpt.config.nLayers - 1;
    if (args.layer > maxLayer)
      throw new UsageError(`--layer ${args.layer} is outside 0..${maxLayer} for site ${args.site}`);
    if (args.window !== undefined && args.window > model.capacity) {
      throw new UsageError(`--window ${args.window} exceeds the model's seq_len ${model.capacity}`);
    }

    const t0 = performance.now();
    let lastReport = 0;
    const res = extractActivations(model, tok, text, {
      layer: args.layer,
      site: args.site,
      window: args.window,
      maxTokens: args.maxTokens,
      keepBos: args.keepBos,
      split: args.split,
      onProgress: (p) => {
        const now = performance.now();
        if (now - lastReport < 500) return;
        lastReport = now;
        const pct = ((100 * p.charsDone) / Math.max(1, p.charsTotal)).toFixed(1);
        process.stderr.write(`\rextract: ${p.tokensDone} tokens, ${p.windowsDone} windows, ${pct}% of text`);
      },
    });
    const secs = (performance.now() - t0) / 1000;
    process.stderr.write(
      `\rextract: ${res.nTokens} tokens × ${res.d} (${args.site} layer ${args.layer}) from ${res.windows} windows in ${secs.toFixed(1)} s\n`,
    );

    const stem = args.out.slice(0, -'.npy'.length);
    writeFileSync(args.out, writeNpy(res.acts, [res.nTokens, res.d]));
    writeFileSync(`${stem}.tokens.npy`, writeNpy(res.tokens, [res.nTokens]));
    writeFileSync(`${stem}.vocab.txt`, `${tok.pieces.map(escapeVocabPiece).join('\n')}\n`);
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
