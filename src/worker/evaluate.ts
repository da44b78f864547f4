/**
 * Worker-side full evaluation of a trained SAE ("what the learned latents are").
 *
 * The row-heavy part runs on the GPU, exactly as the trainer's own evaluation (run panel,
 * metrics.json): ./eval-forward.ts sends the evaluation rows through the forward pass with the
 * weights evaluations report on. What follows is CPU work on the sparse codes (./eval-extras.ts):
 * feature recovery (synthetic data or a directions file), probes (a labels file), N2G explanations
 * (token ids + vocabulary); and the downstream loss and ablation sparsity through the dataset's
 * language model (./eval-downstream.ts; the demo, or a dataset extracted in the page), on the WGSL
 * forward pass when a device is there.
 *
 * The worker keeps the last finished Trainer (with its GPU buffers) for this until a new run
 * starts; the last evaluation's codes and contexts are kept for the latent browser's 'latent'
 * requests and the dashboards (./dashboards.ts).
 */
import {
  codesByLatent,
  type EvalAccumulator,
  type Explanation,
  type LatentCsc,
  type SparseCodes,
} from '../eval/index';
import { EVAL_MAX_ROWS } from '../sae/metrics';
import type { Trainer } from '../sae/trainer';
import { Contexts } from './contexts';
import { tokenPositions } from './dataset-lm';
import type { OpenedDataset } from './datasets';
import { addDownstream } from './eval-downstream';
import { addExplanations, probesReport, recoveryReport } from './eval-extras';
import { forwardEvaluation, type Progress } from './eval-forward';
import type { FullEvalReport, FullEvalRequest } from './protocol';

/** What an evaluation reads: the trainer (GPU model, config, normalization) and the dataset it trained on. */
interface Target {
  trainer: Trainer;
  dataset: OpenedDataset | null;
}

let retained: Target | null = null;

/** Keeps a finished run's trainer (and its GPU buffers) for evaluation; destroys the previous one. */
export function retainTrainer(trainer: Trainer, dataset: OpenedDataset | null) {
  if (retained && retained.trainer !== trainer) retained.trainer.destroy();
  retained = { trainer, dataset };
  state = null;
}

/** Frees the retained trainer (a new run is starting, or the device is gone). */
export function releaseTrainer() {
  retained?.trainer.destroy();
  retained = null;
  state = null;
}

/** The retained finished trainer, if any. */
export function retainedTrainer(): Trainer | null {
  return retained?.trainer ?? null;
}

/** State of the last full evaluation, for 'latent' and 'export-dashboards' requests (./dashboards.ts). */
export interface EvalState {
  trainer: Trainer;
  /** the dataset evaluated on, when it is the one the SAE trained on or was imported for */
  dataset: OpenedDataset | null;
  N: number;
  d: number;
  codes: SparseCodes;
  csc: LatentCsc;
  acc: EvalAccumulator;
  freq: Float64Array;
  meanAct: Float64Array;
  W_dec: Float32Array;
  /** [rows] global dataset row of each evaluated row */
  rowIds: Float64Array;
  contexts: Contexts | null;
  vocab: string[] | null;
  explained: Map<number, Explanation | null>;
}
let state: EvalState | null = null;

/** The last full evaluation, or null before one (or after a new run dropped it). */
export function lastEvaluation(): EvalState | null {
  return state;
}

/**
 * Full evaluation of `live` (a run in progress or paused) or else the retained finished run: the
 * GPU forward and metrics, then recovery, probes, token contexts and explanations, downstream loss
 * and ablation sparsity, each as the request asks. Keeps the result for lastEvaluation().
 * @param dataset the dataset open now; used for tokens / vocab only when it is the one trained on
 */
export async function fullEvaluate(
  live: { trainer: Trainer; dataset: OpenedDataset | null } | null,
  req: FullEvalRequest,
  onProgress: Progress,
): Promise<FullEvalReport> {
  const target: Target | null = live ?? retained;
  if (!target) throw new Error('nothing to evaluate: train an SAE first');
  const { trainer, dataset } = target;
  const { cfg, source } = trainer;
  const { d, nLatents: N } = cfg;
  const maxRows = Math.max(1, Math.floor(req.maxRows ?? EVAL_MAX_ROWS));
  onProgress(0, 'evaluating');

  const { report, acc, rep, codes, rowIds, raw, params } = await forwardEvaluation(
    trainer,
    maxRows,
    !!req.labels,
    onProgress,
  );
  const csc = codesByLatent(codes, N, 0);
  const recovery = await recoveryReport(req, source, params.W_dec, N, d, onProgress);
  if (recovery) report.recovery = recovery;
  if (req.labels)
    report.probes = await probesReport(req.labels, source.rows, csc, N, rowIds, raw, d, onProgress);

  // Token contexts and vocabulary only from the dataset the SAE trained on (or was imported for).
  const sameData = dataset && dataset.source === source ? dataset : null;
  let contexts: Contexts | null = null;
  if (sameData?.tokenIds) {
    onProgress(0.66, 'evaluating: token contexts');
    const positions = await tokenPositions(sameData, source.rows);
    contexts = await Contexts.build(sameData.tokenIds, positions, sameData.vocab, rowIds, source.rows);
  }
  const vocab = sameData ? sameData.vocab : null;
  const nExplain = Math.max(0, Math.floor(req.explainLatents ?? 0));
  const explained =
    contexts && nExplain > 0
      ? await addExplanations(report, csc, contexts, vocab, nExplain, cfg.seed, onProgress)
      : new Map<number, Explanation | null>();

  if (req.downstream || req.ablation) await addDownstream(report, req, trainer, params, sameData, onProgress);

  state = {
    trainer,
    dataset: sameData,
    N,
    d,
    codes,
    csc,
    acc,
    freq: rep.firingFrequency,
    meanAct: rep.meanActWhenActive,
    W_dec: params.W_dec,
    rowIds,
    contexts,
    vocab,
    explained,
  };
  onProgress(1, 'evaluating');
  return report;
}
