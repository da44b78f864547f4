// The threshold family in micro-batches (src/sae/plan.ts microBatch): a batch of B = 16 rows split into
// micro-batches of 5 (16 = 5 + 5 + 5 + 1) against the single-batch step on the same state and batches,
// and against the float64 reference; the evaluation forward's x̂ and codes; and a split the plan
// chooses itself under a small binding cap.
import { computeStats } from '../../src/data/stats';
import { syntheticSource } from '../../src/data/synthetic';
import { newRefState, type Params } from '../../src/reference/state';
import { refStep } from '../../src/reference/step';
import { type Activation, resolveConfig, type SaeConfig } from '../../src/sae/config';
import { GpuSae } from '../../src/sae/step';
import { type ParamsF32, paramNames } from '../../src/sae/step-buffers';
import { DEFAULT_KERNELS, type KernelChoice } from '../../src/sae/step-host';
import { Trainer } from '../../src/sae/trainer';
import { assert, gpuTest, randn, relErr } from './harness';
import { randomParams } from './step.gpu';

const toF64 = (p: ParamsF32): Params => {
  const o = {} as Params;
  for (const [k, v] of Object.entries(p)) if (v) o[k as keyof Params] = Float64Array.from(v);
  return o;
};

interface Case {
  activation: Activation;
  over: Partial<SaeConfig>;
  extra?: (N: number) => Float32Array;
}

const CASES: Case[] = [
  { activation: 'relu', over: { l1Coef: 0.5 } },
  { activation: 'prolu', over: { l1Coef: 0.5 } },
  {
    activation: 'gated',
    over: { l1Coef: 0.5 },
    extra: (n) => {
      const e = new Float32Array(2 * n);
      e.set(randn(n, 21, 0.3));
      e.set(randn(n, 22, 0.1), n);
      return e;
    },
  },
  {
    activation: 'jumprelu',
    over: { l1Coef: 0.05, jumpBandwidth: 0.4 },
    extra: (n) => {
      const e = new Float32Array(2 * n);
      const t = randn(n, 23, 0.5);
      for (let i = 0; i < n; i++) e[i] = Math.log(0.3) + t[i];
      return e;
    },
  },
];

const GRADS = {
  W_enc: 'dW_enc',
  b_enc: 'db_enc',
  W_dec: 'dW_dec',
  b_pre: 'db_pre',
  extra: 'dextra',
} as const;
const METRIC_KEYS = ['loss', 'auxLoss', 'rawSe', 'l0', 'deadCount', 'auxDenom', 'gradNorm', 'extra'] as const;

const bitEqual = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
};

/**
 * Runs `steps` steps of `one` (whole batch) and `many` (micro-batches) on the same batches and
 * compares them (and, with `ref`, the micro-batched one against the float64 reference); then one
 * evaluation forward. Returns the largest relative difference of gradients, parameters, moments
 * and metrics.
 */
async function compare(
  one: GpuSae,
  many: GpuSae,
  steps: number,
  ref: ReturnType<typeof newRefState> | null,
  what: string,
): Promise<number> {
  const { batchSize: B, d } = one.cfg;
  const cfg = one.cfg;
  const names = paramNames(cfg);
  let worst = 0;
  const close = (a: ArrayLike<number>, b: ArrayLike<number>, label: string, tol = 1e-5) => {
    const e = relErr(a, b);
    worst = Math.max(worst, e);
    assert(e < tol, `${what}: ${label}: relative difference ${e.toExponential(2)} ≥ ${tol}`);
  };
  for (let t = 1; t <= steps; t++) {
    const x = randn(B * d, 40 + t);
    const rowScale = new Float32Array(B).map((_, b) => 1 + b / B);
    const lossScale = 1 / (B * 1.3);
    for (const s of [one, many]) {
      s.writeBatch(x, rowScale);
      s.step(t, cfg.lr, lossScale);
    }
    const at = (s: string) => `step ${t} ${s}`;
    // The forward is row-wise: from the same parameters (step 1), x̂, ê and the loss are the
    // single-batch step's bit for bit; later the parameters differ by the sums' rounding.
    for (const buf of ['xHat', 'eHat'] as const) {
      const [a, b] = [await many.readF32(buf, B * d), await one.readF32(buf, B * d)];
      if (t === 1) assert(bitEqual(a, b), `${what}: ${at(buf)} differs`);
      else close(a, b, at(buf));
    }
    const [m1] = await one.readMetrics(t - 1, t);
    const [mm] = await many.readMetrics(t - 1, t);
    for (const k of ['loss', 'auxLoss', 'rawSe', 'l0', 'deadCount', 'auxDenom'] as const)
      if (t === 1 || k === 'l0' || k === 'deadCount')
        assert(Object.is(mm[k], m1[k]), `${what}: ${at(`metric ${k}`)} ${mm[k]} ≠ ${m1[k]}`);
    for (const k of METRIC_KEYS) close([mm[k]], [m1[k]], at(`metric ${k}`));
    for (const p of names) {
      const n = (await one.readF32(GRADS[p])).length;
      close(await many.readF32(GRADS[p], n), await one.readF32(GRADS[p], n), at(`grad ${p}`));
    }
    const [s1, sm] = [await one.readState(), await many.readState()];
    for (const p of names) {
      close(sm.params[p]!, s1.params[p]!, at(`param ${p}`));
      close(sm.m[p]!, s1.m[p]!, at(`Adam m ${p}`));
      close(sm.v[p]!, s1.v[p]!, at(`Adam v ${p}`));
    }
    assert(bitEqual(sm.tokensSince, s1.tokensSince), `${what}: ${at('tokensSince')} differs`);
    assert(bitEqual(sm.firesTotal, s1.firesTotal), `${what}: ${at('firesTotal')} differs`);
    if (ref) {
      const out = refStep(ref, x, rowScale, cfg, lossScale, cfg.lr);
      const r = [out.loss, out.auxLoss, out.rawSe, out.l0, out.deadList.length, out.gradNorm, out.extra];
      const g = [mm.loss, mm.auxLoss, mm.rawSe, mm.l0, mm.deadCount, mm.gradNorm, mm.extra];
      for (let i = 0; i < r.length; i++)
        assert(
          Math.abs(g[i] - r[i]) <= 1e-7 + 2e-5 * Math.abs(r[i]),
          `${what}: ${at('metric vs float64')} [${i}] ${g[i]} vs ${r[i]}`,
        );
      for (const p of names) {
        const e = relErr(sm.params[p]!, ref.params[p]!);
        assert(e < 1e-4, `${what}: ${at(`param ${p} vs float64`)}: relative error ${e.toExponential(2)}`);
      }
    }
  }
  // Evaluation forward (same parameters): x̂ and the codes [B, codesK] land in the micro-batches' rows.
  const x = randn(B * d, 77);
  const K = one.codesK;
  many.writeParams(await one.readParams());
  for (const s of [one, many]) {
    s.writeBatch(x, new Float32Array(B).fill(1));
    s.forward();
  }
  assert(bitEqual(await many.readF32('xHat', B * d), await one.readF32('xHat', B * d)), `${what}: forward x̂`);
  assert(
    bitEqual(await many.readU32('idxAll', B * K), await one.readU32('idxAll', B * K)),
    `${what}: codes idx`,
  );
  const val = await one.readF32('valAll', B * K);
  assert(bitEqual(await many.readF32('valAll', B * K), val), `${what}: codes val`);
  assert(
    val.subarray((B - 1) * K).some((v) => v > 0),
    `${what}: no codes in the last row (the test would not see a missing micro-batch)`,
  );
  return worst;
}

const B = 16;
const d = 12;
const N = 40;
const STEPS = 2;

for (const cs of CASES) {
  gpuTest(
    `micro-batches: ${cs.activation}, B=${B} as 5+5+5+1 vs the whole batch and float64 (d=${d} N=${N}, ${STEPS} steps)`,
    async (device) => {
      const cfg = resolveConfig({
        d,
        nLatents: N,
        batchSize: B,
        deadTokens: 40,
        lr: 1e-2,
        l1WarmupFrac: 0,
        activation: cs.activation,
        ...cs.over,
      });
      const p32 = randomParams(N, d, 31);
      for (let o = 0; o < N * d; o++) p32.W_dec[o] *= 0.5 + (Math.floor(o / d) % 7) / 6;
      if (cs.extra) p32.extra = cs.extra(N);
      // a third of the latents near dead: the dead count and the fire counts are exercised
      const tokensSince = new Uint32Array(N).map((_, i) => (i % 3 === 0 ? 40 : 0));
      const one = new GpuSae(device, cfg, DEFAULT_KERNELS);
      const many = new GpuSae(device, cfg, DEFAULT_KERNELS, { microBatch: 5 });
      assert(one.plan.microBatch === B, `whole batch planned as ${one.plan.microBatch}`);
      assert(
        many.plan.microBatches.map((m) => m.n).join('+') === '5+5+5+1',
        `micro-batches ${many.plan.microBatches.map((m) => m.n).join('+')}`,
      );
      for (const s of [one, many]) s.setState({ params: p32, tokensSince });
      const ref = newRefState(toF64(p32), N, false);
      ref.tokensSince.set(tokensSince);
      const worst = await compare(one, many, STEPS, ref, cs.activation);
      console.log(
        `    ${cs.activation}: largest relative difference to the whole batch ${worst.toExponential(2)}`,
      );
      one.destroy();
      many.destroy();
    },
  );
}

gpuTest(
  'micro-batches the plan chooses under a small binding cap: jumprelu, B=16 as 10+6 (d=8 N=1024)',
  async (device) => {
    // [B, N] = 64 KiB over a 40 KiB cap; [N, d] = 32 KiB and the codes [B, 512] fit: b = 10
    const base = {
      d: 8,
      nLatents: 1024,
      batchSize: 16,
      lr: 1e-2,
      l1WarmupFrac: 0,
      activation: 'jumprelu' as const,
      l1Coef: 0.05,
      jumpBandwidth: 0.4,
    };
    const one = new GpuSae(device, resolveConfig(base), DEFAULT_KERNELS);
    const many = new GpuSae(device, resolveConfig({ ...base, maxBindingMiB: 40 / 1024 }), DEFAULT_KERNELS);
    assert(
      many.plan.microBatches.map((m) => m.n).join('+') === '10+6',
      `planned ${many.plan.microBatches.map((m) => m.n).join('+')}`,
    );
    const p32 = randomParams(1024, 8, 5);
    const extra = new Float32Array(2048);
    const t = randn(1024, 6, 0.3);
    for (let i = 0; i < 1024; i++) extra[i] = Math.log(0.2) + t[i];
    p32.extra = extra;
    for (const s of [one, many]) s.setState({ params: p32 });
    const worst = await compare(one, many, 2, null, 'jumprelu planned');
    console.log(`    jumprelu planned 10+6: largest relative difference ${worst.toExponential(2)}`);
    one.destroy();
    many.destroy();
  },
);

gpuTest(
  'micro-batches through the Trainer: gated under a binding cap trains as the whole batch does (held-out eval)',
  async (device) => {
    // [B, N] = 64·1024·4 = 256 KiB over a 160 KiB cap: b = 40, micro-batches 40 + 24; the held-out
    // evaluation runs GpuSae.forward() (x̂ and codes) in micro-batches too.
    const source = syntheticSource({
      d: 16,
      nFeatures: 48,
      rows: 8192,
      seed: 3,
      expectedActive: 3,
      noiseStd: 0.01,
    });
    const stats = await computeStats(source);
    const kernels: KernelChoice = { encode: 'blocked4x4', topk: 'insert', topkTile: 2048 };
    const base: Partial<SaeConfig> = {
      activation: 'gated',
      l1Coef: 0.3,
      nLatents: 1024,
      batchSize: 64,
      tokens: 20 * 64,
      lr: 3e-3,
      seed: 1,
      evalFrac: 0.05,
    };
    const results = [];
    for (const over of [{}, { maxBindingMiB: 160 / 1024 }]) {
      const trainer = new Trainer(
        device,
        source,
        stats,
        { ...base, ...over },
        {},
        { kernels, evalMaxRows: 256 },
      );
      results.push({
        planned: trainer.sae.plan.microBatches.map((m) => m.n).join('+'),
        res: await trainer.run(),
      });
      trainer.destroy();
    }
    const [one, many] = results;
    assert(one.planned === '64' && many.planned === '40+24', `planned ${one.planned} and ${many.planned}`);
    for (const k of ['nmse', 'l0'] as const) {
      const [a, b] = [many.res.final[k], one.res.final[k]];
      assert(Number.isFinite(a) && Math.abs(a - b) <= 1e-4 * Math.abs(b), `final ${k}: ${a} vs ${b}`);
    }
    const [a, b] = [many.res.curve.at(-1)!, one.res.curve.at(-1)!];
    assert(Math.abs(a.l0 - b.l0) <= 1e-4 * b.l0, `last training L0 ${a.l0} vs ${b.l0}`);
    console.log(
      `    gated: held-out nMSE ${a.nmse} / ${b.nmse}, L0 ${many.res.final.l0} / ${one.res.final.l0}`,
    );
  },
);
