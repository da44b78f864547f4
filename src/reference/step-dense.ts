/**
 * Float64 twin of the dense step of the threshold family (relu, prolu, gated, jumprelu; the GPU
 * side is src/sae/step-dense.ts). Called by refStep (step.ts).
 */
import { l1Scale, type ResolvedConfig } from '../sae/config';
import { encodeRef } from './encode';
import { type RefState, type RefStepOut, zerosLike } from './state';
import { refUpdate, updateDead } from './update';

/**
 * The threshold family (shaders/activation.wgsl) in float64, dense over [B, N]: activation,
 * dense decode, penalty, Gated's aux reconstruction, the local gradients and the per-latent sums.
 * Long on purpose: one pass in the order of the dense kernels, each activation's case beside the others.
 */
export function refStepDense(
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
