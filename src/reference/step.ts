/**
 * Float64 twin of one GPU training step (src/sae/step.ts): the same order of operations, the same
 * TopK order (value desc, ties to the lower index, NaN lowest), the same dead-latent rule and AuxK.
 * Shapes: x [B, d] (normalized space), W_enc/W_dec [N, d] latent-major, b_enc [N], b_pre [d].
 */
import { isBatchCut, isDense, l1At, type ResolvedConfig } from '../sae/config';
import { encodeRef } from './encode';
import { type RefState, type RefStepOut, zerosLike } from './state';
import { refStepDense } from './step-dense';
import { refUpdate, updateDead } from './update';

export const NONE = 0xffffffff;
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

/**
 * One step in float64, mutating `st`. x: normalized batch [B, d]; rowScale [B] maps normalized errors
 * back to raw units; lossScale = 1 / (B · c); lr for this step (after warm-up); l1 the sparsity
 * coefficient λ of this step (after its warm-up). Dispatches on cfg.activation.
 * Long on purpose: it reads top to bottom in the GPU step's phase order (docs/DESIGN.md §2), which is
 * what a kernel test compares against.
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
  const kr = isBatchCut(cfg.activation) ? cfg.batchTopKCap : k;

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
  if (isBatchCut(cfg.activation)) {
    // BatchTopK: keep the B·k largest of the batch's candidates; τ is the (B·k)-th largest.
    const sorted = Float64Array.from(top.val).sort().reverse();
    tau = sorted[Math.min(B * k, sorted.length) - 1];
    for (let e = 0; e < top.val.length; e++) if (top.val[e] < tau) top.val[e] = 0;
    if (st.t + 1 > cfg.batchTopKThresholdStart) {
      // θ: running estimate of the smallest positive activation the cut kept (dictionary_learning's
      // update_threshold): τ when τ > 0, else the smallest positive candidate, 0 when none is positive.
      let m = tau;
      if (!(tau > 0)) {
        m = Infinity;
        for (const v of top.val) if (v > 0 && v < m) m = v;
        if (m === Infinity) m = 0;
      }
      const beta = cfg.batchTopKThresholdBeta;
      st.inferenceThreshold = st.inferenceThreshold < 0 ? m : beta * st.inferenceThreshold + (1 - beta) * m;
    }
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
  // Matryoshka: the gradient source of a latent of level h is gScale·Σ_{h' ≥ h} e_h' (every prefix
  // that holds it); gLevel[0] (all prefixes) also feeds b_pre. One level (every other activation): g.
  const nested = cfg.activation === 'matryoshka' ? nestedGrads(top, p, x, xHat, cfg, gScale) : null;
  const gLevel = nested?.g ?? [g];
  const levelOf = latentLevels(cfg);

  // Backward through the indices.
  const grads = zerosLike(p);
  const entry = (idx: Uint32Array, val: Float64Array, K: number, srcOf: (i: number) => Float64Array) => {
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < K; j++) {
        const i = idx[b * K + j];
        const v = val[b * K + j];
        if (i === NONE) continue;
        const src = srcOf(i);
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
  entry(top.idx, top.val, kr, (i) => gLevel[levelOf(i)]);
  entry(aux.idx, aux.val, kAux, () => gAux);
  for (let c = 0; c < d; c++) {
    let acc = 0;
    // AuxK's ê is decoded with + b_pre and its target's b_pre is detached (openai's train.py), so
    // b_pre receives ∂Laux/∂ê; Multi-TopK's share is already in g.
    for (let b = 0; b < B; b++) acc += gLevel[0][b * d + c] + (multi ? 0 : gAux[b * d + c]);
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
    nestedLoss: (nested?.innerSe ?? 0) * lossScale,
    auxLoss,
    rawSe,
    l0: l0 / B,
    gradNorm,
    grads,
    extra: tau,
  };
}

/** Level of each latent: the first h with i < matryoshkaWidths[h] (0 for every latent of one level). */
function latentLevels(cfg: ResolvedConfig): (i: number) => number {
  const w = cfg.matryoshkaWidths;
  return (i) => {
    let h = 0;
    while (h < w.length - 1 && i >= w[h]) h++;
    return h;
  };
}

/**
 * Matryoshka's gradient sources [G][B, d]: with x̂_h = b_pre + Σ_{entries of level ≤ h} a·W_dec the
 * reconstruction by the first m_h latents (x̂_{G−1} = x̂) and e_h = x̂_h − x, the loss
 * lossScale·Σ_h ‖e_h‖² gives a latent of level h the source gScale·E_h, E_h = Σ_{h' ≥ h} e_h'.
 * innerSe = Σ_{h < G−1} ‖e_h‖² (the prefixes' share of the loss; the full width's is the main loss).
 */
function nestedGrads(
  top: { idx: Uint32Array; val: Float64Array },
  p: { b_pre: ArrayLike<number>; W_dec: ArrayLike<number> },
  x: ArrayLike<number>,
  xHat: Float64Array,
  cfg: ResolvedConfig,
  gScale: number,
): { g: Float64Array[]; innerSe: number } {
  const { d } = cfg;
  const B = x.length / d;
  const G = cfg.matryoshkaWidths.length;
  const K = top.idx.length / B;
  const levelOf = latentLevels(cfg);
  const out = Array.from({ length: G }, () => new Float64Array(B * d));
  const part = Array.from({ length: G }, () => new Float64Array(d));
  let innerSe = 0;
  for (let b = 0; b < B; b++) {
    for (const q of part) q.fill(0);
    for (let j = 0; j < K; j++) {
      const i = top.idx[b * K + j];
      const v = top.val[b * K + j];
      if (i === NONE || v === 0) continue;
      const q = part[levelOf(i)];
      for (let c = 0; c < d; c++) q[c] += v * p.W_dec[i * d + c];
    }
    for (let c = 0; c < d; c++) {
      const o = b * d + c;
      // Inner prefixes' errors, then E_h summed from the full width down.
      const inner = new Float64Array(G);
      let acc = p.b_pre[c];
      for (let h = 0; h < G - 1; h++) {
        acc += part[h][c];
        inner[h] = acc - x[o];
        innerSe += inner[h] ** 2;
      }
      let E = xHat[o] - x[o];
      out[G - 1][o] = gScale * E;
      for (let h = G - 2; h >= 0; h--) {
        E += inner[h];
        out[h][o] = gScale * E;
      }
    }
  }
  return { g: out, innerSe };
}
