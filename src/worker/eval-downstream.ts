/**
 * The language-model part of a full evaluation: the SAE spliced into the model the dataset came
 * from (docs/DESIGN.md §9), for the downstream loss on held-out text and the ablation sparsity of a
 * sample of latents (paper §4.5), on the WGSL forward when a device is there.
 */
import {
  ablationSparsityOn,
  downstreamLossOn,
  type LmRunner,
  log10Histogram,
  quantiles,
  rowsReconstructor,
  type SaeOnRows,
} from '../eval/lm-runner';
import { isBatchCut } from '../sae/config';
import type { ParamsF32 } from '../sae/step-buffers';
import type { Trainer } from '../sae/trainer';
import { type DemoLm, demoUrl, extractedLm, loadDemoLm } from './dataset-lm';
import type { OpenedDataset } from './datasets';
import { yieldToEvents } from './eval-extras';
import type { Progress } from './eval-forward';
import type { LmContext } from './lm-context';
import { heldOutWindows, lmRunnerFor } from './lm-eval';
import type { AblationReport, FullEvalReport, FullEvalRequest } from './protocol';

/**
 * Adds report.downstream (and downstreamRun) and report.ablation as the request asks, for the
 * parameters evaluated (`params`) of `trainer`; progress runs 0.86 … 1. `sameData`: the dataset
 * the SAE trained on when it is the one open (null otherwise); it must be the demo or one
 * extracted in the page, at a residual-stream site.
 */
export async function addDownstream(
  report: FullEvalReport,
  req: FullEvalRequest,
  trainer: Trainer,
  params: ParamsF32,
  sameData: OpenedDataset | null,
  onProgress: Progress,
): Promise<void> {
  const { cfg } = trainer;
  const extracted = sameData ? extractedLm(sameData) : undefined;
  const url = sameData ? demoUrl(sameData) : undefined;
  if (!extracted && !url)
    throw new Error(
      'downstream loss and ablation sparsity need activations from a language model: the demo dataset or one extracted in the page',
    );
  if (extracted?.family === 'llama2c' && extracted.site !== 'resid')
    throw new Error(
      `downstream loss and ablation sparsity splice into the residual stream; this dataset is the MLP output of layer ${extracted.layer}`,
    );
  onProgress(0.86, 'evaluating: downstream loss');
  await yieldToEvents();
  const lm = extracted ?? (await loadDemoLm(url as string));
  const norm = trainer.norm;
  const sae: SaeOnRows = {
    sae: {
      params,
      k: cfg.k,
      activation: cfg.activation,
      inputScale: norm.kind === 'scalar' ? norm.scale : 1,
      // BatchTopK is spliced per token with its learned threshold, as the GPU evaluation runs it.
      ...(isBatchCut(cfg.activation)
        ? { inferenceThreshold: await trainer.sae.readInferenceThreshold() }
        : {}),
    },
    perRow: norm.kind === 'paper',
  };
  const runner = lmRunnerFor(lm, req.lmBackend ?? 'auto', trainer.sae.device ?? null);
  if (req.downstream) {
    const t0 = performance.now();
    report.downstream = await lmDownstream(lm, runner, sae, (f) =>
      onProgress(0.86 + (req.ablation ? 0.06 : 0.14) * f, 'evaluating: downstream loss'),
    );
    report.downstreamRun = { backend: runner.backend, seconds: (performance.now() - t0) / 1000 };
  }
  if (req.ablation) {
    onProgress(0.92, 'evaluating: ablation sparsity');
    report.ablation = await lmAblation(lm, runner, sae, req.ablation, cfg.seed, (f) =>
      onProgress(0.92 + 0.08 * f, 'evaluating: ablation sparsity'),
    );
  }
}

/**
 * Downstream loss of the SAE spliced into the dataset's model at its residual index, on held-out
 * text (at most 12 windows, 768 tokens), on the WGSL forward when a device is there.
 */
async function lmDownstream(
  lm: DemoLm | LmContext,
  runner: LmRunner,
  sae: SaeOnRows,
  onProgress: (f: number) => void,
): Promise<NonNullable<FullEvalReport['downstream']>> {
  const windows = heldOutWindows(lm, 768, 12);
  return downstreamLossOn(runner, windows, lm.layer, rowsReconstructor(sae), {
    onProgress: async (f) => {
      onProgress(f);
      await yieldToEvents();
    },
  });
}

/** Ablation sparsity (paper §4.5) of a sample of latents active in held-out text, as a distribution. */
async function lmAblation(
  lm: DemoLm | LmContext,
  runner: LmRunner,
  sae: SaeOnRows,
  req: NonNullable<FullEvalRequest['ablation']>,
  seed: number,
  onProgress: (f: number) => void,
): Promise<AblationReport> {
  const t0 = performance.now();
  const nLatents = Math.max(1, Math.floor(req.latents ?? 64));
  const nTokens = Math.max(8, Math.floor(req.tokens ?? 512));
  const perLatent = Math.max(1, Math.floor(req.positionsPerLatent ?? 2));
  const future = Math.max(1, Math.floor(req.futureTokens ?? 16));
  const windows = heldOutWindows(lm, nTokens, 64);
  const r = await ablationSparsityOn(runner, windows, lm.layer, sae, {
    sample: nLatents,
    seed: seed + 0xab1a,
    positionsPerLatent: perLatent,
    futureTokens: future,
    onProgress: async (f) => {
      onProgress(f);
      await yieldToEvents();
    },
  });
  const qs = [0, 0.1, 0.25, 0.5, 0.75, 0.9, 1];
  const qf = quantiles(r.effectiveFraction, qs);
  const qc = quantiles(r.effectiveCount, qs);
  const V = runner.config.vocabSize;
  return {
    latents: r.latents.length,
    requested: nLatents,
    activeLatents: r.activeLatents,
    tokens: windows.reduce((a, w) => a + w.length, 0),
    positionsPerLatent: perLatent,
    futureTokens: future,
    vocab: V,
    meanCount: r.meanEffectiveCount,
    meanFraction: r.meanEffectiveFraction,
    quantiles: qs.map((q, j) => ({ q, fraction: qf[j], count: qc[j] })),
    // fractions lie in [1/(T'·V), 1]
    histogram: log10Histogram(r.effectiveFraction, Math.floor(Math.log10(1 / (future * V))), 0, 16),
    perLatent: Array.from(r.latents, (id, j) => ({
      id,
      fraction: r.effectiveFraction[j],
      count: r.effectiveCount[j],
      positions: r.positions[j],
    })),
    backend: runner.backend,
    forwards: r.forwards,
    seconds: (performance.now() - t0) / 1000,
  };
}
