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
      // A thread per 4 entries on a GPU; on software 64 a thread, whose batches of lanes then pay their
      // start once per 64 atomics rather than 4 (SwiftShader, alternating in one pass, B·k = 32768:
      // 128 workgroups 0.73 ms, 32 0.49, 8 0.40).
      { entry: 'count_fires', groups: groupsFor(device, s.B * s.k, gpuForms(device) ? 256 : 4096) },
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
