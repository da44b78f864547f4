/**
 * Float64 finite-difference check of the reference step's gradients (src/reference/step.ts) against
 * its own loss, for every activation (issue #16: the reference must check the maths, not only the
 * kernels).
 *
 * The loss has discrete parts (TopK / AuxK index sets, the dead set, ReLU and threshold masks) and
 * stop-gradients (AuxK's normalizer and target, Gated's frozen aux decoder). So this file builds, in
 * float64 and without calling into the reference, a surrogate loss L(θ) in which every discrete
 * choice, normalizer and detached target is frozen at θ₀, and L is a smooth function of θ:
 *
 *   pre  = W_enc (x − b_pre) + b_enc
 *   TopK / BatchTopK: x̂ = b_pre + Σ_{(b,i) ∈ main} pre_bi W_dec,i,  L = ls·Σ‖x̂ − x‖²
 *   AuxK (dead latents): ê = Σ_{(b,i) ∈ aux} pre_bi W_dec,i,
 *        L += auxCoef/D₀ · Σ‖(ê + b_pre) − (x − x̂₀ + b_pre₀)‖²       (openai's train.py:
 *        normalized_mse(decode_sparse(auxk), x − recons.detach() + pre_bias.detach()); D₀ is the
 *        batch variance of that detached target, so b_pre gets ∂/∂ê through ê + b_pre only)
 *   Multi-TopK: aux = ranks k..4k−1, L += ls/8 · Σ‖x̂ + ê − x‖²     (nothing detached)
 *   Matryoshka (BatchTopK's selection): L += ls·Σ_{w inner} Σ‖b_pre + Σ_{(b,i) ∈ main, i < w} pre_bi W_dec,i − x‖²
 *   ReLU+L1: a = pre·[pre₀ > 0], L = ls·Σ‖x̂ − x‖² + λ Σ a_bi ‖W_dec,i‖
 *   ProLU:   a = m·[m₀ > 0][pre₀ > 0], m = W_enc(x − b_pre), same penalty
 *   Gated:   a = [pre₀ > 0][mag₀ > 0]·(e^r (pre − b_enc) + b_mag), penalty λ Σ relu(pre) ‖W_dec,i‖,
 *            L += ls·Σ‖relu(pre) W_dec₀ + b_pre₀ − x‖²  (aux through a stop-gradient decoder)
 *   JumpReLU: a = pre·[pre₀ > θ₀], penalty λ·L0 (locally constant)
 *
 * The frozen sets are chosen here by an independent selection (sorts, masks, the dead rule) and
 * compared with the reference's; the surrogate's value at θ₀ must equal the reference's loss; and at
 * every θ₀ ± h of the check the selection is recomputed and must not change, so the surrogate IS the
 * loss in the neighbourhood the central differences see (no discontinuity is crossed).
 *
 * Every coordinate of every tensor is checked (the shapes are small enough), with the
 * decoder-gradient projection off (and, in one case, on: then the FD gradient is projected here) and
 * clipping on in one case (clipping scales only Adam's input; `grads` is returned unclipped).
 *
 * Straight-through estimators, where the reference's gradient is by definition not ∂L/∂θ:
 *  - ProLU b_enc: the loss does not depend on b_enc away from the masks' edges (a = m), so the FD
 *    derivative is 0; the reference uses the "ReLU" synthetic gradient, which is the derivative of the
 *    STE surrogate a = (m + b_enc − b_enc₀)·mask. Checked: exact FD = 0, and reference = FD of that
 *    STE surrogate. W_enc, W_dec, b_pre are exact and checked against the true surrogate.
 *  - JumpReLU log θ (extra[0, N)): the loss is locally constant in θ (FD = 0, checked); the reference
 *    uses the rectangle-kernel pseudo-derivative −θ(θ·∂L/∂a + λ)/ε summed over |pre − θ| < ε/2.
 *    Checked against that formula with ∂L/∂a itself taken by central differences of the surrogate.
 *    W_enc, b_enc, W_dec, b_pre are exact (no STE through pre) and checked by FD; extra[N, 2N) unused (0).
 */
import { describe, expect, it } from 'vitest';
import { cloneParams, newRefState, type Params, type RefStepOut } from '../../../src/reference/state';
import { refStep } from '../../../src/reference/step';
import { type Activation, l1Scale, resolveConfig, type SaeConfig } from '../../../src/sae/config';

const B = 16;
const d = 8;
const N = 32;
/** Relative step of the central differences. */
const H = 1e-6;
/**
 * |fd − g| ≤ RTOL·|g| + ATOL·max|g| per coordinate (ATOL covers coordinates whose gradient is ~0;
 * max over the tensor). Observed: the worst |fd − g| / tolerance over all cases is 0.41 (Multi-TopK
 * W_enc), most are 0.01–0.1. A 1/8 → 1/8.01 change of Multi-TopK's weight, AuxK's target left
 * live, Gated's aux decoder left live, ReLU's norm detached, or a 0.1% change of an STE all fail.
 */
const RTOL = 1e-6;
const ATOL = 1e-8;

function rng(seed: number) {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}
const randn = (n: number, seed: number, scale = 1) => {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => r() * scale);
};

type Name = keyof Params;
const NAMES = (p: Params): Name[] =>
  p.extra ? ['W_enc', 'b_enc', 'W_dec', 'b_pre', 'extra'] : ['W_enc', 'b_enc', 'W_dec', 'b_pre'];

interface Case {
  name: string;
  activation: Activation;
  over?: Partial<SaeConfig>;
  /** tokensSince at the start: deadTokens, so every latent that does not fire in the batch is dead */
  dead?: boolean;
  /** decoder rows of norms 0.5 … 1.5 (unconstrained decoders) instead of unit rows */
  decScale?: boolean;
  extra?: () => Float64Array;
  seed: number;
}

const DEAD_TOKENS = 100;

function setup(cs: Case) {
  const cfg = resolveConfig({
    d,
    nLatents: N,
    batchSize: B,
    k: 4,
    kAux: 6,
    deadTokens: DEAD_TOKENS,
    gradProjection: false,
    activation: cs.activation,
    lr: 1e-3,
    ...cs.over,
  });
  const s = cs.seed;
  const W_dec = randn(N * d, s);
  for (let i = 0; i < N; i++) {
    let n2 = 0;
    for (let c = 0; c < d; c++) n2 += W_dec[i * d + c] ** 2;
    const scale = (cs.decScale ? 0.5 + (i % 7) / 6 : 1) / Math.sqrt(n2);
    for (let c = 0; c < d; c++) W_dec[i * d + c] *= scale;
  }
  const noise = randn(N * d, s + 1, 0.3);
  const theta: Params = {
    W_enc: W_dec.map((w, o) => 0.8 * w + noise[o]),
    b_enc: randn(N, s + 2, 0.1),
    W_dec,
    b_pre: randn(d, s + 3, 0.1),
  };
  if (cs.extra) theta.extra = cs.extra();
  const x = randn(B * d, s + 4);
  const rowScale = Float64Array.from({ length: B }, (_, b) => 1 + b / B);
  const ls = 1 / (B * 1.7);
  const l1 = 0.7;
  const tokensSince0 = cs.dead ? DEAD_TOKENS : 0;
  return { cfg, theta, x, rowScale, ls, l1, tokensSince0 };
}
type Setup = ReturnType<typeof setup>;

function encode(p: Params, x: Float64Array) {
  const pre = new Float64Array(B * N);
  const m = new Float64Array(B * N); // W_enc (x − b_pre), without b_enc
  for (let b = 0; b < B; b++)
    for (let i = 0; i < N; i++) {
      let acc = 0;
      for (let c = 0; c < d; c++) acc += p.W_enc[i * d + c] * (x[b * d + c] - p.b_pre[c]);
      m[b * N + i] = acc;
      pre[b * N + i] = acc + p.b_enc[i];
    }
  return { pre, m };
}

/** The discrete part of the step at θ, chosen independently of the reference. */
interface Selection {
  /** sparse family: live entries (b·N + i) of the main and the aux region */
  main: number[];
  aux: number[];
  dead: number[];
  /** dense family: masks over [B, N] */
  on: Uint8Array;
  gate: Uint8Array;
  /** JumpReLU: entries inside the STE window |pre − θ| < ε/2 */
  window: number[];
}

function select(S: Setup, p: Params): Selection {
  const { cfg, x } = S;
  const { pre, m } = encode(p, x);
  const sel: Selection = {
    main: [],
    aux: [],
    dead: [],
    on: new Uint8Array(B * N),
    gate: new Uint8Array(B * N),
    window: [],
  };
  const act = cfg.activation;
  if (act === 'topk' || act === 'batchtopk' || act === 'matryoshka') {
    const kr = act === 'topk' ? cfg.k : cfg.batchTopKCap;
    const order = (b: number, cands: number[]) =>
      cands.slice().sort((i, j) => pre[b * N + j] - pre[b * N + i] || i - j);
    const all = Array.from({ length: N }, (_, i) => i);
    const rows = Array.from({ length: B }, (_, b) => order(b, all));
    let main: number[] = [];
    for (let b = 0; b < B; b++) for (let j = 0; j < kr; j++) main.push(b * N + rows[b][j]);
    if (act !== 'topk') {
      const vals = main.map((o) => Math.max(pre[o], 0)).sort((a, b) => b - a);
      const tau = vals[B * cfg.k - 1];
      main = main.filter((o) => Math.max(pre[o], 0) >= tau);
    }
    sel.main = main.filter((o) => pre[o] > 0);
    if (cfg.multiTopK) {
      for (let b = 0; b < B; b++)
        for (let j = cfg.k; j < cfg.k + cfg.kAux; j++) sel.aux.push(b * N + rows[b][j]);
    } else {
      const fires = new Uint32Array(N);
      for (const o of sel.main) if (pre[o] > cfg.fireThreshold) fires[o % N]++;
      for (let i = 0; i < N; i++) if (fires[i] === 0 && S.tokensSince0 + B > cfg.deadTokens) sel.dead.push(i);
      if (cfg.auxk)
        for (let b = 0; b < B; b++) {
          const r = order(b, sel.dead);
          for (let j = 0; j < Math.min(cfg.kAux, r.length); j++) sel.aux.push(b * N + r[j]);
        }
    }
    sel.aux = sel.aux.filter((o) => pre[o] > 0);
    return sel;
  }
  for (let o = 0; o < B * N; o++) {
    const i = o % N;
    const z = pre[o];
    if (act === 'relu') sel.on[o] = z > 0 ? 1 : 0;
    if (act === 'prolu') sel.on[o] = m[o] > 0 && z > 0 ? 1 : 0;
    if (act === 'gated') {
      sel.gate[o] = z > 0 ? 1 : 0;
      sel.on[o] = z > 0 && Math.exp(p.extra![i]) * m[o] + p.extra![N + i] > 0 ? 1 : 0;
    }
    if (act === 'jumprelu') {
      const th = Math.exp(p.extra![i]);
      sel.on[o] = z > th ? 1 : 0;
      if (Math.abs(z - th) < 0.5 * cfg.jumpBandwidth) sel.window.push(o);
    }
  }
  return sel;
}
const selKey = (s: Selection) =>
  `${s.main.join()}|${s.aux.join()}|${s.dead.join()}|${s.on.join('')}|${s.gate.join('')}|${s.window.join()}`;

interface Frozen {
  sel: Selection;
  /** AuxK's detached target pieces: e₀ = x̂₀ − x, b_pre₀, and its normalizer D₀ */
  e0: Float64Array;
  bpre0: Float64Array;
  D0: number;
  /** Gated: the stop-gradient decoder of the aux reconstruction */
  Wdec0: Float64Array;
  b_enc0: Float64Array;
}

interface Variant {
  /** ProLU: the STE surrogate a = (m + b_enc − b_enc₀)·mask */
  proluSte?: boolean;
  /** add h to the activation a_o (∂L/∂a for JumpReLU's STE) */
  da?: { o: number; h: number };
  /** negative control: AuxK's ê decoded without + b_pre (the twin before aad5858) */
  auxNoBpre?: boolean;
}

/** The surrogate loss at θ with every discrete choice and detached value frozen in F. */
function loss(S: Setup, F: Frozen, p: Params, v: Variant = {}): number {
  const { cfg, x, ls } = S;
  const { sel } = F;
  const { pre, m } = encode(p, x);
  const xh = new Float64Array(B * d);
  const eh = new Float64Array(B * d);
  for (let b = 0; b < B; b++) for (let c = 0; c < d; c++) xh[b * d + c] = p.b_pre[c];
  const addRow = (out: Float64Array, o: number, a: number, W: Float64Array) => {
    const b = Math.floor(o / N);
    const i = o % N;
    for (let c = 0; c < d; c++) out[b * d + c] += a * W[i * d + c];
  };
  const act = cfg.activation;
  let L = 0;
  if (act === 'topk' || act === 'batchtopk' || act === 'matryoshka') {
    for (const o of sel.main) addRow(xh, o, pre[o], p.W_dec);
    for (const w of act === 'matryoshka' ? cfg.matryoshkaWidths.slice(0, -1) : []) {
      const xw = new Float64Array(B * d);
      for (let o = 0; o < B * d; o++) xw[o] = p.b_pre[o % d];
      for (const o of sel.main) if (o % N < w) addRow(xw, o, pre[o], p.W_dec);
      for (let o = 0; o < B * d; o++) L += ls * (xw[o] - x[o]) ** 2;
    }
    for (const o of sel.aux) addRow(eh, o, pre[o], p.W_dec);
    for (let o = 0; o < B * d; o++) L += ls * (xh[o] - x[o]) ** 2;
    if (cfg.multiTopK) for (let o = 0; o < B * d; o++) L += (ls / 8) * (xh[o] + eh[o] - x[o]) ** 2;
    else if (sel.aux.length > 0) {
      let sa = 0;
      for (let o = 0; o < B * d; o++) {
        const c = o % d;
        const bp = v.auxNoBpre ? 0 : p.b_pre[c] - F.bpre0[c];
        sa += (eh[o] + bp + F.e0[o]) ** 2;
      }
      L += (cfg.auxCoef * sa) / F.D0;
    }
    return L;
  }
  const lam = l1Scale(cfg, ls, S.l1);
  const nrm = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    let s2 = 0;
    for (let c = 0; c < d; c++) s2 += p.W_dec[i * d + c] ** 2;
    nrm[i] = Math.sqrt(s2);
  }
  const gatedAux = new Float64Array(B * d);
  let pen = 0;
  for (let o = 0; o < B * N; o++) {
    const i = o % N;
    let a = 0;
    switch (act) {
      case 'relu':
        a = sel.on[o] ? pre[o] : 0;
        pen += lam * a * nrm[i];
        break;
      case 'prolu':
        a = sel.on[o] ? m[o] + (v.proluSte ? p.b_enc[i] - F.b_enc0[i] : 0) : 0;
        pen += lam * a * nrm[i];
        break;
      case 'gated': {
        a = sel.on[o] ? Math.exp(p.extra![i]) * m[o] + p.extra![N + i] : 0;
        const g = sel.gate[o] ? pre[o] : 0;
        pen += lam * g * nrm[i];
        if (g) addRow(gatedAux, o, g, F.Wdec0);
        break;
      }
      case 'jumprelu':
        a = sel.on[o] ? pre[o] : 0;
        pen += lam * sel.on[o];
        break;
    }
    if (v.da?.o === o) a += v.da.h;
    if (a !== 0) addRow(xh, o, a, p.W_dec);
  }
  for (let o = 0; o < B * d; o++) L += ls * (xh[o] - x[o]) ** 2;
  if (act === 'gated') for (let o = 0; o < B * d; o++) L += ls * (gatedAux[o] + F.bpre0[o % d] - x[o]) ** 2;
  return L + pen;
}

function freeze(S: Setup): Frozen {
  const p = S.theta;
  const sel = select(S, p);
  const F: Frozen = {
    sel,
    e0: new Float64Array(B * d),
    bpre0: p.b_pre.slice(),
    D0: 0,
    Wdec0: p.W_dec.slice(),
    b_enc0: p.b_enc.slice(),
  };
  // x̂₀ − x from the surrogate's own decode (main entries only), and D₀ = Σ_b‖r_b − mean r‖².
  const { pre } = encode(p, S.x);
  const mean = new Float64Array(d);
  for (let b = 0; b < B; b++) for (let c = 0; c < d; c++) F.e0[b * d + c] = p.b_pre[c] - S.x[b * d + c];
  for (const o of sel.main) {
    const b = Math.floor(o / N);
    const i = o % N;
    for (let c = 0; c < d; c++) F.e0[b * d + c] += pre[o] * p.W_dec[i * d + c];
  }
  for (let o = 0; o < B * d; o++) mean[o % d] += F.e0[o] / B;
  for (let o = 0; o < B * d; o++) F.D0 += (F.e0[o] - mean[o % d]) ** 2;
  return F;
}

function runRef(S: Setup): RefStepOut {
  const st = newRefState(cloneParams(S.theta), N, false);
  st.tokensSince.fill(S.tokensSince0);
  return refStep(st, S.x, S.rowScale, S.cfg, S.ls, S.cfg.lr, S.l1);
}

/** Central differences of the surrogate for every coordinate of `name`; checks the selection holds. */
function fdGrad(S: Setup, F: Frozen, name: Name, v: Variant = {}): Float64Array {
  const key0 = selKey(F.sel);
  const p = cloneParams(S.theta);
  const t = p[name]!;
  const out = new Float64Array(t.length);
  for (let j = 0; j < t.length; j++) {
    const t0 = t[j];
    const h = H * Math.max(1, Math.abs(t0));
    t[j] = t0 + h;
    const lp = loss(S, F, p, v);
    if (selKey(select(S, p)) !== key0) throw new Error(`${name}[${j}] + h changes the selection`);
    t[j] = t0 - h;
    const lm = loss(S, F, p, v);
    if (selKey(select(S, p)) !== key0) throw new Error(`${name}[${j}] − h changes the selection`);
    t[j] = t0;
    out[j] = (lp - lm) / (2 * h);
  }
  return out;
}

/** Coordinates where |got − want| > RTOL·|want| + ATOL·max|want|; also returns the worst ratio. */
function compare(got: ArrayLike<number>, want: ArrayLike<number>) {
  let mx = 0;
  for (let j = 0; j < want.length; j++) mx = Math.max(mx, Math.abs(want[j]));
  const bad: string[] = [];
  let worst = 0;
  for (let j = 0; j < want.length; j++) {
    const err = Math.abs(got[j] - want[j]);
    const tol = RTOL * Math.abs(want[j]) + ATOL * mx;
    worst = Math.max(worst, err / Math.max(tol, 1e-300));
    if (!(err <= tol)) bad.push(`[${j}] got ${got[j]} want ${want[j]}`);
  }
  return { bad, worst };
}

const gatedExtra = () => {
  const e = new Float64Array(2 * N);
  e.set(randn(N, 21, 0.3));
  e.set(randn(N, 22, 0.1), N);
  return e;
};
const jumpExtra = () => {
  const e = new Float64Array(2 * N);
  const t = randn(N, 23, 0.5);
  for (let i = 0; i < N; i++) e[i] = Math.log(0.3) + t[i];
  return e;
};

const CASES: Case[] = [
  { name: 'TopK, no dead latents', activation: 'topk', seed: 1 },
  { name: 'TopK + AuxK (dead latents)', activation: 'topk', dead: true, seed: 1 },
  {
    name: 'TopK + AuxK, projection and clipping on',
    activation: 'topk',
    dead: true,
    over: { gradProjection: true, clipGrad: true, clipNorm: 1e-3 },
    seed: 2,
  },
  { name: 'Multi-TopK (k=4, top-16 at 1/8)', activation: 'topk', over: { multiTopK: true }, seed: 3 },
  {
    name: 'BatchTopK (cap 12) + AuxK',
    activation: 'batchtopk',
    over: { batchTopKCap: 12 },
    dead: true,
    seed: 4,
  },
  {
    name: 'Matryoshka BatchTopK (widths 4, 12, 32; cap 12) + AuxK',
    activation: 'matryoshka',
    over: { batchTopKCap: 12, matryoshkaWidths: [4, 12, 32] },
    dead: true,
    seed: 9,
  },
  { name: 'ReLU + L1', activation: 'relu', decScale: true, seed: 5 },
  { name: 'ProLU', activation: 'prolu', decScale: true, seed: 6 },
  { name: 'Gated', activation: 'gated', decScale: true, extra: gatedExtra, seed: 7 },
  {
    name: 'JumpReLU (STE window ε = 0.4)',
    activation: 'jumprelu',
    over: { jumpBandwidth: 0.4 },
    extra: jumpExtra,
    seed: 8,
  },
];

/** The reference's grads against FD of the surrogate (projected where the config projects). */
function check(S: Setup, F: Frozen, out: RefStepOut, v: Variant = {}) {
  const res: Record<string, { bad: string[]; worst: number }> = {};
  const full: Record<string, Float64Array> = {};
  for (const name of NAMES(S.theta)) {
    let want = fdGrad(S, F, name, v);
    if (name === 'W_dec' && S.cfg.gradProjection) {
      want = want.slice();
      for (let i = 0; i < N; i++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += want[i * d + c] * S.theta.W_dec[i * d + c];
        for (let c = 0; c < d; c++) want[i * d + c] -= dot * S.theta.W_dec[i * d + c];
      }
    }
    full[name] = want;
    res[name] = compare(out.grads[name]!, want);
  }
  return { res, full };
}

describe('reference step gradients = finite differences of the reference loss (float64)', () => {
  for (const cs of CASES) {
    it(cs.name, () => {
      const S = setup(cs);
      const F = freeze(S);
      const out = runRef(S);
      const act = S.cfg.activation;
      const sparse = act === 'topk' || act === 'batchtopk' || act === 'matryoshka';

      // 1. The independent selection is the reference's.
      if (sparse) {
        const kr = out.topIdx.length / B;
        const ka = out.auxIdx.length / B;
        const live = (idx: Uint32Array, val: Float64Array, K: number) =>
          Array.from(idx)
            .map((i, e) => (val[e] > 0 ? Math.floor(e / K) * N + i : -1))
            .filter((o) => o >= 0)
            .sort((a, b) => a - b);
        expect(live(out.topIdx, out.topVal, kr)).toEqual([...F.sel.main].sort((a, b) => a - b));
        expect(live(out.auxIdx, out.auxVal, ka)).toEqual([...F.sel.aux].sort((a, b) => a - b));
        if (!S.cfg.multiTopK) expect(out.deadList).toEqual(F.sel.dead);
      } else {
        expect(Array.from(out.act!, (a) => (a > 0 ? 1 : 0)).join('')).toBe(F.sel.on.join(''));
      }
      // Each case exercises what makes it differ from plain TopK.
      if (cs.dead) {
        expect(F.sel.dead.length).toBeGreaterThan(0);
        expect(F.sel.aux.length).toBeGreaterThan(B);
        expect(out.auxLoss).toBeGreaterThan(0);
      } else if (sparse && !S.cfg.multiTopK) expect(out.auxLoss).toBe(0);
      if (act === 'gated') expect(out.auxLoss).toBeGreaterThan(0);
      if (S.cfg.multiTopK) expect(F.sel.aux.length).toBeGreaterThan(B * 4);
      if (act === 'matryoshka') expect(out.nestedLoss).toBeGreaterThan(0.5 * out.loss);
      if (act === 'batchtopk' || act === 'matryoshka') {
        const l0 = new Set(
          Array.from({ length: B }, (_, b) => F.sel.main.filter((o) => o < (b + 1) * N && o >= b * N).length),
        );
        expect(l0.size).toBeGreaterThan(1); // a batch-level allocation, not k per row
      }
      if (act === 'jumprelu') {
        expect(F.sel.window.length).toBeGreaterThan(B);
        expect(F.sel.on.some((a) => a === 1)).toBe(true);
      }

      // 2. The surrogate at θ₀ is the reference's loss (main + aux + penalty).
      const total = out.loss + (out.nestedLoss ?? 0) + out.auxLoss + (sparse ? 0 : out.extra);
      expect(Math.abs(loss(S, F, S.theta) - total)).toBeLessThan(1e-13 * Math.max(1, total));

      // 3. Every gradient coordinate against central differences.
      const { res, full } = check(S, F, out);
      const bad: string[] = [];
      for (const [name, r] of Object.entries(res)) {
        // STE tensors are checked below against their own definition.
        if ((act === 'prolu' && name === 'b_enc') || (act === 'jumprelu' && name === 'extra')) continue;
        for (const b of r.bad.slice(0, 3)) bad.push(`${name}${b}`);
      }
      expect(bad).toEqual([]);
      let sq = 0;
      for (const [name, g] of Object.entries(full))
        for (const [j, gj] of g.entries()) {
          const ste = (act === 'prolu' && name === 'b_enc') || (act === 'jumprelu' && name === 'extra');
          sq += (ste ? out.grads[name as Name]![j] : gj) ** 2;
        }
      expect(Math.abs(out.gradNorm - Math.sqrt(sq))).toBeLessThan(1e-6 * out.gradNorm);

      // 4. Straight-through estimators.
      if (act === 'prolu') {
        // Exact derivative: zero (a = m does not contain b_enc). Reference: FD of the STE surrogate.
        for (const g of full.b_enc) expect(Math.abs(g)).toBeLessThan(1e-9);
        const ste = fdGrad(S, F, 'b_enc', { proluSte: true });
        expect(ste.some((g) => Math.abs(g) > 1e-3)).toBe(true);
        expect(compare(out.grads.b_enc, ste).bad).toEqual([]);
      }
      if (act === 'jumprelu') {
        for (const g of full.extra) expect(Math.abs(g)).toBeLessThan(1e-9); // locally constant in θ
        const lam = l1Scale(S.cfg, S.ls, S.l1);
        const eps = S.cfg.jumpBandwidth;
        const want = new Float64Array(2 * N);
        for (const o of F.sel.window) {
          const i = o % N;
          const th = Math.exp(S.theta.extra![i]);
          const h = 1e-6;
          const dLda =
            (loss(S, F, S.theta, { da: { o, h } }) - loss(S, F, S.theta, { da: { o, h: -h } })) / (2 * h);
          want[i] += (-th * (th * dLda + lam)) / eps;
        }
        expect(want.filter((g) => g !== 0).length).toBeGreaterThan(4);
        expect(compare(out.grads.extra!, want).bad).toEqual([]);
      }
    });
  }

  it('the check fails on a wrong loss: AuxK without its b_pre path disagrees on b_pre, and only there', () => {
    const S = setup(CASES[1]);
    const F = freeze(S);
    const out = runRef(S);
    const { res } = check(S, F, out, { auxNoBpre: true });
    expect(res.b_pre.bad.length).toBe(d);
    for (const name of ['W_enc', 'b_enc', 'W_dec']) expect(res[name].bad).toEqual([]);
  });
});
