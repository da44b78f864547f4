import code from '../../../shaders/grad-latent.wgsl?raw';
import { groupsFor, loopGroups, phases } from './kernel';

/**
 * Sparse backward: gv per entry, then per-latent sums over the sorted lists, then db_pre; each of
 * gv, grad_dec, grad_enc and bpre_part runs once per latent shard (`shardN`: most latents in one).
 * Bindings: idxAll, valAll, g, gAux, W_dec shard, gvAll (out), start, rows, x, b_pre, W_enc shard,
 * dW_dec shard, dW_enc shard, db_enc, db_pre, params, shard uniform, encPart [d].
 * Run 'gv' before the sums (they read it); the sort may run in between; bpre_part over every shard
 * in order, then bpre_final.
 */
export function createGrad(device: GPUDevice, s: { d: number; shardN: number; entries: number }) {
  return phases(
    device,
    'grad-latent',
    code,
    [
      { entry: 'gv', groups: groupsFor(device, s.entries, 64) },
      { entry: 'grad_dec', groups: loopGroups(device, s.shardN) },
      { entry: 'grad_enc', groups: loopGroups(device, s.shardN) },
      { entry: 'bpre_part', groups: groupsFor(device, s.d, 64) },
      { entry: 'bpre_final', groups: groupsFor(device, s.d, 64) },
    ],
    { CPT: Math.max(1, Math.ceil(s.d / 64)) },
  );
}
