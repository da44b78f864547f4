/**
 * Soak (npm run bench -- --only soak [--minutes 30]): trains on the bundled demo dataset through the
 * Trainer the worker runs (src/worker/trainer.worker.ts), opened as the worker opens it
 * (src/worker/datasets.ts), with periodic evaluation and OPFS checkpoints; when a run finishes it
 * is evaluated once more (as the evaluation panel does), destroyed, and the next run starts, until
 * node (bench/soak.ts) sets window.__soakStop. Live figures for node's once-a-minute samples are in
 * window.__soak: tokens trained, runs, and the live GPU buffers (gpuBufferStats, counted on this
 * device by trackBuffers).
 */
import { gpuBufferStats, trackBuffers } from '../src/gpu/buffers';
import { CheckpointStore, memoryFs } from '../src/sae/checkpoint';
import type { SaeConfig } from '../src/sae/config';
import { Trainer } from '../src/sae/trainer';
import { openDataset } from '../src/worker/datasets';

export interface SoakLive {
  tokens: number;
  runs: number;
  metricsPoints: number;
  gpu: typeof gpuBufferStats;
  /** the current run's curve length (Trainer.curve), which a long run must keep bounded */
  curveLength: number;
}

declare global {
  interface Window {
    __soak?: SoakLive;
    __soakStop?: boolean;
  }
}

export interface SoakOptions {
  /** stop by itself after this long even if node never says so */
  maxMinutes: number;
  /** tokens per run */
  tokensPerRun: number;
  config?: Partial<SaeConfig>;
}

export async function benchSoak(device: GPUDevice, opts: SoakOptions) {
  trackBuffers(device);
  const ds = await openDataset(
    { kind: 'demo', url: new URL('/demo/stories260K_L2_resid.f16.npy', location.origin).href },
    () => {},
  );
  const store = await CheckpointStore.opfs({ keep: 3 }).catch(
    () => new CheckpointStore(memoryFs(), { keep: 3 }),
  );
  const live: SoakLive = { tokens: 0, runs: 0, metricsPoints: 0, gpu: gpuBufferStats, curveLength: 0 };
  window.__soak = live;
  const start = performance.now();
  const deadline = start + opts.maxMinutes * 60_000;
  const config: Partial<SaeConfig> = {
    nLatents: 1024,
    k: 32,
    batchSize: 1024,
    tokens: opts.tokensPerRun,
    seed: 0,
    ...opts.config,
  };
  const baseline = { ...gpuBufferStats };
  let tokensBefore = 0;
  let last: { status: string; steps: number; nmse: number } | null = null;
  while (!window.__soakStop && performance.now() < deadline) {
    const runId = `soak-${live.runs}`;
    let t: Trainer | null = null;
    t = new Trainer(
      device,
      ds.source,
      ds.stats,
      { ...config, seed: live.runs },
      {
        onMetrics: (points) => {
          live.metricsPoints += points.length;
          const p = points.at(-1);
          if (p && t) {
            live.tokens = tokensBefore + p.step * t.cfg.batchSize;
            live.curveLength = t.curve.length;
          }
          if (window.__soakStop) t?.stop();
        },
      },
      {
        // the kernels the autotuner picks on SwiftShader, so every run does the same work
        kernels: { encode: 'vec4x8', topk: 'insert' },
        evalEveryTokens: Math.max(opts.tokensPerRun / 4, config.batchSize ?? 1024),
        checkpoints: { store, runId, everySteps: 100 },
      },
    );
    try {
      const r = await t.run();
      tokensBefore += r.tokens;
      live.tokens = tokensBefore;
      const ev = await t.evaluate();
      last = { status: r.status, steps: r.steps, nmse: ev.nmse };
      await store.delete(runId);
    } finally {
      t.destroy();
      t = null;
    }
    live.runs++;
  }
  return {
    name: 'soak',
    minutes: (performance.now() - start) / 60_000,
    runs: live.runs,
    tokens: live.tokens,
    config,
    last,
    gpu_baseline: baseline,
    gpu_end: { ...gpuBufferStats },
  };
}
