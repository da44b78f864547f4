/**
 * The float64 twin's parameters and training state (Adam moments, EMA, dead-latent counters),
 * and what one reference step returns. Shapes as in step.ts.
 */

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
  /** BatchTopK's running inference threshold θ (−1 until the first update; shaders/batch-topk.wgsl). */
  inferenceThreshold: number;
}

/** The tensors present in p: the four of every SAE, and `extra` where the activation has one. */
export function tensorNames(p: Params): (keyof Params)[] {
  return p.extra ? [...PARAM_NAMES, 'extra'] : [...PARAM_NAMES];
}

export function zerosLike(p: Params): Params {
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
    inferenceThreshold: -1,
  };
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
  /** Matryoshka: lossScale·Σ over the inner prefixes of ‖x̂_h − x‖² (in the gradient; not in `loss`, which is the full width's); 0 otherwise. */
  nestedLoss?: number;
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
