import code from '../../../shaders/decode.wgsl?raw';
import { groupsFor, phases } from './kernel';

/**
 * Sparse decoder x̂ = Σ val·W_dec[idx] + b_pre; aux: ê from the AuxK pairs, without b_pre.
 * Bindings: idxAll, valAll, W_dec [N,d], b_pre [d], out [B,d], params.
 */
export function createDecode(device: GPUDevice, s: { B: number; aux: boolean }) {
  return phases(device, 'decode', code, [
    { entry: 'decode', constants: { AUX: s.aux }, groups: groupsFor(device, s.B) },
  ]);
}
