import code from '../../../shaders/adam.wgsl?raw';
import { gpuForms, loopGroups, phases } from './kernel';

/**
 * Adam on one tensor of `count` elements, and the optional weight EMA.
 * Bindings: theta, grad, m, v, scal, ema (any buffer of ≥ 4 floats when EMA is off), params.
 * On a software adapter: at most 256 workgroups, each striding, and vec4 elements where count % 4 == 0
 * (the same bits). SwiftShader, d = 768, alternating rounds: 96.8 ms as on a GPU, 59.2 vec4, 57.2
 * capped, 53.8 both.
 */
export function createAdam(device: GPUDevice, count: number) {
  const v4 = !gpuForms(device) && count % 4 === 0;
  const elements = v4 ? count / 4 : count;
  const groups = loopGroups(device, Math.ceil(elements / 256));
  return phases(
    device,
    'adam',
    code,
    [
      { entry: 'adam', constants: { COUNT: elements }, groups },
      { entry: 'ema', constants: { COUNT: elements }, groups },
    ],
    { ELEM: v4 ? 'vec4<f32>' : 'f32' },
  );
}
