import code from '../../../shaders/dead.wgsl?raw';
import { groupsFor, phases } from './kernel';
import { auxDispatch } from './topk';

/**
 * Fire counts, tokens-since-fired counters, dead flags and the ordered dead list.
 * Bindings: idxAll, valAll, firesStep [N], tokensSince [N], firesTotal [N], deadFlag [N], deadList [N],
 * deadInfo [8] (count, then the indirect dispatches of the AuxK bitonic TopK and of topk_rank_many), params.
 */
export function createDead(device: GPUDevice, s: { B: number; N: number; k: number }) {
  return phases(device, 'dead', code, [
    { entry: 'count_fires', groups: groupsFor(device, s.B * s.k, 256) },
    { entry: 'update_dead', groups: groupsFor(device, s.N, 256) },
    { entry: 'compact_dead', constants: auxDispatch(device, s.B), groups: 1 },
  ]);
}
