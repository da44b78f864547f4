import code from '../../../shaders/update.wgsl?raw';
import { gpuForms, groupsFor, loopGroups, phases } from './kernel';

/**
 * Decoder-gradient projection and global gradient norm / clip factor (before Adam); decoder
 * renormalization (after). project_dec and renorm_dec run per latent shard (`shardN`: most latents in one).
 * Bindings: W_dec shard, dW_dec shard, dW_enc shard, db_enc, db_pre, normPart [N], scal, metrics, params,
 * shard uniform (then the vec4 views of the three shard buffers, added by `bind`).
 */
export function createUpdate(device: GPUDevice, s: { shardN: number; d: number }) {
  // A workgroup per latent row on a GPU (coalesced columns, a tree for the row's sums); a thread per
  // row on a software adapter, where barriers cost more than the rows (kernel.ts gpuForms), through
  // vec4 views where d allows (the same bits; SwiftShader, d = 768: see update.wgsl).
  const wg = gpuForms(device);
  const v4 = !wg && s.d % 4 === 0;
  const project = wg ? 'project_dec_wg' : v4 ? 'project_dec_v4' : 'project_dec';
  const renorm = wg ? 'renorm_dec_wg' : v4 ? 'renorm_dec_v4' : 'renorm_dec';
  const clip = wg ? 'clip_reduce' : 'clip_reduce_seq';
  const rows = wg ? loopGroups(device, s.shardN) : groupsFor(device, s.shardN, 64);
  const k = phases(device, 'update', code, [
    { entry: project, groups: rows },
    { entry: clip, groups: 1 },
    { entry: renorm, groups: rows },
  ]);
  return {
    ...k,
    bind: (name: string, all: GPUBuffer[]) => k.bind(name, [...all, all[0], all[1], all[2]]),
    /** the entry points of the projection, the norm's reduction and the renormalization */
    project,
    clip,
    renorm,
  };
}
