// BatchTopK's inference threshold θ (docs/DESIGN.md §8): the GPU update in batch-topk.wgsl against the
// float64 twin step by step (and against the rule itself on the GPU's own τ), the τ = 0 branch, a
// checkpoint round trip that resumes bit for bit with θ, and the evaluation forward being per token.
// A Trainer stopped and resumed from its checkpoint ends with the same θ and held-out metrics.
import { computeStats } from '../../src/data/stats';
import { syntheticSource } from '../../src/data/synthetic';
import { exportSae } from '../../src/io/export';
import { importSae } from '../../src/io/import';
import { newRefState, type Params } from '../../src/reference/state';
import { refStep } from '../../src/reference/step';
import { CheckpointStore, memoryFs } from '../../src/sae/checkpoint';
import { parseCheckpoint, serializeCheckpoint } from '../../src/sae/checkpoint-format';
import { resolveConfig, type SaeConfig } from '../../src/sae/config';
import { GpuSae } from '../../src/sae/step';
import { type ParamsF32, paramNames, type TrainState } from '../../src/sae/step-buffers';
import { DEFAULT_KERNELS } from '../../src/sae/step-host';
import { Trainer } from '../../src/sae/trainer';
import { assert, gpuTest, randn } from './harness';
import { randomParams } from './step.gpu';

const B = 16;
const d = 12;
const N = 40;
const STEPS = 5;

const toF64 = (p: ParamsF32): Params => ({
  W_enc: Float64Array.from(p.W_enc),
  b_enc: Float64Array.from(p.b_enc),
  W_dec: Float64Array.from(p.W_dec),
  b_pre: Float64Array.from(p.b_pre),
});

const near = (a: number, b: number, rel: number) => Math.abs(a - b) <= rel * Math.max(Math.abs(b), 1e-30);

interface Case {
  name: string;
  over: Partial<SaeConfig>;
  /** b_enc for every latent (very negative: few positive candidates, so τ = 0) */
  fewPositive?: boolean;
}

const CASES: Case[] = [
  // β = 0.7 moves θ by 30% of (m − θ) a step, so a wrong rule cannot hide in the tolerance;
  // start 1: step 1 leaves θ at −1, step 2 sets it, steps 3… average.
  { name: 'β 0.7, from step 2', over: { batchTopKThresholdBeta: 0.7, batchTopKThresholdStart: 1 } },
  { name: 'default β 0.999, from step 1', over: { batchTopKThresholdStart: 0 } },
  {
    name: 'τ = 0 (fewer positive candidates than B·k)',
    over: { batchTopKThresholdBeta: 0.5, batchTopKThresholdStart: 0 },
    fewPositive: true,
  },
];

for (const cs of CASES) {
  gpuTest(
    `BatchTopK θ vs float64 twin: ${cs.name} (B=${B} d=${d} N=${N}, ${STEPS} steps)`,
    async (device) => {
      const cfg = resolveConfig({
        d,
        nLatents: N,
        batchSize: B,
        lr: 1e-2,
        k: 4,
        batchTopKCap: 16,
        activation: 'batchtopk',
        auxk: false,
        ...cs.over,
      });
      const p32 = randomParams(N, d, 31);
      if (cs.fewPositive) {
        // one shared bias: minus the 21st largest W_enc·(x − b_pre) of step 1's batch
        const x1 = randn(B * d, 41);
        const z: number[] = [];
        for (let b = 0; b < B; b++)
          for (let i = 0; i < N; i++) {
            let s = 0;
            for (let c = 0; c < d; c++) s += (x1[b * d + c] - p32.b_pre[c]) * p32.W_enc[i * d + c];
            z.push(s);
          }
        z.sort((p, q) => q - p);
        p32.b_enc.fill(-(z[20] + z[21]) / 2);
      }
      const sae = new GpuSae(device, cfg, DEFAULT_KERNELS);
      try {
        sae.setState({ params: p32 });
        const ref = newRefState(toF64(p32), N, false);
        assert((await sae.readInferenceThreshold()) === -1, 'θ starts at −1 (not learned)');
        const beta = Math.fround(cfg.batchTopKThresholdBeta);
        const omb = Math.fround(1 - cfg.batchTopKThresholdBeta);
        let prev = -1;
        let zeroTau = 0;
        const seen: number[] = [];
        for (let t = 1; t <= STEPS; t++) {
          const x = randn(B * d, 40 + t);
          const rowScale = new Float32Array(B).fill(1);
          const lossScale = 1 / (B * 1.3);
          sae.writeBatch(x, rowScale);
          sae.step(t, cfg.lr, lossScale);
          const out = refStep(ref, x, rowScale, cfg, lossScale, cfg.lr);
          const theta = await sae.readInferenceThreshold();
          const [m] = await sae.readMetrics(t - 1, t);
          const tau = m.extra;
          seen.push(theta);
          const what = `step ${t}: θ ${theta} vs twin ${ref.inferenceThreshold} (τ ${tau}, twin τ ${out.extra})`;
          // θ is an activation after the updates: float32 summation order in the backward (fixed trees
          // since the GPU forms) moves it by up to ~3e-5 relative; the rule itself is checked to 1e-6 below.
          assert(near(theta, ref.inferenceThreshold, 1e-4), what);
          if (t <= cfg.batchTopKThresholdStart)
            assert(theta === -1, `${what}: updated before the start step`);
          else if (tau > 0) {
            // The rule on the GPU's own τ (the smallest kept activation): set, then β·θ + (1 − β)·τ.
            const want = prev < 0 ? tau : Math.fround(beta * prev + omb * tau);
            assert(near(theta, want, 1e-6), `${what}: rule gives ${want}`);
          } else {
            zeroTau++;
            // τ = 0: m is the smallest positive candidate of the batch (read back from valAll).
            const val = await sae.readF32('valAll', B * cfg.batchTopKCap);
            let mpos = Infinity;
            for (const v of val) if (v > 0 && v < mpos) mpos = v;
            assert(mpos < Infinity, `${what}: no positive candidate (the case would test m = 0 only)`);
            const want = prev < 0 ? mpos : Math.fround(beta * prev + omb * mpos);
            assert(near(theta, want, 1e-6), `${what}: rule gives ${want} (m = smallest positive ${mpos})`);
          }
          prev = theta;
        }
        if (cs.fewPositive) assert(zeroTau > 0, `no step had τ = 0: ${seen}`);
        else assert(zeroTau === 0, 'a step had τ = 0');
        // θ moved after it was set (else the averaging would be untested).
        const learned = seen.filter((v) => v >= 0);
        assert(learned.length >= 3 && new Set(learned).size === learned.length, `θ did not move: ${seen}`);
        console.log(`    θ per step: ${seen.map((v) => v.toPrecision(6)).join(', ')}`);
      } finally {
        sae.destroy();
      }
    },
  );
}

gpuTest('BatchTopK θ: a checkpoint of the state resumes bit for bit, θ included', async (device) => {
  const cfg = resolveConfig({
    d,
    nLatents: N,
    batchSize: B,
    lr: 1e-2,
    k: 4,
    batchTopKCap: 16,
    kAux: 6,
    deadTokens: 32,
    activation: 'batchtopk',
    batchTopKThresholdBeta: 0.8,
    batchTopKThresholdStart: 0,
  });
  const lossScale = 1 / (B * 1.3);
  const batch = (t: number) => randn(B * d, 70 + t);
  const ones = new Float32Array(B).fill(1);
  const a = new GpuSae(device, cfg, DEFAULT_KERNELS);
  const b = new GpuSae(device, cfg, DEFAULT_KERNELS);
  try {
    a.setState({ params: randomParams(N, d, 5) });
    for (let t = 1; t <= 3; t++) {
      a.writeBatch(batch(t), ones);
      a.step(t, cfg.lr, lossScale);
    }
    const saved = await a.readState();
    assert(saved.inferenceThreshold !== undefined && saved.inferenceThreshold > 0, 'no θ in the state');
    const bytes = serializeCheckpoint({
      step: 3,
      tokens: 3 * B,
      config: cfg,
      data: { epoch: 0, rowsEmitted: 3 * B },
      rng: [],
      metrics: [],
      state: saved,
    });
    const back = parseCheckpoint(bytes, 'theta').state;
    assert(Object.is(back.inferenceThreshold, saved.inferenceThreshold), 'θ changed through the checkpoint');
    b.setState(back);
    for (let t = 4; t <= 6; t++) {
      for (const s of [a, b]) {
        s.writeBatch(batch(t), ones);
        s.step(t, cfg.lr, lossScale);
      }
    }
    const [sa, sb] = [await a.readState(), await b.readState()];
    assert(sa.inferenceThreshold !== saved.inferenceThreshold, 'θ did not move after the resume');
    assert(
      Object.is(sa.inferenceThreshold, sb.inferenceThreshold),
      `θ ${sa.inferenceThreshold} vs resumed ${sb.inferenceThreshold}`,
    );
    const same = (x: Float32Array | Uint32Array, y: Float32Array | Uint32Array) => {
      const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
      const w = new Uint32Array(y.buffer, y.byteOffset, y.length);
      return u.length === w.length && u.every((v, i) => v === w[i]);
    };
    for (const p of paramNames(cfg))
      for (const part of ['params', 'm', 'v'] as const)
        assert(
          same((sa[part] as ParamsF32)[p]!, (sb[part] as ParamsF32)[p]!),
          `${part}.${p} differs after the resume`,
        );
    assert(same(sa.tokensSince, sb.tokensSince), 'tokensSince differs after the resume');
    // Without θ in the checkpoint the resumed run would restart from θ = −1 and differ.
    const without: TrainState = { ...back };
    delete without.inferenceThreshold;
    b.setState(without);
    assert((await b.readInferenceThreshold()) === -1, 'a state without θ starts unlearned');
  } finally {
    a.destroy();
    b.destroy();
  }
});

gpuTest(
  "BatchTopK θ: the evaluation forward keeps each row's candidates above θ, per token",
  async (device) => {
    const cfg = resolveConfig({
      d,
      nLatents: N,
      batchSize: B,
      k: 4,
      batchTopKCap: 16,
      activation: 'batchtopk',
    });
    const K = cfg.batchTopKCap;
    const params = randomParams(N, d, 9);
    const x = randn(B * d, 90);
    const ones = new Float32Array(B).fill(1);
    const sae = new GpuSae(device, cfg, DEFAULT_KERNELS);
    try {
      // θ = −1 (not learned): every positive candidate; from those pick a θ that bites.
      sae.setState({ params });
      sae.writeBatch(x, ones);
      sae.forward();
      const raw = await sae.readF32('valAll', B * K);
      const pos = Array.from(raw)
        .filter((v) => v > 0)
        .sort((p, q) => p - q);
      const theta = pos[Math.floor(pos.length / 2)];
      sae.setState({ params, inferenceThreshold: theta });
      sae.writeBatch(x, ones);
      sae.forward();
      const idx = await sae.readU32('idxAll', B * K);
      const val = await sae.readF32('valAll', B * K);
      const counts = new Set<number>();
      for (let b = 0; b < B; b++) {
        let c = 0;
        for (let j = 0; j < K; j++) {
          const e = b * K + j;
          assert(
            val[e] === (raw[e] > theta ? raw[e] : 0),
            `row ${b} entry ${j}: ${val[e]} (raw ${raw[e]}, θ ${theta})`,
          );
          if (val[e] > 0) c++;
        }
        counts.add(c);
      }
      assert(counts.size > 1, 'every row kept the same count: the threshold did not bite per row');
      // Each row alone (forward(1) on that row) gives the same code as within the batch.
      for (const r of [0, 5, B - 1]) {
        const one = new Float32Array(B * d);
        one.set(x.subarray(r * d, (r + 1) * d));
        sae.writeBatch(one, ones);
        sae.forward(1);
        const i1 = await sae.readU32('idxAll', K);
        const v1 = await sae.readF32('valAll', K);
        for (let j = 0; j < K; j++)
          assert(
            i1[j] === idx[r * K + j] && v1[j] === val[r * K + j],
            `row ${r} entry ${j}: alone (${i1[j]}, ${v1[j]}) vs in the batch (${idx[r * K + j]}, ${val[r * K + j]})`,
          );
      }
    } finally {
      sae.destroy();
    }
  },
);

gpuTest(
  'BatchTopK θ: a Trainer stopped and resumed from its checkpoint ends with the same θ and evaluation, bit for bit',
  async (device) => {
    const source = syntheticSource({
      d: 16,
      nFeatures: 48,
      rows: 4096,
      seed: 5,
      expectedActive: 3,
      noiseStd: 0.01,
    });
    const stats = await computeStats(source);
    const K = 6;
    // θ starts learning at step 3, so the stop at step K falls in the middle of its averaging.
    const config: Partial<SaeConfig> = {
      nLatents: 64,
      k: 4,
      batchSize: 64,
      tokens: 2 * K * 64,
      seed: 3,
      activation: 'batchtopk',
      batchTopKThresholdStart: 2,
      batchTopKThresholdBeta: 0.9,
      evalFrac: 0.05,
      metricsEvery: 2,
    };
    const kernels = { encode: 'blocked4x4', topk: 'bitonic', topkTile: 2048 } as const;
    const a = new Trainer(device, source, stats, config, {}, { kernels, evalMaxRows: 256 });
    const ra = await a.run();
    const thetaA = await a.sae.readInferenceThreshold();
    a.destroy();
    const store = new CheckpointStore(memoryFs());
    let t1: Trainer | null = null;
    const ck = { store, runId: 'btk', everySeconds: 0 };
    t1 = new Trainer(
      device,
      source,
      stats,
      config,
      { onMetrics: (pts) => pts.some((p) => p.step >= K) && t1?.stop() },
      { kernels, evalMaxRows: 256, checkpoints: ck },
    );
    const r1 = await t1.run();
    assert(r1.status === 'stopped' && r1.steps === K, `first half: ${r1.status} after ${r1.steps} steps`);
    const thetaK = await t1.sae.readInferenceThreshold();
    t1.destroy();
    const latest = await store.latest('btk');
    assert(
      latest?.checkpoint.state.inferenceThreshold === thetaK && thetaK > 0,
      `checkpoint θ ${latest?.checkpoint.state.inferenceThreshold} vs ${thetaK}`,
    );
    const parsed = parseCheckpoint(serializeCheckpoint(latest.checkpoint), 'btk');
    const t2 = new Trainer(
      device,
      source,
      stats,
      {},
      {},
      { evalMaxRows: 256, checkpoints: ck, resumeFrom: parsed },
    );
    const r2 = await t2.run();
    const thetaB = await t2.sae.readInferenceThreshold();
    t2.destroy();
    assert(r2.steps === 2 * K, `resumed to ${r2.steps}`);
    assert(thetaA !== thetaK, 'θ did not move after step K');
    assert(Object.is(thetaA, thetaB), `θ ${thetaB} resumed vs ${thetaA} uninterrupted`);
    // Evaluation runs per token with θ: equal θ and weights give the same held-out numbers.
    assert(
      r2.final.nmse === ra.final.nmse && r2.final.l0 === ra.final.l0,
      `final nMSE/L0 ${r2.final.nmse}/${r2.final.l0} vs ${ra.final.nmse}/${ra.final.l0}`,
    );
  },
);

gpuTest(
  "BatchTopK θ: the SAELens export read as JumpReLU (without the sae_lab block) gives the BatchTopK evaluation's GPU codes",
  async (device) => {
    // cap = N, so the BatchTopK evaluation sees every latent above θ, as JumpReLU does.
    const cfg = resolveConfig({
      d,
      nLatents: N,
      batchSize: B,
      lr: 1e-2,
      k: 4,
      batchTopKCap: N,
      activation: 'batchtopk',
      batchTopKThresholdBeta: 0.8,
      batchTopKThresholdStart: 0,
    });
    const sae = new GpuSae(device, cfg, DEFAULT_KERNELS);
    const ones = new Float32Array(B).fill(1);
    let jump: GpuSae | null = null;
    try {
      sae.setState({ params: randomParams(N, d, 13) });
      for (let t = 1; t <= 4; t++) {
        sae.writeBatch(randn(B * d, 110 + t), ones);
        sae.step(t, cfg.lr, 1 / (B * 1.3));
      }
      const st = await sae.readState();
      const files = exportSae({
        params: st.params,
        config: cfg,
        normalization: { kind: 'none' },
        inferenceThreshold: st.inferenceThreshold,
      });
      // SAE Lab reads its own export back as trained (the sae_lab block records BatchTopK and θ) …
      const own = importSae(files);
      assert(
        own.activation === 'batchtopk' && own.inferenceThreshold === st.inferenceThreshold,
        `own import: ${own.activation}, θ ${own.inferenceThreshold} vs ${st.inferenceThreshold}`,
      );
      // … and as another tool reads it (no sae_lab block): JumpReLU with θ for every latent.
      const cfgJson = JSON.parse(new TextDecoder().decode(files.get('cfg.json')));
      delete cfgJson.sae_lab;
      const foreign = new Map(files);
      foreign.set('cfg.json', new TextEncoder().encode(JSON.stringify(cfgJson)));
      const back = importSae(foreign);
      assert(back.activation === 'jumprelu', `imported as ${back.activation}`);
      jump = new GpuSae(
        device,
        resolveConfig({ ...back.config, d, nLatents: N, batchSize: B }),
        DEFAULT_KERNELS,
      );
      jump.setState({ params: back.params });
      const x = randn(B * d, 150);
      const codes = async (s: GpuSae) => {
        s.writeBatch(x, ones);
        s.forward();
        const K = s.codesK;
        const idx = await s.readU32('idxAll', B * K);
        const val = await s.readF32('valAll', B * K);
        return Array.from({ length: B }, (_, b) => {
          const m = new Map<number, number>();
          for (let j = 0; j < K; j++) if (val[b * K + j] > 0) m.set(idx[b * K + j], val[b * K + j]);
          return m;
        });
      };
      const [ours, theirs] = [await codes(sae), await codes(jump)];
      let active = 0;
      for (let b = 0; b < B; b++) {
        assert(ours[b].size === theirs[b].size, `row ${b}: ${ours[b].size} vs ${theirs[b].size} active`);
        for (const [i, v] of ours[b])
          assert(theirs[b].get(i) === v, `row ${b} latent ${i}: ${v} vs ${theirs[b].get(i)}`);
        active += ours[b].size;
      }
      // θ bites: rows keep fewer than all their positive candidates, and not all the same count
      assert(active > 0 && active < (B * N) / 2, `active ${active}`);
      assert(new Set(ours.map((m) => m.size)).size > 1, 'every row has the same L0');
    } finally {
      sae.destroy();
      jump?.destroy();
    }
  },
);
