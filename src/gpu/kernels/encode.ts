import code from '../../../shaders/encode.wgsl?raw';
import { bindBuffers, getPipeline } from '../pipelines';

export type EncodeVariant = 'naive' | 'blocked4x4' | 'blocked2x4' | 'blocked4x8' | 'tiled';
export const ENCODE_VARIANTS: EncodeVariant[] = ['naive', 'blocked4x4', 'blocked2x4', 'blocked4x8', 'tiled'];

export interface EncodeSizes {
  B: number;
  d: number;
  N: number;
}

export interface EncodeBindings {
  /** [B, d] */ x: GPUBuffer;
  /** [d] */ b_pre: GPUBuffer;
  /** [N, d] */ W_enc: GPUBuffer;
  /** [N] */ b_enc: GPUBuffer;
  /** [B, N] output */ pre: GPUBuffer;
}

function tileOf(variant: EncodeVariant): { RB: number; RN: number } {
  const m = /^blocked(\d)x(\d)$/.exec(variant);
  return m ? { RB: Number(m[1]), RN: Number(m[2]) } : { RB: 4, RN: 4 };
}

/** pre = (x - b_pre) · W_encᵀ + b_enc. create() once per shape; run() records one dispatch. */
export function createEncode(device: GPUDevice, sizes: EncodeSizes, variant: EncodeVariant = 'blocked4x4') {
  const { B, d, N } = sizes;
  const { RB, RN } = tileOf(variant);
  const entryPoint =
    variant === 'naive' ? 'encode_naive' : variant === 'tiled' ? 'encode_tiled' : 'encode_blocked';
  const pipeline = getPipeline(device, { label: 'encode', code, entryPoint, templates: { RB, RN } });
  const uniform = device.createBuffer({
    label: 'encode:sizes',
    size: 16,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(uniform, 0, new Uint32Array([B, d, N, 0]));
  let groups: [number, number];
  if (variant === 'naive') groups = [Math.ceil(N / 64), B];
  else if (variant === 'tiled') groups = [Math.ceil(N / 16), Math.ceil(B / 16)];
  else groups = [Math.ceil(N / (8 * RN)), Math.ceil(B / (8 * RB))];
  if (
    groups[1] > device.limits.maxComputeWorkgroupsPerDimension ||
    groups[0] > device.limits.maxComputeWorkgroupsPerDimension
  ) {
    throw new Error(`encode: grid ${groups} exceeds maxComputeWorkgroupsPerDimension`);
  }
  const cache = new Map<string, GPUBindGroup>();
  return {
    variant,
    flops: 2 * B * d * N,
    run(pass: GPUComputePassEncoder, b: EncodeBindings) {
      const key = [b.x, b.b_pre, b.W_enc, b.b_enc, b.pre].map((x) => x.label).join('|');
      let bg = cache.get(key);
      if (!bg) {
        bg = bindBuffers(device, pipeline, `encode:${variant}`, [
          b.x,
          b.b_pre,
          b.W_enc,
          b.b_enc,
          b.pre,
          uniform,
        ]);
        cache.set(key, bg);
      }
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(groups[0], groups[1]);
    },
    destroy() {
      uniform.destroy();
      cache.clear();
    },
  };
}
export type EncodeKernel = ReturnType<typeof createEncode>;
