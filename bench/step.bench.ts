import { Rng } from '../src/data/rng';
import { createEncode } from '../src/gpu/kernels/encode';
import { profileDispatches, timeGpu } from '../src/gpu/timing';
import { encodeRef } from '../src/reference/encode';
import { autotune, pickEncoderCopy } from '../src/sae/autotune';
import { type Activation, isDense, resolveConfig, type SaeConfig } from '../src/sae/config';
import { initParams } from '../src/sae/init';
import { GpuSae } from '../src/sae/step';
import { DEFAULT_KERNELS, type KernelChoice } from '../src/sae/step-host';

export interface StepShape {
  B: number;
  d: number;
  N: number;
  k: number;
  kAux: number;
}

/**
 * Whole step and each phase alone at one shape, plus the naive encoder in the same run, so the ratios
 * step_ms / encode_ms and encode_gflops / naive_encode_gflops are measured under the same load.
 * AuxK active (the default, issue #19's measure): a latent is dead once it has not fired for one token
 * (deadTokens 1), so every latent that no row of the last batch picked is dead and AuxK does its work
 * over them. `auxIdle`: the paper's 10M tokens instead (§2.4), so no latent is dead and AuxK does not
 * run, as in a healthy run. `tune`: the autotuner picks the kernels at this shape first (what a
 * training run on this adapter gets), and its timings are reported.
 */
export async function benchStep(
  device: GPUDevice,
  s: StepShape,
  samples: number,
  kernels?: Partial<KernelChoice>,
  tune = false,
  auxIdle = false,
) {
  const deadTokens = auxIdle ? 10_000_000 : 1;
  const cfg = resolveConfig({ d: s.d, nLatents: s.N, k: s.k, kAux: s.kAux, batchSize: s.B, deadTokens });
  const rng = new Rng(1);
  const sample = new Float32Array(256 * s.d).map(() => rng.normal());
  const sae = new GpuSae(device, cfg, { ...DEFAULT_KERNELS, ...kernels });
  const tokensSince = new Uint32Array(s.N);
  for (let i = 0; i < s.N; i += 2) tokensSince[i] = 10;
  sae.setState({ params: initParams({ ...cfg, k: Math.min(cfg.k, 8) }, sample, rng), tokensSince });
  const x = new Float32Array(s.B * s.d).map(() => rng.normal());
  sae.writeBatch(x, new Float32Array(s.B).fill(1));
  // A fresh cache key: nothing stored earlier is reused.
  const tuned = tune ? await autotune(sae, `bench-step-${Date.now()}`) : undefined;
  // As a training run gets it on a software adapter: the fastest of the encoder's compiled copies
  // (the autotuner above does the same).
  const copies: Record<string, number> = {};
  if (!tune) await pickEncoderCopy(sae, sae.kernels, 2, copies);
  sae.step(1, cfg.lr, 1 / s.B);
  await device.queue.onSubmittedWorkDone();
  let t = 1;
  const step = await timeGpu(device, (enc) => sae.encodeStep(enc, ++t, cfg.lr, 1 / s.B), {
    warmup: 1,
    samples,
  });
  // One compute pass of `record` alone, timed.
  const timePass = (record: (pass: GPUComputePassEncoder) => void, warmup: number, n: number) =>
    timeGpu(
      device,
      (enc) => {
        const pass = enc.beginComputePass();
        record(pass);
        pass.end();
      },
      { warmup, samples: n },
    );
  const phases: Record<string, number> = {};
  for (const ph of sae.phases) phases[ph.name] = (await timePass(ph.record, 1, samples)).medianMs;
  // Each phase above is one submission of its own; a pass of one no-op workgroup prices that (about
  // 2 ms on SwiftShader, most of it waking the workers), which the whole step pays once.
  // phases_net_ms subtracts it (at least 0).
  const noop = device.createComputePipeline({
    layout: 'auto',
    compute: {
      module: device.createShaderModule({ code: '@compute @workgroup_size(1) fn main() {}' }),
      entryPoint: 'main',
    },
  });
  const emptyPass = (
    await timePass(
      (pass) => {
        pass.setPipeline(noop);
        pass.dispatchWorkgroups(1);
      },
      1,
      samples,
    )
  ).medianMs;
  const phasesNet = Object.fromEntries(
    Object.entries(phases).map(([name, ms]) => [name, Math.max(0, ms - emptyPass)]),
  );
  // The ratio step / encoder from back-to-back pairs (a step, then the encoder alone), the median
  // over pairs: on shared cores the load drifts between the step's samples and the phases', and a
  // ratio of medians taken a minute apart moved by ±30% from run to run. The encoder is the matmul
  // alone: where the step's encoder also writes chunk maxima ('chunkmax'), the same variant without
  // them (so that work counts as the step's, not the matmul's).
  const encodePhase = sae.phases.find((p) => p.name === 'encode');
  if (!encodePhase) throw new Error('step bench: no encode phase');
  const encodeBind = {
    x: sae.b.x,
    b_pre: sae.b.b_pre,
    W_enc: sae.segments('W_enc')[0],
    b_enc: sae.b.b_enc,
    pre: sae.b.pre,
  };
  const plain = sae.chunkMaxima ? createEncode(device, { B: s.B, d: s.d, N: s.N }, sae.kernels.encode) : null;
  const matmul = plain ? (pass: GPUComputePassEncoder) => plain.run(pass, encodeBind) : encodePhase.record;
  // Its pipeline compiled before the pairs (seconds on SwiftShader, which would land in a step's time).
  if (plain) await timePass(matmul, 1, 1);
  const pairs: number[] = [];
  const matmulMs: number[] = [];
  for (let i = 0; i < Math.max(samples, 5); i++) {
    const st = await timeGpu(device, (enc) => sae.encodeStep(enc, ++t, cfg.lr, 1 / s.B), {
      warmup: 0,
      samples: 1,
    });
    const en = await timePass(matmul, 0, 1);
    matmulMs.push(en.medianMs);
    pairs.push(st.medianMs / en.medianMs);
  }
  // Every dispatch timed inside one pass (where the adapter has in-pass timestamps): a step, the step
  // again (the one reported), then the matmul alone. What each phase costs where the step runs it,
  // without the per-submission cost that phases_ms carries; step and matmul under the same load (timed
  // in two passes seconds apart, the matmul moved ±10% against the step's own encoder between runs,
  // either way); and each encoder right after a step's update, as in training (the first step is
  // there so that the reported one's encoder follows an update too, not the matmul: an encoder after
  // an encoder over the same W_enc ran up to 10% faster).
  const profiled = await profileDispatches(
    device,
    (pass, setGroup) => {
      for (const round of [WARM_GROUP, '']) {
        for (const ph of sae.phases) {
          setGroup(`${round}${ph.name}`);
          ph.record(pass);
        }
      }
      setGroup(MATMUL_GROUP);
      matmul(pass);
    },
    samples,
  );
  const inPass =
    profiled?.filter((x) => !x.label.startsWith(`${MATMUL_GROUP}:`) && !x.label.startsWith(WARM_GROUP)) ??
    null;
  const matmulInPass = profiled?.filter((x) => x.label.startsWith(`${MATMUL_GROUP}:`)) ?? null;
  plain?.destroy();
  pairs.sort((a, b) => a - b);
  matmulMs.sort((a, b) => a - b);
  const pairRatio = pairs[Math.floor(pairs.length / 2)];
  const naive = createEncode(device, { B: s.B, d: s.d, N: s.N }, 'naive');
  const naiveT = await timePass((pass) => naive.run(pass, encodeBind), 1, samples);
  naive.destroy();
  const deadCount = (await sae.readU32('deadInfo', 1))[0];
  const gvPass = sae.phases.some((p) => p.name === 'gv');
  // The entries of the last step with a positive value: only those are listed for the gradient sums
  // (sort-by-latent.wgsl latent_of), and AuxK's decode stops at a row's first 0.
  const val = await sae.readF32('valAll', s.B * (s.k + s.kAux));
  let mainLive = 0;
  let auxLive = 0;
  for (let e = 0; e < val.length; e++) {
    if (!(val[e] > 0)) continue;
    if (e < s.B * s.k) mainLive++;
    else auxLive++;
  }
  sae.destroy();
  const loads = await gatherRate(device, s, samples, emptyPass);
  // The rows the sparse phases cannot avoid reading, d floats each: the decoder's k W_dec rows per
  // batch row and AuxK's positive entries' rows; per listed entry (a positive value) its g (or g_aux)
  // and x rows for the two gradient sums, and its W_dec row for gv where gv has a pass of its own
  // (otherwise the sums read each latent's W_dec row once). Not AuxK's a = min(kAux, dead) slots a row:
  // a dead latent's pre-activation is often ≤ 0 (d = 768, 74 dead: 47% of the slots positive).
  const a = Math.min(s.kAux, deadCount);
  const entries = mainLive + auxLive;
  const sparseFloats = s.d * (s.B * s.k + auxLive + (gvPass ? 3 : 2) * entries + (gvPass ? 0 : s.N));
  const sparseLoadsMs = (sparseFloats * loads.ns_per_float) / 1e6;
  // The paper's Adam is dense: per parameter of W_enc and W_dec it reads θ, its gradient, m and v and
  // writes θ, m and v, 7 floats, at the same per-float rate (a lower bound: writes cost at least reads).
  const adamFloats = 7 * 2 * s.N * s.d;
  const adamMs = (adamFloats * loads.ns_per_float) / 1e6;
  const matmulMedian = matmulMs[Math.floor(matmulMs.length / 2)];
  const inPassProfile = inPass && matmulInPass ? inPassReport(inPass, matmulInPass) : null;
  const flops = 2 * s.B * s.d * s.N;
  return {
    name: 'step',
    shape: s,
    /** 1: AuxK over every latent the last batch left unfired (issue #19's measure); 10M: the paper's */
    dead_tokens: deadTokens,
    kernels: sae.kernels,
    ...(tuned ? { autotune_ms: tuned.timings } : {}),
    dead_latents: deadCount,
    /** the encode phase of each compiled copy of the encoder, fastest of 2 rounds (software adapters) */
    encoder_copies_ms: tuned
      ? Object.fromEntries(Object.entries(tuned.timings).filter(([k]) => k.startsWith('encode-copy')))
      : copies,
    step_ms: step.medianMs,
    phases_ms: phases,
    /** a pass of one no-op workgroup, submitted and waited for: the share of each phases_ms entry that is not its work */
    empty_pass_ms: emptyPass,
    phases_net_ms: phasesNet,
    encode_ms: phases.encode,
    /** the encoder's matmul alone in the pairs below (median): the encode phase less any chunk maxima */
    matmul_ms: matmulMedian,
    /**
     * What the sparse phases' row reads alone cost at this adapter's rate for indexed loads
     * (gatherRate): a lower bound on the step beside its matmul for this formulation, and the ratio
     * it implies, (matmul + those loads) / matmul.
     */
    sparse_loads: {
      ...loads,
      /** entries with a positive value (listed for the gradient sums): main, AuxK; AuxK's bound B·min(kAux, dead) */
      entries_listed: { main: mainLive, aux: auxLive, aux_bound: s.B * a },
      floats: sparseFloats,
      ms: sparseLoadsMs,
      ratio_floor: (matmulMedian + sparseLoadsMs) / matmulMedian,
      /** Adam's floats over W_enc and W_dec (7 per parameter) at the same rate */
      adam_floats: adamFloats,
      adam_ms: adamMs,
      /** the floor with Adam's reads and writes: the step cannot go below it on this adapter */
      ratio_floor_with_adam: (matmulMedian + sparseLoadsMs + adamMs) / matmulMedian,
    },
    ...(inPassProfile ? { in_pass: inPassProfile } : {}),
    naive_encode_ms: naiveT.medianMs,
    encode_gflops: flops / (phases.encode * 1e6),
    naive_encode_gflops: flops / (naiveT.medianMs * 1e6),
    /**
     * Issue #19's measure: in_pass.ratio_overhead_over_faster_encoder where the adapter times inside
     * passes, else the pairs' median (ratio_step_over_encode_from says which)
     */
    ratio_step_over_encode: inPassProfile?.ratio_overhead_over_faster_encoder ?? pairRatio,
    ratio_step_over_encode_from: inPassProfile ? 'in_pass' : 'pairs',
    /**
     * median over back-to-back (step, matmul alone) pairs, each in a submission of its own: the
     * matmul alone swings ±15% between runs against the step's own encoder, so this moves most
     */
    ratio_step_over_encode_pairs_median: pairRatio,
    ratio_step_over_encode_pairs: pairs,
    /** the ratio of the two medians above (taken apart in time; noisier) */
    ratio_step_over_encode_medians: step.medianMs / phases.encode,
    ratio_encode_over_naive_gflops: naiveT.medianMs / phases.encode,
    tokens_per_s: (s.B / step.medianMs) * 1000,
  };
}

/**
 * The whole step of each activation variant at one shape, in one run, as a ratio to the TopK step:
 * the price of the dense path (ReLU, ProLU, Gated, JumpReLU hold [B, N] activations and their gradient,
 * and W_dec·g is a full B·N·d matmul) against sparse-through-indices (TopK, BatchTopK, Multi-TopK).
 * The dense kernels skip zero activations, so they are timed twice: at initialization (about half of
 * the latents active) and with encoder biases lowered until about 2k latents per row are active,
 * the regime of a trained model. TopK runs first and last; the ratios divide by their mean.
 */
export async function benchVariants(
  device: GPUDevice,
  s: StepShape,
  samples: number,
  kernels?: Partial<KernelChoice>,
) {
  const runs: { activation: string; regime: string; step_ms: number; l0: number }[] = [];
  const variants: [Activation, Partial<SaeConfig>][] = [
    ['topk', {}],
    ['topk', { multiTopK: true }],
    ['batchtopk', {}],
    ['relu', {}],
    ['prolu', {}],
    ['gated', {}],
    ['jumprelu', {}],
    // TopK again: the spread between the two TopK runs is the noise floor of the ratios.
    ['topk', {}],
  ];
  for (const [activation, over] of variants) {
    for (const regime of isDense(activation) ? ['init', 'sparse'] : ['sparse']) {
      const cfg = resolveConfig({
        d: s.d,
        nLatents: s.N,
        k: s.k,
        kAux: s.kAux,
        batchSize: s.B,
        deadTokens: 1_000_000,
        activation,
        l1WarmupFrac: 0,
        ...over,
      });
      const rng = new Rng(1);
      const sample = new Float32Array(256 * s.d).map(() => rng.normal());
      const sae = new GpuSae(device, cfg, { ...DEFAULT_KERNELS, ...kernels });
      const params = initParams(cfg, sample, rng);
      if (regime === 'sparse' && isDense(activation)) {
        // Lower every bias to the (1 − 2k/N) quantile of the pre-activations of a sample.
        const pre = encodeRef(
          sample.subarray(0, 64 * s.d),
          params.b_pre,
          params.W_enc,
          params.b_enc,
          64,
          s.d,
          s.N,
        );
        const sorted = Float64Array.from(pre).sort();
        const q = sorted[Math.floor(sorted.length * (1 - (2 * s.k) / s.N))];
        for (let i = 0; i < s.N; i++) params.b_enc[i] -= q;
      }
      sae.setState({ params });
      const x = new Float32Array(s.B * s.d).map(() => rng.normal());
      sae.writeBatch(x, new Float32Array(s.B).fill(1));
      sae.step(1, cfg.lr * 1e-6, 1 / s.B);
      let t = 1;
      const r = await timeGpu(device, (enc) => sae.encodeStep(enc, ++t, cfg.lr * 1e-6, 1 / s.B), {
        warmup: 1,
        samples,
      });
      const [m] = await sae.readMetrics(t - 1, t);
      runs.push({
        activation: activation + (over.multiTopK ? '+multi' : ''),
        regime,
        step_ms: r.medianMs,
        l0: m.l0,
      });
      sae.destroy();
    }
  }
  const base = (runs[0].step_ms + runs[runs.length - 1].step_ms) / 2;
  return {
    name: 'variants',
    shape: s,
    runs: runs.map((r) => ({ ...r, ratio_to_topk: r.step_ms / base })),
  };
}

/**
 * ns per float of an indexed row read in the gradient sums' pattern (grad-reg.wgsl): four invocations
 * walk one list of random batch rows, each reading its vec4 column groups of the row. One accumulator
 * each, so nothing spills: the rate of the loads alone. REPEAT passes over B·k entries of d floats
 * from an [B, d] buffer in one submission, less `emptyPass` (the submission's own cost).
 * SwiftShader, d = 768, the same 25M floats (a test of ours, alternately ×3): one accumulator 19–24 ms;
 * 48 named vec4 sums (grad-reg.wgsl's form, spilled) 33–41; the list walked once per 8, 4 or 2 of
 * them 29–32, 31–33, 33–38: the sums, not the loads, are most of the gradient kernels' time there.
 */
async function gatherRate(device: GPUDevice, s: StepShape, samples: number, emptyPass: number) {
  const REPEAT = 8;
  const LIST = 32;
  const d4 = Math.ceil(s.d / 4);
  const lists = Math.ceil((s.B * s.k) / LIST);
  const code = `
@group(0) @binding(0) var<storage, read> rows: array<u32>;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let t = g.x;
  if (t >= ${4 * lists}u) { return; }
  let q = t % 4u;
  var a = vec4<f32>(0.0);
  for (var u = 0u; u < ${LIST}u; u++) {
    let o = rows[(t / 4u) * ${LIST}u + u] * ${d4}u;
    for (var c = q; c < ${d4}u; c += 4u) { a += x4[o + c]; }
  }
  out[t] = a;
}`;
  const rng = new Rng(3);
  const rowsData = new Uint32Array(lists * LIST).map(() => rng.nextInt(s.B));
  const mk = (label: string, bytes: number) =>
    device.createBuffer({ label, size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const rowsBuf = mk('gather-rows', rowsData.byteLength);
  device.queue.writeBuffer(rowsBuf, 0, rowsData);
  const x = mk('gather-x', s.B * d4 * 16);
  const out = mk('gather-out', 4 * lists * 16);
  const pipeline = device.createComputePipeline({
    layout: 'auto',
    compute: { module: device.createShaderModule({ code }), entryPoint: 'main' },
  });
  const bg = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [rowsBuf, x, out].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const t = await timeGpu(
    device,
    (enc) => {
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bg);
      for (let r = 0; r < REPEAT; r++) pass.dispatchWorkgroups(Math.ceil((4 * lists) / 64));
      pass.end();
    },
    { warmup: 1, samples: Math.max(samples, 3) },
  );
  for (const b of [rowsBuf, x, out]) b.destroy();
  const floats = REPEAT * lists * LIST * d4 * 4;
  const ms = Math.max(0, t.medianMs - emptyPass);
  return { gather_ms: ms, gather_floats: floats, ns_per_float: (ms * 1e6) / floats };
}

/** The profile groups of the matmul timed after the step in its pass, and of the step before it. */
const MATMUL_GROUP = 'matmul-alone';
const WARM_GROUP = 'before:';

/**
 * The in-pass profile as the step bench reports it: each dispatch (phase:pipeline, ms), the phases'
 * sums, their total (the step inside its pass) and that over the matmul alone timed the same way.
 */
function inPassReport(step: { label: string; ms: number }[], matmul: { label: string; ms: number }[]) {
  const phases: Record<string, number> = {};
  for (const { label, ms } of step) {
    const phase = label.slice(0, label.indexOf(':'));
    phases[phase] = (phases[phase] ?? 0) + ms;
  }
  const total = step.reduce((a, d) => a + d.ms, 0);
  const matmulMs = matmul.reduce((a, d) => a + d.ms, 0);
  const faster = Math.min(matmulMs, phases.encode ?? Number.POSITIVE_INFINITY);
  return {
    dispatches: step.map(({ label, ms }) => ({ label, ms: Math.round(ms * 1000) / 1000 })),
    phases_ms: phases,
    step_ms: total,
    matmul_ms: matmulMs,
    /** the step over its matmul, timed after it in the same pass: the pairs' measure without submissions */
    ratio_step_over_matmul: total / matmulMs,
    /** the step over its own encode phase (with chunk maxima where 'chunkmax' writes them): a check */
    ratio_step_over_encode_phase: total / (phases.encode ?? Number.NaN),
    /**
     * the step over the faster of the two encoders in its pass: the conservative figure, since on
     * SwiftShader the matmul alone has measured up to 30% slower than the step's own encoder, which
     * does the same product and more
     */
    ratio_step_over_faster_encoder: total / faster,
    /**
     * Issue #19's measure: 1 + (the step less its encoder) / the faster of the two encoders. What lies
     * beyond the matmul over the best the matmul did in this pass. The step over the faster encoder
     * counts the step's encoder twice when it is the slower one: in one pass the same two encoders,
     * alternated four times, ran 857–868 vs 750–778 ms in one run and within 2% of each other in the
     * next (d = 768, SwiftShader, 2026-12-03), a difference of pipelines, not of what the step adds.
     */
    ratio_overhead_over_faster_encoder: 1 + (total - (phases.encode ?? Number.NaN)) / faster,
  };
}
