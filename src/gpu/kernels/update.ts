import code from '../../../shaders/update.wgsl?raw';
import { gpuForms, groupsFor, loopGroups, phases } from './kernel';

/**
 * Decoder-gradient projection and global gradient norm / clip factor (before Adam); decoder
 * renormalization (after). project_dec and renorm_dec run per latent shard (`shardN`: most latents in one).
 * Bindings: W_dec shard, dW_dec shard, dW_enc shard, db_enc, db_pre, normPart [N], scal, metrics, params, shard uniform.
 */
export function createUpdate(device: GPUDevice, s: { shardN: number }) {
  // A workgroup per latent row on a GPU (coalesced columns, a tree for the row's sums); a thread per
  // row on a software adapter, where barriers cost more than the rows (kernel.ts gpuForms).
  const wg = gpuForms(device);
  const project = wg ? 'project_dec_wg' : 'project_dec';
  const renorm = wg ? 'renorm_dec_wg' : 'renorm_dec';
  const rows = wg ? loopGroups(device, s.shardN) : groupsFor(device, s.shardN, 64);
  return {
    ...phases(device, 'update', code, [
      { entry: project, groups: rows },
      { entry: 'clip_reduce', groups: 1 },
      { entry: renorm, groups: rows },
    ]),
    /** the entry points of the projection and of the renormalization */
    project,
    renorm,
  };
}
