import { computeStats } from '../../src/data/stats';
import { syntheticSource } from '../../src/data/synthetic';
import { gpuBufferStats, trackBuffers } from '../../src/gpu/buffers';
import { Trainer } from '../../src/sae/trainer';
import { assert, gpuTest } from './harness';

gpuTest(
  "a trainer's construction, run, evaluation and destroy() leave the live GPU buffer count and bytes where they started",
  async (device) => {
    trackBuffers(device);
    const source = syntheticSource({
      d: 16,
      nFeatures: 32,
      rows: 4096,
      seed: 5,
      expectedActive: 3,
      noiseStd: 0.01,
    });
    const stats = await computeStats(source);
    const before = { ...gpuBufferStats };
    for (let r = 0; r < 2; r++) {
      const t = new Trainer(
        device,
        source,
        stats,
        { nLatents: 64, k: 4, batchSize: 64, tokens: 20 * 64, seed: r, evalFrac: 0.05 },
        {},
        { kernels: { encode: 'blocked4x4', topk: 'insert' }, evalEveryTokens: 10 * 64, evalMaxRows: 256 },
      );
      assert(gpuBufferStats.live > before.live, 'the trainer allocated no counted buffer');
      await t.run();
      await t.evaluate();
      t.destroy();
      await device.queue.onSubmittedWorkDone();
      assert(
        gpuBufferStats.live === before.live && gpuBufferStats.bytes === before.bytes,
        `run ${r}: ${gpuBufferStats.live - before.live} buffers (${gpuBufferStats.bytes - before.bytes} bytes) left after destroy()`,
      );
    }
  },
);
