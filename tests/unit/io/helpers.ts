/** Seeded random SAE weights and activations for the io tests. */
import type { ParamsF32, TrainState } from '../../../src/sae/step-buffers.ts';

/** mulberry32 → standard normal via Box–Muller; deterministic per seed. */
function rng(seed: number) {
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(u() + 1e-12)) * Math.cos(2 * Math.PI * u());
  return { u, normal };
}

export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r.normal() * scale);
}

/** Random TopK SAE: unit decoder rows, encoder ≈ decoder (tied-ish), small biases. */
export function randomParams(d: number, N: number, seed: number): ParamsF32 {
  const W_dec = randn(N * d, seed);
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += W_dec[i * d + j] ** 2;
    for (let j = 0; j < d; j++) W_dec[i * d + j] /= Math.sqrt(s);
  }
  const noise = randn(N * d, seed + 1, 0.1);
  return {
    W_enc: W_dec.map((w, i) => w * 0.9 + noise[i]),
    b_enc: randn(N, seed + 2, 0.1),
    W_dec,
    b_pre: randn(d, seed + 3, 0.3),
  };
}

export function randomState(d: number, N: number, seed: number, ema: boolean): TrainState {
  const r = rng(seed + 100);
  return {
    params: randomParams(d, N, seed),
    m: randomParams(d, N, seed + 10),
    v: randomParams(d, N, seed + 20),
    ema: ema ? randomParams(d, N, seed + 30) : null,
    tokensSince: Uint32Array.from({ length: N }, () => Math.floor(r.u() * 2 ** 32)),
    firesTotal: Uint32Array.from({ length: N }, () => Math.floor(r.u() * 1e6)),
  };
}

/** max |a − b| / max |b| */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

/**
 * A realistic BatchTopK inference threshold for tests: the (rows·k)-th largest relu'd
 * pre-activation of the normalized rows u [rows, d] (what one batch cut τ would be), and the
 * largest count of pre-activations above it in any row (a row's code equals the JumpReLU export's
 * only while that count is ≤ the candidate cap min(N, 4k, 512)).
 */
export function batchTau(p: ParamsF32, u: ArrayLike<number>, k: number): { tau: number; maxAbove: number } {
  const d = p.b_pre.length;
  const N = p.b_enc.length;
  const rows = u.length / d;
  const pre = new Float64Array(rows * N);
  for (let b = 0; b < rows; b++)
    for (let i = 0; i < N; i++) {
      let s = p.b_enc[i];
      for (let j = 0; j < d; j++) s += (u[b * d + j] - p.b_pre[j]) * p.W_enc[i * d + j];
      pre[b * N + i] = s;
    }
  const tau = Float64Array.from(pre, (v) => Math.max(v, 0))
    .sort()
    .reverse()[rows * k - 1];
  let maxAbove = 0;
  for (let b = 0; b < rows; b++) {
    let c = 0;
    for (let i = 0; i < N; i++) if (pre[b * N + i] > tau) c++;
    maxAbove = Math.max(maxAbove, c);
  }
  return { tau, maxAbove };
}
