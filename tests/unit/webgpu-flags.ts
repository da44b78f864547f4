/**
 * src/gpu/* read WebGPU's flag objects (GPUBufferUsage, GPUMapMode, GPUShaderStage) when they load;
 * node has none, so unit tests that import them define the spec's values first, then import
 * dynamically.
 */
export function defineWebGpuFlags(): void {
  Object.assign(globalThis, {
    GPUBufferUsage: {
      MAP_READ: 1,
      MAP_WRITE: 2,
      COPY_SRC: 4,
      COPY_DST: 8,
      INDEX: 16,
      VERTEX: 32,
      UNIFORM: 64,
      STORAGE: 128,
      INDIRECT: 256,
      QUERY_RESOLVE: 512,
    },
    GPUMapMode: { READ: 1, WRITE: 2 },
    GPUShaderStage: { VERTEX: 1, FRAGMENT: 2, COMPUTE: 4 },
  });
}
