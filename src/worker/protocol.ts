/**
 * Typed messages between the page (or the CLI's page) and trainer.worker.ts, which owns the GPUDevice.
 * The page never touches GPU buffers; everything crosses this boundary as plain data.
 */
import type { LatentDashboard } from '../eval/dashboard';
import type { AdapterReport } from '../gpu/device';
import type { ResolvedConfig, SaeConfig } from '../sae/config';
import type { EvalResult, MetricPoint, RunStatus } from '../sae/results';
import type { KernelChoice } from '../sae/step-host';
import type { SelfCheckResult } from './selfcheck';

export type { EvalResult, MetricPoint, RunStatus };

/** Where the activations come from. Files are Blobs (File objects from a drop or picker). */
export type DatasetSpec =
  | {
      kind: 'demo' /** absolute URL of the demo .npy; the client fills it from the page's base */;
      url?: string;
    }
  | {
      kind: 'files';
      files: { blob: Blob; name: string }[];
      /** tensor / array name for safetensors or npz holding several */
      tensor?: string;
      /** raw .bin/.f32/.f16: dtype and width */
      rawDtype?: 'f32' | 'f16';
      rawWidth?: number;
      /** optional sidecars */
      tokens?: { blob: Blob; name: string };
      vocab?: { blob: Blob; name: string };
      /**
       * rows holding NaN or Inf: 'skip' (default) counts them in the dataset card and leaves them out
       * of training and evaluation; 'stop' refuses the files with one line naming the file and row
       */
      nonFinite?: 'skip' | 'stop';
    }
  | {
      kind: 'synthetic';
      d: number;
      nFeatures: number;
      rows: number;
      activePerRow: number;
      noise: number;
      seed: number;
    };

interface DatasetStats {
  count: number;
  meanSqNorm: number;
  meanSqNormCentered: number;
  /** scalar normalization: x·scale has E‖·‖² = d */
  scale: number;
  maxAbs: number;
  nonFiniteRows: number;
  firstNonFinite: number[];
}

export interface DatasetInfo {
  name: string;
  /** what it is, in words, e.g. "real LM activations: stories260K layer 2 residual" */
  description: string;
  kind: DatasetSpec['kind'];
  rows: number;
  d: number;
  dtype: string;
  shape: number[];
  byteSize: number;
  files: string[];
  stats: DatasetStats;
  /** problems found, one line each (NaN rows, …) */
  problems: string[];
  hasTokens: boolean;
  hasVocab: boolean;
  /** set when the rows are activations extracted in the page from a language model ('extract-lm') */
  lm?: LmProvenance;
}

/** Which language model, text and site an extracted dataset came from. */
export interface LmProvenance {
  /** model name, e.g. "stories260K", the dropped checkpoint's file name or a GPT-2 folder's name */
  model: string;
  /** 'gpt2' for a Hugging Face GPT-2 folder; absent for llama2.c */
  family?: 'gpt2';
  tokenizer: string;
  text: string;
  /** llama2.c: residual index (resid) or block (mlp); GPT-2: the block of `site` */
  layer: number;
  site: LmSite;
  /** the site in words: "residual stream", "MLP output", "blocks.8.hook_resid_post" */
  siteLabel: string;
  /** the downstream measures can splice an SAE in at this site (not llama2.c's MLP output) */
  spliceable: boolean;
  /** the window-opening token's row (position 0) is among the rows */
  keepBos?: boolean;
  tokens: number;
  windows: number;
  /** tokens per window including BOS */
  window: number;
  /** where the rows came from this time: a WGSL or CPU forward, or the OPFS cache */
  source: 'gpu' | 'cpu' | 'cache';
  seconds: number;
  /** cache key (SHA-256 of model, tokenizer, text and settings) */
  key: string;
}

/** A bundled file (a path under the page's base URL) or a dropped one. */
export type LmFileSpec = { kind: 'bundled'; path: string } | { kind: 'file'; blob: Blob; name: string };

/**
 * A read-out site: llama2.c's 'resid' (residual index) or 'mlp' (a block's FFN output), or a GPT-2
 * TransformerLens kind of one block (`blocks.L.hook_<kind>`).
 */
type LmSite = 'resid' | 'mlp' | 'resid_pre' | 'resid_mid' | 'resid_post' | 'attn_out' | 'mlp_out';

/**
 * 'extract-lm': run a language model over a text in the worker; the rows become the dataset. A
 * llama2.c model is a checkpoint and a tokenizer file; a GPT-2 model ({@link Gpt2ExtractRequest}) a
 * Hugging Face folder's files.
 */
export type ExtractLmRequest = LlamaExtractRequest | Gpt2ExtractRequest;

export interface LlamaExtractRequest extends ExtractLmBase {
  family?: 'llama2c';
  checkpoint: LmFileSpec;
  tokenizer: LmFileSpec;
  site: 'resid' | 'mlp';
}

export interface Gpt2ExtractRequest extends ExtractLmBase {
  family: 'gpt2';
  /**
   * The folder's files: config.json, model.safetensors, and tokenizer.json or vocab.json +
   * merges.txt (others are ignored; names may carry the folder's path).
   */
  files: { blob: Blob; name: string }[];
  /** TransformerLens kind at block `layer` */
  site: 'resid_pre' | 'resid_mid' | 'resid_post' | 'attn_out' | 'mlp_out';
  /** keep position 0's row (<|endoftext|>; default false: the same outlier vector in every window) */
  keepBos?: boolean;
}

interface ExtractLmBase {
  /** shown in the dataset card, e.g. "stories260K" */
  modelName: string;
  text: LmFileSpec;
  /** llama2.c resid: residual index 0..nLayers; mlp: layer 0..nLayers−1; GPT-2: block 0..n_layer−1 */
  layer: number;
  /** stop after this many rows (default 20,000) */
  maxTokens?: number;
  /** how the rows are stored: float32 (default) or float16 (half the file, rounded to nearest even) */
  dtype?: 'f32' | 'f16';
  /** tokens per window including BOS (default: llama2.c the model's seq_len, GPT-2 64 as the paper) */
  window?: number;
  /** absolute base URL for bundled paths; the client fills it from the page */
  baseUrl?: string;
  /** 'auto' (default): the WGSL forward when a device is available, else the CPU */
  backend?: 'auto' | 'gpu' | 'cpu';
  /** ignore a cached result (default false) */
  noCache?: boolean;
}

export interface ExtractLmProgress {
  fraction: number;
  phase: string;
  tokens: number;
  windows: number;
}

/** Latent sample for the ablation-sparsity measure of a full evaluation (paper §4.5). */
interface AblationRequest {
  /** latents drawn among those active in the held-out text (default 64) */
  latents?: number;
  /** held-out tokens the latents are looked for in (default 512) */
  tokens?: number;
  /** positions ablated per latent (default 2) */
  positionsPerLatent?: number;
  /** logit changes concatenated over this many positions from the ablated one (default 16) */
  futureTokens?: number;
}

export interface AblationReport {
  /** latents measured (active in the text), drawn, and active in the text */
  latents: number;
  requested: number;
  activeLatents: number;
  tokens: number;
  positionsPerLatent: number;
  futureTokens: number;
  vocab: number;
  /** means over latents of (‖Δ‖₁/‖Δ‖₂)² and of that / (T'·V) */
  meanCount: number;
  meanFraction: number;
  /** quantiles of the per-latent fraction and count */
  quantiles: { q: number; fraction: number; count: number }[];
  /** histogram of log10(fraction) */
  histogram: { edges: number[]; counts: number[] };
  perLatent: { id: number; fraction: number; count: number; positions: number }[];
  backend: 'gpu' | 'cpu';
  forwards: number;
  seconds: number;
}

export interface TrainStart {
  runId: string;
  config: Partial<SaeConfig>;
  kernels?: Partial<KernelChoice>;
  /** evaluate on the held-out split every this many tokens (0: only at the end) */
  evalEveryTokens?: number;
  /**
   * The autotuner's choices from earlier sessions, by its key (`autotuneKey` of 'train-started'): the
   * CLI's file of them (the page keeps its own in OPFS). A run at a remembered key is not timed again.
   */
  autotuneCache?: Record<string, KernelChoice>;
  /**
   * TEST HOOK, absent in normal runs: right after submitting this step the worker records a genuinely
   * invalid GPU command outside any error scope, so the run must stop through its uncapturederror
   * path ('run-error' kind 'gpu'). Set by the CLI's hidden --inject-gpu-error and the page's
   * ?inject-gpu-error=STEP query parameter only.
   */
  injectGpuError?: number;
  /**
   * TEST HOOK, absent in normal runs: right after submitting this step the worker destroys its GPU
   * device, so the run recovers on a new device from its last checkpoint as after a real device
   * loss. Set by the CLI's hidden --lose-device and the page's ?lose-device=STEP only.
   */
  loseDeviceAtStep?: number;
  /** TEST HOOK with loseDeviceAtStep: how many devices in a row lose it there (default 1; --lose-device-times) */
  loseDeviceTimes?: number;
  /** also save a checkpoint every this many steps (besides every 120 s, on pause, stop and at the end) */
  checkpointEverySteps?: number;
}

/** Full evaluation of the current model on the held-out split (issue: evaluation view). */
export interface FullEvalRequest {
  maxRows?: number;
  /** per-row labels (.npy of 0/1 or ints, one per dataset row) for probe losses */
  labels?: { blob: Blob; name: string };
  /** true directions [F, d] (.npy) for feature recovery; synthetic datasets supply their own */
  directions?: { blob: Blob; name: string };
  /** latents to explain (N2G); 0 = none */
  explainLatents?: number;
  /** downstream loss through the language model, when the dataset came from a bundled model */
  downstream?: boolean;
  /** ablation sparsity (paper §4.5) of a sample of latents, through the same language model */
  ablation?: AblationRequest;
  /** language-model forward for downstream / ablation: 'auto' (default) = WGSL when available */
  lmBackend?: 'auto' | 'gpu' | 'cpu';
}

export interface FullEvalReport {
  /** the weights evaluated: the EMA of the weights (the run's cfg.ema) or the weights themselves */
  weights: 'ema' | 'live';
  rows: number;
  nmse: number;
  explainedVariance: number;
  /** Matryoshka: nMSE of the first m latents alone, for each inner width m (prefixWidths) */
  prefixNmse?: number[];
  prefixWidths?: number[];
  l0: number;
  deadFraction: number;
  deadFractionRule: number;
  /** log10 firing-frequency histogram */
  density: { edges: number[]; counts: number[]; neverFired: number };
  /** per latent: firing frequency, mean activation when active, max activation */
  latents: { id: number; freq: number; meanAct: number; maxAct: number; f1?: number; explanation?: string }[];
  recovery?: {
    meanMaxCos: number;
    fractionRecovered: number;
    threshold: number;
    sorted: number[];
    chance: number;
  };
  probes?: { task: string; bestLatent: number; loss: number; constantLoss: number; rawLoss?: number }[];
  explanations?: {
    count: number;
    meanF1: number;
    meanPrecision: number;
    meanRecall: number;
    histogram: number[];
  };
  downstream?: {
    tokens: number;
    cleanLoss: number;
    splicedLoss: number;
    zeroLoss: number;
    deltaLoss: number;
    fractionRecovered: number;
    kl: number;
  };
  /** how the downstream loss was computed: the WGSL or the CPU forward, and its time */
  downstreamRun?: { backend: 'gpu' | 'cpu'; seconds: number };
  ablation?: AblationReport;
}

/**
 * One latent of the last evaluation for the latent browser: its dashboard (src/eval/dashboard.ts:
 * density, histogram of nonzero values, top and quantile-sampled contexts with every token's value,
 * logit effects when the dataset's model is loaded, N2G explanation) and its nearest latents.
 */
export interface LatentDetail extends LatentDashboard {
  neighbours: { latent: number; cos: number }[];
}

export interface CheckpointEntry {
  runId: string;
  step: number;
  tokens?: number;
  size: number;
  modified: number;
}

export type ToWorker =
  | { type: 'init' }
  | { type: 'selfcheck'; variant?: string }
  | { type: 'open-dataset'; spec: DatasetSpec }
  | { type: 'train'; start: TrainStart }
  /**
   * The buffer plans of these configs (d filled in from the open dataset) against this device's
   * limits, without allocating anything: answered by 'plan-check' (a queue checks all its runs first).
   */
  | { type: 'check-plans'; configs: { label: string; config: Partial<SaeConfig> }[] }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'stop' }
  | { type: 'evaluate' }
  | { type: 'full-eval'; request: FullEvalRequest }
  | { type: 'latent'; latent: number }
  /** every latent's dashboard of the last evaluation as the static folder, zipped (src/io/dashboard.ts) */
  | { type: 'export-dashboards'; title?: string }
  | {
      type: 'export';
      format: 'saelens' | 'openai';
      dtype?: 'F32' | 'F16' | 'BF16';
      modelName?: string;
      hookName?: string;
    }
  | { type: 'export-run-config' }
  | { type: 'import-sae'; files: { blob: Blob; name: string }[] }
  | { type: 'list-checkpoints' }
  | { type: 'resume-checkpoint'; runId: string; step?: number }
  | { type: 'delete-checkpoint'; runId: string; step?: number }
  | { type: 'extract-lm'; request: ExtractLmRequest }
  | { type: 'cancel-extract' };

export type FromWorker =
  | { type: 'ready'; adapter: AdapterReport }
  | { type: 'no-webgpu'; message: string }
  | { type: 'selfcheck'; result: SelfCheckResult }
  | { type: 'dataset-progress'; fraction: number; phase: string }
  | { type: 'dataset-ready'; info: DatasetInfo }
  | { type: 'dataset-error'; file: string; message: string }
  | {
      type: 'train-started';
      runId: string;
      config: ResolvedConfig;
      kernels: KernelChoice;
      /** autotune timings (ms per candidate), null when cached or variants were given */
      autotune: Record<string, number> | null;
      /** the autotuner's key for `kernels` when it chose them (timed or remembered), else null */
      autotuneKey: string | null;
      gpuBytes: number;
      /** how the step is laid out on this device (src/sae/plan.ts) */
      layout: { shards: number; tiles: number; tileLatents: number; microBatch: number; bindingCap: number };
      totalSteps: number;
    }
  | { type: 'metrics'; runId: string; points: MetricPoint[] }
  | { type: 'eval'; runId: string; result: EvalResult }
  | { type: 'status'; runId: string; status: RunStatus; message?: string }
  | { type: 'train-done'; runId: string; final: EvalResult & { tokensPerS: number }; curve: MetricPoint[] }
  | { type: 'nan'; runId: string; step: number; message: string }
  /**
   * A run that ended without 'train-done': 'limit' — the config breaks a limit of the device and was
   * refused before anything was allocated (`problems`: one line each naming the buffer, its size, the
   * limit and what to change; `message` the first); 'gpu' — a GPU error (validation, out-of-memory,
   * internal) during start-up (`phase`) or training (`step` where it was noticed): the run stopped, its
   * last checkpoint (`lastCheckpointStep`) is kept, and nothing computed after the fault was reported.
   */
  | {
      type: 'run-error';
      runId: string;
      kind: 'limit' | 'gpu';
      message: string;
      problems?: string[];
      phase?: string;
      step?: number;
      lastCheckpointStep?: number | null;
    }
  /** per config of 'check-plans': the plan's problems (empty when it fits) and bytes; `error` when it does not resolve */
  | {
      type: 'plan-check';
      results: { label: string; problems: string[]; totalBytes: number; error?: string }[];
    }
  | { type: 'full-eval'; report: FullEvalReport }
  | { type: 'latent'; detail: LatentDetail }
  /** the dashboard folder as a zip holding one folder (progress comes as 'dataset-progress', phase 'dashboards') */
  | { type: 'dashboards'; fileName: string; bytes: Uint8Array; latents: number; files: number }
  /** a zip (export) or text files (run config) to save */
  | { type: 'export'; fileName: string; bytes: Uint8Array }
  | { type: 'imported'; summary: string }
  | {
      type: 'checkpoints';
      list: CheckpointEntry[];
      quota: { usage: number; quota: number } | null;
      warning?: string;
    }
  | { type: 'device-lost'; message: string }
  /** a GPU error no error scope caught, outside a run (during a run: 'run-error' kind 'gpu') */
  | { type: 'gpu-error'; message: string }
  | { type: 'error'; message: string }
  | { type: 'extract-progress'; progress: ExtractLmProgress }
  /** followed by 'dataset-ready' (info.lm says where the rows came from) */
  | { type: 'extract-done'; lm: LmProvenance }
  | { type: 'extract-error'; file: string; message: string; cancelled?: boolean };
