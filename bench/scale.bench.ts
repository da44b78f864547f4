import { Rng } from '../src/data/rng';
import { ENCODE_TOPK_VARIANT_NAMES } from '../src/gpu/kernel-variants';
import { timeGpu } from '../src/gpu/timing';
import { autotune } from '../src/sae/autotune';
import { type ResolvedConfig, resolveConfig } from '../src/sae/config';
import { initParams } from '../src/sae/init';
import { type BufferPlan, bufferPlan, type PlanLimits } from '../src/sae/plan';
import { GpuSae } from '../src/sae/step';
import { DEFAULT_KERNELS, type KernelChoice } from '../src/sae/step-host';

/**
 * Scale benchmark: the whole step at N = 2^12 … 2^maxLog2N for d = 64, B = 1024, k = 32 (kAux default),
 * with the bytes the step holds, its buffer plan (tiles, shards) and log–log fits of step time and bytes
 * against N. Memory must not carry a B·N term past the first tile: `largest_buffer` and `bn_buffers` say
 * whether any buffer holds a whole [B, N].
 */

export interface ScaleOptions {
  d?: number;
  B?: number;
  k?: number;
  minLog2N?: number;
  maxLog2N?: number;
  samples?: number;
  /** Largest log2 N of the kernel-choice comparison (both choices are timed at each N up to it). */
  compareMaxLog2N?: number;
  /** Largest log2 N of the plan-only sweep (buffers from bufferPlan, nothing allocated or timed). */
  planMaxLog2N?: number;
  /** Variant of the fused encode + TopK in the comparison (default: the chosen encoder's own form). */
  fusedVariant?: string;
  /** Kernel choice of the sweep over N (default: autotuned at the smallest N); the comparison's choices add to it. */
  kernels?: Partial<KernelChoice>;
  log?: (line: string) => void;
}

/**
 * HOOK — kernel choices compared at N = 2^12 … 2^compareMaxLog2N, each as a ratio to the first. Where the
 * engine has the fused encode + TopK (KernelChoice.fused: a variant or null; the plan then reports a
 * positive fusedChunkMin) it compares unfused (fused: null) with fused (`fusedVariant`, default
 * blocked4x4: the same arithmetic as the default encoder); otherwise it holds only the default choice
 * and the comparison says nothing was compared. Add entries here to compare other choices.
 */
export function kernelChoicesToCompare(
  plan: BufferPlan,
  fusedVariant = 'blocked4x4',
): { name: string; kernels: Partial<KernelChoice> }[] {
  const fusedChunkMin = (plan as unknown as { fusedChunkMin?: unknown }).fusedChunkMin;
  if (typeof fusedChunkMin === 'number' && fusedChunkMin > 0)
    return [
      { name: 'unfused', kernels: { fused: null } as unknown as Partial<KernelChoice> },
      { name: `fused ${fusedVariant}`, kernels: { fused: fusedVariant } as unknown as Partial<KernelChoice> },
    ];
  return [{ name: 'default', kernels: {} }];
}

/** Least-squares slope and intercept of log y on log x (natural logs; the slope is the exponent). */
export function logLogFit(
  xs: number[],
  ys: number[],
): { exponent: number; r2: number; points: number } | null {
  const pts = xs.map((x, i) => [Math.log(x), Math.log(ys[i])]).filter(([a, b]) => Number.isFinite(a + b));
  const n = pts.length;
  if (n < 2) return null;
  const mx = pts.reduce((s, p) => s + p[0], 0) / n;
  const my = pts.reduce((s, p) => s + p[1], 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (const [a, b] of pts) {
    sxx += (a - mx) ** 2;
    sxy += (a - mx) * (b - my);
    syy += (b - my) ** 2;
  }
  if (sxx === 0) return null;
  const exponent = sxy / sxx;
  const r2 = syy === 0 ? 1 : (sxy * sxy) / (sxx * syy);
  return { exponent, r2, points: n };
}

interface PlanRow {
  plan_bytes: number;
  tiles: number;
  shards: number;
  tile_latents: number;
  largest: { key: string; bytes: number; shape: string };
  /** Buffers holding at least B·N floats at this N (a whole [B, N]). */
  bn_buffers: { key: string; bytes: number; shape: string }[];
}

interface Measured extends PlanRow {
  step_ms: number;
  samples_ms: number[];
  bytes_allocated: number;
}

/** What a plan says about scale: totals, tiles, shards, the largest buffer and any whole-[B, N] buffer. */
function planRow(plan: BufferPlan, B: number, N: number): PlanRow {
  const largest = plan.buffers.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  return {
    plan_bytes: plan.totalBytes,
    tiles: plan.tiles.length,
    shards: plan.shards.length,
    tile_latents: plan.tileLatents,
    largest: { key: largest.key, bytes: largest.bytes, shape: largest.shape },
    bn_buffers: plan.buffers
      .filter((b) => b.bytes >= 4 * B * N)
      .map((b) => ({ key: b.key, bytes: b.bytes, shape: b.shape })),
  };
}

const scaleConfig = (s: { B: number; d: number; N: number; k: number }): ResolvedConfig =>
  resolveConfig({ d: s.d, nLatents: s.N, k: s.k, batchSize: s.B });

async function measure(
  device: GPUDevice,
  s: { B: number; d: number; N: number; k: number },
  samples: number,
  kernels: Partial<KernelChoice>,
): Promise<Measured> {
  const cfg = scaleConfig(s);
  const rng = new Rng(1);
  const sample = new Float32Array(256 * s.d).map(() => rng.normal());
  const sae = new GpuSae(device, cfg, { ...DEFAULT_KERNELS, ...kernels });
  try {
    sae.setState({ params: initParams(cfg, sample, rng) });
    const x = new Float32Array(s.B * s.d).map(() => rng.normal());
    sae.writeBatch(x, new Float32Array(s.B).fill(1));
    await device.queue.onSubmittedWorkDone();
    let t = 0;
    const r = await timeGpu(device, (enc) => sae.encodeStep(enc, ++t, cfg.lr, 1 / s.B), {
      warmup: 1,
      samples,
    });
    return {
      step_ms: r.medianMs,
      samples_ms: r.samplesMs,
      bytes_allocated: sae.bytes,
      ...planRow(sae.plan, s.B, s.N),
    };
  } finally {
    sae.destroy();
  }
}

/** The autotuner's unfused choice at one shape (a fresh cache key, so nothing stored is reused). */
async function tunedAt(
  device: GPUDevice,
  s: { B: number; d: number; N: number; k: number },
): Promise<KernelChoice> {
  const cfg = scaleConfig(s);
  const rng = new Rng(1);
  const sae = new GpuSae(device, cfg, DEFAULT_KERNELS);
  try {
    sae.setState({
      params: initParams(
        cfg,
        new Float32Array(256 * s.d).map(() => rng.normal()),
        rng,
      ),
    });
    sae.writeBatch(
      new Float32Array(s.B * s.d).map(() => rng.normal()),
      new Float32Array(s.B).fill(1),
    );
    const report = await autotune(sae, `scale-bench-${Date.now()}`);
    return { ...report.choice, fused: null };
  } finally {
    sae.destroy();
  }
}

export async function benchScale(device: GPUDevice, o: ScaleOptions = {}) {
  const { d = 64, B = 1024, k = 32, minLog2N = 12, maxLog2N = 20, samples = 1 } = o;
  const { compareMaxLog2N = 16, planMaxLog2N = Math.max(22, maxLog2N) } = o;
  const log = o.log ?? ((l: string) => console.log(l));
  // The kernels a run would get: the autotuner's choice at the smallest N (unless given), unfused;
  // the fused form of the same encoder is the comparison's second choice.
  const given = o.kernels && Object.keys(o.kernels).length > 0;
  const base = given
    ? { ...DEFAULT_KERNELS, ...o.kernels }
    : await tunedAt(device, { B, d, N: 2 ** minLog2N, k });
  const fusedVariant =
    o.fusedVariant ??
    ((ENCODE_TOPK_VARIANT_NAMES as readonly string[]).includes(base.encode) ? base.encode : 'blocked4x4');
  const limits = device.limits as unknown as PlanLimits;
  const choices = kernelChoicesToCompare(
    bufferPlan(scaleConfig({ B, d, N: 2 ** minLog2N, k }), limits),
    fusedVariant,
  );
  const runs: (Measured & { N: number; log2N: number; tokens_per_s: number })[] = [];
  const compare: { N: number; choice: string; step_ms: number; ratio_to_first: number }[] = [];
  for (let e = minLog2N; e <= maxLog2N; e++) {
    const N = 2 ** e;
    const shape = { B, d, N, k };
    const t0 = performance.now();
    const m = await measure(device, shape, samples, base);
    runs.push({ N, log2N: e, ...m, tokens_per_s: (B / m.step_ms) * 1000 });
    log(
      `[scale] N=2^${e}: step ${m.step_ms.toFixed(0)} ms, ${((B / m.step_ms) * 1000).toFixed(0)} tok/s, ` +
        `${(m.bytes_allocated / 2 ** 20).toFixed(1)} MiB, tiles ${m.tiles}, shards ${m.shards}, ` +
        `largest ${m.largest.key} ${(m.largest.bytes / 2 ** 20).toFixed(1)} MiB (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
    );
    if (choices.length > 1 && e <= compareMaxLog2N) {
      // Each choice again at this N, back to back, so the ratio is measured under the same load.
      const times: number[] = [];
      for (const c of choices)
        times.push((await measure(device, shape, samples, { ...base, ...c.kernels })).step_ms);
      choices.forEach((c, i) => {
        compare.push({ N, choice: c.name, step_ms: times[i], ratio_to_first: times[i] / times[0] });
      });
      log(
        `[scale] N=2^${e} compare: ${choices.map((c, i) => `${c.name} ${times[i].toFixed(0)} ms`).join(', ')}`,
      );
    }
  }
  const Ns = runs.map((r) => r.N);
  const upper = runs.slice(Math.floor(runs.length / 2));
  const fitN = (rs: typeof runs, key: 'step_ms' | 'bytes_allocated') =>
    logLogFit(
      rs.map((r) => r.N),
      rs.map((r) => r[key]),
    );
  const largest = runs.reduce<(typeof runs)[number] | null>(
    (a, r) => (!a || r.largest.bytes > a.largest.bytes ? r : a),
    null,
  );
  // The plan alone (nothing allocated) over the whole range, also past the N that were timed.
  const plans: (PlanRow & { N: number; problems: string[] })[] = [];
  for (let e = minLog2N; e <= planMaxLog2N; e++) {
    const plan = bufferPlan(scaleConfig({ B, d, N: 2 ** e, k }), limits);
    plans.push({ N: 2 ** e, ...planRow(plan, B, 2 ** e), problems: plan.problems });
  }
  // A buffer "proportional to B·N" holds a whole [B, N] at every planned N; the pre-activation tile
  // does so only while one tile covers all N (it stops growing at the tile budget).
  const keysAt = plans.map((r) => new Set(r.bn_buffers.map((b) => b.key)));
  const alwaysBN = keysAt.length ? [...keysAt[0]].filter((key) => keysAt.every((s) => s.has(key))) : [];
  const lastPlan = plans[plans.length - 1];
  const firstTiled = plans.find((p) => p.tiles > 1);
  const planUpper = plans.slice(Math.floor(plans.length / 2));
  const fitPlan = (rs: typeof plans) =>
    logLogFit(
      rs.map((r) => r.N),
      rs.map((r) => r.plan_bytes),
    );
  return {
    name: 'scale',
    shape: { B, d, k, kAux: resolveConfig({ d, nLatents: 2 ** minLog2N, k, batchSize: B }).kAux },
    kernels: base,
    samples,
    N: Ns,
    runs,
    fits: {
      step_ms_vs_N: fitN(runs, 'step_ms'),
      bytes_vs_N: fitN(runs, 'bytes_allocated'),
      upper_half_N: upper.map((r) => r.N),
      step_ms_vs_N_upper: fitN(upper, 'step_ms'),
      bytes_vs_N_upper: fitN(upper, 'bytes_allocated'),
    },
    largest_buffer: largest ? { N: largest.N, ...largest.largest } : null,
    plans,
    plan_fits: {
      bytes_vs_N: fitPlan(plans),
      upper_half_N: planUpper.map((r) => r.N),
      bytes_vs_N_upper: fitPlan(planUpper),
    },
    bn: {
      any_buffer_proportional_to_BN: alwaysBN.length > 0,
      proportional_to_BN: alwaysBN,
      whole_BN_at_largest_planned_N: lastPlan ? lastPlan.bn_buffers.map((b) => b.key) : [],
      largest_buffer_at_largest_planned_N: lastPlan ? { N: lastPlan.N, ...lastPlan.largest } : null,
      tiled_from_N: firstTiled ? firstTiled.N : null,
      note: `bn_buffers lists buffers ≥ 4·B·N bytes at that N (the [B, n] tile while one tile covers N); over the plans at N = 2^${minLog2N}…2^${planMaxLog2N}`,
    },
    compare: {
      choices: choices.map((c) => ({ name: c.name, kernels: c.kernels })),
      compared: choices.length > 1,
      note:
        choices.length > 1
          ? `each choice timed back to back at N = 2^${minLog2N}…2^${Math.min(compareMaxLog2N, maxLog2N)}; ratio to ${choices[0].name}`
          : 'no fused encode + TopK in this engine (plan has no fusedChunkMin > 0): only the default choice was timed (hook: kernelChoicesToCompare in bench/scale.bench.ts)',
      runs: compare,
    },
  };
}
