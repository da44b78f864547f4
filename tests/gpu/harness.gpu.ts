import { withErrorScopes } from '../../src/gpu/device';
import { isSoftwareDevice, loopGroups } from '../../src/gpu/kernels/kernel';
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

// The grid-stride loops' workgroup cap (src/gpu/kernels/kernel.ts) reads device.adapterInfo: the test
// adapter must be recognised as software, or SwiftShader would get one workgroup per row and latent.
gpuTest('harness: the SwiftShader device is recognised as software (loop-group cap 256)', async (device) => {
  const info = (device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  if (!info) throw new Error('device.adapterInfo is missing');
  if (!isSoftwareDevice(device)) throw new Error(`not recognised as software: ${JSON.stringify(info)}`);
  if (loopGroups(device, 4096) !== 256) throw new Error(`loopGroups(4096) = ${loopGroups(device, 4096)}`);
});
