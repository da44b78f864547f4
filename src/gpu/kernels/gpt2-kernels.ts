/**
 * Wrappers for the kernels GPT-2 adds to the llama2.c forward's (./lm-kernels.ts): LayerNorm with
 * gain and bias, bias add, GELU (tanh form), residual add, token + learned-position embedding. One
 * factory per shader, the same { pipeline, bind, dispatch } shape as lm-kernels.ts; every shader reads
 * T from the shared `params` uniform (writeLmParams) and takes its other sizes as override constants.
 *
 * The element-wise kernels loop over T·N elements strided over at most GROUPS_MAX workgroups of 64,
 * and LayerNorm over rows strided over at most GROUPS_MAX workgroups: SwiftShader pays about 20 µs
 * per workgroup, so one invocation per element (T·4d/64 groups for the MLP) cost more than the work.
 */
import addCode from '../../../shaders/lm-add.wgsl?raw';
import biasCode from '../../../shaders/lm-bias.wgsl?raw';
import embedPosCode from '../../../shaders/lm-embed-pos.wgsl?raw';
import geluCode from '../../../shaders/lm-gelu.wgsl?raw';
import layernormCode from '../../../shaders/lm-layernorm.wgsl?raw';
import { kernel, type LmKernel } from './lm-kernels';

const GROUPS_MAX = 256;

/** Workgroups of 64 for a strided loop over `count` elements. */
const elementGroups = (count: number): [number, number] => [Math.min(Math.ceil(count / 64), GROUPS_MAX), 1];

/**
 * out[t] = (x[t] − mean) / sqrt(var + eps) ⊙ gain + bias (biased variance, about the mean).
 * Bindings: params, x [T, d], gain [d], bias [d], out [T, d].
 */
export function createLmLayernorm(device: GPUDevice, s: { d: number; eps: number }): LmKernel {
  return kernel(device, `lm-layernorm d=${s.d}`, layernormCode, { D: s.d, EPS: s.eps }, (T) => [
    Math.min(T, GROUPS_MAX),
    1,
  ]);
}

/** y[t, j] += bias[j], in place. Bindings: params, bias [n], y [T, n]. */
export function createLmBias(device: GPUDevice, s: { n: number }): LmKernel {
  return kernel(device, `lm-bias n=${s.n}`, biasCode, { N: s.n }, (T) => elementGroups(T * s.n));
}

/** y = ½·y·(1 + tanh(√(2/π)(y + 0.044715·y³))), in place. Bindings: params, y [T, n]. */
export function createLmGelu(device: GPUDevice, s: { n: number }): LmKernel {
  return kernel(device, `lm-gelu n=${s.n}`, geluCode, { N: s.n }, (T) => elementGroups(T * s.n));
}

/** x += a. Bindings: params, a [T, n], x [T, n]. */
export function createLmAdd(device: GPUDevice, s: { n: number }): LmKernel {
  return kernel(device, `lm-add n=${s.n}`, addCode, { N: s.n }, (T) => elementGroups(T * s.n));
}

/**
 * x[t] = wte[tokens[t]] + wpe[startPos + t].
 * Bindings: params, tokens [T] u32, wte [vocab, d], wpe [positions, d], x [T, d].
 */
export function createLmEmbedPos(device: GPUDevice, s: { d: number }): LmKernel {
  return kernel(device, `lm-embed-pos d=${s.d}`, embedPosCode, { D: s.d }, (T) => elementGroups(T * s.d));
}
