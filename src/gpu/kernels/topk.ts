import code from '../../../shaders/topk.wgsl?raw';
import { groupsFor, nextPow2, phases } from './kernel';

/** Largest tile: (KP + T)·8 bytes of workgroup memory stay within 32 KiB at KP = 512. */
export const TOPK_MAX_TILE = 2048;
/** The per-row insertion variant keeps KP entries in private memory: only for small k. */
export const TOPK_INSERT_MAX_K = 64;

export type TopKVariant = 'bitonic' | 'insert';

/**
 * TopK (or AuxK when aux) per row. 'bitonic': bitonic sort + merge of tiles in workgroup memory, any K in
 * [1, 512] and any N. 'insert': one invocation per row with a sorted private list (K ≤ 64).
 * `tile` (power of two ≥ KP) and `wg` (invocations per row, bitonic) are the autotuner's knobs: fewer
 * invocations make each barrier cheaper where barriers are emulated (SwiftShader).
 * multi (Multi-TopK): K = k + kAux per row, ranks ≥ k written to the AuxK region.
 * Bindings: pre [B,N], deadList [N], deadInfo [4], idxAll, valAll [B·(k+kAux)] (out), params.
 */
export function createTopK(
  device: GPUDevice,
  s: {
    B: number;
    N: number;
    K: number;
    aux: boolean;
    multi?: boolean;
    tile?: number;
    wg?: number;
    variant?: TopKVariant;
  },
) {
  const KP = nextPow2(s.K);
  if (s.K < 1 || KP > 512) throw new Error(`topk: K must be in [1, 512], got ${s.K}`);
  const insert = s.variant === 'insert' && KP <= TOPK_INSERT_MAX_K;
  const T = Math.max(KP, Math.min(s.tile ?? TOPK_MAX_TILE, nextPow2(s.N)));
  const WG = s.wg ?? 64;
  return phases(
    device,
    'topk',
    code,
    [
      insert
        ? {
            entry: 'topk_insert',
            constants: { AUX: s.aux, MULTI: s.multi ?? false },
            groups: groupsFor(device, s.B, 64),
          }
        : {
            entry: 'topk',
            constants: { AUX: s.aux, MULTI: s.multi ?? false },
            groups: groupsFor(device, s.B),
          },
    ],
    { KP, T, PER_THREAD: Math.max(1, T / 2 / WG), WG },
  );
}
