import code from '../../../shaders/adam.wgsl?raw';
import { gpuForms, loopGroups, phases } from './kernel';

/**
 * Adam on one tensor of `count` elements, and the optional weight EMA.
 * Bindings: theta, grad, m, v, scal, ema (any buffer of ≥ 4 floats when EMA is off), params; the vec4
 * views (theta, grad, m, v, ema again) are added by `bind`.
 * On a software adapter: at most 256 workgroups, each striding, and the vec4 forms where count % 4 == 0
 * (the same bits). SwiftShader, d = 768, alternating rounds: 96.8 ms as on a GPU, 59.2 vec4, 57.2
 * capped, 53.8 both.
 */
export function createAdam(device: GPUDevice, count: number) {
  const v4 = !gpuForms(device) && count % 4 === 0;
  const groups = loopGroups(device, Math.ceil((v4 ? count / 4 : count) / 256));
  const adam = v4 ? 'adam_v4' : 'adam';
  const ema = v4 ? 'ema_v4' : 'ema';
  const k = phases(device, 'adam', code, [
    { entry: adam, constants: { COUNT: count }, groups },
    { entry: ema, constants: { COUNT: count }, groups },
  ]);
  return {
    /** the entry points to pass to run: the Adam update, the EMA */
    adam,
    ema,
    bind: (name: string, all: GPUBuffer[]) => k.bind(name, [...all, all[0], all[1], all[2], all[3], all[5]]),
    run: k.run,
  };
}
