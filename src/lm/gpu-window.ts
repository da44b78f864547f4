/**
 * What the llama2.c and GPT-2 WGSL forwards share around one window: checking the token ids and a
 * replacement, and recording the window's commands with read-backs through one staging buffer.
 */

import { ALLOCATION_SLACK, largestBinding, largestBuffer } from '../gpu/limits';

/** The device limits a WGSL forward is checked against before it allocates. */
export type LmLimits = Pick<
  GPUSupportedLimits,
  | 'maxStorageBufferBindingSize'
  | 'maxBufferSize'
  | 'maxComputeWorkgroupStorageSize'
  | 'maxComputeWorkgroupsPerDimension'
>;

/** Largest head the attention kernel (lm-attention.wgsl) holds in registers (q and the weighted sum). */
const MAX_HEAD_SIZE = 256;

/** Bytes in MiB, or KiB below one MiB. */
const mib = (b: number) =>
  b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${(b / 2 ** 10).toFixed(1)} KiB`;

/** What a forward needs of a device at one capacity, for {@link lmFit}. */
export interface LmNeeds {
  headSize: number;
  /** [name, bytes, hint]: each buffer bound whole, the hint appended when it does not fit */
  buffers: [string, number, string][];
  /** [name, [x, y] workgroups, hint] of each dispatch at the capacity */
  dispatches: [string, [number, number], string][];
  /** workgroup memory of the largest kernel */
  workgroupBytes: number;
}

/**
 * The first need that `limits` refuse, as one line naming it, or null when all fit: the head size
 * against the attention kernel, every buffer against the largest storage binding and buffer,
 * workgroup memory, and each dispatch against the per-dimension workgroup count.
 */
export function lmFit(n: LmNeeds, limits: LmLimits): string | null {
  if (n.headSize > MAX_HEAD_SIZE)
    return `head size ${n.headSize} is over the attention kernel's ${MAX_HEAD_SIZE}`;
  const bind = largestBinding(limits);
  for (const [name, bytes, hint] of n.buffers)
    if (bytes > bind)
      return `${name} needs ${mib(bytes)} in one GPU buffer; this device binds less than ${mib(bind + ALLOCATION_SLACK)}${hint}`;
  if (n.workgroupBytes > limits.maxComputeWorkgroupStorageSize)
    return `a kernel needs ${n.workgroupBytes} bytes of workgroup memory; this device has ${limits.maxComputeWorkgroupStorageSize}`;
  const most = limits.maxComputeWorkgroupsPerDimension;
  for (const [name, [x, y], hint] of n.dispatches)
    if (x > most || y > most)
      return `the ${name} needs ${Math.max(x, y)} workgroups in one dimension; this device dispatches at most ${most}${hint}`;
  return null;
}

/** Throws unless one window's read-outs fit the staging buffer they come back through. */
export function checkStaging(bytes: number, limits: Pick<LmLimits, 'maxBufferSize'>, what: string): void {
  if (bytes > largestBuffer(limits))
    throw new Error(
      `${what} need ${mib(bytes)} at once; this device's buffers hold less than ${mib(limits.maxBufferSize)}: read fewer sites or a shorter window`,
    );
}

/** The window's token ids [T] as u32; T must be in 1..capacity and every id in 0..V−1. */
export function windowIds(tokens: ArrayLike<number>, capacity: number, V: number): Uint32Array<ArrayBuffer> {
  const T = tokens.length;
  if (T < 1 || T > capacity) throw new Error(`window of ${T} tokens is outside 1..${capacity}`);
  const ids = new Uint32Array(T);
  for (let t = 0; t < T; t++) {
    const id = tokens[t];
    if (!(Number.isInteger(id) && id >= 0 && id < V))
      throw new Error(`token id ${id} at ${t} is outside 0..${V - 1}`);
    ids[t] = id;
  }
  return ids;
}

/** Throws unless a replacement (host array or GPU buffer) holds a [T, d] float32 activation. */
export function checkReplacement(data: Float32Array | GPUBuffer, T: number, d: number): void {
  const bytes = data instanceof Float32Array ? data.byteLength : data.size;
  if (bytes < T * d * 4) throw new Error(`replacement holds ${bytes} bytes; [${T}, ${d}] needs ${T * d * 4}`);
}

/**
 * One window's commands: a compute pass opened on demand, buffer copies (which end the pass), and
 * read-backs appended to one staging buffer of `stagingBytes`, mapped once after the submit.
 */
export class WindowRecorder {
  private readonly enc: GPUCommandEncoder;
  private readonly staging: GPUBuffer;
  private current: GPUComputePassEncoder | null = null;
  private offset = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly label: string,
    stagingBytes: number,
  ) {
    this.staging = device.createBuffer({
      label: `${label}:readback`,
      size: stagingBytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    this.enc = device.createCommandEncoder({ label: `${label}:forward` });
  }

  /** The open compute pass (opened if none is). */
  pass(): GPUComputePassEncoder {
    this.current ??= this.enc.beginComputePass({ label: `${this.label}:forward` });
    return this.current;
  }

  /** Copies `bytes` from src to dst (after ending the open pass). */
  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number): void {
    this.endPass();
    this.enc.copyBufferToBuffer(src, 0, dst, 0, bytes);
  }

  /** Appends `bytes` of src to the staging buffer; returns their float offset in the read-back. */
  stage(src: GPUBuffer, bytes: number): number {
    this.endPass();
    this.enc.copyBufferToBuffer(src, 0, this.staging, this.offset, bytes);
    const at = this.offset / 4;
    this.offset += bytes;
    return at;
  }

  /** Submits the window and returns the staging buffer's floats (the staging buffer is freed). */
  async read(): Promise<Float32Array> {
    this.endPass();
    this.device.queue.submit([this.enc.finish()]);
    try {
      await this.staging.mapAsync(GPUMapMode.READ);
      return new Float32Array(this.staging.getMappedRange().slice(0));
    } finally {
      this.staging.destroy();
    }
  }

  private endPass(): void {
    this.current?.end();
    this.current = null;
  }
}
