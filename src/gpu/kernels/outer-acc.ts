import code from '../../../shaders/outer-acc.wgsl?raw';
import { groupsFor, phases } from './kernel';

/**
 * out[i] = Σ_b A[b,i]·(Y[b] − y0): the dense backward's dW_enc (A = ∂L/∂pre, Y = x, y0 = b_pre) and
 * dW_dec (A = activations, Y = g, y0 = 0). Bindings: A [b,N], Y [B,d], y0 [d], out [N,d], params, the
 * micro-batch's MicroBatch uniform (A's rows are Y's rows row0…; accBwd: out += the sums).
 */
export function createOuterAcc(device: GPUDevice, s: { N: number }) {
  return phases(device, 'outer-acc', code, [{ entry: 'outer_acc', groups: groupsFor(device, s.N) }]);
}
