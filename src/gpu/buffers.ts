/** Buffer helpers: every buffer has a label, uploads and read-backs in one place, and an arena that destroys what it created. */

export const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

/** Rounds a byte size up to a multiple of 4 (WebGPU copy/size alignment). */
const align4 = (n: number) => Math.ceil(n / 4) * 4;

function createBuffer(device: GPUDevice, label: string, byteSize: number, usage = STORAGE): GPUBuffer {
  return device.createBuffer({ label, size: Math.max(16, align4(byteSize)), usage });
}

/** Creates a storage buffer holding `data` (f32/u32/i32 typed array). */
export function createBufferFrom(
  device: GPUDevice,
  label: string,
  data: Float32Array | Uint32Array | Int32Array,
  usage = STORAGE,
): GPUBuffer {
  const buf = device.createBuffer({
    label,
    size: Math.max(16, align4(data.byteLength)),
    usage,
    mappedAtCreation: true,
  });
  const Ctor = data.constructor as new (b: ArrayBuffer) => Float32Array | Uint32Array | Int32Array;
  new Ctor(buf.getMappedRange()).set(data);
  buf.unmap();
  return buf;
}

export function upload(
  device: GPUDevice,
  buf: GPUBuffer,
  data: Float32Array | Uint32Array | Int32Array,
  offsetBytes = 0,
) {
  device.queue.writeBuffer(buf, offsetBytes, data.buffer, data.byteOffset, data.byteLength);
}

/** Copies `byteSize` bytes of `src` (from `offset`) into a fresh staging buffer and returns them. */
export async function readBytes(
  device: GPUDevice,
  src: GPUBuffer,
  byteSize = src.size,
  offset = 0,
): Promise<ArrayBuffer> {
  const size = align4(byteSize);
  const staging = device.createBuffer({
    label: `readback:${src.label}`,
    size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = device.createCommandEncoder({ label: `readback:${src.label}` });
  enc.copyBufferToBuffer(src, offset, staging, 0, size);
  device.queue.submit([enc.finish()]);
  try {
    await staging.mapAsync(GPUMapMode.READ);
    return staging.getMappedRange().slice(0, byteSize);
  } finally {
    staging.destroy();
  }
}

export async function readF32(
  device: GPUDevice,
  src: GPUBuffer,
  count?: number,
  offsetFloats = 0,
): Promise<Float32Array> {
  const n = count ?? src.size / 4 - offsetFloats;
  return new Float32Array(await readBytes(device, src, n * 4, offsetFloats * 4));
}

export async function readU32(
  device: GPUDevice,
  src: GPUBuffer,
  count?: number,
  offsetWords = 0,
): Promise<Uint32Array> {
  const n = count ?? src.size / 4 - offsetWords;
  return new Uint32Array(await readBytes(device, src, n * 4, offsetWords * 4));
}

/** Owns a set of buffers; destroy() releases all of them. */
export class BufferArena {
  private buffers: GPUBuffer[] = [];
  constructor(
    readonly device: GPUDevice,
    readonly prefix: string,
  ) {}
  bytes = 0;
  create(label: string, byteSize: number, usage = STORAGE): GPUBuffer {
    const b = createBuffer(this.device, `${this.prefix}:${label}`, byteSize, usage);
    this.buffers.push(b);
    this.bytes += b.size;
    return b;
  }
  from(label: string, data: Float32Array | Uint32Array | Int32Array, usage = STORAGE): GPUBuffer {
    const b = createBufferFrom(this.device, `${this.prefix}:${label}`, data, usage);
    this.buffers.push(b);
    this.bytes += b.size;
    return b;
  }
  uniform(label: string, byteSize: number): GPUBuffer {
    return this.create(label, byteSize, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  }
  destroy() {
    for (const b of this.buffers) b.destroy();
    this.buffers = [];
    this.bytes = 0;
  }
}

/**
 * Live GPU buffers of the devices passed to `trackBuffers`: count and bytes, incremented on create and
 * decremented on the first destroy() (destroying twice is allowed in WebGPU and counts once). A buffer
 * dropped without destroy() stays counted: the soak bench (bench/soak.bench.ts) and the tests read
 * this to see that runs give back everything they allocate.
 */
export const gpuBufferStats = { live: 0, bytes: 0, created: 0, destroyed: 0 };

const trackedDevices = new WeakSet<GPUDevice>();

/**
 * Counts every buffer `device.createBuffer` makes from now on (the helpers above, the kernels' own
 * uniforms and staging buffers alike) in `gpuBufferStats`. Idempotent; returns the device.
 */
export function trackBuffers(device: GPUDevice): GPUDevice {
  if (trackedDevices.has(device)) return device;
  trackedDevices.add(device);
  const create = device.createBuffer.bind(device);
  device.createBuffer = (descriptor: GPUBufferDescriptor): GPUBuffer => {
    const buf = create(descriptor);
    const size = buf.size;
    gpuBufferStats.live++;
    gpuBufferStats.created++;
    gpuBufferStats.bytes += size;
    const destroy = buf.destroy.bind(buf);
    let alive = true;
    buf.destroy = () => {
      if (alive) {
        alive = false;
        gpuBufferStats.live--;
        gpuBufferStats.destroyed++;
        gpuBufferStats.bytes -= size;
      }
      destroy();
    };
    return buf;
  };
  return device;
}
