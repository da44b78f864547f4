/** What a device will really allocate and bind, beside what its limits say. */

/**
 * Bytes kept below the adapter's largest buffer. Measured on SwiftShader through Chromium's Dawn
 * (2026-12-02): maxBufferSize and maxStorageBufferBindingSize both say 1 GiB, yet createBuffer of
 * 1 GiB − 4 bytes fails with VK_ERROR_OUT_OF_DEVICE_MEMORY while 1 GiB − 256 bytes succeeds: the
 * allocation is padded past the size asked for. A power-of-two tensor (N·d·4 = 2^30 at d = 64,
 * N = 2^22, or d = 4096, N = 2^16) lands exactly on the limit, so the plans keep a page below it.
 */
export const ALLOCATION_SLACK = 4096;

/** The largest single buffer a plan may bind: the smaller of the two limits, less ALLOCATION_SLACK. */
export function largestBinding(limits: { maxStorageBufferBindingSize: number; maxBufferSize: number }) {
  return Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize) - ALLOCATION_SLACK;
}

/** The largest buffer (not bound: a staging copy) a plan may create: maxBufferSize less ALLOCATION_SLACK. */
export function largestBuffer(limits: { maxBufferSize: number }) {
  return limits.maxBufferSize - ALLOCATION_SLACK;
}
