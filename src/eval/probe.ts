/**
 * Probe loss (Gao et al. 2024 §4.2, adapted): how well does the single best latent linearly
 * predict a binary property of each row?
 *
 * For a task with labels y [rows] ∈ {0,1} and latent i with activations z_i [rows], fit the
 * 1-D logistic regression y ~ σ(a·z_i + b) by Newton's method on
 *     J(a, b) = (1/n) Σ_r CE(y_r, a·z_ir + b) + (λ/2)·a²,
 * where the tiny λ only keeps a finite when a latent separates the labels perfectly. The
 * reported loss is the unregularized mean cross-entropy (nats). The task's probe loss is the
 * minimum over latents. TopK codes are sparse, so a latent that fires on n_i rows costs O(n_i)
 * per Newton iteration: the n − n_i rows where z = 0 enter through two counts (how many, how many
 * positive). Latents firing fewer than minFires times are skipped; they get the constant
 * baseline H(ȳ), which is what their fit would approach anyway.
 *
 * Baselines: the constant predictor (entropy of the label mean) and an L2-regularized logistic
 * probe on the raw d-dim activations (L-BFGS, fixed iteration cap), i.e. "how much of the
 * linearly available information does one latent capture".
 */
import { codesByLatent, type LatentCsc, type SparseCodes } from './codes.ts';

/** Numerically stable softplus log(1 + e^s). */
export function softplus(s: number): number {
  return s > 0 ? s + Math.log1p(Math.exp(-s)) : Math.log1p(Math.exp(s));
}
/** CE(y, σ(s)) = softplus(s) − y·s. */
const ce = (y: number, s: number) => softplus(s) - y * s;
const sigmoid = (s: number) => (s >= 0 ? 1 / (1 + Math.exp(-s)) : Math.exp(s) / (1 + Math.exp(s)));

/** Entropy (nats) of a Bernoulli(p): the loss of the best constant predictor. */
export function bernoulliEntropy(p: number): number {
  if (p <= 0 || p >= 1) return 0;
  return -(p * Math.log(p) + (1 - p) * Math.log(1 - p));
}

/** One binary task per class: labels [rows] integer classes → nClasses Uint8Array masks. */
export function oneVsRest(labels: ArrayLike<number>, nClasses?: number): Uint8Array[] {
  let C = nClasses ?? 0;
  if (nClasses === undefined) for (let r = 0; r < labels.length; r++) C = Math.max(C, labels[r] + 1);
  return Array.from({ length: C }, (_, c) => {
    const m = new Uint8Array(labels.length);
    for (let r = 0; r < labels.length; r++) m[r] = labels[r] === c ? 1 : 0;
    return m;
  });
}

export interface LogisticFit1D {
  a: number;
  b: number;
  /** Mean cross-entropy (nats), without the L2 term. */
  loss: number;
  iters: number;
}

/**
 * Newton fit of y ~ σ(a·z + b) where z is nonzero only on rows `row[0..m)` (values `z`); all other
 * rows of the n have z = 0.
 * @param y [n] labels 0/1
 * @param nPos Σ y
 */
export function fitLogistic1D(
  row: ArrayLike<number>,
  z: ArrayLike<number>,
  y: Uint8Array,
  nPos: number,
  opts: { l2?: number; iters?: number } = {},
): LogisticFit1D {
  const n = y.length;
  const m = row.length;
  const lam = opts.l2 ?? 1e-4;
  const maxIt = opts.iters ?? 25;
  // Rows with z = 0: count and positives among them.
  let posActive = 0;
  for (let j = 0; j < m; j++) posActive += y[row[j]];
  const n0 = n - m;
  const pos0 = nPos - posActive;
  const objective = (a: number, b: number) => {
    let s = n0 > 0 ? n0 * softplus(b) - pos0 * b : 0;
    for (let j = 0; j < m; j++) s += ce(y[row[j]], a * z[j] + b);
    return s / n;
  };
  let a = 0;
  let b = Math.log((nPos + 0.5) / (n - nPos + 0.5)); // ≈ logit(ȳ): the optimum at a = 0
  let J = objective(a, b) + 0.5 * lam * a * a;
  let it = 0;
  for (; it < maxIt; it++) {
    const p0 = sigmoid(b);
    let ga = 0;
    let gb = n0 * p0 - pos0;
    const w0 = n0 * p0 * (1 - p0);
    let haa = 0;
    let hab = 0;
    let hbb = w0;
    for (let j = 0; j < m; j++) {
      const zz = z[j];
      const p = sigmoid(a * zz + b);
      const e = p - y[row[j]];
      const w = p * (1 - p);
      ga += e * zz;
      gb += e;
      haa += w * zz * zz;
      hab += w * zz;
      hbb += w;
    }
    ga = ga / n + lam * a;
    gb /= n;
    haa = haa / n + lam;
    hab /= n;
    hbb = hbb / n + 1e-12; // keeps H invertible when every prediction is saturated
    const det = haa * hbb - hab * hab;
    if (!(det > 0)) break;
    const da = -(hbb * ga - hab * gb) / det;
    const db = -(haa * gb - hab * ga) / det;
    // Backtracking: Newton on the logistic loss can overshoot far from the optimum.
    let t = 1;
    let Jn = Number.POSITIVE_INFINITY;
    for (let ls = 0; ls < 30; ls++) {
      Jn = objective(a + t * da, b + t * db) + 0.5 * lam * (a + t * da) ** 2;
      if (Jn <= J + 1e-4 * t * (ga * da + gb * db)) break;
      t *= 0.5;
    }
    if (!(Jn <= J)) break;
    a += t * da;
    b += t * db;
    const dec = J - Jn;
    J = Jn;
    if (dec < 1e-12 && Math.abs(t * da) + Math.abs(t * db) < 1e-9) {
      it++;
      break;
    }
  }
  return { a, b, loss: objective(a, b), iters: it };
}

interface LatentProbeResult {
  /** Best latent, or −1 when no latent beats the constant predictor. */
  bestLatent: number;
  /** Best single-latent mean CE (≤ constant). */
  loss: number;
  /** Constant baseline H(ȳ). */
  constantLoss: number;
  a: number;
  b: number;
  /** Latents that were fitted (fired ≥ minFires times). */
  fitted: number;
}

export interface ProbeOptions {
  /** Latents firing on fewer rows are not fitted. Default 3. */
  minFires?: number;
  /** L2 on the slope of the 1-D probes. Default 1e-4. */
  l2?: number;
  /** Newton iterations cap. Default 25. */
  iters?: number;
}

/** Best single-latent probe for one binary task. */
function bestLatentProbe(csc: LatentCsc, y: Uint8Array, opts: ProbeOptions = {}): LatentProbeResult {
  if (y.length !== csc.rows) throw new Error(`labels ${y.length} ≠ rows ${csc.rows}`);
  const minFires = opts.minFires ?? 3;
  let nPos = 0;
  for (let r = 0; r < y.length; r++) nPos += y[r];
  const constantLoss = bernoulliEntropy(nPos / y.length);
  const best: LatentProbeResult = { bestLatent: -1, loss: constantLoss, constantLoss, a: 0, b: 0, fitted: 0 };
  if (nPos === 0 || nPos === y.length) return best;
  for (let i = 0; i < csc.N; i++) {
    const s = csc.start[i];
    const e = csc.start[i + 1];
    if (e - s < minFires) continue;
    best.fitted++;
    const fit = fitLogistic1D(csc.row.subarray(s, e), csc.val.subarray(s, e), y, nPos, opts);
    if (fit.loss < best.loss) {
      best.bestLatent = i;
      best.loss = fit.loss;
      best.a = fit.a;
      best.b = fit.b;
    }
  }
  return best;
}

export interface RawProbeResult {
  /** Mean CE (nats) on the fitting rows, without the L2 term. */
  loss: number;
  /** [d] weights on the raw (unstandardized) activations, and the bias. */
  w: Float64Array;
  b: number;
  iters: number;
}

/**
 * L2-regularized logistic regression on the raw activations x [rows, d]:
 * J = (1/n) Σ CE + (λ/2)‖w̃‖², with w̃ the weights on standardized features (per-dimension mean
 * and std), so λ means the same for any activation scale. Minimized by L-BFGS (memory 10,
 * Armijo backtracking) for at most `iters` iterations: O(rows·d) per iteration, which scales to
 * real model widths where a d×d Newton solve per iteration would not.
 */
export function rawProbe(
  x: ArrayLike<number>,
  rows: number,
  d: number,
  y: Uint8Array,
  opts: { l2?: number; iters?: number } = {},
): RawProbeResult {
  const lam = opts.l2 ?? 1e-3;
  const maxIt = opts.iters ?? 100;
  const mean = new Float64Array(d);
  const inv = new Float64Array(d);
  for (let r = 0; r < rows; r++) for (let c = 0; c < d; c++) mean[c] += x[r * d + c];
  for (let c = 0; c < d; c++) mean[c] /= rows;
  for (let r = 0; r < rows; r++) for (let c = 0; c < d; c++) inv[c] += (x[r * d + c] - mean[c]) ** 2;
  for (let c = 0; c < d; c++) {
    const sd = Math.sqrt(inv[c] / rows);
    inv[c] = sd > 0 ? 1 / sd : 0;
  }
  const xs = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < d; c++) xs[r * d + c] = (x[r * d + c] - mean[c]) * inv[c];
  const P = d + 1; // θ = [w̃, b]
  const lossGrad = (th: Float64Array, g: Float64Array | null): number => {
    let J = 0;
    if (g) g.fill(0);
    for (let r = 0; r < rows; r++) {
      let s = th[d];
      const o = r * d;
      for (let c = 0; c < d; c++) s += th[c] * xs[o + c];
      J += ce(y[r], s);
      if (g) {
        const e = sigmoid(s) - y[r];
        for (let c = 0; c < d; c++) g[c] += e * xs[o + c];
        g[d] += e;
      }
    }
    J /= rows;
    let reg = 0;
    for (let c = 0; c < d; c++) reg += th[c] * th[c];
    if (g) {
      for (let c = 0; c < P; c++) g[c] /= rows;
      for (let c = 0; c < d; c++) g[c] += lam * th[c];
    }
    return J + 0.5 * lam * reg;
  };
  const th = new Float64Array(P);
  let nPos = 0;
  for (let r = 0; r < rows; r++) nPos += y[r];
  th[d] = Math.log((nPos + 0.5) / (rows - nPos + 0.5));
  const g = new Float64Array(P);
  let J = lossGrad(th, g);
  const mem = 10;
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const dir = new Float64Array(P);
  const alpha = new Float64Array(mem);
  const thNew = new Float64Array(P);
  const gNew = new Float64Array(P);
  const dot = (a: Float64Array, b: Float64Array) => {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i] * b[i];
    return s;
  };
  let it = 0;
  for (; it < maxIt; it++) {
    if (Math.sqrt(dot(g, g)) < 1e-7) break;
    // two-loop recursion: dir = −H·g
    for (let i = 0; i < P; i++) dir[i] = -g[i];
    for (let j = S.length - 1; j >= 0; j--) {
      alpha[j] = rho[j] * dot(S[j], dir);
      for (let i = 0; i < P; i++) dir[i] -= alpha[j] * Y[j][i];
    }
    if (S.length > 0) {
      const last = S.length - 1;
      const gamma = dot(S[last], Y[last]) / dot(Y[last], Y[last]);
      for (let i = 0; i < P; i++) dir[i] *= gamma;
    }
    for (let j = 0; j < S.length; j++) {
      const beta = rho[j] * dot(Y[j], dir);
      for (let i = 0; i < P; i++) dir[i] += S[j][i] * (alpha[j] - beta);
    }
    let slope = dot(g, dir);
    if (!(slope < 0)) {
      // not a descent direction (curvature pairs went stale): restart from steepest descent
      S.length = 0;
      Y.length = 0;
      rho.length = 0;
      for (let i = 0; i < P; i++) dir[i] = -g[i];
      slope = dot(g, dir);
    }
    let t = S.length === 0 ? 1 / Math.max(1, Math.sqrt(-slope)) : 1;
    let Jn = Number.POSITIVE_INFINITY;
    for (let ls = 0; ls < 40; ls++) {
      for (let i = 0; i < P; i++) thNew[i] = th[i] + t * dir[i];
      Jn = lossGrad(thNew, gNew);
      if (Jn <= J + 1e-4 * t * slope) break;
      t *= 0.5;
    }
    if (!(Jn < J)) break;
    const s = new Float64Array(P);
    const yv = new Float64Array(P);
    for (let i = 0; i < P; i++) {
      s[i] = thNew[i] - th[i];
      yv[i] = gNew[i] - g[i];
    }
    const sy = dot(s, yv);
    if (sy > 1e-12) {
      if (S.length === mem) {
        S.shift();
        Y.shift();
        rho.shift();
      }
      S.push(s);
      Y.push(yv);
      rho.push(1 / sy);
    }
    th.set(thNew);
    g.set(gNew);
    const dec = J - Jn;
    J = Jn;
    if (dec < 1e-12 * Math.max(1, Math.abs(J))) {
      it++;
      break;
    }
  }
  // Report the unregularized loss and map weights back to raw units: w = w̃/σ, b = b̃ − Σ w·μ.
  let reg = 0;
  for (let c = 0; c < d; c++) reg += th[c] * th[c];
  const w = new Float64Array(d);
  let b = th[d];
  for (let c = 0; c < d; c++) {
    w[c] = th[c] * inv[c];
    b -= w[c] * mean[c];
  }
  return { loss: J - 0.5 * lam * reg, w, b, iters: it };
}

interface ProbeTaskReport extends LatentProbeResult {
  task: number;
  /** Raw-activation logistic probe loss (NaN when x was not given). */
  rawLoss: number;
}

export interface ProbeReport {
  tasks: ProbeTaskReport[];
  /** Means over tasks. */
  meanLoss: number;
  meanConstantLoss: number;
  meanRawLoss: number;
}

/**
 * Probe losses for several tasks.
 * @param codes codes of all rows (or a prebuilt CSC with threshold 0)
 * @param N latents
 * @param tasks binary label masks [rows] each (use oneVsRest for class labels)
 * @param x optional raw activations [rows, d] for the raw-probe baseline
 */
export function probeLoss(
  codes: SparseCodes | LatentCsc,
  N: number,
  tasks: readonly Uint8Array[],
  opts: ProbeOptions & { x?: ArrayLike<number>; d?: number; rawL2?: number; rawIters?: number } = {},
): ProbeReport {
  const csc = 'start' in codes ? codes : codesByLatent(codes, N, 0);
  const out: ProbeTaskReport[] = tasks.map((y, task) => {
    const best = bestLatentProbe(csc, y, opts);
    let rawLoss = Number.NaN;
    if (opts.x && opts.d) {
      rawLoss = rawProbe(opts.x, csc.rows, opts.d, y, { l2: opts.rawL2, iters: opts.rawIters }).loss;
    }
    return { task, ...best, rawLoss };
  });
  const mean = (f: (t: ProbeTaskReport) => number) =>
    out.length ? out.reduce((s, t) => s + f(t), 0) / out.length : Number.NaN;
  return {
    tasks: out,
    meanLoss: mean((t) => t.loss),
    meanConstantLoss: mean((t) => t.constantLoss),
    meanRawLoss: mean((t) => t.rawLoss),
  };
}
