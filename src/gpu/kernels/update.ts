import code from '../../../shaders/update.wgsl?raw';
import { groupsFor, phases } from './kernel';

/**
 * Decoder-gradient projection and global gradient norm / clip factor (before Adam); decoder
 * renormalization (after). project_dec and renorm_dec run per latent shard (`shardN`: most latents in one).
 * Bindings: W_dec shard, dW_dec shard, dW_enc shard, db_enc, db_pre, normPart [N], scal, metrics, params, shard uniform.
 */
export function createUpdate(device: GPUDevice, s: { shardN: number }) {
  return phases(device, 'update', code, [
    { entry: 'project_dec', groups: groupsFor(device, s.shardN, 64) },
    { entry: 'clip_reduce', groups: 1 },
    { entry: 'renorm_dec', groups: groupsFor(device, s.shardN, 64) },
  ]);
}
