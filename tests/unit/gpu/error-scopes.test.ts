import { describe, expect, it } from 'vitest';
import { GpuError, withErrorScopes } from '../../../src/gpu/device';

// Stand-ins for the browser's error classes: withErrorScopes names an error by its class.
class GPUValidationError {
  constructor(readonly message: string) {}
}
class GPUOutOfMemoryError {
  constructor(readonly message: string) {}
}

/** A device whose scopes pop `errors` in order (innermost first: validation, out-of-memory, internal). */
function fakeDevice(errors: (object | null)[]) {
  const pushed: string[] = [];
  const popped = [...errors];
  const device = {
    pushErrorScope: (f: string) => pushed.push(f),
    popErrorScope: async () => popped.shift() ?? null,
  } as unknown as GPUDevice;
  return { device, pushed };
}

describe('withErrorScopes', () => {
  it('reports the out-of-memory error over the validation errors a refused buffer causes', async () => {
    const { device, pushed } = fakeDevice([
      new GPUValidationError('[Invalid Buffer "sae:W_dec#0"] is invalid due to a previous error.'),
      new GPUOutOfMemoryError('vkAllocateMemory failed with VK_ERROR_OUT_OF_DEVICE_MEMORY'),
      null,
    ]);
    const e = await withErrorScopes(device, 'building', () => 1).catch((x) => x);
    expect(pushed).toEqual(['internal', 'out-of-memory', 'validation']);
    expect(e).toBeInstanceOf(GpuError);
    expect((e as GpuError).kind).toBe('GPUOutOfMemoryError');
    expect((e as GpuError).message).toBe(
      'building: GPU GPUOutOfMemoryError: vkAllocateMemory failed with VK_ERROR_OUT_OF_DEVICE_MEMORY',
    );
  });

  it('a validation error alone is reported, and a GPU error wins over the JS failure it explains', async () => {
    const { device } = fakeDevice([new GPUValidationError('bad binding'), null, null]);
    const e = await withErrorScopes(device, 'x', () => {
      throw new Error('readback failed');
    }).catch((x) => x);
    expect((e as GpuError).kind).toBe('GPUValidationError');
    const ok = fakeDevice([null, null, null]);
    expect(await withErrorScopes(ok.device, 'x', () => 7)).toBe(7);
  });
});
