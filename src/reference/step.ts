/**
 * Float64 twin of one GPU training step (src/sae/step.ts): the same order of operations, the same
 * TopK order (value desc, ties to the lower index, NaN lowest), the same dead-latent rule and AuxK.
 * Shapes: x [B, d] (normalized space), W_enc/W_dec [N, d] latent-major, b_enc [N], b_pre [d].
 */
import { adamScalars, type ResolvedConfig } from '../sae/config';
import { encodeRef } from './encode';

export const NONE = 0xffffffff;

export interface Params<T = Float64Array> {
  W_enc: T;
  b_enc: T;
  W_dec: T;
  b_pre: T;
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

export function zerosLike(p: Params): Params {
  return {
    W_enc: new Float64Array(p.W_enc.length),
    b_enc: new Float64Array(p.b_enc.length),
    W_dec: new Float64Array(p.W_dec.length),
    b_pre: new Float64Array(p.b_pre.length),
  };
}

export function cloneParams(p: Params): Params {
  return { W_enc: p.W_enc.slice(), b_enc: p.b_enc.slice(), W_dec: p.W_dec.slice(), b_pre: p.b_pre.slice() };
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
}

/**
 * One step in float64, mutating `st`. x: normalized batch [B, d]; rowScale [B] maps normalized errors
 * back to raw units; lossScale = 1 / (B · c); lr for this step (after warm-up).
 */
export function refStep(
  st: RefState,
  x: ArrayLike<number>,
  rowScale: ArrayLike<number>,
  cfg: ResolvedConfig,
  lossScale: number,
  lr: number,
): RefStepOut {
  const { d, nLatents: N, k, kAux } = cfg;
  const B = x.length / d;
  const p = st.params;

  const pre = encodeRef(x, p.b_pre, p.W_enc, p.b_enc, B, d, N);
  const top = topkRef(pre, B, N, k);
  const xHat = decodeRef(top.idx, top.val, p.W_dec, p.b_pre, B, d, k);

  // Dead bookkeeping after the main TopK, before AuxK (as the released code updates its stats in forward).
  const fires = new Uint32Array(N);
  for (let e = 0; e < B * k; e++)
    if (top.idx[e] !== NONE && top.val[e] > cfg.fireThreshold) fires[top.idx[e]]++;
  const deadList: number[] = [];
  for (let i = 0; i < N; i++) {
    st.firesTotal[i] += fires[i];
    const prev = st.tokensSince[i];
    st.tokensSince[i] = fires[i] > 0 ? 0 : prev > 0xffffffff - B ? 0xffffffff : prev + B;
    if (st.tokensSince[i] > cfg.deadTokens) deadList.push(i);
  }
  const auxCands = cfg.auxk ? deadList : [];
  const aux = topkRef(pre, B, N, kAux, auxCands);
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
    for (let j = 0; j < k; j++) if (top.val[b * k + j] > 0) l0++;
  }
  let r2 = 0;
  for (let c = 0; c < d; c++) r2 += colR[c] * colR[c];
  const D = se - r2 / B;
  const auxOn = cfg.auxk && deadList.length > 0 && D > 1e-30;
  const auxLoss = auxOn ? (cfg.auxCoef * sea) / D : 0;
  const gScale = 2 * lossScale;
  const gAuxScale = auxOn ? (2 * cfg.auxCoef) / D : 0;
  const g = new Float64Array(B * d);
  const gAux = new Float64Array(B * d);
  for (let o = 0; o < B * d; o++) {
    const e = xHat[o] - x[o];
    g[o] = gScale * e;
    gAux[o] = gAuxScale * (eHat[o] + e);
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
  entry(top.idx, top.val, k, g);
  entry(aux.idx, aux.val, kAux, gAux);
  for (let c = 0; c < d; c++) {
    let acc = 0;
    for (let b = 0; b < B; b++) acc += g[b * d + c];
    for (let i = 0; i < N; i++) acc -= grads.b_enc[i] * p.W_enc[i * d + c];
    grads.b_pre[c] = acc;
  }

  // Update: projection, norm, clip, Adam, renormalize, EMA.
  let sq = 0;
  for (let i = 0; i < N; i++) {
    let dot = 0;
    for (let c = 0; c < d; c++) dot += grads.W_dec[i * d + c] * p.W_dec[i * d + c];
    if (!cfg.gradProjection) dot = 0;
    for (let c = 0; c < d; c++) grads.W_dec[i * d + c] -= dot * p.W_dec[i * d + c];
  }
  for (const name of PARAM_NAMES) for (const gx of grads[name]) sq += gx * gx;
  const gradNorm = Math.sqrt(sq);
  const clip = cfg.clipGrad && gradNorm > cfg.clipNorm ? cfg.clipNorm / gradNorm : 1;
  st.t += 1;
  const { stepSize, bc2 } = adamScalars(cfg, st.t, lr);
  for (const name of PARAM_NAMES) {
    const th = p[name];
    const gr = grads[name];
    const m = st.m[name];
    const v = st.v[name];
    for (let o = 0; o < th.length; o++) {
      const gg = gr[o] * clip;
      m[o] = cfg.beta1 * m[o] + (1 - cfg.beta1) * gg;
      v[o] = cfg.beta2 * v[o] + (1 - cfg.beta2) * gg * gg;
      th[o] -= (stepSize * m[o]) / (Math.sqrt(v[o] * bc2) + cfg.eps);
    }
  }
  for (let i = 0; i < N; i++) {
    let n2 = 0;
    for (let c = 0; c < d; c++) n2 += p.W_dec[i * d + c] ** 2;
    const inv = 1 / Math.max(Math.sqrt(n2), 1e-30);
    for (let c = 0; c < d; c++) p.W_dec[i * d + c] *= inv;
  }
  if (st.ema) {
    for (const name of PARAM_NAMES) {
      const e = st.ema[name];
      const th = p[name];
      for (let o = 0; o < th.length; o++) e[o] = cfg.emaDecay * e[o] + (1 - cfg.emaDecay) * th[o];
    }
  }
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
  };
}
