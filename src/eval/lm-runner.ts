/**
 * Downstream loss and ablation sparsity over any forward pass: the CPU {@link Llama}
 * (src/lm/forward.ts) or the WGSL {@link GpuLlama} (src/lm/gpu-forward.ts), behind one async
 * {@link LmRunner}. The measures are those of ./downstream.ts (which holds the synchronous CPU
 * versions used by the node tests); the SAE is applied through its `saeEncodeRaw` /
 * `Reconstructor`, never re-implemented here.
 *
 * One window is one forward from position 0. The GPU forward replaces the whole residual [T, d] at
 * an index, so the hooks of ./downstream.ts ("leave row 0 clean, overwrite the rest") become: read
 * the clean residual once, then hand in a copy with rows [from, T) overwritten.
 */
import { Rng } from '../data/rng.ts';
import type { LmDims } from '../lm/extract.ts';
import type { FloatArray, Llama } from '../lm/forward.ts';
import type { GpuLlama } from '../lm/gpu-forward.ts';
import type { SparseCodes } from './codes.ts';
import {
  type AblationResult,
  ablationEffect,
  type DownstreamResult,
  effectSums,
  lossTally,
  type Reconstructor,
  type SaeOnRaw,
  saeEncodeRaw,
} from './downstream.ts';

interface LmRunRequest {
  /** Residual index whose clean value to return. */
  resid?: number;
  /** Return logits [T, V] (default true). */
  logits?: boolean;
  /** Replace the residual at `index` by `data` [T, d] (all rows) before it flows on. */
  replace?: { index: number; data: Float32Array };
}

interface LmRunResult {
  resid: FloatArray | null;
  logits: FloatArray | null;
}

/** One window forward from position 0, CPU or GPU. */
export interface LmRunner {
  /** what the measures need of the model (a LlamaConfig is one) */
  readonly config: LmDims;
  readonly capacity: number;
  readonly backend: 'cpu' | 'gpu';
  run(tokens: ArrayLike<number>, req: LmRunRequest): Promise<LmRunResult>;
}

/** The CPU model (f32 or f64) as a runner. */
export function cpuRunner(model: Llama): LmRunner {
  const d = model.config.dim;
  return {
    config: model.config,
    capacity: model.capacity,
    backend: 'cpu',
    async run(tokens, req) {
      const rep = req.replace;
      const out = model.run(tokens, {
        resid: req.resid !== undefined ? [req.resid] : [],
        logits: req.logits ?? true,
        interventions: rep
          ? [{ index: rep.index, fn: (x, T) => x.set(rep.data.subarray(0, T * d)) }]
          : undefined,
      });
      return {
        resid: req.resid !== undefined ? (out.resid.get(req.resid) ?? null) : null,
        logits: out.logits,
      };
    },
  };
}

/** The WGSL model as a runner (one command buffer and one read-back per call). */
export function gpuRunner(model: GpuLlama): LmRunner {
  return {
    config: model.config,
    capacity: model.capacity,
    backend: 'gpu',
    async run(tokens, req) {
      const out = await model.forward(tokens, {
        residLayers: req.resid !== undefined ? [req.resid] : [],
        logits: req.logits ?? true,
        replace: req.replace,
      });
      return {
        resid: req.resid !== undefined ? (out.resid.get(req.resid) ?? null) : null,
        logits: out.logits,
      };
    },
  };
}

export interface RunnerDownstreamOptions {
  /** Leave row 0 (BOS) of each window untouched. Default true. */
  keepBos?: boolean;
  /** Called after each window with the fraction done. */
  onProgress?: (fraction: number) => void | Promise<void>;
}

/**
 * {@link import('./downstream.ts').downstreamLoss} on a runner: clean, spliced and zero-ablated
 * next-token loss with the reconstruction `recon` at residual index `layer`.
 */
export async function downstreamLossOn(
  runner: LmRunner,
  windows: readonly ArrayLike<number>[],
  layer: number,
  recon: Reconstructor,
  opts: RunnerDownstreamOptions = {},
): Promise<DownstreamResult> {
  const { dim: d, vocabSize: V } = runner.config;
  const from = (opts.keepBos ?? true) ? 1 : 0;
  const tally = lossTally(V);
  for (let w = 0; w < windows.length; w++) {
    const tokens = windows[w];
    const T = tokens.length;
    const c = await runner.run(tokens, { resid: layer, logits: true });
    const resid = c.resid as FloatArray;
    const lc = c.logits as FloatArray;
    const n = T - from;
    const spl = Float32Array.from(resid.subarray(0, T * d));
    const zer = spl.slice();
    if (n > 0) {
      const out = recon(Float32Array.from(resid.subarray(from * d, T * d)), n, d);
      spl.set(out.subarray(0, n * d), from * d);
      zer.fill(0, from * d);
    }
    const ls = (await runner.run(tokens, { replace: { index: layer, data: spl } })).logits as FloatArray;
    const lz = (await runner.run(tokens, { replace: { index: layer, data: zer } })).logits as FloatArray;
    tally.add(tokens, lc, ls, lz);
    await opts.onProgress?.((w + 1) / windows.length);
  }
  return tally.result();
}

/**
 * How an SAE sees raw rows: through `saeEncodeRaw` (scalar input scale), optionally inside the
 * paper's per-row normalization (u = (x − μ)/‖x − μ‖, mapped back by x̂ = û·‖x − μ‖ + μ).
 */
export interface SaeOnRows {
  sae: SaeOnRaw;
  /** 'paper': per-row centering and unit norm around the SAE (then sae.inputScale should be 1). */
  perRow?: boolean;
}

/**
 * Codes and raw reconstruction of rows x [n, d], plus each row's raw-units factor: latent i with
 * value v contributes v·rawScale[r]·W_dec[i] to row r of the raw reconstruction.
 */
export function encodeRows(
  s: SaeOnRows,
  x: Float32Array,
  n: number,
  d: number,
): { codes: SparseCodes; xhat: Float32Array; rawScale: Float64Array } {
  const rawScale = new Float64Array(n);
  if (!s.perRow) {
    const r = saeEncodeRaw(s.sae, x, n);
    rawScale.fill(1 / (s.sae.inputScale ?? 1));
    return { ...r, rawScale };
  }
  const u = new Float32Array(n * d);
  const mu = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let m = 0;
    for (let c = 0; c < d; c++) m += x[r * d + c];
    m /= d;
    let ss = 0;
    for (let c = 0; c < d; c++) ss += (x[r * d + c] - m) ** 2;
    const len = Math.sqrt(ss);
    mu[r] = m;
    rawScale[r] = len > 0 ? len : 1;
    for (let c = 0; c < d; c++) u[r * d + c] = len > 0 ? (x[r * d + c] - m) / len : 0;
  }
  const r = saeEncodeRaw(s.sae, u, n);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < d; c++) r.xhat[i * d + c] = r.xhat[i * d + c] * rawScale[i] + mu[i];
  return { ...r, rawScale };
}

/** The Reconstructor of {@link SaeOnRows} (the per-row wrapper around `saeEncodeRaw`). */
export function rowsReconstructor(s: SaeOnRows): Reconstructor {
  return (x, T, d) => encodeRows(s, x, T, d).xhat;
}

export interface RunnerAblationOptions {
  /** Latents to ablate; when absent, `sample` latents are drawn among those active in the windows. */
  latents?: readonly number[];
  /** How many active latents to draw (default 64) and the seed of the draw. */
  sample?: number;
  seed?: number;
  /** Positions (where the latent is active) ablated per latent, in window order. Default 2. */
  positionsPerLatent?: number;
  /**
   * Positions T whose logit changes are concatenated (the ablated one and the next T − 1, cut at
   * the window's end). Default 16.
   */
  futureTokens?: number;
  /** Leave BOS rows clean (and never ablate there). Default true. */
  keepBos?: boolean;
  onProgress?: (fraction: number) => void | Promise<void>;
}

/** {@link AblationResult} (its latents ascending) with the population and the cost. */
export interface RunnerAblationResult extends AblationResult {
  /** Latents active in the windows (the population the sample was drawn from). */
  activeLatents: number;
  forwards: number;
}

/**
 * Ablation sparsity (Gao et al. 2024 §4.5) on a runner, the same measure as
 * {@link import('./downstream.ts').ablationSparsity}: with the SAE spliced at `layer` (baseline
 * logits), for each chosen latent and each position p where it is active, subtract its decoder
 * contribution at p only, run on, and take Δ = ablated − baseline logits at positions p … p+T−1;
 * per position the median over the vocabulary is removed (a constant shift does not change the
 * softmax), and the concatenated vector's (‖Δ‖₁/‖Δ‖₂)² is the effective number of affected
 * (position, logit) pairs (1 = one logit moves; T'·V = all move equally).
 */
export async function ablationSparsityOn(
  runner: LmRunner,
  windows: readonly ArrayLike<number>[],
  layer: number,
  s: SaeOnRows,
  opts: RunnerAblationOptions = {},
): Promise<RunnerAblationResult> {
  const { dim: d, vocabSize: V } = runner.config;
  const N = s.sae.params.b_enc.length;
  if (s.sae.params.b_pre.length !== d)
    throw new Error(`SAE width ${s.sae.params.b_pre.length} ≠ model dim ${d}`);
  const from = (opts.keepBos ?? true) ? 1 : 0;
  const perLatent = opts.positionsPerLatent ?? 2;
  const future = opts.futureTokens ?? 16;
  const W_dec = s.sae.params.W_dec;

  // Pass 1: clean residuals, codes and reconstructions of every window.
  const enc: { resid: Float32Array; codes: SparseCodes; xhat: Float32Array; rawScale: Float64Array }[] = [];
  const active = new Set<number>();
  let forwards = 0;
  for (const tokens of windows) {
    const T = tokens.length;
    const r = await runner.run(tokens, { resid: layer, logits: false });
    forwards++;
    const resid = Float32Array.from((r.resid as FloatArray).subarray(0, T * d));
    const n = Math.max(0, T - from);
    const e = encodeRows(s, resid.subarray(from * d), n, d);
    enc.push({ resid, ...e });
    for (let j = 0; j < e.codes.idx.length; j++) if (e.codes.val[j] > 0) active.add(e.codes.idx[j]);
  }
  let chosen: number[];
  if (opts.latents) {
    for (const i of opts.latents) if (!(i >= 0 && i < N)) throw new Error(`latent ${i} outside 0..${N - 1}`);
    chosen = [...new Set(opts.latents)];
  } else {
    const pool = [...active].sort((a, b) => a - b);
    new Rng(opts.seed ?? 0).shuffle(pool);
    chosen = pool.slice(0, opts.sample ?? 64);
  }
  chosen.sort((a, b) => a - b);
  const want = new Set(chosen);

  // Ablations to run, window by window: (latent, row, value).
  const nPos = new Map<number, number>(chosen.map((i) => [i, 0]));
  const plan: { i: number; r: number; v: number }[][] = enc.map(() => []);
  for (let w = 0; w < enc.length; w++) {
    const { codes } = enc[w];
    for (let r = 0; r < codes.rows; r++) {
      for (let j = 0; j < codes.k; j++) {
        const i = codes.idx[r * codes.k + j];
        const v = codes.val[r * codes.k + j];
        if (!(v > 0) || !want.has(i) || (nPos.get(i) as number) >= perLatent) continue;
        nPos.set(i, (nPos.get(i) as number) + 1);
        plan[w].push({ i, r, v });
      }
    }
  }
  const total = plan.reduce((a, p) => a + p.length, 0);

  const sums = effectSums();
  let done = 0;
  for (let w = 0; w < enc.length; w++) {
    if (plan[w].length === 0) continue;
    const tokens = windows[w];
    const T = tokens.length;
    const { resid, xhat, rawScale } = enc[w];
    const spl = resid.slice();
    spl.set(xhat, from * d);
    const base = (await runner.run(tokens, { replace: { index: layer, data: spl } })).logits as FloatArray;
    forwards++;
    for (const { i, r, v } of plan[w]) {
      const abl = spl.slice();
      const c = v * rawScale[r];
      const o = (from + r) * d;
      for (let q = 0; q < d; q++) abl[o + q] -= c * W_dec[i * d + q];
      const la = (await runner.run(tokens, { replace: { index: layer, data: abl } })).logits as FloatArray;
      forwards++;
      const p = r + from;
      sums.add(i, ablationEffect(la, base, p, Math.min(future, T - p), V));
      done++;
      await opts.onProgress?.(done / total);
    }
  }
  return { ...sums.means(chosen, nPos), activeLatents: active.size, forwards };
}

/** Quantiles (linear interpolation between order statistics) of `xs` at each q in [0, 1]. */
export function quantiles(xs: ArrayLike<number>, qs: readonly number[]): number[] {
  const s = Float64Array.from(xs).sort();
  if (s.length === 0) return qs.map(() => Number.NaN);
  return qs.map((q) => {
    const h = (s.length - 1) * Math.min(1, Math.max(0, q));
    const lo = Math.floor(h);
    const hi = Math.min(s.length - 1, lo + 1);
    return s[lo] + (h - lo) * (s[hi] - s[lo]);
  });
}

/** Histogram of log10(x) (x > 0) over `bins` equal bins on [lo, hi]; values outside are clamped in. */
export function log10Histogram(
  xs: ArrayLike<number>,
  lo: number,
  hi: number,
  bins: number,
): { edges: number[]; counts: number[] } {
  const edges = Array.from({ length: bins + 1 }, (_, j) => lo + ((hi - lo) * j) / bins);
  const counts = new Array(bins).fill(0);
  for (let i = 0; i < xs.length; i++) {
    if (!(xs[i] > 0)) continue;
    const b = Math.floor(((Math.log10(xs[i]) - lo) / (hi - lo)) * bins);
    counts[Math.min(bins - 1, Math.max(0, b))]++;
  }
  return { edges, counts };
}
