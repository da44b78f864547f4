/**
 * Float64 twin of one GPU training step (src/sae/step.ts): the same order of operations, the same
 * TopK order (value desc, ties to the lower index, NaN lowest), the same dead-latent rule and AuxK.
 * Shapes: x [B, d] (normalized space), W_enc/W_dec [N, d] latent-major, b_enc [N], b_pre [d].
 */
import { adamScalars, isDense, l1At, l1Scale, type ResolvedConfig } from '../sae/config';
import { encodeRef } from './encode';

export const NONE = 0xffffffff;

export interface Params<T = Float64Array> {
  W_enc: T;
  b_enc: T;
  W_dec: T;
  b_pre: T;
  /**
   * Per-latent parameters of the activation [2N], absent for topk/batchtopk/relu/prolu:
   * gated: r_mag = extra[0, N), b_mag = extra[N, 2N);  jumprelu: log_threshold = extra[0, N).
   */
  extra?: T;
}
export const PARAM_NAMES = ['W_enc', 'b_enc', 'W_dec', 'b_pre'] as const;

export interface RefState {
  params: Params;
  m: Params;
  v: Params;
  ema: Params | null;
  /** Tokens since each latent last fired [N]. */
  tokensSince: Uint32Array;
  /** Total fires per latent [N]. */
  firesTotal: Uint32Array;
  /** Steps taken. */
  t: number;
}

/** The tensors present in p: the four of every SAE, and `extra` where the activation has one. */
function tensorNames(p: Params): (keyof Params)[] {
  return p.extra ? [...PARAM_NAMES, 'extra'] : [...PARAM_NAMES];
}

function zerosLike(p: Params): Params {
  const o = {} as Params;
  for (const n of tensorNames(p)) o[n] = new Float64Array(p[n]!.length);
  return o;
}

export function cloneParams(p: Params): Params {
  const o = {} as Params;
  for (const n of tensorNames(p)) o[n] = p[n]!.slice();
  return o;
}

export function newRefState(params: Params, N: number, ema: boolean): RefState {
  return {
    params,
    m: zerosLike(params),
    v: zerosLike(params),
    ema: ema ? cloneParams(params) : null,
    tokensSince: new Uint32Array(N),
    firesTotal: new Uint32Array(N),
    t: 0,
  };
}

const NEG_MAX = -3.4028234663852886e38;

/**
 * TopK of candidates (all latents, or the given list) for each row of pre [B, N].
 * Returns idx [B, K] (NONE where fewer than K candidates) and val = relu(pre) [B, K].
 */
export function topkRef(
  pre: ArrayLike<number>,
  B: number,
  N: number,
  K: number,
  candidates?: ArrayLike<number>,
) {
  const idx = new Uint32Array(B * K).fill(NONE);
  const val = new Float64Array(B * K);
  const cand = candidates ? Array.from(candidates) : Array.from({ length: N }, (_, i) => i);
  for (let b = 0; b < B; b++) {
    const key = (i: number) => {
      const v = pre[b * N + i];
      return Number.isNaN(v) ? NEG_MAX : Math.max(v, NEG_MAX);
    };
    const order = cand.slice().sort((i, j) => key(j) - key(i) || i - j);
    for (let j = 0; j < Math.min(K, order.length); j++) {
      idx[b * K + j] = order[j];
      val[b * K + j] = Math.max(key(order[j]), 0);
    }
  }
  return { idx, val };
}

/** x̂ [B, d] = Σ val·W_dec[idx] (+ b_pre). */
export function decodeRef(
  idx: Uint32Array,
  val: ArrayLike<number>,
  W_dec: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  B: number,
  d: number,
  K: number,
) {
  const out = new Float64Array(B * d);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < d; c++) out[b * d + c] = bias ? bias[c] : 0;
    for (let j = 0; j < K; j++) {
      const i = idx[b * K + j];
      const v = val[b * K + j];
      if (i === NONE || v === 0) continue;
      for (let c = 0; c < d; c++) out[b * d + c] += v * W_dec[i * d + c];
    }
  }
  return out;
}

export interface RefStepOut {
  pre: Float64Array;
  topIdx: Uint32Array;
  topVal: Float64Array;
  xHat: Float64Array;
  deadList: number[];
  auxIdx: Uint32Array;
  auxVal: Float64Array;
  eHat: Float64Array;
  loss: number;
  auxLoss: number;
  /** Σ s_b²‖x̂_b − x_b‖² (squared error in raw units, s = row scale) */
  rawSe: number;
  l0: number;
  gradNorm: number;
  grads: Params;
  /** Threshold family: the penalty term; BatchTopK: the batch threshold τ; else 0. */
  extra: number;
  /** Threshold family: the activations [B, N]. */
  act?: Float64Array;
}

/**
 * One step in float64, mutating `st`. x: normalized batch [B, d]; rowScale [B] maps normalized errors
 * back to raw units; lossScale = 1 / (B · c); lr for this step (after warm-up); l1 the sparsity
 * coefficient λ of this step (after its warm-up). Dispatches on cfg.activation.
 */
export function refStep(
  st: RefState,
  x: ArrayLike<number>,
  rowScale: ArrayLike<number>,
  cfg: ResolvedConfig,
  lossScale: number,
  lr: number,
  l1 = l1At(cfg, st.t + 1),
): RefStepOut {
  if (isDense(cfg.activation)) return refStepDense(st, x, rowScale, cfg, lossScale, lr, l1);
  const { d, nLatents: N, k, kAux } = cfg;
  const B = x.length / d;
  const p = st.params;
  const multi = cfg.multiTopK;
  // Entries per row of the main region: k, or BatchTopK's per-row candidate cap.
  const kr = cfg.activation === 'batchtopk' ? cfg.batchTopKCap : k;

  const pre = encodeRef(x, p.b_pre, p.W_enc, p.b_enc, B, d, N);
  let top = topkRef(pre, B, N, kr);
  let multiAux: { idx: Uint32Array; val: Float64Array } | null = null;
  if (multi) {
    // Multi-TopK: one TopK of k + kAux, split into the top k and ranks k..k+kAux−1.
    const all = topkRef(pre, B, N, k + kAux);
    top = { idx: new Uint32Array(B * k), val: new Float64Array(B * k) };
    multiAux = { idx: new Uint32Array(B * kAux), val: new Float64Array(B * kAux) };
    for (let b = 0; b < B; b++)
      for (let j = 0; j < k + kAux; j++) {
        const from = b * (k + kAux) + j;
        const [dst, at] = j < k ? [top, b * k + j] : [multiAux, b * kAux + j - k];
        dst.idx[at] = all.idx[from];
        dst.val[at] = all.val[from];
      }
  }
  let tau = 0;
  if (cfg.activation === 'batchtopk') {
    // BatchTopK: keep the B·k largest of the batch's candidates; τ is the (B·k)-th largest.
    const sorted = Float64Array.from(top.val).sort().reverse();
    tau = sorted[Math.min(B * k, sorted.length) - 1];
    for (let e = 0; e < top.val.length; e++) if (top.val[e] < tau) top.val[e] = 0;
  }
  const xHat = decodeRef(top.idx, top.val, p.W_dec, p.b_pre, B, d, kr);

  // Dead bookkeeping after the main TopK, before AuxK (as the released code updates its stats in forward).
  const fires = new Uint32Array(N);
  for (let e = 0; e < B * kr; e++)
    if (top.idx[e] !== NONE && top.val[e] > cfg.fireThreshold) fires[top.idx[e]]++;
  const deadList = updateDead(st, fires, B, cfg);
  const auxCands = cfg.auxk ? deadList : [];
  const aux = multiAux ?? topkRef(pre, B, N, kAux, auxCands);
  const eHat = decodeRef(aux.idx, aux.val, p.W_dec, null, B, d, kAux);

  // Losses.
  let se = 0;
  let sea = 0;
  let rawSe = 0;
  let l0 = 0;
  const colR = new Float64Array(d);
  for (let b = 0; b < B; b++) {
    let rowSe = 0;
    for (let c = 0; c < d; c++) {
      const e = xHat[b * d + c] - x[b * d + c];
      rowSe += e * e;
      sea += (eHat[b * d + c] + e) ** 2;
      colR[c] -= e;
    }
    se += rowSe;
    rawSe += rowSe * rowScale[b] * rowScale[b];
    for (let j = 0; j < kr; j++) if (top.val[b * kr + j] > 0) l0++;
  }
  let r2 = 0;
  for (let c = 0; c < d; c++) r2 += colR[c] * colR[c];
  const D = se - r2 / B;
  const auxOn = cfg.auxk && deadList.length > 0 && D > 1e-30;
  let auxLoss = auxOn ? (cfg.auxCoef * sea) / D : 0;
  const gScale = 2 * lossScale;
  let gAuxScale = auxOn ? (2 * cfg.auxCoef) / D : 0;
  if (multi) {
    // 1/8 of the top-(k + kAux) reconstruction loss (x̂₄ₖ − x = ê + e), on main and aux entries alike.
    auxLoss = (lossScale * sea) / 8;
    gAuxScale = (2 * lossScale) / 8;
  }
  const g = new Float64Array(B * d);
  const gAux = new Float64Array(B * d);
  for (let o = 0; o < B * d; o++) {
    const e = xHat[o] - x[o];
    gAux[o] = gAuxScale * (eHat[o] + e);
    g[o] = gScale * e + (multi ? gAux[o] : 0);
  }

  // Backward through the indices.
  const grads = zerosLike(p);
  const entry = (idx: Uint32Array, val: Float64Array, K: number, src: Float64Array) => {
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < K; j++) {
        const i = idx[b * K + j];
        const v = val[b * K + j];
        if (i === NONE) continue;
        let gv = 0;
        if (v > 0) for (let c = 0; c < d; c++) gv += p.W_dec[i * d + c] * src[b * d + c];
        for (let c = 0; c < d; c++) {
          grads.W_dec[i * d + c] += v * src[b * d + c];
          grads.W_enc[i * d + c] += gv * (x[b * d + c] - p.b_pre[c]);
        }
        grads.b_enc[i] += gv;
      }
    }
  };
  entry(top.idx, top.val, kr, g);
  entry(aux.idx, aux.val, kAux, gAux);
  for (let c = 0; c < d; c++) {
    let acc = 0;
    // AuxK's ê is decoded with + b_pre and its target's b_pre is detached (openai's train.py), so
    // b_pre receives ∂Laux/∂ê; Multi-TopK's share is already in g.
    for (let b = 0; b < B; b++) acc += g[b * d + c] + (multi ? 0 : gAux[b * d + c]);
    for (let i = 0; i < N; i++) acc -= grads.b_enc[i] * p.W_enc[i * d + c];
    grads.b_pre[c] = acc;
  }
  const gradNorm = refUpdate(st, grads, cfg, lr);
  return {
    pre,
    topIdx: top.idx,
    topVal: top.val,
    xHat,
    deadList,
    auxIdx: aux.idx,
    auxVal: aux.val,
    eHat,
    loss: se * lossScale,
    auxLoss,
    rawSe,
    l0: l0 / B,
    gradNorm,
    grads,
    extra: tau,
  };
}

/** Fire counts → tokens-since and total-fire counters; returns the dead latents in index order. */
function updateDead(st: RefState, fires: Uint32Array, B: number, cfg: ResolvedConfig): number[] {
  const deadList: number[] = [];
  for (let i = 0; i < fires.length; i++) {
    st.firesTotal[i] += fires[i];
    const prev = st.tokensSince[i];
    st.tokensSince[i] = fires[i] > 0 ? 0 : prev > 0xffffffff - B ? 0xffffffff : prev + B;
    if (st.tokensSince[i] > cfg.deadTokens) deadList.push(i);
  }
  return deadList;
}

/**
 * The threshold family (shaders/activation.wgsl) in float64, dense over [B, N]: activation,
 * dense decode, penalty, Gated's aux reconstruction, the local gradients and the per-latent sums.
 */
function refStepDense(
  st: RefState,
  x: ArrayLike<number>,
  rowScale: ArrayLike<number>,
  cfg: ResolvedConfig,
  lossScale: number,
  lr: number,
  l1: number,
): RefStepOut {
  const { d, nLatents: N, activation } = cfg;
  const B = x.length / d;
  const p = st.params;
  const ex = p.extra ?? new Float64Array(2 * N);
  const lam = l1Scale(cfg, lossScale, l1);
  const eps = cfg.jumpBandwidth;
  const gated = activation === 'gated';
  const pre = encodeRef(x, p.b_pre, p.W_enc, p.b_enc, B, d, N);
  const nrm = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    let s2 = 0;
    for (let c = 0; c < d; c++) s2 += p.W_dec[i * d + c] ** 2;
    nrm[i] = Math.sqrt(s2);
  }
  const actOf = (z: number, i: number) => {
    switch (activation) {
      case 'prolu': {
        const m = z - p.b_enc[i];
        return m > 0 && z > 0 ? m : 0;
      }
      case 'gated': {
        const mag = Math.exp(ex[i]) * (z - p.b_enc[i]) + ex[N + i];
        return z > 0 ? Math.max(mag, 0) : 0;
      }
      case 'jumprelu':
        return z > Math.exp(ex[i]) ? z : 0;
      default:
        return Math.max(z, 0);
    }
  };
  const act = new Float64Array(B * N);
  const actAux = new Float64Array(B * N);
  for (let o = 0; o < B * N; o++) {
    act[o] = actOf(pre[o], o % N);
    if (gated) actAux[o] = Math.max(pre[o], 0) - act[o];
  }
  const denseDecode = (A: Float64Array, bias: ArrayLike<number> | null) => {
    const out = new Float64Array(B * d);
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < d; c++) out[b * d + c] = bias ? bias[c] : 0;
      for (let i = 0; i < N; i++) {
        const a = A[b * N + i];
        if (a !== 0) for (let c = 0; c < d; c++) out[b * d + c] += a * p.W_dec[i * d + c];
      }
    }
    return out;
  };
  const xHat = denseDecode(act, p.b_pre);
  const eHat = gated ? denseDecode(actAux, null) : new Float64Array(B * d);

  const fires = new Uint32Array(N);
  for (let o = 0; o < B * N; o++) if (act[o] > cfg.fireThreshold) fires[o % N]++;
  const deadList = updateDead(st, fires, B, cfg);

  let se = 0;
  let sea = 0;
  let rawSe = 0;
  let l0 = 0;
  const g = new Float64Array(B * d);
  const gAux = new Float64Array(B * d);
  for (let b = 0; b < B; b++) {
    let rowSe = 0;
    for (let c = 0; c < d; c++) {
      const o = b * d + c;
      const e = xHat[o] - x[o];
      rowSe += e * e;
      sea += (eHat[o] + e) ** 2;
      g[o] = 2 * lossScale * e;
      gAux[o] = gated ? 2 * lossScale * (eHat[o] + e) : 0;
    }
    se += rowSe;
    rawSe += rowSe * rowScale[b] * rowScale[b];
    for (let i = 0; i < N; i++) if (act[b * N + i] > 0) l0++;
  }
  const auxLoss = gated ? lossScale * sea : 0;
  // ∂L/∂a = W_dec,i · g_b (and W_dec,i · g_aux,b for Gated's gate).
  const dotDec = (src: Float64Array, b: number, i: number) => {
    let acc = 0;
    for (let c = 0; c < d; c++) acc += p.W_dec[i * d + c] * src[b * d + c];
    return acc;
  };
  const grads = zerosLike(p);
  const gpre = new Float64Array(B * N);
  const sA = new Float64Array(N);
  const base = new Float64Array(N);
  let penalty = 0;
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < N; i++) {
      const o = b * N + i;
      const z = pre[o];
      const ga = dotDec(g, b, i);
      let gW = 0;
      let gB = 0;
      switch (activation) {
        case 'prolu': {
          const m = z - p.b_enc[i];
          gW = gB = m > 0 && z > 0 ? ga + lam * nrm[i] : 0;
          base[i] += act[o];
          break;
        }
        case 'gated': {
          const er = Math.exp(ex[i]);
          const mag = er * (z - p.b_enc[i]) + ex[N + i];
          const gm = z > 0 && mag > 0 ? ga : 0;
          const gg = z > 0 ? lam * nrm[i] + dotDec(gAux, b, i) : 0;
          gW = gg + gm * er;
          gB = gg;
          grads.extra![i] += gm * er * (z - p.b_enc[i]);
          grads.extra![N + i] += gm;
          base[i] += Math.max(z, 0);
          break;
        }
        case 'jumprelu': {
          const th = Math.exp(ex[i]);
          gW = gB = z > th ? ga : 0;
          if (Math.abs(z - th) < 0.5 * eps) grads.extra![i] += (-th * (ga * th + lam)) / eps;
          base[i] += z > th ? 1 : 0;
          break;
        }
        default:
          gW = gB = z > 0 ? ga + lam * nrm[i] : 0;
          base[i] += act[o];
      }
      gpre[o] = gW;
      sA[i] += gW;
      grads.b_enc[i] += gB;
      for (let c = 0; c < d; c++) {
        grads.W_enc[i * d + c] += gW * (x[b * d + c] - p.b_pre[c]);
        grads.W_dec[i * d + c] += act[o] * g[b * d + c];
      }
    }
  }
  for (let i = 0; i < N; i++) {
    penalty += lam * base[i] * (activation === 'jumprelu' ? 1 : nrm[i]);
    if (activation === 'jumprelu') continue;
    const coef = (lam * base[i]) / Math.max(nrm[i], 1e-30);
    for (let c = 0; c < d; c++) grads.W_dec[i * d + c] += coef * p.W_dec[i * d + c];
  }
  for (let c = 0; c < d; c++) {
    let acc = 0;
    for (let b = 0; b < B; b++) acc += g[b * d + c];
    for (let i = 0; i < N; i++) acc -= sA[i] * p.W_enc[i * d + c];
    grads.b_pre[c] = acc;
  }
  const gradNorm = refUpdate(st, grads, cfg, lr);
  return {
    pre,
    topIdx: new Uint32Array(0),
    topVal: new Float64Array(0),
    xHat,
    deadList,
    auxIdx: new Uint32Array(0),
    auxVal: new Float64Array(0),
    eHat,
    loss: se * lossScale,
    auxLoss,
    rawSe,
    l0: l0 / B,
    gradNorm,
    grads,
    extra: penalty,
    act,
  };
}

/** Update after the gradients: projection, norm, clip, Adam, renormalization, EMA. Returns ‖grad‖. */
function refUpdate(st: RefState, grads: Params, cfg: ResolvedConfig, lr: number): number {
  const { d, nLatents: N } = cfg;
  const p = st.params;
  let sq = 0;
  for (let i = 0; i < N; i++) {
    let dot = 0;
    for (let c = 0; c < d; c++) dot += grads.W_dec[i * d + c] * p.W_dec[i * d + c];
    if (!cfg.gradProjection) dot = 0;
    for (let c = 0; c < d; c++) grads.W_dec[i * d + c] -= dot * p.W_dec[i * d + c];
  }
  const names = tensorNames(p);
  for (const name of names) for (const gx of grads[name]!) sq += gx * gx;
  const gradNorm = Math.sqrt(sq);
  const clip = cfg.clipGrad && gradNorm > cfg.clipNorm ? cfg.clipNorm / gradNorm : 1;
  st.t += 1;
  const { stepSize, bc2 } = adamScalars(cfg, st.t, lr);
  for (const name of names) {
    const th = p[name]!;
    const gr = grads[name]!;
    const m = st.m[name]!;
    const v = st.v[name]!;
    for (let o = 0; o < th.length; o++) {
      const gg = gr[o] * clip;
      m[o] = cfg.beta1 * m[o] + (1 - cfg.beta1) * gg;
      v[o] = cfg.beta2 * v[o] + (1 - cfg.beta2) * gg * gg;
      th[o] -= (stepSize * m[o]) / (Math.sqrt(v[o] * bc2) + cfg.eps);
    }
  }
  if (cfg.unitNormDecoder) {
    for (let i = 0; i < N; i++) {
      let n2 = 0;
      for (let c = 0; c < d; c++) n2 += p.W_dec[i * d + c] ** 2;
      const inv = 1 / Math.max(Math.sqrt(n2), 1e-30);
      for (let c = 0; c < d; c++) p.W_dec[i * d + c] *= inv;
    }
  }
  if (st.ema) {
    for (const name of names) {
      const e = st.ema[name]!;
      const th = p[name]!;
      for (let o = 0; o < th.length; o++) e[o] = cfg.emaDecay * e[o] + (1 - cfg.emaDecay) * th[o];
    }
  }
  return gradNorm;
}
