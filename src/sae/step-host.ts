/**
 * What the sparse and the dense step builders (step-sparse.ts, step-dense.ts) read from the step they
 * build and set on it; GpuSae (step.ts) implements it. Its own file, so that the builders need not
 * import step.ts, which imports them.
 */
import type { createDead } from '../gpu/kernels/dead';
import type { EncodeVariant } from '../gpu/kernels/encode';
import type { EncodeTopKVariant } from '../gpu/kernels/encode-topk';
import type { createLoss } from '../gpu/kernels/loss';
import type { TopKVariant } from '../gpu/kernels/topk';
import type { ShardedName, StepBufferName } from './buffer-names';
import type { ResolvedConfig } from './config';
import type { BufferPlan } from './plan';

export interface KernelChoice {
  encode: EncodeVariant;
  topk: TopKVariant;
  topkTile: number;
  /**
   * Fused encode + TopK (shaders/encode-topk.wgsl) instead of encode + TopK: the variant, or null for
   * the unfused path. Only where the TopK list is ≤ 64 wide (sparse family); the autotuner chooses.
   */
  fused?: EncodeTopKVariant | null;
  /** Latents per thread chunk of the fused kernel (≥ plan's fusedChunkMin). */
  fusedChunk?: number;
  /**
   * Which compiled copy of the encoder (0 or absent: the first; pipelines.ts getPipeline `copy`). The
   * autotuner picks it on software adapters each time a process starts, and never caches it: a copy's
   * speed belongs to its compilation.
   */
  encodeCopy?: number;
}
/** The choice without its compiled copy of the encoder: what may be cached or remembered. */
export function withoutCopy(choice: KernelChoice): KernelChoice {
  const { encodeCopy: _, ...rest } = choice;
  return rest;
}
export const DEFAULT_KERNELS: KernelChoice = { encode: 'blocked4x4', topk: 'bitonic', topkTile: 2048 };

/** What both paths share: the loss and dead-latent kernels with their bind groups, and the update tail. */
export interface StepCommon {
  loss: ReturnType<typeof createLoss>;
  /** the loss bind groups reading the given activations/values buffer */
  lossBg: (topVal: GPUBuffer) => GPUBindGroup[];
  dead: ReturnType<typeof createDead>;
  deadBg: GPUBindGroup[];
  /** project+norm, Adam, renorm, EMA phases; `extraNorm` adds the per-latent extras' norms */
  tail: (extraNorm?: (p: GPUComputePassEncoder) => void) => StepPhase[];
  /** the loss writes no g_aux while AuxK has no candidate, so db_pre must leave it out (grad.ts) */
  idleAux: boolean;
}
interface StepPhase {
  name: string;
  record: (pass: GPUComputePassEncoder) => void;
}

type Record_ = (pass: GPUComputePassEncoder) => void;
type RecordRows = (pass: GPUComputePassEncoder, rows: number) => void;

export interface StepHost {
  readonly device: GPUDevice;
  readonly cfg: ResolvedConfig;
  readonly plan: BufferPlan;
  /** the whole buffers by name */
  readonly b: Record<StepBufferName, GPUBuffer>;
  /** the [N, d] tensors, one buffer per latent shard */
  readonly sh: Record<ShardedName, GPUBuffer[]>;
  /** each shard's Shard uniform */
  readonly shardParams: GPUBuffer[];
  /** each micro-batch's MicroBatch uniform (threshold family) */
  readonly microRows: GPUBuffer[];
  /** code entries per row the forward leaves in idxAll/valAll */
  readonly codesK: number;
  /**
   * set by the builder: the whole step; the evaluation forward over the batch's first `rows` rows
   * (rows ≥ `rows` do no work; the caller sets the uniforms' B to `rows`); its micro-batches (rows
   * counted from the micro-batch's row0)
   */
  record: Record_;
  recordForward: RecordRows;
  microForward: { row0: number; n: number; record: RecordRows }[] | null;
  /** set by the builder: the step as named phases (benchmarks), the phases the autotuner times */
  phases: StepPhase[];
  tunePhases: Partial<Record<'encode' | 'topk' | 'select', Record_>> & { encodeRows?: RecordRows };
  /** set by the builder: frees the kernels it created */
  destroyEncode: () => void;
  /** set by the builder: whether the encoder also writes chunk maxima (TopK 'chunkmax') */
  chunkMaxima: boolean;
}
