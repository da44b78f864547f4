/**
 * The twin's bookkeeping after the forward pass: dead-latent counters (updateDead), and the update
 * after the gradients (refUpdate: projection, norm, clip, Adam, renormalization, EMA), shared by
 * the sparse (step.ts) and dense (step-dense.ts) steps.
 */
import { adamScalars, type ResolvedConfig } from '../sae/config';
import { type Params, type RefState, tensorNames } from './state';

/** Fire counts → tokens-since and total-fire counters; returns the dead latents in index order. */
export function updateDead(st: RefState, fires: Uint32Array, B: number, cfg: ResolvedConfig): number[] {
  const deadList: number[] = [];
  for (let i = 0; i < fires.length; i++) {
    st.firesTotal[i] += fires[i];
    const prev = st.tokensSince[i];
    st.tokensSince[i] = fires[i] > 0 ? 0 : prev > 0xffffffff - B ? 0xffffffff : prev + B;
    if (st.tokensSince[i] > cfg.deadTokens) deadList.push(i);
  }
  return deadList;
}

/** Update after the gradients: projection, norm, clip, Adam, renormalization, EMA. Returns ‖grad‖. */
export function refUpdate(st: RefState, grads: Params, cfg: ResolvedConfig, lr: number): number {
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
