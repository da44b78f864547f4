import code from '../../../shaders/update.wgsl?raw';
import { groupsFor, phases } from './kernel';

/**
 * Decoder-gradient projection and global gradient norm / clip factor (before Adam); decoder
 * renormalization (after). Bindings: W_dec, dW_dec, dW_enc, db_enc, db_pre, normPart [N], scal, metrics, params.
 */
export function createUpdate(device: GPUDevice, s: { N: number }) {
  return phases(device, 'update', code, [
    { entry: 'project_dec', groups: groupsFor(device, s.N, 64) },
    { entry: 'clip_reduce', groups: 1 },
    { entry: 'renorm_dec', groups: groupsFor(device, s.N, 64) },
  ]);
}
