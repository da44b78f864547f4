/**
 * npm run train -- --data FILE.npy --n-latents N --k K [...]: the lab's worker in headless Chromium,
 * a progress bar on the terminal, DIR/metrics.json, and the trained SAE in SAELens's layout
 * (DIR/sae/cfg.json, sae_weights.safetensors and sparsity.safetensors, from the worker's 'export' message, unzipped).
 * Exit 2 with one line on bad input or flags, or on a config that breaks a limit of the GPU (refused
 * by the worker before anything is allocated). A GPU error during the run stops it: one line, exit 1,
 * and no metrics.json or export is written.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { filesFromZip } from '../src/io/zip';
import type { SaeConfig } from '../src/sae/config';
import type { KernelChoice } from '../src/sae/step-host';
import type { DatasetInfo, FromWorker, MetricPoint } from '../src/worker/protocol';
import { helpText, parseFlags, RunFailure, UsageError } from './args';
import { readAutotuneCache, rememberAutotune } from './autotune-cache';
import { robust } from './browser';
import { bytesOf, datasetRecord, openDataFlag, openHeadless } from './headless';
import { configFromFlags, kernelFlags, TRAIN_FLAGS, TRAIN_USAGE } from './train-flags';

function fmtTokens(n: number) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}
function fmtTime(s: number) {
  if (!Number.isFinite(s)) return '--';
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`
    : s >= 60
      ? `${Math.floor(s / 60)}m${Math.round(s % 60)}s`
      : `${Math.round(s)}s`;
}

export function progressLine(p: MetricPoint, totalTokens: number): string {
  const frac = Math.min(1, p.tokens / totalTokens);
  const w = 24;
  const bar = '#'.repeat(Math.round(frac * w)).padEnd(w, '.');
  const eta = (totalTokens - p.tokens) / Math.max(1, p.tokensPerS);
  return `[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${fmtTokens(p.tokens)}/${fmtTokens(totalTokens)} tok  ${fmtTokens(Math.round(p.tokensPerS))} tok/s  ETA ${fmtTime(eta)}  nMSE ${p.nmse.toFixed(4)}  L0 ${p.l0.toFixed(1)}  dead ${(p.deadFraction * 100).toFixed(1)}%`;
}

export interface RunOutcome {
  dataset: DatasetInfo;
  result: Record<string, unknown>;
  /** the exported SAE's files (file name → bytes), when asked for with opts.export */
  exported?: Map<string, Uint8Array>;
}

/** Writes an export's files under dir (creating sub-folders). */
export function writeFiles(dir: string, files: Map<string, Uint8Array>) {
  for (const [name, bytes] of files) {
    const p = join(dir, name);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, bytes);
  }
}

/** Opens the data in a headless session, trains once, returns metrics.json's content. */
export async function trainHeadless(
  flags: Record<string, unknown>,
  config: Partial<SaeConfig>,
  opts: {
    quiet?: boolean;
    label?: string;
    export?: 'saelens' | 'openai';
    /** kernel variants to use (a --reproduce run's), over the command-line flags */
    kernels?: KernelChoice;
  } = {},
): Promise<RunOutcome> {
  const h = await openHeadless();
  try {
    await h.send({ type: 'init' });
    const ready = await h.next(['ready']);
    const dataset = await openDataFlag(h, flags);
    const label = opts.label ? `${opts.label} ` : '';
    let total = 0;
    let lastLine = Date.now();
    let lastStage = '';
    h.onMessage = (m: FromWorker) => {
      // a lost device: the worker goes on from the last checkpoint (bit for bit); say so once
      if (m.type === 'status' && m.message?.startsWith('GPU device lost') && !opts.quiet)
        process.stderr.write(`${process.stderr.isTTY ? '\n' : ''}${label}${m.message}\n`);
      // The autotuner's stages: each on the status line of a terminal, else a line per stage.
      if (
        m.type === 'status' &&
        m.status === 'preparing' &&
        m.message?.startsWith('autotuning') &&
        !opts.quiet
      ) {
        const stage = m.message.split(':').slice(0, 2).join(':');
        if (process.stderr.isTTY) process.stderr.write(`\r${label}${m.message}\x1b[K`);
        else if (stage !== lastStage) process.stderr.write(`${label}${stage}\n`);
        lastStage = stage;
      }
      if (m.type === 'metrics' && !opts.quiet && process.stderr.isTTY)
        process.stderr.write(`\r${label}${progressLine(m.points[m.points.length - 1], total)}\x1b[K`);
      else if (m.type === 'metrics' && !opts.quiet) {
        // Not a terminal: a line every 50 steps, or every 30 s when steps are slow (large N).
        const p = m.points[m.points.length - 1];
        if (p.step % 50 === 0 || Date.now() - lastLine > 30_000) {
          process.stderr.write(`${label}${progressLine(p, total)}\n`);
          lastLine = Date.now();
        }
      }
    };
    const named = opts.kernels ?? kernelFlags(flags);
    await h.send({
      type: 'train',
      start: {
        runId: `cli-${Date.now()}`,
        config,
        kernels: named,
        ...(named ? {} : { autotuneCache: readAutotuneCache() }),
        evalEveryTokens: (flags['eval-every'] as number | undefined) ?? 0,
        // test hook (hidden flag): a real invalid GPU command after this step
        ...(flags['inject-gpu-error'] !== undefined
          ? { injectGpuError: flags['inject-gpu-error'] as number }
          : {}),
        // test hook (hidden flag): the device destroyed after this step
        ...(flags['lose-device'] !== undefined ? { loseDeviceAtStep: flags['lose-device'] as number } : {}),
        ...(flags['lose-device-times'] !== undefined
          ? { loseDeviceTimes: flags['lose-device-times'] as number }
          : {}),
        ...(flags['checkpoint-every'] !== undefined
          ? { checkpointEverySteps: flags['checkpoint-every'] as number }
          : {}),
      },
    });
    // A device loss is not fatal during a run: the worker resumes from the last checkpoint (or, with
    // none yet, starts again with the same seed and kernels) and the run ends as it would have.
    const started = await h.next(['train-started'], undefined, ['device-lost']);
    total = started.totalSteps * started.config.batchSize;
    if (started.autotune && started.autotuneKey) rememberAutotune(started.autotuneKey, started.kernels);
    if (!opts.quiet) {
      // At scale the first step takes minutes: say what was built before any progress line.
      const l = started.layout;
      const k = started.kernels;
      if (process.stderr.isTTY && lastStage) process.stderr.write('\r\x1b[K');
      process.stderr.write(
        `${label}started: ${started.totalSteps} steps of ${started.config.batchSize} rows; ` +
          `${(started.gpuBytes / 2 ** 20).toFixed(started.gpuBytes < 2 ** 24 ? 2 : 0)} MiB on the GPU in ${l.shards} shard(s), ` +
          `${l.tiles} tile(s) of ${l.tileLatents} latents; kernels ${k.encode}/${k.topk}` +
          `${k.fused ? ` fused ${k.fused}` : ''}${robust() ? '' : '; Dawn robustness off (SAE_LAB_ROBUST=1 keeps it)'}\n`,
      );
    }
    const done = await h.next(['train-done', 'nan'], undefined, ['device-lost']);
    if (!opts.quiet && process.stderr.isTTY) process.stderr.write('\n');
    // diverged: one line, exit 1, no metrics.json or export (the last good checkpoint is kept)
    if (done.type === 'nan') throw new RunFailure(`training diverged: ${done.message}`);
    let exported: Map<string, Uint8Array> | undefined;
    if (opts.export) {
      await h.send({ type: 'export', format: opts.export });
      const ex = await h.next(['export']);
      exported = filesFromZip(bytesOf(ex.bytes), ex.fileName);
    }
    const f = done.final;
    return {
      exported,
      dataset,
      result: {
        config: started.config,
        adapter: ready.adapter,
        kernels: started.kernels,
        // why these kernels: the autotuner's median ms per candidate (absent when remembered or named)
        ...(started.autotune ? { autotune_ms: started.autotune } : {}),
        // chosen by an earlier run's autotuning at this key (cli/autotune-cache.ts)
        ...(started.autotuneKey && !started.autotune ? { autotune_remembered: started.autotuneKey } : {}),
        gpu_bytes: started.gpuBytes,
        layout: started.layout,
        dataset: datasetRecord(dataset),
        final: {
          nmse: f.nmse,
          explained_variance: f.explainedVariance,
          l0: f.l0,
          dead_fraction: f.deadFractionRule,
          dead_fraction_eval: f.deadFractionEval,
          // Matryoshka: held-out nMSE of each inner prefix, for config.matryoshkaWidths but the last
          ...(f.prefixNmse ? { prefix_nmse: f.prefixNmse } : {}),
          tokens_per_s: f.tokensPerS,
          tokens: f.tokens,
          eval_rows: f.rows,
          // 'ema': evaluated (and exported) with the EMA of the weights (--ema), as the paper does
          weights: f.weights,
        },
        curve: done.curve.map((p) => ({
          tokens: p.tokens,
          loss: p.loss,
          nmse: p.nmse,
          l0: p.l0,
          dead_fraction: p.deadFraction,
          aux_loss: p.auxLoss,
          tokens_per_s: p.tokensPerS,
        })),
      },
    };
  } finally {
    await h.close();
  }
}

/**
 * A finished run's config and kernel variants (its metrics.json). The autotuner picks variants by
 * timing, and the encoder variants agree only to ~1e-5, so the same seed can give other bits on
 * another day; with the recorded variants it gives the same ones.
 */
function readRun(path: string): { config: Partial<SaeConfig>; kernels: KernelChoice } {
  const file = path.endsWith('.json') ? path : join(path, 'metrics.json');
  let parsed: { config?: Partial<SaeConfig>; kernels?: KernelChoice };
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`--reproduce: cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!parsed.config || !parsed.kernels?.encode)
    throw new UsageError(
      `--reproduce: ${file} has no config and kernels (not a metrics.json of npm run train)`,
    );
  return { config: parsed.config, kernels: parsed.kernels };
}

export async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, TRAIN_FLAGS);
  if (flags.help) {
    console.log(helpText(TRAIN_USAGE, TRAIN_FLAGS));
    return 0;
  }
  if (!flags.data) throw new UsageError('--data is required (a file, shards comma-separated, or "demo")');
  const again = flags.reproduce ? readRun(flags.reproduce as string) : undefined;
  if (again && (Object.keys(configFromFlags(flags)).length || kernelFlags(flags)))
    throw new UsageError(
      '--reproduce takes the config and kernels from the run: give only --data, --out and output flags',
    );
  const config = again?.config ?? configFromFlags(flags);
  const format = (flags['export-format'] as string | undefined) ?? 'saelens';
  if (format !== 'saelens' && format !== 'openai')
    throw new UsageError('--export-format must be saelens|openai');
  const out =
    (flags.out as string | undefined) ?? join('runs', new Date().toISOString().replace(/[:.]/g, '-'));
  const { result, exported } = await trainHeadless(flags, config, {
    quiet: Boolean(flags.quiet),
    export: format,
    ...(again ? { kernels: again.kernels } : {}),
  });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'metrics.json'), JSON.stringify(result, null, 2));
  if (exported) writeFiles(join(out, 'sae'), exported);
  const f = result.final as Record<string, number>;
  console.log(
    `nMSE ${f.nmse.toFixed(4)}  EV ${f.explained_variance.toFixed(4)}  L0 ${f.l0.toFixed(2)}  dead ${(f.dead_fraction * 100).toFixed(1)}%  ${Math.round(f.tokens_per_s)} tok/s → ${join(out, 'metrics.json')}`,
  );
  return 0;
}
