/**
 * The worker's model handling besides training: checkpoints (list / delete / load for resume),
 * export of the current model in the PyTorch tools' layouts, run-config export, and import of an
 * SAE trained elsewhere (it becomes the model that evaluation reads). Pure functions of what the
 * worker passes in; trainer.worker.ts does the messaging.
 */
import { DataError } from '../data/errors';
import { exportSae } from '../io/export';
import { toNormalization } from '../io/forward';
import { importSae } from '../io/import';
import type { ExportFormat, ImportedSae, WeightDtype } from '../io/sae-files';
import { exportRunConfig } from '../io/scaleout';
import { zipExport } from '../io/zip';
import { CheckpointStore, memoryFs } from '../sae/checkpoint';
import type { Checkpoint } from '../sae/checkpoint-format';
import type { SaeConfig } from '../sae/config';
import { Trainer } from '../sae/trainer';
import type { TrainerCheckpointExtra } from '../sae/trainer-checkpoint';
import type { OpenedDataset } from './datasets';
import type { CheckpointEntry, FromWorker } from './protocol';

let store: Promise<CheckpointStore> | null = null;

/** The checkpoint store: OPFS, or memory where OPFS is missing (checkpoints then last the session). */
export function checkpointStore(): Promise<CheckpointStore> {
  store ??= CheckpointStore.opfs({ keep: 3 }).catch(() => new CheckpointStore(memoryFs(), { keep: 3 }));
  return store;
}

export async function listCheckpoints(
  warning?: string,
): Promise<Extract<FromWorker, { type: 'checkpoints' }>> {
  const s = await checkpointStore();
  const list: CheckpointEntry[] = (await s.list()).map((c) => ({
    runId: c.runId,
    step: c.step,
    size: c.size,
    modified: c.modified.getTime(),
  }));
  const quota = await s.fs.estimate().catch(() => null);
  return { type: 'checkpoints', list, quota, ...(warning ? { warning } : {}) };
}

/** Loads a checkpoint (the newest usable one without `step`) and checks it fits the open dataset. */
export async function loadForResume(
  runId: string,
  step: number | undefined,
  dataset: OpenedDataset | null,
): Promise<{ checkpoint: Checkpoint; warning: string | null }> {
  const s = await checkpointStore();
  let checkpoint: Checkpoint;
  let warning: string | null = null;
  if (step !== undefined) checkpoint = await s.load(runId, step);
  else {
    const latest = await s.latest(runId);
    if (!latest) throw new Error(`run ${runId} has no checkpoints`);
    checkpoint = latest.checkpoint;
    warning = latest.warning;
  }
  const ds = (checkpoint.extra as Partial<TrainerCheckpointExtra> | undefined)?.dataset;
  const want = ds ? `${ds.name} (${ds.rows} rows × ${ds.d})` : `a dataset with d=${checkpoint.config.d}`;
  if (!dataset) throw new Error(`to resume run ${runId}, open the dataset it was trained on first: ${want}`);
  const info = dataset.info;
  if (
    ds ? ds.rows !== info.rows || ds.d !== info.d || ds.name !== info.name : checkpoint.config.d !== info.d
  ) {
    throw new Error(
      `run ${runId} was trained on ${want}; the open dataset is ${info.name} (${info.rows} rows × ${info.d}): open the same dataset to resume`,
    );
  }
  return { checkpoint, warning };
}

/** What an export is made from: a trainer's current parameters, or an imported SAE. */
export interface ModelSource {
  runId: string;
  trainer: Trainer | null;
  imported: ImportedSae | null;
}

export async function exportModel(
  m: ModelSource,
  opts: { format: ExportFormat; dtype?: WeightDtype; modelName?: string; hookName?: string },
): Promise<{ fileName: string; files: Map<string, Uint8Array> }> {
  let files: Map<string, Uint8Array>;
  let N: number;
  let k: number;
  if (m.trainer) {
    const t = m.trainer;
    const st = await t.snapshot();
    const last = t.curve[t.curve.length - 1];
    // The weights evaluations report on: the EMA of the weights when the run keeps one (as the paper).
    const weights = t.evalWeights;
    files = exportSae(
      {
        params: weights === 'ema' && st.ema ? st.ema : st.params,
        weights,
        config: t.cfg,
        normalization: toNormalization(t.norm),
        tokensTrained: t.step * t.cfg.batchSize,
        step: t.step,
        metrics: last
          ? { nmse: last.nmse, l0: last.l0, dead_fraction: last.deadFraction, loss: last.loss }
          : undefined,
        tokensSince: st.tokensSince,
        firesTotal: st.firesTotal,
        // BatchTopK: exported as JumpReLU with the threshold learned in training.
        inferenceThreshold: st.inferenceThreshold,
        source: { modelName: opts.modelName, hookName: opts.hookName, datasetPath: t.source.name },
      },
      { format: opts.format, dtype: opts.dtype },
    );
    N = t.cfg.nLatents;
    k = t.cfg.k;
  } else if (m.imported) {
    const s = m.imported;
    files = exportSae(
      {
        params: s.params,
        config: { ...s.config, d: s.d, nLatents: s.nLatents, k: s.k },
        normalization: s.normalization,
        tokensTrained: s.tokensTrained ?? undefined,
        metrics: s.metrics ?? undefined,
        logSparsity: s.logSparsity ?? undefined,
        inferenceThreshold: s.inferenceThreshold,
        source: {
          ...s.source,
          modelName: opts.modelName ?? s.source.modelName,
          hookName: opts.hookName ?? s.source.hookName,
        },
      },
      { format: opts.format, dtype: opts.dtype },
    );
    N = s.nLatents;
    k = s.k;
  } else throw new Error('nothing to export: train or import an SAE first');
  const safe = m.runId.replace(/[^\w.-]+/g, '_') || 'sae';
  return { fileName: `${safe}-N${N}-k${k}-${opts.format}.zip`, files };
}

export function exportRunConfigZip(
  config: Partial<SaeConfig> & { d: number },
  runId: string,
): { fileName: string; bytes: Uint8Array } {
  const text = exportRunConfig(config, {
    model: 'your-org/your-model',
    dataset: 'your-org/your-dataset',
    runName: runId || undefined,
  });
  const files = new Map<string, Uint8Array>();
  for (const [name, t] of text) files.set(name, new TextEncoder().encode(t));
  return {
    fileName: `${(runId || 'sae-lab').replace(/[^\w.-]+/g, '_')}-run-config.zip`,
    bytes: zipExport(files),
  };
}

/** Reads dropped files (a zip, or cfg.json + weights, possibly with folder paths) into one SAE. */
export async function importFiles(files: { blob: Blob; name: string }[]): Promise<ImportedSae> {
  if (files.length === 0) throw new DataError('(no file)', 'no SAE files were given');
  if (files.length === 1 && /\.zip$/i.test(files[0].name))
    return importSae(new Uint8Array(await files[0].blob.arrayBuffer()), { name: files[0].name });
  const map = new Map<string, Uint8Array>();
  for (const f of files) map.set(f.name, new Uint8Array(await f.blob.arrayBuffer()));
  return importSae(map);
}

export function importSummary(s: ImportedSae): string {
  const norm =
    s.normalization.kind === 'scalar'
      ? `scalar normalization ×${s.normalization.scale.toPrecision(4)}`
      : `${s.normalization.kind} normalization`;
  const where = s.path ? ` from ${s.path}` : '';
  const tokens = s.tokensTrained ? `, trained on ${s.tokensTrained.toLocaleString('en-US')} tokens` : '';
  const warn = s.warnings.length ? ` (${s.warnings.join('; ')})` : '';
  return `imported ${s.format} SAE${where}: d=${s.d}, N=${s.nLatents}, k=${s.k}, ${norm}${tokens}${warn}`;
}

/**
 * A Trainer holding an imported SAE on the open dataset, for evaluation. Held-out rows: the split
 * an SAE Lab export recorded (the rows it never trained on), else every row (evalFrac 0).
 */
export function trainerForImported(device: GPUDevice, s: ImportedSae, dataset: OpenedDataset): Trainer {
  if (s.d !== dataset.info.d)
    throw new Error(`the imported SAE has d=${s.d}; the open dataset has d=${dataset.info.d}`);
  const N = s.nLatents;
  const batchSize = Math.max(16, Math.min(4096, Math.floor((64 << 20) / (4 * N))));
  const n = s.normalization;
  const t = Trainer.withParams(
    device,
    dataset.source,
    dataset.stats,
    {
      nLatents: N,
      activation: s.activation,
      k: Math.min(s.k, N),
      // A restored BatchTopK / Matryoshka SAE evaluates with its own candidate cap and prefixes.
      ...(s.config.batchTopKCap != null ? { batchTopKCap: s.config.batchTopKCap } : {}),
      ...(s.activation === 'matryoshka' && s.config.matryoshkaWidths
        ? { matryoshkaWidths: s.config.matryoshkaWidths }
        : {}),
      batchSize,
      tokens: batchSize,
      auxk: false,
      kAux: 0,
      ema: false,
      inputNorm: n.kind,
      evalFrac: typeof s.config.evalFrac === 'number' ? s.config.evalFrac : 0,
      fireThreshold: typeof s.config.fireThreshold === 'number' ? s.config.fireThreshold : 1e-3,
    },
    s.params,
    { normalization: { kind: n.kind, scale: n.kind === 'scalar' ? n.scale : 1 }, kernels: {} },
  );
  // BatchTopK's θ is training state: the imported one, else −1 (not learned: evaluation refuses).
  if (s.inferenceThreshold !== undefined)
    t.sae.setState({ params: s.params, inferenceThreshold: s.inferenceThreshold });
  return t;
}
