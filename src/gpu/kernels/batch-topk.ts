import code from '../../../shaders/batch-topk.wgsl?raw';
import { groupsFor, phases } from './kernel';

/**
 * BatchTopK selection over the per-row candidates: τ = the (B·k)-th largest of valAll[0, B·kCap),
 * entries below τ zeroed. Bindings: valAll [B·kCap…] (in/out), tau [1] (out), metrics (τ in slot 7), params.
 */
export function createBatchTopK(device: GPUDevice, s: { B: number; kCap: number }) {
  return phases(device, 'batch-topk', code, [
    { entry: 'batch_select', groups: 1 },
    { entry: 'batch_apply', groups: groupsFor(device, s.B * s.kCap, 256) },
  ]);
}
