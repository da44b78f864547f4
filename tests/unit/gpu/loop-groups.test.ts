import { describe, expect, it } from 'vitest';
import { isSoftwareDevice, loopGroups, setLoopGroupsCap } from '../../../src/gpu/kernels/kernel';

/** A stand-in GPUDevice: only adapterInfo and the workgroup-count limit are read. */
const fake = (info?: Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean }) =>
  ({
    adapterInfo: info && { vendor: '', architecture: '', device: '', description: '', ...info },
    limits: { maxComputeWorkgroupsPerDimension: 65535 },
  }) as unknown as GPUDevice;

describe('loopGroups', () => {
  it('caps grid-stride loops at 256 workgroups on software adapters and when the adapter is unknown', () => {
    for (const dev of [
      fake({ vendor: 'google', architecture: 'swiftshader' }),
      fake({ description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }),
      fake({ vendor: 'nvidia', isFallbackAdapter: true }),
      fake(),
    ]) {
      expect(isSoftwareDevice(dev)).toBe(true);
      expect(loopGroups(dev, 4096)).toBe(256);
      expect(loopGroups(dev, 100)).toBe(100);
    }
  });

  it('gives a GPU one workgroup per item up to the dimension limit, and honours an override', () => {
    const gpu = fake({ vendor: 'nvidia', description: 'NVIDIA: 580.159.04' });
    expect(isSoftwareDevice(gpu)).toBe(false);
    expect(loopGroups(gpu, 4096)).toBe(4096);
    expect(loopGroups(gpu, 1 << 20)).toBe(65535);
    setLoopGroupsCap(gpu, 256);
    expect(loopGroups(gpu, 4096)).toBe(256);
    setLoopGroupsCap(gpu, null);
    expect(loopGroups(gpu, 4096)).toBe(4096);
  });
});
