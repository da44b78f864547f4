/**
 * What the llama2.c and GPT-2 WGSL forwards share around one window: checking the token ids and a
 * replacement, and recording the window's commands with read-backs through one staging buffer.
 */

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
