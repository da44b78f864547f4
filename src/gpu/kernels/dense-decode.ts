import code from '../../../shaders/dense-decode.wgsl?raw';
import { groupsFor, phases } from './kernel';

/**
 * Dense decoder x̂ = A·W_dec + b_pre (aux: without b_pre), for the threshold activations.
 * Bindings: A [B,N], W_dec [N,d], b_pre [d], out [B,d], params.
 */
export function createDenseDecode(device: GPUDevice, s: { B: number; aux: boolean }) {
  return phases(device, 'dense-decode', code, [
    { entry: 'decode_dense', constants: { AUX: s.aux }, groups: groupsFor(device, s.B) },
  ]);
}
