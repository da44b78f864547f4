import { computeStats } from '../../src/data/stats';
import { Batcher } from '../../src/data/stream';
import { syntheticSource } from '../../src/data/synthetic';
import { evaluateSae } from '../../src/eval/index';
import { normalizeBatch } from '../../src/sae/normalize';
import type { KernelChoice } from '../../src/sae/step-host';
import { Trainer } from '../../src/sae/trainer';
import { latentDetail } from '../../src/worker/dashboards';
import { fullEvaluate } from '../../src/worker/evaluate';
import { assert, gpuTest } from './harness';

const FIXED: KernelChoice = { encode: 'blocked4x4', topk: 'insert', topkTile: 2048 };

gpuTest(
  'full evaluation: GPU codes give the CPU evaluation library’s metrics; recovery on synthetic data',
  async (device) => {
    const source = syntheticSource({
      d: 16,
      nFeatures: 48,
      rows: 8192,
      seed: 5,
      expectedActive: 3,
      noiseStd: 0.01,
    });
    const stats = await computeStats(source);
    const config = {
      nLatents: 64,
      k: 4,
      batchSize: 128,
      tokens: 40 * 128,
      seed: 2,
      deadTokens: 1024,
      evalFrac: 0.1,
    };
    const trainer = new Trainer(device, source, stats, config, {}, { kernels: FIXED, evalMaxRows: 1024 });
    await trainer.run();
    try {
      const report = await fullEvaluate({ trainer, dataset: null }, { maxRows: 700 }, () => {});
      assert(report.rows === 700, `rows ${report.rows}`);
      // The same held-out rows through the CPU encoder.
      const b = new Batcher(source, { heldOutFraction: config.evalFrac, nonFinite: 'skip', shuffleRows: 1 });
      const raw = await b.readHeldOut(700);
      const xn = new Float32Array(raw.length);
      normalizeBatch(trainer.norm, raw, 16, xn, new Float32Array(700));
      const params = await trainer.sae.readParams();
      // nMSE's baseline is the dataset mean, here in the normalized space the CPU encoder works in.
      const scale = trainer.norm.kind === 'scalar' ? trainer.norm.scale : 1;
      const mean = Float64Array.from(stats.mean, (m) => m * scale);
      const cpu = evaluateSae(params, xn, 700, 4, { fireThreshold: trainer.cfg.fireThreshold, mean }).report;
      // nMSE is scale-free (scalar normalization), so the normalized-space CPU value must agree.
      const rel = Math.abs(report.nmse - cpu.nmse) / cpu.nmse;
      assert(rel < 1e-3, `nMSE GPU ${report.nmse} vs CPU ${cpu.nmse}`);
      assert(Math.abs(report.l0 - cpu.l0) < 0.02, `L0 GPU ${report.l0} vs CPU ${cpu.l0}`);
      let diff = 0;
      for (let i = 0; i < 64; i++) diff += Math.abs(report.latents[i].freq - cpu.firingFrequency[i]);
      assert(diff < 0.02, `firing frequencies differ by ${diff} in total`);
      assert(report.recovery !== undefined, 'no recovery report on synthetic data');
      assert(report.recovery.meanMaxCos > report.recovery.chance, 'recovery not above chance');
      const counted = report.density.counts.reduce((a, c) => a + c, 0) + report.density.neverFired;
      assert(counted === 64, `density histogram counts ${counted} latents`);
      const live = report.latents.find((l) => l.freq > 0);
      assert(live !== undefined, 'no latent fired');
      const det = await latentDetail(live.id);
      assert(det.top.length > 0 && det.top[0].tokens.length === 0, 'top rows (without token contexts)');
      assert(det.logits === null, 'no logit effects without a language model');
      assert(det.bands.reduce((a, b) => a + b.count, 0) === det.fired, 'quantile bands cover the fired rows');
      assert(det.neighbours.length === 8, 'neighbours');
      assert(det.histogram.counts.reduce((a, c) => a + c, 0) > 0, 'activation histogram is empty');
    } finally {
      trainer.destroy();
    }
  },
);
