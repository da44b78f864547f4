import { withErrorScopes } from '../../src/gpu/device';
import { gpuTest } from './harness';

// The harness itself: a WGSL validation error inside an error scope must surface with its message,
// otherwise every kernel test could pass silently on a shader that never compiled.
gpuTest('harness: error scopes turn a WGSL error into a thrown message', async (device) => {
  let message = '';
  try {
    await withErrorScopes(device, 'broken shader', () => {
      const module = device.createShaderModule({
        code: '@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }',
      });
      device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    });
  } catch (e) {
    message = String(e);
  }
  if (!/broken shader: GPU .*Validation/i.test(message))
    throw new Error(`expected a validation error, got "${message}"`);
});
