/**
 * npm run eval -- --sae DIR_OR_FILE --data FILE [--labels FILE] [--tokens FILE --vocab FILE]
 *                 [--directions FILE] --out DIR
 *
 * Evaluates a trained SAE (SAE Lab's DIR/sae from `npm run train`, a SAELens cfg.json +
 * sae_weights.safetensors folder, a sparsify folder, openai-named safetensors, or a zip of any of
 * these) on an activation file and writes DIR/eval.json.
 *
 * The evaluation runs in the worker, in headless Chromium, through the same messages the page
 * uses: 'open-dataset', then 'import-sae' (the worker builds a GPU model of the imported SAE on
 * that dataset), then 'full-eval' (GPU encode of the rows, then src/eval on the CPU: nMSE,
 * density, feature recovery, probes, N2G explanations; with --data demo, --downstream and
 * --ablation [N] run stories260K with the SAE spliced in on the WGSL forward pass, or the CPU one
 * with --lm-backend cpu). The SAE files are first read in node with importSae, so bad files fail
 * fast with one line and exit code 2.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { importSae } from '../src/io/import';
import type { ImportedSae } from '../src/io/sae-files';
import { filesFromZip, zipExport } from '../src/io/zip';
import { parseGpt2Config } from '../src/lm/gpt2/checkpoint';
import { parseGpt2Site } from '../src/lm/gpt2/sites';
import type { Gpt2Config, Gpt2Site } from '../src/lm/gpt2/types';
import type { FullEvalRequest } from '../src/worker/protocol';
import { type FlagSpec, helpText, parseFlags, UsageError } from './args';
import { datasetRecord, openHeadless, warnDataset } from './headless';

export const EVAL_FLAGS: Record<string, FlagSpec> = {
  sae: {
    kind: 'string',
    help: 'the SAE: a folder (DIR from npm run train, or cfg.json + sae_weights.safetensors), a .zip, or one of its files',
  },
  data: {
    kind: 'string',
    help: 'activation file(s) to evaluate on: .npy/.npz/.safetensors/raw; shards comma-separated',
  },
  tensor: { kind: 'string', help: 'tensor/array name inside a .safetensors/.npz holding several' },
  'raw-width': { kind: 'int', help: 'row width d for raw .bin/.f32/.f16 files' },
  'raw-dtype': { kind: 'string', help: 'f32|f16 for raw files' },
  labels: { kind: 'string', help: 'per-row labels (.npy of 0/1 or class ids) for probe losses' },
  tokens: { kind: 'string', help: 'per-row token ids (.npy) for latent contexts and explanations' },
  vocab: { kind: 'string', help: 'vocabulary (.txt one token per line, or tokenizer json)' },
  directions: { kind: 'string', help: 'true directions [F, d] (.npy) for feature recovery' },
  'max-rows': { kind: 'int', help: 'rows evaluated at most (default 16384)' },
  'lm-model': {
    kind: 'string',
    help: 'instead of --data: extract the evaluation activations in the worker with this llama2.c checkpoint (.bin) or Hugging Face GPT-2 folder',
  },
  'lm-tokenizer': {
    kind: 'string',
    help: "with --lm-model: its tokenizer (.bin, llama2.c's format; GPT-2: the folder's by default, or another folder / tokenizer.json)",
  },
  'lm-text': { kind: 'string', help: 'with --lm-model: the text (.txt) to run it over' },
  layer: {
    kind: 'int',
    help: 'with --lm-model: residual index 0..nLayers (site resid) or block (site mlp); GPT-2: the block',
  },
  site: {
    kind: 'string',
    help: 'with --lm-model: resid (default) or mlp; GPT-2: resid_post (default), resid_pre, resid_mid, attn_out, mlp_out, blocks.L.hook_… or openai names',
  },
  'lm-tokens': { kind: 'int', help: 'with --lm-model: tokens to extract (default 8192)' },
  downstream: {
    kind: 'bool',
    help: 'downstream LM loss with the SAE spliced in (with --data demo or --lm-model)',
  },
  ablation: {
    kind: 'int',
    help: 'ablation sparsity (paper §4.5) of N sampled latents (bare --ablation: 64; with --data demo or --lm-model)',
  },
  'ablation-tokens': {
    kind: 'int',
    help: 'held-out tokens the ablated latents are looked for in (default 512)',
  },
  'lm-backend': {
    kind: 'string',
    help: 'language-model forward for --downstream / --ablation: auto (WGSL when WebGPU works), gpu, cpu',
  },
  explain: { kind: 'int', help: 'latents to explain with N2G (needs --tokens and --vocab; default 0)' },
  path: {
    kind: 'string',
    help: 'which SAE, when the input holds several (e.g. a sparsify hookpoint folder)',
  },
  dashboards: {
    kind: 'string',
    help: "write every latent's dashboard as a static folder (index.html + data/*.js; opens from disk, no server) to this directory",
  },
  out: { kind: 'string', help: 'output directory for eval.json (default runs/eval-<timestamp>)' },
  help: { kind: 'bool', help: 'this help' },
};
export const EVAL_USAGE =
  'usage: npm run eval -- --sae DIR_OR_FILE --data FILE|demo [--labels FILE] [--tokens FILE --vocab FILE] [--directions FILE] [--downstream] [--ablation [N]] [--dashboards DIR] --out DIR\n' +
  '       npm run eval -- --sae DIR_OR_FILE --lm-model M.bin --lm-tokenizer T.bin --lm-text F.txt --layer L [--site resid|mlp] [--lm-tokens N] [--downstream] [--ablation [N]] --out DIR\n' +
  '       npm run eval -- --sae DIR_OR_FILE --lm-model GPT2_DIR --lm-text F.txt --layer L [--site resid_post|…] [--lm-tokens N] [--downstream] [--ablation [N]] --out DIR';

const mustExist = (flag: string, p: string) => {
  if (!existsSync(p)) throw new UsageError(`--${flag} ${p}: no such file`);
};

function listFiles(dir: string, depth = 0): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && depth < 3) out.push(...listFiles(p, depth + 1));
    else if (e.isFile() && /\.(json|safetensors|pt)$/i.test(e.name)) out.push(p);
  }
  return out;
}

/**
 * The SAE's files as name → bytes (names relative to the SAE folder), or a zip's bytes. A training
 * output DIR means DIR/sae; a file inside an SAE folder means the folder.
 */
export function readSaeInput(path: string): Map<string, Uint8Array> | Uint8Array {
  mustExist('sae', path);
  if (statSync(path).isFile()) {
    if (/\.zip$/i.test(path)) return new Uint8Array(readFileSync(path));
    path = dirname(path);
  }
  if (
    existsSync(join(path, 'sae')) &&
    statSync(join(path, 'sae')).isDirectory() &&
    !existsSync(join(path, 'cfg.json'))
  )
    path = join(path, 'sae');
  const files = new Map<string, Uint8Array>();
  for (const f of listFiles(path))
    if (basename(f) !== 'metrics.json' && basename(f) !== 'eval.json')
      files.set(relative(path, f), new Uint8Array(readFileSync(f)));
  if (files.size === 0)
    throw new UsageError(`--sae ${path}: no .safetensors / .pt / cfg.json files in this folder`);
  return files;
}

/** Reads and checks the SAE in node (fast one-line errors); returns it and a zip to hand to the worker. */
export function loadSae(path: string, which?: string): { sae: ImportedSae; zip: Uint8Array } {
  const input = readSaeInput(path);
  let sae: ImportedSae;
  try {
    sae = importSae(input, { path: which });
  } catch (e) {
    throw new UsageError(`--sae ${path}: ${(e as Error).message}`);
  }
  const zip = input instanceof Uint8Array ? input : zipExport(input);
  return { sae, zip };
}

/**
 * Unpacks the worker's dashboard zip (one top folder, src/worker/dashboards.ts) into `dir` itself,
 * so that `dir/index.html` opens the dashboards. Returns the bytes written.
 */
export function writeDashboardZip(zip: Uint8Array, dir: string): number {
  let total = 0;
  for (const [path, bytes] of filesFromZip(zip, 'dashboards.zip')) {
    const rel = path.split('/').slice(1).join('/');
    if (!rel || rel.split('/').includes('..')) continue;
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), bytes);
    total += bytes.byteLength;
  }
  return total;
}

export const DEFAULT_ABLATION_LATENTS = 64;

/** `--ablation` takes an optional count: a bare `--ablation` means the default. */
export function expandOptionalFlags(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--ablation') {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('--')) out.push(`--ablation=${argv[++i]}`);
      else out.push(`--ablation=${DEFAULT_ABLATION_LATENTS}`);
    } else out.push(a);
  }
  return out;
}

type LmFlags =
  | {
      family: 'llama2c';
      model: string;
      tokenizer: string;
      text: string;
      layer: number;
      site: 'resid' | 'mlp';
      tokens: number;
    }
  | {
      family: 'gpt2';
      model: string;
      /** the folder's files and those of --lm-tokenizer */
      files: string[];
      text: string;
      site: Gpt2Site;
      tokens: number;
    };

/** The files of a GPT-2 folder the worker reads (and a --lm-tokenizer folder's or file's). */
function gpt2Files(path: string): string[] {
  const wanted = new Set(['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.json', 'merges.txt']);
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((n) => wanted.has(n))
    .map((n) => join(path, n));
}

/** --lm-model DIR: a GPT-2 folder, its site parsed against its config.json (one line when bad). */
function gpt2Flags(flags: Record<string, unknown>, dir: string, tokens: number): LmFlags {
  if (flags['lm-text'] === undefined) throw new UsageError('--lm-model needs --lm-text');
  mustExist('lm-text', String(flags['lm-text']));
  const cfgPath = join(dir, 'config.json');
  if (!existsSync(cfgPath))
    throw new UsageError(`--lm-model ${dir}: no config.json (a Hugging Face GPT-2 folder)`);
  if (!existsSync(join(dir, 'model.safetensors')))
    throw new UsageError(`--lm-model ${dir}: no model.safetensors (a Hugging Face GPT-2 folder)`);
  let config: Gpt2Config;
  let site: Gpt2Site;
  try {
    config = parseGpt2Config(readFileSync(cfgPath, 'utf8'), cfgPath);
    site = parseGpt2Site(
      String(flags.site ?? 'resid_post'),
      config.nLayer,
      flags.layer as number | undefined,
    );
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const tok = flags['lm-tokenizer'] as string | undefined;
  if (tok !== undefined) mustExist('lm-tokenizer', tok);
  const own = gpt2Files(dir);
  const extra = tok ? gpt2Files(tok) : [];
  // --lm-tokenizer replaces the folder's tokenizer files
  const files = extra.length
    ? [...own.filter((f) => /(config\.json|model\.safetensors)$/.test(f)), ...extra]
    : own;
  return { family: 'gpt2', model: dir, files, text: String(flags['lm-text']), site, tokens };
}

/** --lm-model and its companions, checked; null without --lm-model. */
export function lmFlags(flags: Record<string, unknown>): LmFlags | null {
  if (flags['lm-model'] === undefined) {
    for (const f of ['lm-tokenizer', 'lm-text', 'layer', 'site', 'lm-tokens'])
      if (flags[f] !== undefined) throw new UsageError(`--${f} needs --lm-model`);
    return null;
  }
  const tokens = (flags['lm-tokens'] as number | undefined) ?? 8192;
  if (!(tokens >= 1)) throw new UsageError(`--lm-tokens expects a positive number, got ${tokens}`);
  const model = String(flags['lm-model']);
  mustExist('lm-model', model);
  if (statSync(model).isDirectory()) return gpt2Flags(flags, model, tokens);
  for (const f of ['lm-tokenizer', 'lm-text', 'layer'])
    if (flags[f] === undefined) throw new UsageError(`--lm-model needs --${f}`);
  for (const f of ['lm-model', 'lm-tokenizer', 'lm-text']) mustExist(f, String(flags[f]));
  const site = (flags.site as string | undefined) ?? 'resid';
  if (site !== 'resid' && site !== 'mlp') throw new UsageError(`--site must be resid or mlp, got '${site}'`);
  const layer = flags.layer as number;
  if (!(layer >= 0)) throw new UsageError(`--layer expects a non-negative integer, got ${layer}`);
  return {
    family: 'llama2c',
    model: String(flags['lm-model']),
    tokenizer: String(flags['lm-tokenizer']),
    text: String(flags['lm-text']),
    layer,
    site,
    tokens,
  };
}

export async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(expandOptionalFlags(argv), EVAL_FLAGS);
  if (flags.help) {
    console.log(helpText(EVAL_USAGE, EVAL_FLAGS));
    return 0;
  }
  if (!flags.sae)
    throw new UsageError('--sae is required (a folder, a .zip, or cfg.json + sae_weights.safetensors)');
  const lm = lmFlags(flags);
  if (!flags.data && !lm)
    throw new UsageError(
      '--data is required (the activations to evaluate on), or --lm-model to extract them',
    );
  if (flags.data && lm) throw new UsageError('give --data or --lm-model, not both');
  const demo = String(flags.data) === 'demo';
  const dataPaths = demo || lm ? [] : String(flags.data).split(',');
  for (const p of dataPaths) mustExist('data', p);
  if (flags.downstream && !demo && !lm)
    throw new UsageError('--downstream needs a language model: --data demo, or --lm-model with --layer');
  if (flags.ablation !== undefined && !demo && !lm)
    throw new UsageError('--ablation needs a language model: --data demo, or --lm-model with --layer');
  if (flags.ablation !== undefined && !((flags.ablation as number) >= 1))
    throw new UsageError(`--ablation expects a positive number of latents, got ${flags.ablation}`);
  const lmBackend = (flags['lm-backend'] as string | undefined) ?? 'auto';
  if (lmBackend !== 'auto' && lmBackend !== 'gpu' && lmBackend !== 'cpu')
    throw new UsageError(`--lm-backend must be auto, gpu or cpu, got '${lmBackend}'`);
  for (const f of ['labels', 'tokens', 'vocab', 'directions'] as const)
    if (flags[f] !== undefined) mustExist(f, String(flags[f]));
  if ((flags.tokens === undefined) !== (flags.vocab === undefined) && flags.explain)
    throw new UsageError('--explain needs both --tokens and --vocab');
  const out =
    (flags.out as string | undefined) ??
    join('runs', `eval-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const { sae, zip } = loadSae(String(flags.sae), flags.path as string | undefined);

  const tmp = mkdtempSync(join(tmpdir(), 'sae-lab-eval-'));
  const h = await openHeadless();
  try {
    await h.send({ type: 'init' });
    const ready = await h.next(['ready']);
    // 1. the dataset (same path as npm run train; or extracted in the worker, as the page's extractor)
    if (lm?.family === 'gpt2') {
      await h.setFiles('lm-model', lm.files);
      await h.setFiles('lm-text', [lm.text]);
      await h.session.page.evaluate((o) => window.__cli.extractLm(o), {
        family: 'gpt2' as const,
        modelName: basename(lm.model),
        layer: lm.site.layer,
        site: lm.site.kind,
        maxTokens: lm.tokens,
        backend: lmBackend as 'auto' | 'gpu' | 'cpu',
        noCache: true,
      });
      const x = await h.next(['extract-done', 'extract-error']);
      if (x.type === 'extract-error') throw new UsageError(`${x.file ? `${x.file}: ` : ''}${x.message}`);
    } else if (lm) {
      await h.setFiles('lm-model', [lm.model]);
      await h.setFiles('lm-tokenizer', [lm.tokenizer]);
      await h.setFiles('lm-text', [lm.text]);
      await h.session.page.evaluate((o) => window.__cli.extractLm(o), {
        modelName: basename(lm.model).replace(/\.bin$/, ''),
        layer: lm.layer,
        site: lm.site,
        maxTokens: lm.tokens,
        backend: lmBackend as 'auto' | 'gpu' | 'cpu',
        noCache: true,
      });
      const x = await h.next(['extract-done', 'extract-error']);
      if (x.type === 'extract-error') throw new UsageError(`${x.file ? `${x.file}: ` : ''}${x.message}`);
    } else if (demo) {
      const url = `${h.session.baseUrl}/public/demo/stories260K_L2_resid.f16.npy`;
      await h.send({ type: 'open-dataset', spec: { kind: 'demo', url } });
    } else {
      await h.setFiles('files', dataPaths);
      if (flags.tokens) await h.setFiles('tokens', [String(flags.tokens)]);
      if (flags.vocab) await h.setFiles('vocab', [String(flags.vocab)]);
      await h.session.page.evaluate((o) => window.__cli.openFiles(o), {
        tensor: flags.tensor as string | undefined,
        rawWidth: flags['raw-width'] as number | undefined,
        rawDtype: flags['raw-dtype'] as 'f32' | 'f16' | undefined,
      });
    }
    const opened = await h.next(['dataset-ready', 'dataset-error']);
    if (opened.type === 'dataset-error') throw new UsageError(`${opened.file}: ${opened.message}`);
    const info = opened.info;
    warnDataset(info);
    if (info.d !== sae.d)
      throw new UsageError(`--sae has d=${sae.d} but --data ${info.name} has d=${info.d}`);

    // 2. the SAE, as one zip file through the file input
    const zipPath = join(tmp, 'sae.zip');
    writeFileSync(zipPath, zip);
    await h.setFiles('files', [zipPath]);
    await h.session.page.evaluate(() => {
      const f = (document.getElementById('files') as HTMLInputElement).files![0];
      window.__cli.send({ type: 'import-sae', files: [{ blob: f, name: f.name }] });
    });
    const imported = await h.next(['imported']);

    // 3. side files for the evaluation, stashed in the page, then the evaluation
    const side: Record<string, string> = {};
    if (flags.labels) side.labels = String(flags.labels);
    if (flags.directions) side.directions = String(flags.directions);
    for (const [key, p] of Object.entries(side)) {
      await h.setFiles('files', [p]);
      await h.session.page.evaluate((k) => {
        const f = (document.getElementById('files') as HTMLInputElement).files![0];
        const w = window as unknown as { __evalFiles?: Record<string, { blob: Blob; name: string }> };
        w.__evalFiles = { ...w.__evalFiles, [k]: { blob: f, name: f.name } };
      }, key);
    }
    const request: FullEvalRequest = {
      maxRows: flags['max-rows'] as number | undefined,
      explainLatents: (flags.explain as number | undefined) ?? 0,
      downstream: Boolean(flags.downstream),
      lmBackend,
      ...(flags.ablation !== undefined
        ? {
            ablation: {
              latents: flags.ablation as number,
              tokens: flags['ablation-tokens'] as number | undefined,
            },
          }
        : {}),
    };
    await h.session.page.evaluate((req) => {
      const w = window as unknown as { __evalFiles?: Record<string, { blob: Blob; name: string }> };
      window.__cli.send({ type: 'full-eval', request: { ...req, ...w.__evalFiles } });
    }, request);
    const { report } = await h.next(['full-eval']);

    mkdirSync(out, { recursive: true });
    const result = {
      sae: {
        input: String(flags.sae),
        summary: imported.summary,
        format: sae.format,
        d: sae.d,
        n_latents: sae.nLatents,
        k: sae.k,
        normalization: sae.normalization,
        tokens_trained: sae.tokensTrained,
      },
      dataset: datasetRecord(info),
      adapter: ready.adapter,
      report,
    };
    writeFileSync(join(out, 'eval.json'), JSON.stringify(result, null, 2));
    if (flags.dashboards !== undefined) {
      const t0 = performance.now();
      await h.send({
        type: 'export-dashboards',
        title: `SAE Lab latent dashboards · ${basename(String(flags.sae))} on ${info.name}`,
      });
      const dash = await h.next(['dashboards']);
      const bytes = writeDashboardZip(dash.bytes, String(flags.dashboards));
      console.log(
        `dashboards: ${dash.latents} latents, ${dash.files} files, ${(bytes / 2 ** 20).toFixed(2)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s → ${join(String(flags.dashboards), 'index.html')}`,
      );
    }
    const rec = report.recovery ? `  recovered ${(report.recovery.fractionRecovered * 100).toFixed(1)}%` : '';
    if (report.downstream && report.downstreamRun)
      console.log(
        `downstream (${report.downstreamRun.backend} forward, ${report.downstreamRun.seconds.toFixed(1)} s): clean ${report.downstream.cleanLoss.toFixed(4)}  spliced ${report.downstream.splicedLoss.toFixed(4)}  zero ${report.downstream.zeroLoss.toFixed(4)}  recovered ${(report.downstream.fractionRecovered * 100).toFixed(1)}%`,
      );
    if (report.ablation) {
      const a = report.ablation;
      const q = (x: number) => a.quantiles.find((e) => e.q === x)?.fraction.toFixed(4) ?? '—';
      console.log(
        `ablation sparsity (${a.backend} forward, ${a.latents} latents, ${a.seconds.toFixed(1)} s): fraction of ${a.futureTokens}×${a.vocab} logits moved: p10 ${q(0.1)}  median ${q(0.5)}  p90 ${q(0.9)}  mean ${a.meanFraction.toFixed(4)}`,
      );
    }
    console.log(
      `nMSE ${report.nmse.toFixed(4)}  EV ${report.explainedVariance.toFixed(4)}  L0 ${report.l0.toFixed(2)}  dead ${(report.deadFraction * 100).toFixed(1)}% on ${report.rows} rows${rec} → ${join(out, 'eval.json')}`,
    );
    return 0;
  } finally {
    await h.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}
