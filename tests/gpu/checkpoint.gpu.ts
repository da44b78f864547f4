/**
 * Checkpoints through the Trainer: an interrupted and resumed run equals an uninterrupted one bit for
 * bit; device loss stops the trainer with a clear error, and the last checkpoint restores exactly.
 */
import { computeStats } from '../../src/data/stats';
import { syntheticSource } from '../../src/data/synthetic';
import { CheckpointStore, memoryFs } from '../../src/sae/checkpoint';
import { parseCheckpoint, serializeCheckpoint } from '../../src/sae/checkpoint-format';
import type { SaeConfig } from '../../src/sae/config';
import { DeviceLostError } from '../../src/sae/run-errors';
import type { ParamsF32 } from '../../src/sae/step-buffers';
import type { KernelChoice } from '../../src/sae/step-host';
import { Trainer } from '../../src/sae/trainer';
import type { CheckpointOptions } from '../../src/sae/trainer-checkpoint';
import type { TrainerHooks } from '../../src/sae/trainer-options';
import { assert, gpuTest } from './harness';

const FIXED: KernelChoice = { encode: 'blocked4x4', topk: 'bitonic', topkTile: 2048 };
const DATA = { d: 16, nFeatures: 48, rows: 4096, seed: 5, expectedActive: 3, noiseStd: 0.01 };
const K = 6;
const B = 64;
// chunkRows for d=16 is 65536 > rows, so a small dataset is one chunk; the shuffle buffer holds it all.
const CONFIG: Partial<SaeConfig> = {
  nLatents: 64,
  k: 4,
  batchSize: B,
  tokens: 2 * K * B,
  seed: 3,
  deadTokens: 128,
  evalFrac: 0.05,
  metricsEvery: 2,
  ema: true,
};

async function open() {
  const source = syntheticSource(DATA);
  return { source, stats: await computeStats(source) };
}

function sameBits(a: Float32Array | Uint32Array, b: Float32Array | Uint32Array, what: string) {
  assert(a.length === b.length, `${what}: length ${a.length} vs ${b.length}`);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++)
    if (x[i] !== y[i]) throw new Error(`${what} differs at ${i}: ${a[i]} vs ${b[i]}`);
}

function sameParams(a: ParamsF32, b: ParamsF32, what: string) {
  for (const k of ['W_enc', 'b_enc', 'W_dec', 'b_pre'] as const) sameBits(a[k], b[k], `${what} ${k}`);
}

gpuTest(
  'checkpoint: K steps → save → parse → resume → K more steps equals 2K uninterrupted, bit for bit',
  async (device) => {
    const { source, stats } = await open();
    // Uninterrupted, with periodic checkpoints in flight (they must not perturb training).
    const storeA = new CheckpointStore(memoryFs());
    const a = new Trainer(
      device,
      source,
      stats,
      CONFIG,
      {},
      {
        kernels: FIXED,
        evalMaxRows: 256,
        checkpoints: { store: storeA, runId: 'a', everySteps: 2, everySeconds: 0 },
      },
    );
    const ra = await a.run();
    assert(
      ra.steps === 2 * K && ra.status === 'done',
      `uninterrupted run: ${ra.status} after ${ra.steps} steps`,
    );
    const stA = await a.sae.readState();
    a.destroy();
    assert(
      (await storeA.list('a')).some((c) => c.step === 2 * K),
      'no checkpoint at the end of the run',
    );

    // Interrupted after K steps (stop → checkpoint), then resumed by a new Trainer from the parsed blob.
    const storeB = new CheckpointStore(memoryFs());
    let t1: Trainer | null = null;
    const hooks: TrainerHooks = { onMetrics: (pts) => pts.some((p) => p.step >= K) && t1?.stop() };
    const ck: CheckpointOptions = { store: storeB, runId: 'b', everySeconds: 0 };
    t1 = new Trainer(device, source, stats, CONFIG, hooks, {
      kernels: FIXED,
      evalMaxRows: 256,
      checkpoints: ck,
    });
    const r1 = await t1.run();
    assert(r1.status === 'stopped' && r1.steps === K, `first half: ${r1.status} after ${r1.steps} steps`);
    t1.destroy();
    const latest = await storeB.latest('b');
    assert(latest && latest.checkpoint.step === K, `latest checkpoint: ${latest?.checkpoint.step}`);
    // Round trip once more through the blob format, as a page reload would.
    const parsed = parseCheckpoint(serializeCheckpoint(latest.checkpoint), 'b');
    const t2 = new Trainer(
      device,
      source,
      stats,
      {},
      {},
      { kernels: { encode: 'naive' }, evalMaxRows: 256, checkpoints: ck, resumeFrom: parsed },
    );
    assert(t2.kernels.encode === FIXED.encode, 'resume must use the checkpoint kernels');
    const r2 = await t2.run();
    assert(r2.steps === 2 * K && r2.status === 'done', `resumed: ${r2.status} after ${r2.steps} steps`);
    const stB = await t2.sae.readState();
    t2.destroy();
    sameParams(stB.params, stA.params, 'params');
    sameParams(stB.m, stA.m, 'Adam m');
    sameParams(stB.v, stA.v, 'Adam v');
    sameParams(stB.ema!, stA.ema!, 'EMA');
    sameBits(stB.tokensSince, stA.tokensSince, 'tokensSince');
    assert(r2.curve.length === ra.curve.length, `curve: ${r2.curve.length} points vs ${ra.curve.length}`);
    for (let i = 0; i < ra.curve.length; i++) {
      assert(
        r2.curve[i].step === ra.curve[i].step && r2.curve[i].loss === ra.curve[i].loss,
        `curve point ${i} differs`,
      );
    }
    assert(r2.final.nmse === ra.final.nmse, `final nMSE ${r2.final.nmse} vs ${ra.final.nmse}`);
  },
);

gpuTest(
  'checkpoint: snapshots in rounds of 1000 bytes hold the steps: a periodic checkpoint resumes to the same run, bit for bit',
  async (device) => {
    const { source, stats } = await open();
    // Every snapshot in rounds (the state is ~100 KiB): untorn only if no step is submitted between them.
    const store = new CheckpointStore(memoryFs(), { keep: 100 });
    const ck: CheckpointOptions = { store, runId: 'r', everySteps: 2, everySeconds: 0, stagingBytes: 1000 };
    const a = new Trainer(
      device,
      source,
      stats,
      CONFIG,
      {},
      { kernels: FIXED, evalMaxRows: 256, checkpoints: ck },
    );
    const ra = await a.run();
    assert(ra.steps === 2 * K && ra.status === 'done', `run: ${ra.status} after ${ra.steps} steps`);
    const stA = await a.sae.readState();
    a.destroy();
    // A checkpoint taken while the run went on (not at its end), resumed on a new trainer.
    const steps = (await store.list('r')).map((c) => c.step);
    const mid = steps.filter((s) => s > 0 && s < 2 * K).sort((x, y) => x - y)[0];
    assert(mid !== undefined, `no periodic checkpoint: ${steps.join(', ')}`);
    const resumed = new Trainer(
      device,
      source,
      stats,
      {},
      {},
      {
        kernels: FIXED,
        evalMaxRows: 256,
        resumeFrom: await store.load('r', mid),
      },
    );
    const rb = await resumed.run();
    assert(rb.steps === 2 * K, `resumed from step ${mid}: ${rb.status} after ${rb.steps} steps`);
    const stB = await resumed.sae.readState();
    resumed.destroy();
    sameParams(stB.params, stA.params, `params (resumed from step ${mid})`);
    sameParams(stB.m, stA.m, 'Adam m');
    sameParams(stB.v, stA.v, 'Adam v');
    sameParams(stB.ema!, stA.ema!, 'EMA');
    sameBits(stB.tokensSince, stA.tokensSince, 'tokensSince');
  },
);

gpuTest(
  'checkpoint: device loss stops the trainer with a clear error; the last checkpoint restores exactly on a new device',
  async (device) => {
    const { source, stats } = await open();
    const adapter = await navigator.gpu.requestAdapter();
    assert(adapter, 'no adapter');
    const doomed = await adapter.requestDevice({
      label: 'doomed',
      requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize },
    });
    const store = new CheckpointStore(memoryFs());
    let saved = 0;
    const hooks: TrainerHooks = {
      onCheckpoint: (c) => {
        if (c.error) return;
        saved++;
        if (saved === 2) doomed.destroy();
      },
    };
    const long = { ...CONFIG, tokens: 500 * B };
    const t = new Trainer(doomed, source, stats, long, hooks, {
      kernels: FIXED,
      evalMaxRows: 256,
      checkpoints: { store, runId: 'lost', everySteps: 2, everySeconds: 0 },
    });
    const outcome = await Promise.race([
      t.run().then(
        (r) => `finished: ${r.status} at step ${r.steps}`,
        (e) => e,
      ),
      new Promise((r) => setTimeout(() => r('timeout: the trainer hung after device loss'), 60_000)),
    ]);
    assert(outcome instanceof DeviceLostError, `expected DeviceLostError, got ${String(outcome)}`);
    assert(/GPU device lost at step \d+ \(destroyed/.test(outcome.message), `message: ${outcome.message}`);
    assert(
      outcome.lastCheckpointStep !== null && outcome.lastCheckpointStep >= 2,
      `last checkpoint ${outcome.lastCheckpointStep}`,
    );
    assert(outcome.step < 500, 'the trainer ran to the end on a lost device');
    const latest = await store.latest('lost');
    assert(
      latest && latest.checkpoint.step === outcome.lastCheckpointStep,
      `latest ${latest?.checkpoint.step} vs ${outcome.lastCheckpointStep}`,
    );
    // What the worker does: a new device, the latest checkpoint, and on.
    const r = new Trainer(device, source, stats, {}, {}, { evalMaxRows: 256, resumeFrom: latest.checkpoint });
    await r.prepare();
    const st = await r.sae.readState();
    sameParams(st.params, latest.checkpoint.state.params, 'restored params');
    sameParams(st.m, latest.checkpoint.state.m, 'restored Adam m');
    sameBits(st.tokensSince, latest.checkpoint.state.tokensSince, 'restored tokensSince');
    assert(r.step === latest.checkpoint.step, `restored step ${r.step}`);
    r.destroy();
  },
);

gpuTest(
  'checkpoint: a diverging run stops with one message and keeps its last good checkpoint; a non-finite state is never saved',
  async (device) => {
    const { source, stats } = await open();
    // A good checkpoint first: K steps, stopped (saved on stop).
    const store = new CheckpointStore(memoryFs());
    let t1: Trainer | null = null;
    const ck: CheckpointOptions = { store, runId: 'div', everySteps: 1, everySeconds: 0 };
    t1 = new Trainer(
      device,
      source,
      stats,
      CONFIG,
      { onMetrics: (pts) => pts.some((p) => p.step >= K) && t1?.stop() },
      { kernels: FIXED, evalMaxRows: 256, checkpoints: ck },
    );
    const r1 = await t1.run();
    t1.destroy();
    assert(r1.status === 'stopped', `first part: ${r1.status}`);
    const good = await store.latest('div');
    assert(good, 'no checkpoint after the first part');

    // The same run continued from a blown-up encoder (what a too-large step does; the config caps the
    // learning rate below 1): reconstructions of 1e25 overflow the float32 loss at the next step.
    const W_enc = good.checkpoint.state.params.W_enc.map((v) => v * 1e25);
    const hot = {
      ...good.checkpoint,
      state: { ...good.checkpoint.state, params: { ...good.checkpoint.state.params, W_enc } },
    };
    const nans: { step: number; message: string }[] = [];
    const errors: string[] = [];
    const t2 = new Trainer(
      device,
      source,
      stats,
      {},
      {
        onNaN: (step, message) => nans.push({ step, message }),
        onCheckpoint: (c) => c.error && errors.push(c.error),
      },
      { evalMaxRows: 256, checkpoints: ck, resumeFrom: hot },
    );
    const r2 = await t2.run();
    assert(r2.status === 'failed', `diverging run: ${r2.status} after ${r2.steps} steps`);
    assert(r2.steps < CONFIG.tokens! / B, `it ran on to step ${r2.steps}`);
    assert(nans.length === 1, `onNaN called ${nans.length} times`);
    const latest = await store.latest('div');
    assert(latest, 'the good checkpoint is gone');
    const kept = latest.checkpoint.step;
    assert(kept < nans[0].step, `checkpoint of step ${kept} is not before the divergence at ${nans[0].step}`);
    assert(
      new RegExp(
        `^loss became (NaN|-?Infinity) at step ${nans[0].step}, the run stopped; the last good checkpoint \\(step ${kept}\\) is kept`,
      ).test(nans[0].message),
      `message: ${nans[0].message}`,
    );
    // every checkpoint left holds finite numbers only
    for (const c of await store.list('div')) {
      const l = await store.load('div', c.step);
      for (const a of Object.values(l.state.params))
        assert(a.every(Number.isFinite), `step ${c.step} not finite`);
    }

    // The guard itself: a state holding NaN is refused (one line naming the tensor), nothing is written.
    const t3 = new Trainer(
      device,
      source,
      stats,
      CONFIG,
      { onCheckpoint: (c) => c.error && errors.push(c.error) },
      {
        kernels: FIXED,
        checkpoints: { store, runId: 'nan-state', everySeconds: 0 },
      },
    );
    await t3.prepare();
    const st = await t3.sae.readState();
    st.params.W_enc[7] = Number.NaN;
    t3.sae.setState(st);
    await t3.checkpoint(true);
    t3.destroy();
    t2.destroy();
    assert(
      errors.some((e) =>
        /^checkpoint of step 0 not saved: W_enc holds NaN or Inf \(the run diverged\)$/.test(e),
      ),
      `errors: ${errors.join(' | ')}`,
    );
    assert((await store.list('nan-state')).length === 0, 'a NaN state was saved');
  },
);
