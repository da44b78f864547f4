/**
 * Builds the bundled demo dataset:
 *
 *   npx tsx scripts/make-demo.ts [--max-tokens N] [--out-dir public/demo]
 *
 * Layer-2 residual stream (residual index 2 = after layers 0 and 1) of
 * stories260K over public/text/tinystories_train_head.txt, paragraph by
 * paragraph, each paragraph from a fresh BOS, BOS rows skipped.
 *
 * Size choice: the whole text gives 97,651 rows × 64 floats = 25 MB as f32 or
 * 12.5 MB as f16, too big to commit. We keep float16 (relative error ≤ 2^-11,
 * far below anything an SAE reconstructs) and cap the rows at 40,960 (= 10 ×
 * 4096, the first ~42% of the text), so the committed demo is ≈ 5.6 MB:
 *   stories260K_L2_resid.f16.npy        '<f2' [40960, 64]   5.24 MB
 *   stories260K_L2_resid.tokens.npy     '<i4' [40960]       token id per row
 *   stories260K_L2_resid.positions.npy  '<i4' [40960]       position in window (1 = first token after BOS)
 *   stories260K_L2_resid.vocab.txt      one escaped piece per line (line = id)
 *   stories260K_L2_resid.json           provenance and summary statistics
 * The rest of the text (from `charsUsed` on) stays available as held-out text.
 */

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { encodeF16 } from '../src/data/half';
import { writeNpy } from '../src/data/npy';
import { readCheckpoint } from '../src/lm/checkpoint';
import { extractActivations } from '../src/lm/extract';
import { Llama } from '../src/lm/forward';
import { escapeVocabPiece, readTokenizer } from '../src/lm/tokenizer';

const root = resolve(import.meta.dirname ?? '.', '..');
const argv = process.argv.slice(2);
const flag = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
};
const maxTokens = Number(flag('max-tokens', '40960'));
const outDir = resolve(root, flag('out-dir', 'public/demo'));
const LAYER = 2;
const stem = join(outDir, `stories260K_L${LAYER}_resid`);

const modelPath = 'public/models/stories260K/stories260K.bin';
const tokPath = 'public/models/stories260K/tok512.bin';
const textPath = 'public/text/tinystories_train_head.txt';
const modelBytes = readFileSync(resolve(root, modelPath));
const ckpt = readCheckpoint(modelBytes, 'stories260K.bin');
const tok = readTokenizer(readFileSync(resolve(root, tokPath)), { vocabSize: ckpt.config.vocabSize, name: 'tok512.bin' });
const text = readFileSync(resolve(root, textPath), 'utf8');
const model = new Llama(ckpt, { dtype: 'f32' });

const t0 = performance.now();
let charsUsed = 0;
const res = extractActivations(model, tok, text, {
  layer: LAYER,
  site: 'resid',
  maxTokens,
  onProgress: (p) => {
    charsUsed = p.charsDone;
    if (p.windowsDone % 50 === 0) process.stderr.write(`\r${p.tokensDone} tokens, ${p.windowsDone} paragraphs`);
  },
});
const seconds = (performance.now() - t0) / 1000;
process.stderr.write(`\r${res.nTokens} tokens × ${res.d} in ${seconds.toFixed(1)} s (${(res.nTokens / seconds).toFixed(0)} tok/s)\n`);

// Summary statistics, for the UI and as a sanity check of the f16 rounding.
const half = encodeF16(res.acts);
let sumNorm = 0;
let sumSq = 0;
for (let r = 0; r < res.nTokens; r++) {
  let ss = 0;
  for (let i = 0; i < res.d; i++) ss += res.acts[r * res.d + i] ** 2;
  sumNorm += Math.sqrt(ss);
  sumSq += ss;
}

mkdirSync(outDir, { recursive: true });
const files: Record<string, Uint8Array | string> = {
  [`${stem}.f16.npy`]: writeNpy(half, [res.nTokens, res.d]),
  [`${stem}.tokens.npy`]: writeNpy(res.tokens, [res.nTokens]),
  [`${stem}.positions.npy`]: writeNpy(res.positions, [res.nTokens]),
  [`${stem}.vocab.txt`]: `${tok.pieces.map(escapeVocabPiece).join('\n')}\n`,
};
const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const manifest = {
  description: `Residual stream after layer ${LAYER - 1} (residual index ${LAYER}) of stories260K, one row per token`,
  model: { path: modelPath, sha256: sha(modelBytes), config: ckpt.config },
  tokenizer: tokPath,
  text: { path: textPath, chars: text.length, charsUsed },
  site: 'resid',
  layer: LAYER,
  layerConvention: 'residual index: 0 = token embedding into layer 0, l+1 = after layer l',
  split: 'paragraph (blank-line separated), each from a fresh BOS',
  window: ckpt.config.seqLen,
  bosRows: 'skipped',
  dtype: 'float16',
  nTokens: res.nTokens,
  d: res.d,
  meanNorm: sumNorm / res.nTokens,
  meanSquaredNorm: sumSq / res.nTokens,
  extractSeconds: Number(seconds.toFixed(2)),
  files: Object.fromEntries(Object.entries(files).map(([p, b]) => [p.slice(outDir.length + 1), { bytes: b.length, sha256: sha(b) }])),
};
files[`${stem}.json`] = `${JSON.stringify(manifest, null, 2)}\n`;
let total = 0;
for (const [p, b] of Object.entries(files)) {
  writeFileSync(p, b);
  const bytes = typeof b === 'string' ? Buffer.byteLength(b) : b.length;
  total += bytes;
  process.stderr.write(`wrote ${p.slice(root.length + 1)} (${bytes} bytes)\n`);
}
process.stderr.write(`total ${(total / 1e6).toFixed(2)} MB\n`);
