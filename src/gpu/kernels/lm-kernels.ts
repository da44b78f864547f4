/**
 * Wrappers for the llama2.c forward-pass kernels (shaders/lm-*.wgsl), one factory per shader.
 * Each returns { pipeline, bind(label, buffers), dispatch(pass, bindGroup, T) }: `buffers` are in the
 * shader's binding order, and `T` (token rows) decides the workgroup count; the shaders read T from the
 * `params` uniform ({@link LM_PARAMS_BYTES} bytes: u32 T, u32 startPos, 2 × pad; see {@link writeLmParams}).
 * Sizes other than T are override constants, so one pipeline serves every window length.
 */
import attentionCode from '../../../shaders/lm-attention.wgsl?raw';
import embedCode from '../../../shaders/lm-embed.wgsl?raw';
import matmulCode from '../../../shaders/lm-matmul.wgsl?raw';
import rmsnormCode from '../../../shaders/lm-rmsnorm.wgsl?raw';
import ropeCode from '../../../shaders/lm-rope.wgsl?raw';
import swigluCode from '../../../shaders/lm-swiglu.wgsl?raw';
import { bindBuffers, getPipeline } from '../pipelines';

export const LM_PARAMS_BYTES = 16;

/** Writes the shared uniform {T, startPos}. */
export function writeLmParams(device: GPUDevice, params: GPUBuffer, T: number, startPos = 0): void {
  device.queue.writeBuffer(params, 0, new Uint32Array([T, startPos, 0, 0]));
}

export interface LmKernel {
  pipeline: GPUComputePipeline;
  /** Bind group over `buffers` in binding order. */
  bind(label: string, buffers: GPUBuffer[]): GPUBindGroup;
  /** Records one dispatch for a window of T token rows. */
  dispatch(pass: GPUComputePassEncoder, bindGroup: GPUBindGroup, T: number): void;
}

/** One pipeline of an lm-*.wgsl file (entry `main`) with its bind and dispatch helpers; `groups(T)` → x, y workgroups. */
export function kernel(
  device: GPUDevice,
  label: string,
  code: string,
  constants: Record<string, number | boolean>,
  groups: (T: number) => [number, number],
  templates?: Record<string, number>,
): LmKernel {
  const pipeline = getPipeline(device, { label, code, entryPoint: 'main', constants, templates });
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  return {
    pipeline,
    bind: (name, buffers) => bindBuffers(device, pipeline, `${label}:${name}`, buffers),
    dispatch(pass, bindGroup, T) {
      const [x, y] = groups(T);
      if (x > max || y > max) throw new Error(`${label}: ${x}×${y} workgroups exceed the limit ${max}`);
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(Math.max(1, x), Math.max(1, y));
    },
  };
}

const cdiv = (a: number, b: number) => Math.ceil(a / b);

/**
 * Each kernel's workgroups [x, y] for a window of T rows at its sizes: the dispatches use these, and
 * the forwards' fit checks (llamaGpuFit, gpt2GpuFit) test them against the device before allocating.
 */
export const lmGroups = {
  matmul: (nOut: number, T: number): [number, number] => [cdiv(nOut, 32), cdiv(T, 32)],
  rmsnorm: (T: number): [number, number] => [T, 1],
  rope: (nRot: number, T: number): [number, number] => [cdiv((T * nRot) / 2, 64), 1],
  attention: (nHeads: number, T: number): [number, number] => [cdiv(T * nHeads, 64), 1],
  swiglu: (hidden: number, T: number): [number, number] => [cdiv(T * hidden, 64), 1],
  embed: (d: number, T: number): [number, number] => [cdiv(T * d, 64), 1],
};

/**
 * Y[T, nOut] = X[T, nIn] · Wᵀ (W [nOut, nIn] row-major); with `accum`, Y += X · Wᵀ.
 * Bindings: params, x [T, nIn], w [nOut, nIn], y [T, nOut].
 */
export function createLmMatmul(
  device: GPUDevice,
  s: { nIn: number; nOut: number; accum?: boolean },
): LmKernel {
  return kernel(
    device,
    `lm-matmul ${s.nIn}→${s.nOut}${s.accum ? ' +=' : ''}`,
    matmulCode,
    { N_IN: s.nIn, N_OUT: s.nOut, ACCUM: s.accum ?? false },
    (T) => lmGroups.matmul(s.nOut, T),
  );
}

/** out[t] = weight ⊙ x[t] / sqrt(mean x[t]² + 1e-5). Bindings: x [T, d], weight [d], out [T, d] (no params). */
export function createLmRmsnorm(device: GPUDevice, s: { d: number }): LmKernel {
  return kernel(device, `lm-rmsnorm d=${s.d}`, rmsnormCode, { D: s.d }, lmGroups.rmsnorm);
}

/**
 * RoPE in place on the first nRot columns of rows of width stride, positions startPos + t.
 * Bindings: params, table [capacity, headSize/2] of (cos, sin), qk [T, stride].
 */
export function createLmRope(
  device: GPUDevice,
  s: { headSize: number; nRot: number; stride: number },
): LmKernel {
  return kernel(
    device,
    `lm-rope hs=${s.headSize} n=${s.nRot}/${s.stride}`,
    ropeCode,
    { HEAD_SIZE: s.headSize, N_ROT: s.nRot, STRIDE: s.stride },
    (T) => lmGroups.rope(s.nRot, T),
  );
}

/** The (cos, sin) table the RoPE kernel reads: [capacity, headSize/2] pairs, computed in float64. */
export function ropeTable(capacity: number, headSize: number, base = 10000): Float32Array {
  const half = headSize / 2;
  const out = new Float32Array(capacity * half * 2);
  for (let pos = 0; pos < capacity; pos++) {
    for (let j = 0; j < half; j++) {
      const angle = pos * (1 / base ** ((2 * j) / headSize));
      out[2 * (pos * half + j)] = Math.cos(angle);
      out[2 * (pos * half + j) + 1] = Math.sin(angle);
    }
  }
  return out;
}

/**
 * Causal GQA over positions 0..T-1. Rows of qkv: [q (nHeads·headSize) | k (kvDim) | v (kvDim)].
 * Bindings: params, qkv [T, dim + 2·kvDim], out [T, dim].
 */
export function createLmAttention(
  device: GPUDevice,
  s: { nHeads: number; nKvHeads: number; headSize: number },
): LmKernel {
  const kvDim = s.nKvHeads * s.headSize;
  const stride = s.nHeads * s.headSize + 2 * kvDim;
  return kernel(
    device,
    `lm-attention h=${s.nHeads}/${s.nKvHeads} hs=${s.headSize}`,
    attentionCode,
    { N_HEADS: s.nHeads, KV_MUL: s.nHeads / s.nKvHeads, KV_DIM: kvDim, STRIDE: stride },
    (T) => lmGroups.attention(s.nHeads, T),
    { HEAD_SIZE: s.headSize },
  );
}

/** out[t, j] = silu(hb[t, j]) · hb[t, hidden + j]. Bindings: params, hb [T, 2·hidden], out [T, hidden]. */
export function createLmSwiglu(device: GPUDevice, s: { hidden: number }): LmKernel {
  return kernel(device, `lm-swiglu h=${s.hidden}`, swigluCode, { HIDDEN: s.hidden }, (T) =>
    lmGroups.swiglu(s.hidden, T),
  );
}

/** x[t] = embedding[tokens[t]]. Bindings: params, tokens [T] u32, embedding [vocab, d], x [T, d]. */
export function createLmEmbed(device: GPUDevice, s: { d: number }): LmKernel {
  return kernel(device, `lm-embed d=${s.d}`, embedCode, { D: s.d }, (T) => lmGroups.embed(s.d, T));
}
