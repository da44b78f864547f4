/**
 * One definition of the evaluation metrics, and the forward pass they read (issue #16):
 *  - GpuSae.forward(n) on a partial batch equals the forward of those n rows alone, bit for bit, for
 *    every path (BatchTopK untiled, tiled and fused; TopK; the threshold family whole and in
 *    micro-batches): rows past n hold a stale batch of large rows, which would win BatchTopK's batch
 *    selection if they took part in it (checked: the padded forward differs).
 *  - The run panel's final metrics (Trainer.run's final, Trainer.evaluate) and the evaluation panel's
 *    (the worker's full evaluation) are the same numbers, exactly, for TopK and BatchTopK.
 *  - With an EMA (cfg.ema), evaluation and export use the EMA weights and say so: the numbers equal
 *    those of the EMA weights loaded alone, the live weights are back afterwards, the export holds the
 *    EMA tensors.
 */
import { computeStats } from '../../src/data/stats';
import { syntheticSource } from '../../src/data/synthetic';
import { importSae } from '../../src/io/import';
import { type ResolvedConfig, resolveConfig, type SaeConfig } from '../../src/sae/config';
import { GpuSae } from '../../src/sae/step';
import type { ParamsF32 } from '../../src/sae/step-buffers';
import { DEFAULT_KERNELS, type KernelChoice } from '../../src/sae/step-host';
import { Trainer } from '../../src/sae/trainer';
import { fullEvaluate } from '../../src/worker/evaluate';
import { exportModel } from '../../src/worker/models';
import { assert, gpuTest, randn } from './harness';
import { randomParams } from './step.gpu';

const FIXED: KernelChoice = { encode: 'blocked4x4', topk: 'insert', topkTile: 2048 };

function sameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string) {
  assert(a.length === b.length, `${what}: length ${a.length} vs ${b.length}`);
  const ua = new Uint32Array(new Float32Array(a).buffer);
  const ub = new Uint32Array(new Float32Array(b).buffer);
  for (let i = 0; i < ua.length; i++)
    if (ua[i] !== ub[i]) throw new Error(`${what}[${i}]: ${a[i]} vs ${b[i]} (bits differ)`);
}

/** x̂ [n, d] and codes [n, codesK] after a forward. */
async function readForward(sae: GpuSae, n: number) {
  const { d } = sae.cfg;
  const K = sae.codesK;
  return {
    xHat: await sae.readF32('xHat', n * d),
    idx: await sae.readU32('idxAll', n * K),
    val: await sae.readF32('valAll', n * K),
    /** threshold family: each row's count of nonzero activations (rowStats[b, 2]) */
    l0: (await sae.readF32('rowStats', n * 4)).filter((_, i) => i % 4 === 2),
  };
}

interface FwdCase {
  name: string;
  cfg: Partial<SaeConfig> & { d: number };
  kernels?: KernelChoice;
  opts?: { tileLatents?: number; microBatch?: number };
}

const B = 32;
const n = 11;
const FWD_CASES: FwdCase[] = [
  { name: 'batchtopk', cfg: { d: 16, nLatents: 96, k: 4, activation: 'batchtopk' } },
  {
    name: 'batchtopk, latent tiles',
    cfg: { d: 16, nLatents: 96, k: 4, activation: 'batchtopk' },
    opts: { tileLatents: 32 },
  },
  {
    name: 'batchtopk, fused encode+TopK over tiles',
    cfg: { d: 16, nLatents: 96, k: 4, activation: 'batchtopk' },
    kernels: { ...DEFAULT_KERNELS, encode: 'vec4x4', fused: 'vec4x4' },
    opts: { tileLatents: 48 },
  },
  { name: 'topk', cfg: { d: 16, nLatents: 96, k: 4 } },
  { name: 'topk, latent tiles', cfg: { d: 16, nLatents: 96, k: 4 }, opts: { tileLatents: 32 } },
  { name: 'relu', cfg: { d: 16, nLatents: 48, activation: 'relu' } },
  { name: 'relu, micro-batches', cfg: { d: 16, nLatents: 48, activation: 'relu' }, opts: { microBatch: 5 } },
];

for (const cs of FWD_CASES) {
  gpuTest(`metrics: forward(n) of a partial batch equals those n rows alone (${cs.name})`, async (device) => {
    const kernels = cs.kernels ?? DEFAULT_KERNELS;
    const full: ResolvedConfig = resolveConfig({ ...cs.cfg, batchSize: B, auxk: false });
    const alone: ResolvedConfig = resolveConfig({ ...cs.cfg, batchSize: n, auxk: false });
    const { d, nLatents: N } = full;
    const params: ParamsF32 = randomParams(N, d, 7);
    const rows = randn(n * d, 11);
    // A stale batch of large rows: in a padded forward they would take most of BatchTopK's B·k slots.
    const stale = randn(B * d, 12, 5);
    const ones = new Float32Array(B).fill(1);

    const one = new GpuSae(
      device,
      alone,
      kernels,
      cs.opts?.tileLatents ? { tileLatents: cs.opts.tileLatents } : {},
    );
    const big = new GpuSae(device, full, kernels, cs.opts);
    try {
      if (cs.opts?.tileLatents) assert(big.plan.tiles.length > 1, `${cs.name}: expected latent tiles`);
      if (kernels.fused) assert(big.plan.fusedChunkMin > 0, `${cs.name}: expected the fused kernel`);
      if (cs.opts?.microBatch) assert(big.plan.microBatches.length > 2, `${cs.name}: expected micro-batches`);
      // BatchTopK evaluates with its learned θ: one that bites (the median candidate of these rows).
      let theta: number | undefined;
      if (full.activation === 'batchtopk') {
        one.setState({ params });
        one.writeBatch(rows, ones.subarray(0, n));
        one.forward();
        const v = Array.from((await readForward(one, n)).val).sort((p, q) => p - q);
        theta = v[Math.floor(v.length / 2)];
      }
      one.setState({ params, inferenceThreshold: theta });
      big.setState({ params, inferenceThreshold: theta });
      one.writeBatch(rows, ones.subarray(0, n));
      one.forward();
      const want = await readForward(one, n);

      big.writeBatch(stale, ones);
      big.forward();
      big.writeBatch(rows, ones.subarray(0, n));
      big.forward(n);
      const got = await readForward(big, n);
      sameBits(got.xHat, want.xHat, `${cs.name} xHat`);
      sameBits(got.idx, want.idx, `${cs.name} idx`);
      sameBits(got.val, want.val, `${cs.name} val`);
      if (full.activation === 'relu') {
        sameBits(got.l0, want.l0, `${cs.name} row L0`);
        assert(
          want.l0.every((v) => v > 0),
          `${cs.name}: no row L0 written`,
        );
      }

      // The padded forward (the rows plus the stale rows, all B): per-row codes give the same first
      // n rows, BatchTopK's too (per token with θ; a batch-level cut would let the stale rows win).
      const padded = stale.slice();
      padded.set(rows);
      big.writeBatch(padded, ones);
      big.forward();
      const pad = await readForward(big, n);
      sameBits(pad.xHat, want.xHat, `${cs.name} padded xHat`);
      sameBits(pad.val, want.val, `${cs.name} padded val`);
      if (theta !== undefined) {
        const kept = want.val.filter((v) => v > 0).length;
        assert(kept > 0 && kept < want.val.length / 1.5, `${cs.name}: θ kept ${kept} of ${want.val.length}`);
      }
    } finally {
      one.destroy();
      big.destroy();
    }
  });
}

async function synthetic() {
  const source = syntheticSource({
    d: 16,
    nFeatures: 48,
    rows: 8192,
    seed: 5,
    expectedActive: 3,
    noiseStd: 0.01,
  });
  return { source, stats: await computeStats(source) };
}

for (const activation of ['topk', 'batchtopk'] as const) {
  gpuTest(
    `metrics: the run panel's final metrics and the full evaluation's are the same numbers (${activation})`,
    async (device) => {
      const { source, stats } = await synthetic();
      // 816 held-out rows in batches of 128: the last batch holds 48.
      const config = {
        nLatents: 64,
        k: 4,
        activation,
        batchSize: 128,
        tokens: 24 * 128,
        seed: 2,
        deadTokens: 1024,
        evalFrac: 0.1,
      };
      const trainer = new Trainer(device, source, stats, config, {}, { kernels: FIXED });
      try {
        const run = await trainer.run();
        const again = await trainer.evaluate();
        const panel = await fullEvaluate({ trainer, dataset: null }, {}, () => {});
        assert(run.final.rows > 700 && run.final.rows % 128 !== 0, `rows ${run.final.rows}`);
        const pick = (r: { rows: number; nmse: number; explainedVariance: number; l0: number }) => [
          r.rows,
          r.nmse,
          r.explainedVariance,
          r.l0,
        ];
        const same = (a: number[], b: number[], what: string) =>
          assert(
            a.every((v, i) => Object.is(v, b[i])),
            `${what}: ${a} vs ${b}`,
          );
        same(pick(run.final), pick(again), 'run final vs evaluate()');
        same(pick(run.final), pick(panel), 'run final vs full evaluation');
        same(
          [run.final.deadFractionEval, run.final.deadFractionRule],
          [panel.deadFraction, panel.deadFractionRule],
          'dead',
        );
        assert(run.final.weights === 'live' && panel.weights === 'live', 'weights: live');
        assert(run.final.nmse > 0 && run.final.nmse < 1, `nMSE ${run.final.nmse}`);
      } finally {
        trainer.destroy();
      }
    },
  );
}

gpuTest(
  'metrics: the threshold family’s L0 counts every nonzero latent, past the 512 codes kept',
  async (device) => {
    const { source, stats } = await synthetic();
    const N = 1100;
    const d = 16;
    const config = {
      nLatents: N,
      activation: 'relu' as const,
      batchSize: 64,
      evalFrac: 0.1,
      inputNorm: 'none' as const,
    };
    // Positive encoder biases: most of the 1100 latents are active on every row (more than 512).
    const params = { ...randomParams(N, d, 9), b_enc: new Float32Array(N).fill(0.5) };
    const t = Trainer.withParams(device, source, stats, config, params, { kernels: FIXED });
    try {
      const r = await t.evaluate(300);
      const panel = await fullEvaluate({ trainer: t, dataset: null }, { maxRows: 300 }, () => {});
      assert(Object.is(r.l0, panel.l0), `L0 ${r.l0} vs panel ${panel.l0}`);
      // The same rows on the CPU, in float64: relu(W_enc(x − b_pre) + b_enc) > 0.
      let active = 0;
      let rows = 0;
      for await (const b of t.evalBatches(300)) {
        for (let row = 0; row < b.codes.rows; row++, rows++)
          for (let i = 0; i < N; i++) {
            let z = params.b_enc[i];
            for (let c = 0; c < d; c++) z += (b.x[row * d + c] - params.b_pre[c]) * params.W_enc[i * d + c];
            if (z > 0) active++;
          }
      }
      assert(rows === r.rows, `rows ${rows} vs ${r.rows}`);
      assert(active / rows > 512, `the test needs rows with more than 512 active latents (${active / rows})`);
      assert(Math.abs(r.l0 - active / rows) < 1e-3 * r.l0, `L0 ${r.l0} vs CPU ${active / rows}`);
    } finally {
      t.destroy();
    }
  },
);

gpuTest('metrics: with an EMA, evaluation and export use the EMA weights and say so', async (device) => {
  const { source, stats } = await synthetic();
  const config = {
    nLatents: 64,
    k: 4,
    batchSize: 64,
    tokens: 30 * 64,
    seed: 3,
    evalFrac: 0.1,
    lr: 3e-3,
    ema: true,
    emaDecay: 0.9,
    // no normalization to fold into the exported weights, so they can be compared bit for bit
    inputNorm: 'none' as const,
  };
  const trainer = new Trainer(device, source, stats, config, {}, { kernels: FIXED });
  const others: Trainer[] = [];
  try {
    const run = await trainer.run();
    const live = await trainer.sae.readParams('theta');
    const ema = await trainer.sae.readParams('ema');
    let moved = 0;
    for (let i = 0; i < live.W_enc.length; i++) if (live.W_enc[i] !== ema.W_enc[i]) moved++;
    assert(moved > 0, 'the EMA equals the weights: the test would not tell them apart');

    const r = await trainer.evaluate();
    assert(r.weights === 'ema' && run.final.weights === 'ema', `weights ${r.weights}, ${run.final.weights}`);
    // the live weights are back in place after the evaluation
    const after = await trainer.sae.readParams('theta');
    const emaAfter = await trainer.sae.readParams('ema');
    for (const p of ['W_enc', 'b_enc', 'W_dec', 'b_pre'] as const) {
      sameBits(after[p], live[p], `restored ${p}`);
      sameBits(emaAfter[p], ema[p], `restored ema_${p}`);
    }
    // The swap in chunks of 1000 bytes through one temporary (W_enc is 4 KiB): an exchange, undone exactly.
    const undo = trainer.sae.swapInEma(1000);
    const [swappedTheta, swappedEma] = [
      await trainer.sae.readParams('theta'),
      await trainer.sae.readParams('ema'),
    ];
    undo();
    const [backTheta, backEma] = [await trainer.sae.readParams('theta'), await trainer.sae.readParams('ema')];
    for (const p of ['W_enc', 'b_enc', 'W_dec', 'b_pre'] as const) {
      sameBits(swappedTheta[p], ema[p], `swapped in ${p}`);
      sameBits(swappedEma[p], live[p], `parked ${p}`);
      sameBits(backTheta[p], live[p], `undone ${p}`);
      sameBits(backEma[p], ema[p], `undone ema_${p}`);
    }

    const alone = (params: ParamsF32) => {
      const t = Trainer.withParams(device, source, stats, { ...config, ema: false }, params, {
        kernels: FIXED,
      });
      others.push(t);
      return t.evaluate();
    };
    const onEma = await alone(ema);
    const onLive = await alone(live);
    for (const key of ['rows', 'nmse', 'explainedVariance', 'l0', 'deadFractionEval'] as const)
      assert(Object.is(r[key], onEma[key]), `${key}: EMA run ${r[key]} vs EMA weights alone ${onEma[key]}`);
    assert(
      r.nmse !== onLive.nmse,
      'the EMA and the live weights evaluate the same: the test would not see a swap',
    );
    assert(Object.is(run.final.nmse, r.nmse), `run final ${run.final.nmse} vs evaluate ${r.nmse}`);

    const panel = await fullEvaluate({ trainer, dataset: null }, {}, () => {});
    assert(panel.weights === 'ema' && Object.is(panel.nmse, r.nmse), `panel ${panel.weights} ${panel.nmse}`);

    const { files } = await exportModel({ runId: 'ema', trainer, imported: null }, { format: 'saelens' });
    const cfg = JSON.parse(new TextDecoder().decode(files.get('cfg.json')));
    assert(cfg.sae_lab.weights === 'ema', `export says ${cfg.sae_lab.weights}`);
    const back = importSae(files);
    for (const p of ['W_enc', 'b_enc', 'W_dec', 'b_pre'] as const)
      sameBits(back.params[p], ema[p], `exported ${p}`);
  } finally {
    trainer.destroy();
    for (const t of others) t.destroy();
  }
});
