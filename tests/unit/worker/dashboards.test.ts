import { beforeAll, describe, expect, it } from 'vitest';
import { defineWebGpuFlags } from '../webgpu-flags';

type Dashboards = typeof import('../../../src/worker/dashboards');
let dash: Dashboards;
beforeAll(async () => {
  defineWebGpuFlags();
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
