import code from '../../../shaders/dead.wgsl?raw';
import { gpuForms, groupsFor, phases } from './kernel';
import { auxDispatch } from './topk';

/**
 * Fire counts, tokens-since-fired counters, dead flags and the ordered dead list.
 * Bindings: idxAll, valAll, firesStep [N], tokensSince [N], firesTotal [N], deadFlag [N], deadList [N],
 * deadInfo [DEAD_INFO_WORDS] (count, then the indirect dispatches of AuxK's TopK entries and decode and of
 * loss_grad_v4: dead.wgsl), params.
 */
export function createDead(
  device: GPUDevice,
  s: {
    B: number;
    N: number;
    k: number;
    /** loss_grad_v4's workgroups where the loss dispatches it from deadInfo (loss.ts lossGradIndirect) */
    lossGradGroups?: number;
  },
) {
  // One thread on a software adapter, where compact_dead's barriers cost more than the flags it reads.
  const compact = gpuForms(device) ? 'compact_dead' : 'compact_dead_seq';
  return {
    ...phases(device, 'dead', code, [
      { entry: 'count_fires', groups: groupsFor(device, s.B * s.k, 256) },
      { entry: 'update_dead', groups: groupsFor(device, s.N, 256) },
      {
        entry: compact,
        constants: { ...auxDispatch(device, s.B), LOSS_GRAD_GROUPS: s.lossGradGroups ?? 0 },
        groups: 1,
      },
    ]),
    /** the entry point that compacts the dead list (run after update_dead) */
    compact,
  };
}
