import code from '../../../shaders/loss.wgsl?raw';
import { gpuForms, groupsFor, loopGroups, phases } from './kernel';

/**
 * Main and AuxK losses, the metrics slot, and the gradients w.r.t. x̂ and ê.
 * Bindings: x, xHat, eHat [B,d], valAll, rowScale [B], rowStats [B,4], colR [d], scal [8], deadInfo,
 * metrics ring, g [B,d] (out), gAux [B,d] (out), params.
 */
export function createLoss(device: GPUDevice, s: { B: number; d: number }) {
  return phases(device, 'loss', code, [
    { entry: 'loss_rows', groups: groupsFor(device, s.B, 64) },
    // A workgroup per column with a fixed tree on a GPU; the same sums by a thread per column on a
    // software adapter (bit for bit the same: colsum_r_seq in loss.wgsl).
    gpuForms(device)
      ? { entry: 'colsum_r', groups: groupsFor(device, s.d) }
      : { entry: 'colsum_r_seq', groups: groupsFor(device, s.d, 16) },
    { entry: 'finalize', groups: 1 },
    { entry: 'loss_grad', groups: loopGroups(device, Math.ceil((s.B * s.d) / 256)) },
  ]);
}
