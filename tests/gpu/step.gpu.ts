import { SORT_SHORT } from '../../src/gpu/kernel-variants';
import type { EncodeVariant } from '../../src/gpu/kernels/encode';
import { setGpuForms, setQuadForms } from '../../src/gpu/kernels/kernel';
import type { TopKVariant } from '../../src/gpu/kernels/topk';
import { setFusedRowUpdate } from '../../src/gpu/kernels/update-fused';
import { newRefState, PARAM_NAMES, type Params } from '../../src/reference/state';
import { NONE, refStep } from '../../src/reference/step';
import { resolveConfig } from '../../src/sae/config';
import { GpuSae } from '../../src/sae/step';
import type { ParamsF32 } from '../../src/sae/step-buffers';
import { DEFAULT_KERNELS } from '../../src/sae/step-host';
import { assert, assertClose, gpuTest, randn, relErr } from './harness';

/** Random unit decoder rows, an encoder near them, small biases: a state where TopK gaps are clear. */
export function randomParams(N: number, d: number, seed: number): ParamsF32 {
  const W_dec = randn(N * d, seed);
  for (let i = 0; i < N; i++) {
    let n = 0;
    for (let c = 0; c < d; c++) n += W_dec[i * d + c] ** 2;
    for (let c = 0; c < d; c++) W_dec[i * d + c] /= Math.sqrt(n);
  }
  const noise = randn(N * d, seed + 1, 0.1);
  const W_enc = W_dec.map((w, o) => 0.8 * w + noise[o]);
  return { W_enc, b_enc: randn(N, seed + 2, 0.05), W_dec, b_pre: randn(d, seed + 3, 0.1) };
}

/**
 * Tolerance of the update θ₁ − θ₀, element by element, GPU against the float64 reference:
 * |Δgpu − Δref| ≤ UPDATE_RTOL·|Δref| + UPDATE_ATOL·max|Δref| + 4 float32 ulps of |θ₁|.
 * The parameters themselves are a poor measure of the update: with |θ| ≈ 1 and lr = 1e-2, a 1e-4
 * norm-wise error of θ₁ allows a 1% error of the step. UPDATE_ATOL (relative to the tensor's largest
 * update) covers second-step elements where Adam's m nearly cancels (g₁, g₂ of opposite signs), so a
 * float32 gradient error is a large fraction of a tiny step; the ulps cover θ₁'s float32 storage
 * (and W_dec's float32 renormalization). A 0.25% error of the update must fail: every call also
 * checks that the reference's update scaled by 1.0025 is rejected (2.5× UPDATE_RTOL).
 * Observed on SwiftShader (this file and variants.gpu.ts, two Adam steps): worst relative error
 * 4.5e-5 over elements with |Δ| ≥ max|Δ|/10, worst |error| 2.3e-5·max|Δ| over all elements. Its floor,
 * 6.9e-6 on every element of the first step, is adam.wgsl's `1.0 - P.beta2` in float32:
 * f32(0.999) = 0.99900001287, so v is 1.29e-5 low against bc2 (float64) and the step 6.4e-6 large.
 */
export const UPDATE_RTOL = 1e-3;
export const UPDATE_ATOL = 1e-4;

/**
 * Asserts the update tolerance above (Δgpu = after − before, the GPU's own θ₀ as stored; Δref =
 * refAfter − refBefore) and that a 0.25% error would break it; throws naming the worst element.
 * Returns, for the log, the worst |Δgpu − Δref| / |Δref| over elements with |Δref| ≥ max|Δref| / 10
 * (`rel`) and the worst |Δgpu − Δref| / max|Δref| over all (`abs`).
 */
export function assertUpdate(
  before: ArrayLike<number>,
  after: ArrayLike<number>,
  refBefore: ArrayLike<number>,
  refAfter: ArrayLike<number>,
  what: string,
): { rel: number; abs: number } {
  let max = 0;
  for (let o = 0; o < after.length; o++) max = Math.max(max, Math.abs(refAfter[o] - refBefore[o]));
  const check = (scale: number) => {
    let n = 0;
    let worst = -1;
    let worstX = 0;
    for (let o = 0; o < after.length; o++) {
      const dr = (refAfter[o] - refBefore[o]) * scale;
      const err = Math.abs(after[o] - before[o] - dr);
      const tol = UPDATE_RTOL * Math.abs(dr) + UPDATE_ATOL * max + 4 * Math.abs(after[o]) * 2 ** -23;
      if (!(err <= tol)) {
        n++;
        if (worst < 0 || err / tol > worstX) [worst, worstX] = [o, err / tol];
      }
    }
    return { n, worst };
  };
  const ok = check(1);
  if (ok.n > 0) {
    const o = ok.worst;
    throw new Error(
      `${what}: ${ok.n}/${after.length} elements of θ₁ − θ₀ out of tolerance; worst [${o}] gpu ${after[o] - before[o]} ref ${refAfter[o] - refBefore[o]}`,
    );
  }
  if (max > 0 && check(1.0025).n === 0) throw new Error(`${what}: a 0.25% error of the update would pass`);
  let rel = 0;
  let abs = 0;
  for (let o = 0; o < after.length; o++) {
    const dr = refAfter[o] - refBefore[o];
    const err = Math.abs(after[o] - before[o] - dr);
    if (Math.abs(dr) >= max / 10) rel = Math.max(rel, err / Math.abs(dr));
    if (max > 0) abs = Math.max(abs, err / max);
  }
  return { rel, abs };
}

export const toF64 = (p: ParamsF32): Params => ({
  W_enc: Float64Array.from(p.W_enc),
  b_enc: Float64Array.from(p.b_enc),
  W_dec: Float64Array.from(p.W_dec),
  b_pre: Float64Array.from(p.b_pre),
});

interface Case {
  name: string;
  /** The case must end with 0 < dead latents < kAux. */
  fewDead?: boolean;
  /** Latents 0 … hot−1 get a large encoder bias, so they are selected by every row. */
  hot?: number;
  /** Relative tolerance of the metrics (default 2e-5): AuxK's normalizer se − |Σe|²/B cancels in float32 at large B. */
  metricsRtol?: number;
  B: number;
  d: number;
  N: number;
  k: number;
  kAux: number;
  dead: boolean;
  clip?: boolean;
  ema?: boolean;
  project?: boolean;
  topk?: TopKVariant;
  encode?: EncodeVariant;
  /** Force the GPU forms (split long-list sums, per-latent workgroups; kernel.ts setGpuForms) on or off. */
  splitLong?: boolean;
  /** How the AuxK TopK must rank the dead latents: by counting, over more than 64 of them in topk_rank
   * ('one': neither indirect entry dispatched) or in topk_rank_many ('count': its indirect workgroup
   * count deadInfo[4], which compact_dead writes, non-zero), or by the bitonic networks alone (theirs,
   * deadInfo[1]). */
  auxRanked?: 'one' | 'count' | 'bitonic';
  /** With auxRanked 'count': more dead latents than this (default 64), so the walk meant is the one run. */
  deadOver?: number;
}

const CASES: Case[] = [
  { name: 'no dead latents', B: 16, d: 12, N: 40, k: 4, kAux: 6, dead: false },
  {
    name: 'dead latents, AuxK active, clip + EMA',
    B: 16,
    d: 12,
    N: 40,
    k: 4,
    kAux: 6,
    dead: true,
    clip: true,
    ema: true,
  },
  // AuxK lists hold min(kAux, dead) entries, then padding: the decode stops at the padding.
  { name: 'fewer dead latents than kAux', B: 16, d: 12, N: 24, k: 4, kAux: 12, dead: true, fewDead: true },
  // Lists ≤ 32 (one thread orders them) and > 64 (a workgroup's bitmap): `hot` latents fire on every row.
  {
    name: 'long per-latent lists',
    B: 256,
    d: 8,
    N: 64,
    k: 4,
    kAux: 8,
    dead: true,
    hot: 3,
    metricsRtol: 1e-4,
  },
  // The same lists through the split long-list sums (16 partitions and a fixed tree per latent).
  {
    name: 'long per-latent lists, GPU forms (split sums, per-latent workgroups)',
    B: 256,
    d: 8,
    N: 64,
    k: 4,
    kAux: 8,
    dead: true,
    hot: 3,
    metricsRtol: 1e-4,
    splitLong: true,
  },
  // Three column slabs of 16 vec4, the last one partly past d; hot and dead latents' lists are long.
  {
    name: 'long lists, wide rows (d = 136), GPU forms',
    B: 96,
    d: 136,
    N: 64,
    k: 4,
    kAux: 6,
    dead: true,
    hot: 2,
    splitLong: true,
  },
  // More dead latents than topk_rank ranks (512 on software, 256 in the GPU forms): the AuxK bitonic TopK runs through the
  // indirect dispatch compact_dead writes (with fewer, topk_rank alone).
  {
    name: 'more dead latents than topk_rank takes',
    B: 16,
    d: 8,
    N: 600,
    k: 4,
    kAux: 8,
    dead: true,
    auxRanked: 'bitonic',
  },
  {
    name: 'more dead latents than topk_rank takes, GPU forms',
    B: 16,
    d: 8,
    N: 400,
    k: 4,
    kAux: 8,
    dead: true,
    splitLong: true,
    auxRanked: 'bitonic',
  },
  // 64 < dead ≤ 128 (at most 32 of N latents fire): topk_rank ranks them by counting, two candidates a
  // lane one after the other; 128 < dead ≤ 512: topk_rank_many, several a lane in its walk for 2, 4 or 8.
  {
    name: 'dead latents ranked one at a time, two to a lane',
    B: 8,
    d: 8,
    N: 120,
    k: 4,
    kAux: 8,
    dead: true,
    auxRanked: 'one',
  },
  {
    name: 'dead latents ranked two to a lane',
    B: 8,
    d: 8,
    N: 180,
    k: 4,
    kAux: 8,
    dead: true,
    auxRanked: 'count',
    deadOver: 128,
  },
  {
    name: 'dead latents ranked four to a lane',
    B: 8,
    d: 8,
    N: 250,
    k: 4,
    kAux: 8,
    dead: true,
    auxRanked: 'count',
    deadOver: 192,
  },
  {
    name: 'dead latents ranked eight to a lane',
    B: 8,
    d: 8,
    N: 500,
    k: 4,
    kAux: 8,
    dead: true,
    auxRanked: 'count',
    deadOver: 448,
  },
  { name: 'odd shapes, no projection', B: 7, d: 5, N: 19, k: 3, kAux: 2, dead: true, project: false },
  // d = 136: the vec4 gradient sums hold three column groups per thread, the last one partly past d.
  { name: 'wide rows (d = 136), AuxK active', B: 16, d: 136, N: 40, k: 4, kAux: 6, dead: true },
  {
    name: 'insert TopK variant, dead latents',
    B: 16,
    d: 12,
    N: 40,
    k: 4,
    kAux: 6,
    dead: true,
    topk: 'insert',
  },
  {
    name: 'chunked TopK variant, dead latents',
    B: 16,
    d: 12,
    N: 200,
    k: 4,
    kAux: 6,
    dead: true,
    topk: 'chunked',
  },
  {
    // The unrolled encoder writes chunk maxima [B, ⌈N/8⌉] (a ragged last chunk) that the TopK ranks.
    name: 'chunkmax TopK on the unrolled encoder, dead latents',
    B: 16,
    d: 12,
    N: 204,
    k: 4,
    kAux: 6,
    dead: true,
    topk: 'chunkmax',
    encode: 'unroll4x8',
  },
];

for (const cs of CASES) {
  gpuTest(
    `step vs float64 reference: ${cs.name} (B=${cs.B} d=${cs.d} N=${cs.N} k=${cs.k} kAux=${cs.kAux})`,
    async (device) => {
      const cfg = resolveConfig({
        d: cs.d,
        nLatents: cs.N,
        k: cs.k,
        kAux: cs.kAux,
        batchSize: cs.B,
        deadTokens: 100,
        clipGrad: cs.clip ?? false,
        clipNorm: 0.05,
        ema: cs.ema ?? false,
        gradProjection: cs.project ?? true,
        lr: 1e-2,
      });
      const p32 = randomParams(cs.N, cs.d, 11);
      for (let i = 0; i < (cs.hot ?? 0); i++) p32.b_enc[i] = 10;
      const x = randn(cs.B * cs.d, 5);
      const rowScale = new Float32Array(cs.B).map((_, b) => 1 + b / cs.B);
      const tokensSince = new Uint32Array(cs.N).fill(cs.dead ? 100 : 0);
      const lossScale = 1 / (cs.B * 1.3);
      if (cs.splitLong !== undefined) setGpuForms(device, cs.splitLong);
      const sae = new GpuSae(device, cfg, {
        ...DEFAULT_KERNELS,
        topk: cs.topk ?? 'bitonic',
        encode: cs.encode ?? DEFAULT_KERNELS.encode,
      });
      setGpuForms(device, null);
      sae.setState({ params: p32, tokensSince });
      sae.writeBatch(x, rowScale);
      sae.step(1, cfg.lr, lossScale);

      const ref0 = toF64(p32);
      const ref = newRefState(toF64(p32), cs.N, cfg.ema);
      ref.tokensSince.set(tokensSince);
      const out = refStep(ref, x, rowScale, cfg, lossScale, cfg.lr);

      const E = cs.B * (cs.k + cs.kAux);
      assertClose(await sae.readF32('pre', cs.B * cs.N), out.pre, 1e-5, 1e-5, 'pre');
      const idx = await sae.readU32('idxAll', E);
      const val = await sae.readF32('valAll', E);
      const main = cs.B * cs.k;
      for (let e = 0; e < main; e++)
        if (idx[e] !== out.topIdx[e]) throw new Error(`top idx[${e}] ${idx[e]} != ${out.topIdx[e]}`);
      for (let e = 0; e < cs.B * cs.kAux; e++) {
        if (idx[main + e] !== out.auxIdx[e])
          throw new Error(`aux idx[${e}] ${idx[main + e]} != ${out.auxIdx[e]}`);
      }
      // The CSC lists: per latent, its entries with a positive value (an entry of value 0 adds nothing
      // to any sum) ordered by (row, main before aux) — the deterministic order.
      const start = await sae.readU32('start', cs.N + 1);
      const rows = await sae.readU32('rows', E);
      const keyOf = (e: number) =>
        e < main ? 2 * Math.floor(e / cs.k) : 2 * Math.floor((e - main) / cs.kAux) + 1;
      const lengths = new Set<string>();
      for (let i = 0; i < cs.N; i++) {
        const want: number[] = [];
        for (let e = 0; e < E; e++) if (idx[e] === i && val[e] > 0) want.push(e);
        want.sort((a, b) => keyOf(a) - keyOf(b));
        const got = Array.from(rows.subarray(start[i], start[i + 1]));
        if (got.join() !== want.join()) throw new Error(`CSC list of latent ${i}: [${got}] != [${want}]`);
        lengths.add(want.length <= 32 ? 'short' : want.length <= 64 ? 'mid' : 'long');
      }
      // The sort's row-block form (software adapters) leaves its counts all zero for the next step.
      if (sae.plan.sortBlocks && !cs.splitLong) {
        const blocks = await sae.readU32('sortBlocks', sae.plan.sortBlocks * cs.N);
        assert(
          blocks.some((_, j) => j > 0) && blocks.every((c) => c === 0),
          'sortBlocks not all zero after the step',
        );
      }
      if (cs.hot)
        assert(
          lengths.has('short') && lengths.has('long'),
          `case meant to have short and long lists has only ${[...lengths]} (${Array.from({ length: cs.N }, (_, i) => start[i + 1] - start[i])})`,
        );
      assertClose(val.subarray(0, main), out.topVal, 1e-5, 1e-5, 'top val');
      assertClose(val.subarray(main), out.auxVal, 1e-5, 1e-5, 'aux val');
      assertClose(await sae.readF32('xHat', cs.B * cs.d), out.xHat, 1e-5, 1e-5, 'x_hat');
      assertClose(await sae.readF32('eHat', cs.B * cs.d), out.eHat, 1e-5, 1e-5, 'e_hat');
      const deadInfo = await sae.readU32('deadInfo', 5);
      assert(deadInfo[0] === out.deadList.length, `dead count ${deadInfo[0]} != ${out.deadList.length}`);
      if (cs.auxRanked === 'bitonic')
        assert(
          deadInfo[1] > 0 && deadInfo[4] === 0,
          `${deadInfo[0]} dead: the bitonic AuxK alone did not run`,
        );
      if (cs.auxRanked === 'one')
        assert(
          deadInfo[1] === 0 && deadInfo[4] === 0 && deadInfo[0] > 64,
          `${deadInfo[0]} dead, groups ${deadInfo[1]} bitonic and ${deadInfo[4]} many: not topk_rank alone over more than 64`,
        );
      if (cs.auxRanked === 'count')
        assert(
          deadInfo[1] === 0 && deadInfo[4] > 0 && deadInfo[0] > (cs.deadOver ?? 64),
          `${deadInfo[0]} dead, groups ${deadInfo[1]} bitonic and ${deadInfo[4]} many: not ranked by counting over more than ${cs.deadOver ?? 64}`,
        );
      if (cs.dead)
        assert(out.deadList.length > 0 && out.auxLoss > 0, 'case meant to exercise AuxK has no AuxK loss');
      else assert(out.auxLoss === 0, 'AuxK loss without dead latents');
      if (cs.fewDead)
        assert(
          out.deadList.length < cs.kAux,
          `${out.deadList.length} dead latents, not fewer than kAux ${cs.kAux}`,
        );
      const [m] = await sae.readMetrics(0, 1);
      assertClose(
        [m.loss, m.auxLoss, m.rawSe, m.l0, m.deadCount, m.gradNorm],
        [out.loss, out.auxLoss, out.rawSe, out.l0, out.deadList.length, out.gradNorm],
        1e-7,
        cs.metricsRtol ?? 2e-5,
        'metrics',
      );
      // Gradients (decoder already projected), then parameters after Adam + renorm: norm-wise relative error < 1e-4.
      const grads = { W_enc: 'dW_enc', b_enc: 'db_enc', W_dec: 'dW_dec', b_pre: 'db_pre' } as const;
      for (const p of PARAM_NAMES) {
        const got = await sae.readF32(grads[p], out.grads[p].length);
        const err = relErr(got, out.grads[p]);
        assert(err < 1e-4, `grad ${p}: relative error ${err.toExponential(2)} ≥ 1e-4`);
      }
      const after = await sae.readParams();
      const worst: string[] = [];
      for (const p of PARAM_NAMES) {
        const err = relErr(after[p], ref.params[p]);
        assert(err < 1e-4, `param ${p} after update: relative error ${err.toExponential(2)} ≥ 1e-4`);
        const e = assertUpdate(p32[p], after[p], ref0[p], ref.params[p], `update ${p}`);
        worst.push(`${p} ${e.rel.toExponential(1)}/${e.abs.toExponential(1)}`);
      }
      console.log(`    θ₁ − θ₀ worst error, relative (|Δ| ≥ max/10) / of max|Δ|: ${worst.join(', ')}`);
      if (cfg.ema && ref.ema) {
        const ema = await sae.readParams('ema');
        for (const p of PARAM_NAMES) assert(relErr(ema[p], ref.ema[p]) < 1e-4, `ema ${p}`);
      }
      const ts = await sae.readU32('tokensSince', cs.N);
      for (let i = 0; i < cs.N; i++)
        assert(ts[i] === ref.tokensSince[i], `tokensSince[${i}] ${ts[i]} != ${ref.tokensSince[i]}`);
      assert(
        idx.every((i) => i === NONE || i < cs.N),
        'index out of range',
      );
      sae.destroy();
    },
  );
}

// The loss's column sums (colR) and db_pre's final sums take a workgroup per column with a tree on a
// GPU and a thread per column replaying the same tree on a software adapter; the loss's finalize a
// workgroup of 256 lanes on a GPU and one thread replaying its tree on software; its rows and
// gradients vec4 loads on software (d = 12), as do db_pre's final sums (bpre_final_seq4); the gradient
// norm's reduction (clip_reduce) one thread on software: their bits must agree.
// Every latent's list is short, so everything they read is the same in both forms.
gpuTest(
  'column sums, loss rows, finalize, loss gradients: software forms equal GPU forms bit for bit',
  async (device) => {
    const B = 203;
    const d = 12;
    const N = 256;
    const cfg = resolveConfig({ d, nLatents: N, k: 2, kAux: 4, batchSize: B, deadTokens: 100, lr: 1e-2 });
    const p32 = randomParams(N, d, 17);
    const x = randn(B * d, 9);
    const rowScale = new Float32Array(B).fill(1);
    const run = async (gpu: boolean) => {
      setGpuForms(device, gpu);
      const sae = new GpuSae(device, cfg, DEFAULT_KERNELS);
      setGpuForms(device, null);
      // Half the latents dead (AuxK's lists stay short: 4 of 128 per row).
      sae.setState({ params: p32, tokensSince: new Uint32Array(N).map((_, i) => (i % 2 ? 0 : 1000)) });
      sae.writeBatch(x, rowScale);
      sae.step(1, cfg.lr, 1 / B);
      const start = await sae.readU32('start', N + 1);
      let longest = 0;
      for (let i = 0; i < N; i++) longest = Math.max(longest, start[i + 1] - start[i]);
      const out = {
        colR: await sae.readF32('colR', d),
        db_pre: await sae.readF32('db_pre', d),
        // finalize's scalars and metrics slot, the gradient norm and clip factor (clip_reduce: 256
        // lanes and a tree on a GPU, one thread replaying them on software), and the loss gradients
        // (the software forms read vec4)
        scal: await sae.readF32('scal', 4),
        rowStats: await sae.readF32('rowStats', B * 4),
        metrics: (await sae.readMetrics(1, 2))[0],
        g: await sae.readF32('g', B * d),
        gAux: await sae.readF32('gAux', B * d),
        longest,
      };
      sae.destroy();
      return out;
    };
    const soft = await run(false);
    const gpu = await run(true);
    assert(soft.longest <= 32, `a list of ${soft.longest} entries: the gradient sums' forms would differ`);
    for (const name of ['colR', 'db_pre', 'scal', 'rowStats', 'g', 'gAux'] as const)
      for (let c = 0; c < soft[name].length; c++)
        assert(
          Object.is(soft[name][c], gpu[name][c]),
          `${name}[${c}]: ${soft[name][c]} (software form) != ${gpu[name][c]} (GPU form)`,
        );
    assert(
      soft.gAux.some((v) => v !== 0),
      'g_aux all zero: AuxK did not run',
    );
    for (const [key, v] of Object.entries(soft.metrics))
      assert(
        Object.is(v, gpu.metrics[key as keyof typeof gpu.metrics]),
        `metrics.${key}: ${v} (software form) != ${gpu.metrics[key as keyof typeof gpu.metrics]} (GPU form)`,
      );
  },
);

// Software forms against GPU forms, bit for bit (the same additions in the same order): the sparse
// decode (a workgroup per row striding over columns on a GPU; on software 4 lanes per row that walk its
// list once, decode.wgsl decode_lanes), gv (a thread per entry; on software in the gradient sums' walk
// at d = 136 and 120), the gradient sums (arrays of column sums per thread; named sums, grad-reg.wgsl) and
// Adam with the EMA (vec4 on software where the count allows: W_enc at d = 136). So x̂, the AuxK
// reconstruction ê, gv, the gradients and W_enc with its moments and EMA after the step must agree.
// d = 136: vec4, the decode in passes (decode_lanes_pass), a ragged last column group of the gradient sums; d = 120: vec4,
// the named decode, ragged; d = 776: 8 threads a latent in the sums, so gv in 8 parts, ragged; d = 13:
// scalar. k = 5 and kAux = 7 leave short groups
// of entries; a third of the latents dead; every list short, so the GPU forms do not split one.
// Where the device has quads of lanes, software runs twice: the two walks (gv's parts through gvPart)
// and the one walk (grad-both.wgsl: gv added across the quad, AuxK's rows from g's copy of g_aux),
// which forms no gvAll (it stays 0 there: that it ran is asserted) and gives every other output the same bits.
gpuTest(
  'decode, gv, gradient sums and Adam: the software forms equal the GPU forms bit for bit, AuxK too',
  async (device) => {
    const quads = device.features.has('subgroups') && (device.adapterInfo?.subgroupMinSize ?? 0) >= 4;
    if (!quads) console.log('    (no quads of lanes on this device: the one-walk sums not run)');
    for (const d of [136, 120, 776, 13]) {
      const B = 31;
      const N = 90;
      // No projection: dW_dec is then the sums' output (the projection's norms have forms of their own).
      const cfg = resolveConfig({
        d,
        nLatents: N,
        k: 5,
        kAux: 7,
        batchSize: B,
        deadTokens: 100,
        lr: 1e-2,
        gradProjection: false,
        ema: true,
      });
      const p32 = randomParams(N, d, 23);
      const x = randn(B * d, 29);
      const tokensSince = new Uint32Array(N).map((_, i) => (i % 3 === 0 ? 1000 : 0));
      const run = async (gpu: boolean, quad = false) => {
        setGpuForms(device, gpu);
        setQuadForms(device, quad);
        const sae = new GpuSae(device, cfg, DEFAULT_KERNELS);
        setGpuForms(device, null);
        setQuadForms(device, null);
        sae.setState({ params: p32, tokensSince });
        sae.writeBatch(x, new Float32Array(B).fill(1));
        sae.step(1, cfg.lr, 1 / B);
        const out = {
          xHat: await sae.readF32('xHat', B * d),
          eHat: await sae.readF32('eHat', B * d),
          gvAll: await sae.readF32('gvAll', B * 12),
          dW_enc: await sae.readF32('dW_enc', N * d),
          dW_dec: await sae.readF32('dW_dec', N * d),
          db_enc: await sae.readF32('db_enc', N),
          start: await sae.readU32('start', N + 1),
          W_enc: await sae.readF32('W_enc', N * d),
          m_W_enc: await sae.readF32('m_W_enc', N * d),
          v_W_enc: await sae.readF32('v_W_enc', N * d),
          ema_W_enc: await sae.readF32('ema_W_enc', N * d),
        };
        sae.destroy();
        return out;
      };
      const soft = await run(false);
      const gpu = await run(true);
      // The one walk where gv has 4 parts (d ≤ 768, vec4 rows): d = 136 and 120 here.
      const oneWalk = d % 4 === 0 && d <= 768;
      const quad = quads ? await run(false, true) : null;
      assert(
        soft.eHat.some((v) => v !== 0),
        `d=${d}: ê is all zero (AuxK did not run)`,
      );
      assert(
        soft.gvAll.slice(B * 5).some((v) => v !== 0),
        `d=${d}: no AuxK entry has a gv`,
      );
      let longest = 0;
      for (let i = 0; i < N; i++) longest = Math.max(longest, soft.start[i + 1] - soft.start[i]);
      assert(longest <= SORT_SHORT, `d=${d}: a list of ${longest} entries: the GPU forms would split it`);
      assert(
        soft.dW_enc.some((v) => v !== 0) && soft.dW_dec.some((v) => v !== 0),
        `d=${d}: the gradients are all zero`,
      );
      const names = ['xHat', 'eHat', 'gvAll', 'dW_enc', 'dW_dec', 'db_enc'] as const;
      for (const name of [...names, 'W_enc', 'm_W_enc', 'v_W_enc', 'ema_W_enc'] as const)
        for (let e = 0; e < soft[name].length; e++)
          assert(
            Object.is(soft[name][e], gpu[name][e]),
            `d=${d} ${name}[${e}]: ${soft[name][e]} (software form) != ${gpu[name][e]} (workgroup form)`,
          );
      if (!quad) continue;
      assert(
        quad.gvAll.every((v) => v === 0) === oneWalk,
        `d=${d}: gvAll ${oneWalk ? 'written: the one walk did not run' : 'all 0: gv was not formed'}`,
      );
      for (const name of [...names, 'W_enc', 'm_W_enc', 'v_W_enc', 'ema_W_enc'] as const)
        for (let e = 0; e < quad[name].length; e++)
          assert(
            (oneWalk && name === 'gvAll') || Object.is(quad[name][e], gpu[name][e]),
            `d=${d} ${name}[${e}]: ${quad[name][e]} (software, one walk) != ${gpu[name][e]} (workgroup form)`,
          );
    }
  },
);

// The software forms of the decoder projection and the renormalization (a thread per latent row; vec4
// views where d % 4 == 0, update.wgsl project_dec_v4 / renorm_dec_v4) against a float32 replay of the
// scalar forms' operations in their order (Math.fround after each): the same bits, at d = 12 (vec4)
// and d = 7 (scalar). The phases run one at a time so the inputs of each can be read.
gpuTest(
  'decoder projection and renormalization: the software forms equal a float32 replay bit for bit',
  async (device) => {
    for (const d of [12, 7]) {
      const B = 16;
      const N = 20;
      const cfg = resolveConfig({ d, nLatents: N, k: 3, kAux: 0, batchSize: B, gradProjection: true });
      // The three kernels one at a time (update-fused.gpu.ts compares the one walk with them).
      setFusedRowUpdate(device, false);
      const sae = new GpuSae(device, cfg, DEFAULT_KERNELS);
      setFusedRowUpdate(device, null);
      sae.setState({ params: randomParams(N, d, 41) });
      sae.writeBatch(randn(B * d, 43), new Float32Array(B).fill(1));
      // A whole step first: every uniform is written, and W_dec moves off its unit-norm start.
      sae.step(1, cfg.lr, 1 / B);
      const f = Math.fround;
      const runPhases = async (names: string[]) => {
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        for (const ph of sae.phases) if (names.includes(ph.name)) ph.record(pass);
        pass.end();
        device.queue.submit([enc.finish()]);
        await device.queue.onSubmittedWorkDone();
      };
      const before = sae.phases
        .slice(
          0,
          sae.phases.findIndex((p) => p.name === 'project+norm'),
        )
        .map((p) => p.name);
      await runPhases(before);
      const W = await sae.readF32('W_dec', N * d);
      const gDec = await sae.readF32('dW_dec', N * d);
      const gEnc = await sae.readF32('dW_enc', N * d);
      const dbEnc = await sae.readF32('db_enc', N);
      await runPhases(['project+norm']);
      const gotDec = await sae.readF32('dW_dec', N * d);
      const gotPart = await sae.readF32('normPart', N);
      for (let i = 0; i < N; i++) {
        const o = i * d;
        let dot = 0;
        for (let c = 0; c < d; c++) dot = f(dot + f(gDec[o + c] * W[o + c]));
        let sq = f(dbEnc[i] * dbEnc[i]);
        for (let c = 0; c < d; c++) {
          const gd = f(gDec[o + c] - f(dot * W[o + c]));
          assert(Object.is(gotDec[o + c], gd), `d=${d} dW_dec[${i}, ${c}]: ${gotDec[o + c]} != replay ${gd}`);
          sq = f(sq + f(f(gd * gd) + f(gEnc[o + c] * gEnc[o + c])));
        }
        assert(Object.is(gotPart[i], sq), `d=${d} normPart[${i}]: ${gotPart[i]} != replay ${sq}`);
      }
      await runPhases(['adam']);
      const Wa = await sae.readF32('W_dec', N * d);
      await runPhases(['renorm']);
      const gotW = await sae.readF32('W_dec', N * d);
      sae.destroy();
      let moved = 0;
      for (let i = 0; i < N; i++) {
        const o = i * d;
        let sq = 0;
        for (let c = 0; c < d; c++) sq = f(sq + f(Wa[o + c] * Wa[o + c]));
        const inv = f(1 / Math.max(f(Math.sqrt(sq)), 1e-30));
        if (Math.abs(sq - 1) > 1e-6) moved++;
        for (let c = 0; c < d; c++) {
          const w = f(Wa[o + c] * inv);
          assert(Object.is(gotW[o + c], w), `d=${d} W_dec[${i}, ${c}]: ${gotW[o + c]} != replay ${w}`);
        }
      }
      assert(moved > 0, `d=${d}: every row already had unit norm; the renormalization was not exercised`);
    }
  },
);
