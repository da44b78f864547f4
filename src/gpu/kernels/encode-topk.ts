import code from '../../../shaders/encode-topk.wgsl?raw';
import { ENCODE_TOPK_VARIANT_NAMES } from '../kernel-variants';
import { groupsFor, nextPow2, stepShader } from './kernel';

/**
 * Fused encode + TopK variants, by the encode arithmetic they reproduce bit for bit:
 * 'blockedRBxRN' ≡ the scalar encoders (blocked*, naive, tiled: the same per-element order),
 * 'vec4xRN' ≡ encode vec4x4 / vec4x8 (d % 4 == 0). RB rows per thread, RN latents per register block.
 */
export type EncodeTopKVariant = (typeof ENCODE_TOPK_VARIANT_NAMES)[number];
export const ENCODE_TOPK_VARIANTS: EncodeTopKVariant[] = [...ENCODE_TOPK_VARIANT_NAMES];
/** Private list capacity: the fused kernel serves K ≤ 64 (KP = next power of two ≤ 64). */
const ENCODE_TOPK_MAX_K = 64;
/** Default chunk length (latents per thread per tile); the autotuner's knob. */
export const ENCODE_TOPK_CHUNK = 128;

/** Variants usable at width d (the vec4 ones need d % 4 == 0). */
export function encodeTopKVariantsFor(d: number): EncodeTopKVariant[] {
  return ENCODE_TOPK_VARIANTS.filter((v) => !v.startsWith('vec4') || d % 4 === 0);
}

export interface EncodeTopKSizes {
  B: number;
  d: number;
  /** Tile width n: latents [lat0, lat0 + n). */
  N: number;
  /** List width: k (main) or k + kAux (multi); must equal what the StepParams give. 1 ≤ K ≤ 64. */
  K: number;
  /** Global latent index of tile column 0 (indexes b_enc and dead_flag, whole [N_total] vectors). Default 0. */
  lat0?: number;
  /** Row of the bound W_enc buffer (a shard) holding latent lat0. Default 0. */
  wOff?: number;
  /** Latents per chunk (one thread's share of the tile per row block); default ENCODE_TOPK_CHUNK. */
  chunk?: number;
  /** Multi-TopK: K = k + kAux from StepParams. */
  multi?: boolean;
}

export interface EncodeTopKBindings {
  /** [B, d] */ x: GPUBuffer;
  /** [d] */ b_pre: GPUBuffer;
  /** [≥ wOff + N, d] (a shard) */ W_enc: GPUBuffer;
  /** [N_total] */ b_enc: GPUBuffer;
  /** [B, N] tile: only the dead columns are written, and only when AuxK is on */ pre: GPUBuffer;
  /** [N_total] u32, 1 = dead */ deadFlag: GPUBuffer;
  /** [C, B, K] u32 out */ listIdx: GPUBuffer;
  /** [C, B, K] f32 out */ listVal: GPUBuffer;
  /** StepParams */ params: GPUBuffer;
}

/**
 * Fused encode + TopK of one latent tile (shaders/encode-topk.wgsl): raw sorted lists [C, B, K] for
 * createTopKMerge (merge with mergeParams(C)), C = chunks = ⌈N / chunk⌉, listBytes = C·B·K·8.
 * create() once per tile (it owns its 32-byte Sizes uniform; destroy() frees it); run() records one dispatch.
 */
export function createEncodeTopK(
  device: GPUDevice,
  sizes: EncodeTopKSizes,
  variant: EncodeTopKVariant = 'blocked4x4',
) {
  const { B, d, N, K } = sizes;
  const KP = nextPow2(K);
  if (K < 1 || KP > ENCODE_TOPK_MAX_K) throw new Error(`encode-topk: K must be in [1, 64], got ${K}`);
  if (variant.startsWith('vec4') && d % 4 !== 0) throw new Error(`encode-topk: ${variant} needs d % 4 == 0`);
  const lat0 = sizes.lat0 ?? 0;
  const wOff = sizes.wOff ?? 0;
  const m = /(\d)x(\d)$/.exec(variant)!;
  const RB = Number(m[1]);
  const RN = Number(m[2]);
  const L = Math.max(1, Math.min(sizes.chunk ?? ENCODE_TOPK_CHUNK, N));
  const C = Math.ceil(N / L);
  const entry = stepShader(device, 'encode-topk', code, { RB, RN, KP }).entry(
    variant.startsWith('vec4') ? 'encode_topk_v4' : 'encode_topk',
    { MULTI: sizes.multi ?? false },
  );
  const uniform = device.createBuffer({
    label: `encode-topk:sizes@${lat0}+${N}`,
    size: 32,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(uniform, 0, new Uint32Array([B, d, N, lat0, wOff, L, C, 0]));
  const groups = groupsFor(device, Math.ceil(B / RB) * C, 64);
  const cache = new Map<string, GPUBindGroup>();
  // Rows in the Sizes uniform now (run() with fewer rows rewrites it, the next run with B restores it).
  let rowsWritten = B;
  return {
    variant,
    /** lists per row of this tile (the merge's C) */
    chunks: C,
    chunk: L,
    /** bytes of listIdx + listVal */
    listBytes: C * B * K * 8,
    flops: 2 * B * d * N,
    /**
     * Records one dispatch over the first `rows` ≤ B rows (an evaluation's partial last batch): the
     * kernel's items and its list layout [C, rows, K] follow sz.B, set to `rows` here (the merge must
     * see the same B in StepParams). Written at record time: one `rows` per submission.
     */
    run(pass: GPUComputePassEncoder, b: EncodeTopKBindings, rows = B) {
      if (!(Number.isInteger(rows) && rows >= 1 && rows <= B))
        throw new RangeError(`encode-topk: rows must be in [1, ${B}], got ${rows}`);
      if (rows !== rowsWritten) {
        device.queue.writeBuffer(uniform, 0, new Uint32Array([rows]));
        rowsWritten = rows;
      }
      const all = [
        b.x,
        b.b_pre,
        b.W_enc,
        b.b_enc,
        b.pre,
        b.deadFlag,
        b.listIdx,
        b.listVal,
        b.params,
        uniform,
        b.x,
        b.b_pre,
        b.W_enc,
      ];
      const key = all.map((x) => x.label).join('|');
      let bg = cache.get(key);
      if (!bg) {
        bg = entry.bind(variant, all);
        cache.set(key, bg);
      }
      pass.setPipeline(entry.pipeline);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(groups);
    },
    destroy() {
      uniform.destroy();
      cache.clear();
    },
  };
}
