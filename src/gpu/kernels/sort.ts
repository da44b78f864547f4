import code from '../../../shaders/sort-by-latent.wgsl?raw';
import { SORT_SHORT, sortLongSlots } from '../kernel-variants';
import { gpuForms, groupsFor, phases } from './kernel';

/**
 * Stable, deterministic sort of the step's (latent, entry) pairs into per-latent lists (CSC).
 * Bindings: idxAll, counts [N] (zero between steps), start [N+1] (out), cursor [N], unordered [E],
 * rows [E] (out: entries grouped by latent, by row within), params, longList [sortLongSlots(E)]
 * (scratch: latents whose list is longer than SORT_SHORT), sortBlocks [G, N] (the row-block form's
 * counts; all zero between steps), valAll [E] (an entry is listed only where its value is positive).
 * `blocks` (the plan's sortBlocks, G): with G ≥ 2 and on a software adapter the row-block form runs (a
 * stable counting sort by blocks of rows, no barrier); otherwise atomic scatter + ordering. Both write
 * the same lists (the canonical order), so the choice changes speed only.
 */
export function createSortByLatent(
  device: GPUDevice,
  s: { B: number; N: number; entries: number; blocks: number },
) {
  const WORDS = Math.ceil((2 * s.B) / 32);
  if (2 * WORDS * 4 + 1024 > device.limits.maxComputeWorkgroupStorageSize) {
    throw new Error(`sort-by-latent: batch ${s.B} needs more workgroup memory than the adapter has`);
  }
  const G = Math.max(1, s.blocks);
  const rowBlocks = s.blocks >= 2 && !gpuForms(device);
  return phases(
    device,
    'sort-by-latent',
    code,
    rowBlocks
      ? [
          { entry: 'sort_block_count', groups: Math.ceil(G / 16) },
          { entry: 'sort_block_scan', groups: groupsFor(device, s.N, 64) },
          { entry: 'sort_scan', groups: 1 },
          { entry: 'sort_block_scatter', groups: Math.ceil(G / 16) },
        ]
      : [
          { entry: 'sort_count', groups: groupsFor(device, s.entries, 64) },
          { entry: 'sort_scan', groups: 1 },
          { entry: 'sort_scatter', groups: groupsFor(device, s.entries, 64) },
          { entry: 'sort_order_short', groups: groupsFor(device, s.N, 64) },
          // Enough workgroups to keep a real GPU busy; each walks the long list by stride.
          { entry: 'sort_order_long', groups: Math.min(256, sortLongSlots(s.entries) - 1) },
        ],
    { WORDS, SHORT: SORT_SHORT, G },
  );
}
