import code from '../../../shaders/loss.wgsl?raw';
import { groupsFor, phases } from './kernel';

/**
 * Main and AuxK losses, the metrics slot, and the gradients w.r.t. x̂ and ê.
 * Bindings: x, xHat, eHat [B,d], valAll, rowScale [B], rowStats [B,4], colR [d], scal [8], deadInfo,
 * metrics ring, g [B,d] (out), gAux [B,d] (out), params.
 */
export function createLoss(device: GPUDevice, s: { B: number; d: number }) {
  return phases(device, 'loss', code, [
    { entry: 'loss_rows', groups: groupsFor(device, s.B, 64) },
    { entry: 'colsum_r', groups: groupsFor(device, s.d) },
    { entry: 'finalize', groups: 1 },
    { entry: 'loss_grad', groups: groupsFor(device, s.B * s.d, 256) },
  ]);
}
