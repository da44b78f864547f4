import code from '../../../shaders/dense-decode.wgsl?raw';
import { groupsFor, phases } from './kernel';

/**
 * Dense decoder x̂ = A·W_dec + b_pre (aux: without b_pre), for the threshold activations.
 * Bindings: A [b,N], W_dec [N,d], b_pre [d], out [B,d], params, the micro-batch's MicroBatch uniform
 * (A's rows are out's rows row0…; B = b, the most rows of a micro-batch, sizes the dispatch).
 */
export function createDenseDecode(device: GPUDevice, s: { B: number; aux: boolean }) {
  return phases(device, 'dense-decode', code, [
    { entry: 'decode_dense', constants: { AUX: s.aux }, groups: groupsFor(device, s.B) },
  ]);
}
