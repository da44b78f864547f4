// The activation variants (issue #7) against the float64 reference, step by step: Multi-TopK and
// BatchTopK through the sparse path, ReLU+L1, ProLU, Gated and JumpReLU through the dense path.
import { computeStats } from '../../src/data/stats';
import { syntheticSource } from '../../src/data/synthetic';
import type { TopKVariant } from '../../src/gpu/kernels/topk';
import { cloneParams, newRefState, type Params } from '../../src/reference/state';
import { NONE, refStep } from '../../src/reference/step';
import { type Activation, resolveConfig, type SaeConfig } from '../../src/sae/config';
import { denormalizeInPlace, normalizeBatch } from '../../src/sae/normalize';
import { GpuSae } from '../../src/sae/step';
import { type ParamsF32, paramNames } from '../../src/sae/step-buffers';
import { DEFAULT_KERNELS, type KernelChoice } from '../../src/sae/step-host';
import { Trainer } from '../../src/sae/trainer';
import { assert, assertClose, gpuTest, randn, relErr } from './harness';
import { assertUpdate, randomParams } from './step.gpu';

const toF64 = (p: ParamsF32): Params => {
  const o = {} as Params;
  for (const [k, v] of Object.entries(p)) if (v) o[k as keyof Params] = Float64Array.from(v);
  return o;
};

interface Case {
  name: string;
  activation: Activation;
  over?: Partial<SaeConfig>;
  /** per-latent parameters to start from (Gated, JumpReLU) */
  extra?: (N: number) => Float32Array;
  /** scale decoder rows away from unit norm (unconstrained decoders) */
  decScale?: boolean;
  dead?: boolean;
  /** width d instead of D (a width that is not a multiple of 4 takes the scalar gradient kernels) */
  d?: number;
  /** the TopK variant instead of DEFAULT_KERNELS' */
  topk?: TopKVariant;
}

const B = 16;
const D = 12;
const N = 40;
const CASES: Case[] = [
  { name: 'Multi-TopK (k=4, top-16 at 1/8)', activation: 'topk', over: { k: 4, multiTopK: true } },
  // The chunked TopK takes k + kAux per row in the Multi-TopK form (ranks ≥ k to the AuxK region).
  {
    name: 'Multi-TopK, chunked TopK (k=3, kAux=9)',
    activation: 'topk',
    over: { k: 3, kAux: 9, multiTopK: true },
    topk: 'chunked',
  },
  {
    name: 'BatchTopK (k=4, cap 16), AuxK active',
    activation: 'batchtopk',
    over: { k: 4, batchTopKCap: 16, kAux: 6 },
    dead: true,
  },
  {
    name: 'Matryoshka BatchTopK (widths 5, 15, 40; k=4, cap 16), AuxK active',
    activation: 'matryoshka',
    over: { k: 4, batchTopKCap: 16, kAux: 6, matryoshkaWidths: [5, 15, 40] },
    dead: true,
  },
  {
    name: 'Matryoshka BatchTopK, scalar kernels (d=10; widths 2, 9, 40)',
    activation: 'matryoshka',
    over: { k: 4, batchTopKCap: 16, kAux: 6, matryoshkaWidths: [2, 9, 40] },
    dead: true,
    d: 10,
  },
  { name: 'ReLU + L1 (unconstrained decoder)', activation: 'relu', over: { l1Coef: 0.5 }, decScale: true },
  { name: 'ProLU', activation: 'prolu', over: { l1Coef: 0.5 }, decScale: true },
  {
    name: 'Gated',
    activation: 'gated',
    over: { l1Coef: 0.5 },
    decScale: true,
    extra: (n) => {
      const r = randn(n, 21, 0.3);
      const bm = randn(n, 22, 0.1);
      const e = new Float32Array(2 * n);
      e.set(r);
      e.set(bm, n);
      return e;
    },
  },
  {
    name: 'JumpReLU (wide STE window)',
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

const STEPS = 2;

for (const cs of CASES) {
  const d = cs.d ?? D;
  gpuTest(
    `variant step vs float64 reference: ${cs.name} (B=${B} d=${d} N=${N}, ${STEPS} steps)`,
    async (device) => {
      const cfg = resolveConfig({
        d,
        nLatents: N,
        batchSize: B,
        deadTokens: 100,
        lr: 1e-2,
        l1WarmupFrac: 0,
        activation: cs.activation,
        ...cs.over,
      });
      const p32 = randomParams(N, d, 31);
      if (cs.decScale) for (let o = 0; o < N * d; o++) p32.W_dec[o] *= 0.5 + (Math.floor(o / d) % 7) / 6;
      if (cs.extra) p32.extra = cs.extra(N);
      const tokensSince = new Uint32Array(N).fill(cs.dead ? 100 : 0);
      const sae = new GpuSae(device, cfg, { ...DEFAULT_KERNELS, ...(cs.topk ? { topk: cs.topk } : {}) });
      sae.setState({ params: p32, tokensSince });
      const ref = newRefState(toF64(p32), N, false);
      ref.tokensSince.set(tokensSince);
      const names = paramNames(cfg);
      let gpuBefore: ParamsF32 = p32;
      const worst: string[] = [];
      for (let t = 1; t <= STEPS; t++) {
        const x = randn(B * d, 40 + t);
        const rowScale = new Float32Array(B).map((_, b) => 1 + b / B);
        const lossScale = 1 / (B * 1.3);
        sae.writeBatch(x, rowScale);
        sae.step(t, cfg.lr, lossScale);
        const refBefore = cloneParams(ref.params);
        const out = refStep(ref, x, rowScale, cfg, lossScale, cfg.lr);
        const what = (s: string) => `step ${t} ${s}`;

        assertClose(await sae.readF32('pre', B * N), out.pre, 1e-5, 1e-5, what('pre'));
        if (out.act) {
          assertClose(await sae.readF32('act', B * N), out.act, 1e-5, 1e-5, what('activations'));
        } else {
          const kr = out.topIdx.length / B;
          const idx = await sae.readU32('idxAll', B * kr + out.auxIdx.length);
          const val = await sae.readF32('valAll', B * kr + out.auxIdx.length);
          for (let e = 0; e < out.topIdx.length; e++)
            if (idx[e] !== out.topIdx[e])
              throw new Error(what(`top idx[${e}] ${idx[e]} != ${out.topIdx[e]}`));
          for (let e = 0; e < out.auxIdx.length; e++)
            if (idx[B * kr + e] !== out.auxIdx[e])
              throw new Error(what(`aux idx[${e}] ${idx[B * kr + e]} != ${out.auxIdx[e]}`));
          assertClose(val.subarray(0, B * kr), out.topVal, 1e-5, 1e-5, what('top val'));
          assertClose(val.subarray(B * kr), out.auxVal, 1e-5, 1e-5, what('aux val'));
          assert(
            idx.every((i) => i === NONE || i < N),
            'index out of range',
          );
        }
        assertClose(await sae.readF32('xHat', B * d), out.xHat, 1e-5, 1e-5, what('x_hat'));
        assertClose(await sae.readF32('eHat', B * d), out.eHat, 1e-5, 1e-5, what('e_hat'));
        const [m] = await sae.readMetrics(t - 1, t);
        assertClose(
          [m.loss, m.auxLoss, m.rawSe, m.l0, m.deadCount, m.gradNorm, m.extra],
          [out.loss, out.auxLoss, out.rawSe, out.l0, out.deadList.length, out.gradNorm, out.extra],
          1e-7,
          2e-5,
          what('metrics [loss, aux, rawSe, l0, dead, ‖g‖, extra]'),
        );
        const grads = {
          W_enc: 'dW_enc',
          b_enc: 'db_enc',
          W_dec: 'dW_dec',
          b_pre: 'db_pre',
          extra: 'dextra',
        } as const;
        for (const p of names) {
          const want = out.grads[p]!;
          const err = relErr(await sae.readF32(grads[p], want.length), want);
          assert(err < 1e-4, what(`grad ${p}: relative error ${err.toExponential(2)} ≥ 1e-4`));
        }
        const after = await sae.readParams();
        for (const p of names) {
          const err = relErr(after[p]!, ref.params[p]!);
          assert(err < 1e-4, what(`param ${p}: relative error ${err.toExponential(2)} ≥ 1e-4`));
          const e = assertUpdate(
            gpuBefore[p]!,
            after[p]!,
            refBefore[p]!,
            ref.params[p]!,
            what(`update ${p}`),
          );
          worst.push(`${t}:${p} ${e.rel.toExponential(1)}/${e.abs.toExponential(1)}`);
        }
        gpuBefore = after;
      }
      console.log(
        `    θ₁ − θ₀ worst error, relative (|Δ| ≥ max/10) / of max|Δ| (step:tensor): ${worst.join(', ')}`,
      );
      // Each case must exercise what makes the variant differ from plain TopK.
      const last = refStep(
        newRefState(toF64(await sae.readParams()), N, false),
        randn(B * d, 99),
        new Float32Array(B).fill(1),
        cfg,
        1 / B,
        cfg.lr,
      );
      if (cs.over?.multiTopK) assert(last.auxLoss > 0, 'Multi-TopK has no top-4k loss');
      if (cs.activation === 'matryoshka') {
        // Every level holds live entries, so every slice of g is read.
        const live = new Set<number>();
        for (let e = 0; e < last.topIdx.length; e++)
          if (last.topVal[e] > 0) live.add(cfg.matryoshkaWidths.findIndex((w) => last.topIdx[e] < w));
        assert(live.size === 3, `Matryoshka: live entries in levels ${[...live]} only`);
        assert(last.nestedLoss! > 0, 'Matryoshka: no inner prefix loss');
      }
      if (cs.activation === 'batchtopk' || cs.activation === 'matryoshka') {
        const rows = new Set<number>();
        let l0min = Infinity;
        let l0max = 0;
        for (let b = 0; b < B; b++) {
          let n = 0;
          for (let j = 0; j < 16; j++) if (last.topVal[b * 16 + j] > 0) n++;
          l0min = Math.min(l0min, n);
          l0max = Math.max(l0max, n);
          rows.add(n);
        }
        assert(l0max !== l0min, `BatchTopK rows all have L0 ${l0min}: no batch-level allocation exercised`);
      }
      if (cs.activation === 'gated') assert(last.auxLoss > 0, 'Gated aux loss is zero');
      if (cs.activation === 'jumprelu' || cs.activation === 'gated')
        assert(
          last.grads.extra!.some((v) => v !== 0),
          `${cs.activation}: no gradient reached the per-latent parameters`,
        );
      if (!['topk', 'batchtopk', 'matryoshka'].includes(cs.activation))
        assert(last.extra > 0, 'no sparsity penalty');
      sae.destroy();
    },
  );
}

// End to end through the Trainer (init, batches, metrics, held-out evaluation) for each variant.
const FIXED: KernelChoice = { encode: 'blocked4x4', topk: 'insert', topkTile: 2048 };
const TRAIN: [string, Partial<SaeConfig>][] = [
  ['topk', { activation: 'topk' }],
  ['multi-topk', { activation: 'topk', multiTopK: true }],
  ['batchtopk', { activation: 'batchtopk' }],
  ['matryoshka', { activation: 'matryoshka' }],
  ['relu', { activation: 'relu', l1Coef: 0.3 }],
  ['prolu', { activation: 'prolu', l1Coef: 0.3 }],
  ['gated', { activation: 'gated', l1Coef: 0.3 }],
  ['jumprelu', { activation: 'jumprelu', l1Coef: 0.05 }],
];
gpuTest(
  'every activation variant trains through the Trainer (d=16, 64 latents, 80 steps)',
  async (device) => {
    const source = syntheticSource({
      d: 16,
      nFeatures: 48,
      rows: 16384,
      seed: 3,
      expectedActive: 3,
      noiseStd: 0.01,
    });
    const stats = await computeStats(source);
    const lines: string[] = [];
    for (const [name, over] of TRAIN) {
      const cfg = {
        nLatents: 64,
        k: 4,
        batchSize: 128,
        tokens: 80 * 128,
        lr: 3e-3,
        seed: 1,
        evalFrac: 0.05,
        ...over,
      };
      const trainer = new Trainer(device, source, stats, cfg, {}, { kernels: FIXED, evalMaxRows: 2048 });
      const res = await trainer.run();
      const first = res.curve[0];
      const f = res.final;
      lines.push(
        `${name}: nMSE ${first.nmse.toFixed(3)} → ${f.nmse.toFixed(3)}, L0 ${first.l0.toFixed(1)} → ${f.l0.toFixed(1)}`,
      );
      assert(
        Number.isFinite(f.nmse) && f.nmse < 0.8 * first.nmse,
        `${name}: nMSE did not fall (${lines.at(-1)})`,
      );
      assert(f.l0 > 0 && f.l0 < 64, `${name}: held-out L0 ${f.l0}`);
      if (name.includes('topk') || name === 'matryoshka')
        assert(Math.abs(f.l0 - 4) < 1.5, `${name}: L0 ${f.l0} far from k = 4`);
      else assert(first.penalty! > 0, `${name}: no sparsity penalty reported`);
      // The L1 family gets sparser as λ warms up; JumpReLU's thresholds move slowly (Adam moves log θ by
      // about lr per step), so there the test is that the L0 penalty pushed the thresholds up.
      if (['relu', 'prolu', 'gated'].includes(name))
        assert(f.l0 < first.l0, `${name}: L0 did not fall (${lines.at(-1)})`);
      if (name === 'batchtopk' || name === 'matryoshka')
        assert(first.batchThreshold! > 0, 'no batch threshold reported');
      if (name === 'matryoshka') lines.push(await checkPrefixNmse(trainer, stats.mean, f.prefixNmse));
      if (over.activation === 'gated' || over.activation === 'jumprelu') {
        const st = await trainer.sae.readState();
        assert(
          st.params.extra !== undefined && st.m.extra!.some((v) => v !== 0),
          `${name}: extra not trained`,
        );
        if (name === 'jumprelu') {
          const t0 = Math.log(trainer.cfg.jumpInitThreshold);
          const risen = st.params.extra!.subarray(0, 64).filter((t) => t > t0 + 0.05).length;
          lines.push(`jumprelu: ${risen}/64 thresholds rose by > 5%`);
          assert(risen > 32, `jumprelu: only ${risen}/64 thresholds rose under the L0 penalty`);
        }
      }
      trainer.destroy();
    }
    console.log(lines.join('\n'));
  },
);

/**
 * Matryoshka's held-out prefix nMSE against its definition: each inner prefix's reconstruction
 * recomputed in float64 from the forward's codes (b_pre + Σ over latents < m of val·W_dec, normalized
 * space, then mapped back as the trainer maps x̂), compared with the forward's xInner, and
 * Σ‖x̂_m − x‖² / Σ‖x − μ‖² with the reported prefixNmse.
 */
async function checkPrefixNmse(trainer: Trainer, mean: ArrayLike<number>, got: number[] | undefined) {
  const { d, matryoshkaWidths: widths } = trainer.cfg;
  const L = widths.length - 1;
  assert(got?.length === L, `matryoshka: prefixNmse ${JSON.stringify(got)} for widths ${widths}`);
  const p = await trainer.sae.readParams();
  const se = new Float64Array(L);
  let den = 0;
  let worst = 0;
  for await (const b of trainer.evalBatches()) {
    const n = b.codes.rows;
    const rowScale = new Float32Array(n);
    const rowShift = new Float32Array(n);
    normalizeBatch(trainer.norm, b.x, d, new Float32Array(n * d), rowScale, rowShift);
    for (let h = 0; h < L; h++) {
      const want = new Float32Array(n * d);
      for (let r = 0; r < n; r++) {
        const acc = Float64Array.from(p.b_pre);
        for (let j = 0; j < b.codes.k; j++) {
          const i = b.codes.idx[r * b.codes.k + j];
          const v = b.codes.val[r * b.codes.k + j];
          if (i === NONE || i >= widths[h] || v === 0) continue;
          for (let c = 0; c < d; c++) acc[c] += v * p.W_dec[i * d + c];
        }
        want.set(acc, r * d);
      }
      denormalizeInPlace(want, d, rowScale, rowShift);
      const have = b.xInner!.subarray(h * n * d, (h + 1) * n * d);
      worst = Math.max(worst, relErr(have, want));
      for (let o = 0; o < n * d; o++) se[h] += (have[o] - b.x[o]) ** 2;
    }
    for (let o = 0; o < n * d; o++) den += (b.x[o] - mean[o % d]) ** 2;
  }
  assert(worst < 1e-5, `matryoshka: xInner vs codes, relative error ${worst.toExponential(2)} ≥ 1e-5`);
  const want = Array.from(se, (v) => v / den);
  assertClose(got!, want, 1e-9, 1e-9, 'matryoshka: prefixNmse');
  // Wider prefixes reconstruct better here (each level holds live latents after training).
  for (let h = 1; h < L; h++) assert(want[h] < want[h - 1], `matryoshka: prefix nMSE ${want} not falling`);
  return `matryoshka: prefix nMSE ${want.map((v) => v.toFixed(3)).join(', ')} (m = ${widths.slice(0, -1)})`;
}
