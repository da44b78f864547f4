import { beforeAll, describe, expect, it } from 'vitest';

// src/gpu/* read the WebGPU flags when they load; node has none, so give them the spec's.
type Dashboards = typeof import('../../../src/worker/dashboards');
let dash: Dashboards;
beforeAll(async () => {
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
  dash = await import('../../../src/worker/dashboards');
});

describe('dashboards before any evaluation', () => {
  it('the folder export and a latent request say to run Evaluate first', async () => {
    await expect(dash.exportDashboards('t', () => {})).rejects.toThrow(
      /no evaluation yet: run Evaluate first/,
    );
    await expect(dash.latentDetail(0)).rejects.toThrow(/no evaluation yet: run Evaluate first/);
  });
});
