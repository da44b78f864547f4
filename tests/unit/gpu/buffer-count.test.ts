import { beforeAll, describe, expect, it } from 'vitest';
import { defineWebGpuFlags } from '../webgpu-flags';

// src/gpu/buffers.ts reads the WebGPU usage flags when it loads; node has none, so give it the spec's.
type Buffers = typeof import('../../../src/gpu/buffers');
let buffers: Buffers;
beforeAll(async () => {
  defineWebGpuFlags();
  buffers = await import('../../../src/gpu/buffers');
});

/** A device whose buffers are plain objects that remember whether they were destroyed. */
function fakeDevice() {
  const made: { size: number; destroyed: number }[] = [];
  const device = {
    createBuffer(desc: GPUBufferDescriptor) {
      const rec = { size: desc.size, destroyed: 0 };
      made.push(rec);
      return {
        size: desc.size,
        label: desc.label ?? '',
        getMappedRange: () => new ArrayBuffer(desc.size),
        unmap() {},
        destroy() {
          rec.destroyed++;
        },
      } as unknown as GPUBuffer;
    },
    queue: { writeBuffer() {} },
  } as unknown as GPUDevice;
  return { device, made };
}

describe('trackBuffers / gpuBufferStats', () => {
  it('counts creates and destroys of every path (arena, createBufferFrom, a direct createBuffer) and balances', () => {
    const { device, made } = fakeDevice();
    const { gpuBufferStats: s, trackBuffers, BufferArena, createBufferFrom } = buffers;
    const before = { ...s };
    expect(trackBuffers(device)).toBe(device);
    trackBuffers(device); // idempotent: a second call must not count twice
    const arena = new BufferArena(device, 't');
    arena.create('a', 100); // rounded up to 100
    arena.from('b', new Float32Array(3)); // 12 bytes, at least 16
    arena.uniform('u', 16);
    const own = device.createBuffer({ label: 'own', size: 64, usage: 0 });
    const loose = createBufferFrom(device, 'loose', new Uint32Array(8));
    expect(s.live - before.live).toBe(5);
    expect(s.bytes - before.bytes).toBe(100 + 16 + 16 + 64 + 32);
    expect(s.created - before.created).toBe(5);

    arena.destroy();
    own.destroy();
    own.destroy(); // WebGPU allows destroying twice; it counts once but still reaches the device
    expect(made[3].destroyed).toBe(2);
    expect(s.live - before.live).toBe(1);
    loose.destroy();
    expect(s.live).toBe(before.live);
    expect(s.bytes).toBe(before.bytes);
    expect(s.destroyed - before.destroyed).toBe(5);
    expect(made.every((m) => m.destroyed >= 1)).toBe(true);
  });

  it('leaves untracked devices alone', () => {
    const { device } = fakeDevice();
    const before = { ...buffers.gpuBufferStats };
    device.createBuffer({ size: 16, usage: 0 }).destroy();
    expect(buffers.gpuBufferStats).toEqual(before);
  });
});
