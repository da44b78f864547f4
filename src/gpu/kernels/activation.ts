import code from '../../../shaders/activation.wgsl?raw';
import { groupsFor, phases } from './kernel';

/** The threshold activations this kernel computes, by the VARIANT code activation.wgsl switches on. */
const ACTIVATION_CODE = {
  relu: 2,
  prolu: 3,
  gated: 4,
  jumprelu: 5,
} as const;
type ThresholdActivation = keyof typeof ACTIVATION_CODE;
/** Floats per latent in latStats (db_enc, dextra0, dextra1, Σ ∂L/∂pre, penalty, Σ penalty base). */
export const LAT_STATS = 6;

/**
 * The threshold activations (ReLU, ProLU, Gated, JumpReLU) forward and backward, dense over a
 * micro-batch [b, N] (B = b, its most rows; the whole batch when it fits).
 * Bindings: pre, act, actAux, gact, gactAux, gpre [b,N]; b_enc [N], extra [2N], decNorm [N],
 * latStats [N·6], W_dec, dW_dec [N,d], db_enc [N], dextra [2N], firesStep [N], g [B,d], W_enc [N,d],
 * db_pre [d], metrics, normPart [N], params, rowStats [B,4], the micro-batch's MicroBatch uniform.
 */
export function createActivation(
  device: GPUDevice,
  s: { B: number; N: number; d: number; activation: string },
) {
  const VARIANT = ACTIVATION_CODE[s.activation as ThresholdActivation];
  if (VARIANT === undefined)
    throw new Error(`activation kernel: ${s.activation} is not a threshold activation`);
  const c = { VARIANT };
  const perLatent = groupsFor(device, s.N, 64);
  const perElem = groupsFor(device, s.B * s.N, 256);
  return phases(device, `activation-${s.activation}`, code, [
    // VARIANT only where the entry reads it (Dawn rejects constants an entry point does not use).
    { entry: 'dec_norm_rows', groups: perLatent },
    { entry: 'act_fwd', constants: c, groups: perElem },
    { entry: 'dense_fires', groups: perLatent },
    { entry: 'row_l0', groups: groupsFor(device, s.B) },
    { entry: 'act_bwd', constants: c, groups: perElem },
    { entry: 'latent_sums', constants: c, groups: perLatent },
    { entry: 'latent_apply', constants: c, groups: perLatent },
    { entry: 'dense_bpre', groups: groupsFor(device, s.d, 64) },
    { entry: 'pen_reduce', groups: 1 },
    { entry: 'norm_extra', groups: perLatent },
  ]);
}
