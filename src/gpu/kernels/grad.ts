import code from '../../../shaders/grad-latent.wgsl?raw';
import { groupsFor, phases } from './kernel';

/**
 * Sparse backward: gv per entry, then per-latent sums over the sorted lists, then db_pre.
 * Bindings: idxAll, valAll, g, gAux, W_dec, gvAll (out), start, rows, x, b_pre, W_enc, dW_dec, dW_enc,
 * db_enc, db_pre, params. Run 'gv' before the sums (they read it); the sort may run in between.
 */
export function createGrad(device: GPUDevice, s: { d: number; N: number; entries: number }) {
  return phases(device, 'grad-latent', code, [
    { entry: 'gv', groups: groupsFor(device, s.entries, 64) },
    { entry: 'grad_dec', groups: groupsFor(device, s.N) },
    { entry: 'grad_enc', groups: groupsFor(device, s.N) },
    { entry: 'grad_bpre', groups: groupsFor(device, s.d, 64) },
  ]);
}
