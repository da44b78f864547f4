/** The buffer plan's types and the WebGPU default limits (plan.ts computes the plan). */
import type { ShardedName, StepBufferName } from './buffer-names';

/** The adapter limits a plan depends on (GPUSupportedLimits names). */
export interface PlanLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxStorageBuffersPerShaderStage: number;
}

/** WebGPU's default limits: what a device gets when it asks for nothing (spec §3.6.2). */
export const DEFAULT_LIMITS: PlanLimits = {
  maxStorageBufferBindingSize: 128 * 2 ** 20,
  maxBufferSize: 256 * 2 ** 20,
  maxStorageBuffersPerShaderStage: 8,
};

/** Plan keys: a whole buffer, a shard of a sharded tensor, or a per-shard / per-micro-batch uniform. */
export type PlanKey = StepBufferName | `${ShardedName | 'shardParams' | 'microRows'}#${number}`;

export interface LatentRange {
  /** first latent (global index) */
  lat0: number;
  /** latents in the range */
  n: number;
}

/** A latent tile of the encoder + TopK: inside one shard, `wOff` rows into that shard's buffers. */
export interface Tile extends LatentRange {
  shard: number;
  wOff: number;
}

export interface PlannedBuffer {
  /** engine key: a GpuSae.b field, `${ShardedName}#${shard}`, or a per-shard / per-micro-batch uniform */
  key: PlanKey;
  bytes: number;
  /** shape in words, for messages and the estimate table */
  shape: string;
  group:
    | 'parameters'
    | 'gradients'
    | 'adam'
    | 'ema'
    | 'batch'
    | 'pre-activations'
    | 'entries'
    | 'latents'
    | 'small';
}

export interface BufferPlan {
  /** Largest bytes one binding may hold: the adapter's binding and buffer limits, and the config cap. */
  bindingCap: number;
  /** Where bindingCap comes from, for messages. */
  capSource: string;
  /** Latent ranges of the [N, d] shards (one range when N·d fits one binding). */
  shards: LatentRange[];
  /** Latent tiles of the encoder + TopK (sparse family); one tile = the whole [B, N] at once. */
  tiles: Tile[];
  /** Width n of the pre-activation tile buffer [B, n]. */
  tileLatents: number;
  /**
   * Rows b of a micro-batch of the threshold family: its [b, N] buffers (pre, act, gact, gpre, Gated's
   * actAux, gactAux) fit one binding and the tile budget; the step runs ⌈B / b⌉ micro-batches and sums
   * their gradients. B when the whole batch fits (and for the sparse family).
   */
  microBatch: number;
  /** The micro-batches in order: batch rows [row0, row0 + n) (one, the whole batch, when b = B). */
  microBatches: { row0: number; n: number }[];
  /**
   * Smallest chunk (latents per thread) of the fused encode + TopK, which sizes its lists
   * [⌈n / chunk⌉, B, K]; 0 where the fused kernel does not apply (threshold family, K > 64).
   */
  fusedChunkMin: number;
  /**
   * Whether the 'chunkmax' TopK can run (one tile of the sparse family, K ≤ 64, d % 4 = 0): the plan
   * then holds its chunk maxima, `preMax`.
   */
  chunkMax: boolean;
  /**
   * Row blocks G of the sort's row-block form (sortBlocks [G, N]; kernel-variants.ts sortRowBlocks);
   * 0 where it does not apply (threshold family, or N too wide for two blocks).
   */
  sortBlocks: number;
  /**
   * gv's parts per entry where the software gradient sums form gv in their walk (gvPart [E, parts];
   * kernel-variants.ts gvFusedParts); 0 where that does not apply or gvPart would not fit one binding
   * (gv then keeps its own kernel, in the same order).
   */
  gvParts: number;
  /**
   * Whether g also holds a copy of g_aux [B, d] after its G levels, for the software gradient sums'
   * one walk (grad-both.wgsl reads both sources through one binding): where gv has 4 parts (d ≤ 768),
   * AuxK is on and g with the copy fits one binding. The loss writes the copy only where that walk runs.
   */
  gAuxTail: boolean;
  buffers: PlannedBuffer[];
  totalBytes: number;
  /** One line per limit the config breaks, each naming the buffer, its size, the limit and what to change. */
  problems: string[];
}

/** Bytes the engine's allocator gives a buffer of `bytes` (WebGPU: 4-byte multiple, at least 16). */
