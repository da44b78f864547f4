/**
 * GPU errors are fatal: a real invalid command injected mid-run (TrainerOptions.injectGpuErrorAtStep,
 * the test hook behind the CLI's --inject-gpu-error) surfaces through the device's uncapturederror
 * event and stops the Trainer with a GpuRunError before it reports anything computed after the fault;
 * the last checkpoint is kept, and no checkpoint is saved after the fault.
 */
import { computeStats } from '../../src/data/stats';
import { syntheticSource } from '../../src/data/synthetic';
import { CheckpointStore, memoryFs } from '../../src/sae/checkpoint';
import type { SaeConfig } from '../../src/sae/config';
import { GpuRunError } from '../../src/sae/run-errors';
import { Trainer } from '../../src/sae/trainer';
import { assert, gpuTest } from './harness';

const B = 64;
const CONFIG: Partial<SaeConfig> = {
  nLatents: 64,
  k: 4,
  batchSize: B,
  tokens: 200 * B,
  seed: 1,
  metricsEvery: 2,
};

gpuTest(
  'gpu errors: an injected invalid command stops the run at the next read-back, checkpoint kept',
  async () => {
    const source = syntheticSource({
      d: 16,
      nFeatures: 48,
      rows: 4096,
      seed: 5,
      expectedActive: 3,
      noiseStd: 0.01,
    });
    const stats = await computeStats(source);
    // Its own device: the harness runs each test inside error scopes, which would catch the fault.
    const adapter = await navigator.gpu.requestAdapter();
    assert(adapter, 'no adapter');
    const device = await adapter.requestDevice({ label: 'faulty' });
    const store = new CheckpointStore(memoryFs());
    const reported: number[] = [];
    const saved: number[] = [];
    const t = new Trainer(
      device,
      source,
      stats,
      CONFIG,
      {
        onMetrics: (ps) => reported.push(...ps.map((p) => p.step)),
        onCheckpoint: (c) => {
          if (!c.error) saved.push(c.step);
        },
      },
      {
        kernels: { encode: 'blocked4x4', topk: 'bitonic', topkTile: 2048 },
        evalMaxRows: 256,
        checkpoints: { store, runId: 'faulty', everySteps: 4, everySeconds: 0 },
        injectGpuErrorAtStep: 9,
      },
    );
    const outcome = await t.run().then(
      (r) => `finished: ${r.status} at step ${r.steps}`,
      (e) => e,
    );
    try {
      assert(outcome instanceof GpuRunError, `expected GpuRunError, got ${String(outcome)}`);
      assert(outcome.kind === 'GPUValidationError', `kind ${outcome.kind}`);
      assert(/injected-fault@9/.test(outcome.message), `message: ${outcome.message}`);
      assert(outcome.step >= 9 && outcome.step < 200, `noticed at step ${outcome.step}`);
      assert(Math.max(...reported) < 10, `metrics after the fault were reported: ${reported.join(',')}`);
      assert(saved.length > 0 && Math.max(...saved) <= 8, `checkpoints saved: ${saved.join(',')}`);
      const latest = await store.latest('faulty');
      assert(latest?.checkpoint.step === Math.max(...saved), `latest kept: ${latest?.checkpoint.step}`);
      assert(
        outcome.lastCheckpointStep === latest.checkpoint.step,
        `lastCheckpointStep ${outcome.lastCheckpointStep}`,
      );
    } finally {
      t.destroy();
      device.destroy();
    }
  },
);
