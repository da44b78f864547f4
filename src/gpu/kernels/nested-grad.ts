import code from '../../../shaders/nested-grad.wgsl?raw';
import { loopGroups, phases } from './kernel';

/**
 * Matryoshka's per-level gradient sources g [G, B, d] from x, x̂ and the inner prefixes'
 * reconstructions (decode's x_inner [G − 1, B, d]); run after the loss kernel.
 * Bindings: x, xHat, xInner, g (out), params.
 */
export function createNestedGrad(device: GPUDevice, s: { B: number; d: number; levels: number }) {
  if (s.levels < 2) throw new Error('nested-grad: Matryoshka needs at least two levels');
  return phases(
    device,
    'nested-grad',
    code,
    [{ entry: 'nested_grad', groups: loopGroups(device, Math.ceil((s.B * s.d) / 256)) }],
    {
      LEVELS: s.levels,
    },
  );
}
