import code from '../../../shaders/adam.wgsl?raw';
import { groupsFor, phases } from './kernel';

/**
 * Adam on one tensor of `count` elements, and the optional weight EMA.
 * Bindings: theta, grad, m, v, scal, ema (any buffer when EMA is off), params.
 */
export function createAdam(device: GPUDevice, count: number) {
  const groups = groupsFor(device, count, 256);
  return phases(device, 'adam', code, [
    { entry: 'adam', constants: { COUNT: count }, groups },
    { entry: 'ema', constants: { COUNT: count }, groups },
  ]);
}
