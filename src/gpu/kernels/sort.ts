import code from '../../../shaders/sort-by-latent.wgsl?raw';
import { SORT_SHORT, sortLongSlots } from '../kernel-variants';
import { groupsFor, phases } from './kernel';

/**
 * Stable, deterministic sort of the step's (latent, entry) pairs into per-latent lists (CSC).
 * Bindings: idxAll, counts [N] (zero between steps), start [N+1] (out), cursor [N], unordered [E],
 * rows [E] (out: entries grouped by latent, by row within), params, longList [sortLongSlots(E)]
 * (scratch: latents whose list is longer than SORT_SHORT).
 */
export function createSortByLatent(device: GPUDevice, s: { B: number; N: number; entries: number }) {
  const WORDS = Math.ceil((2 * s.B) / 32);
  if (2 * WORDS * 4 + 1024 > device.limits.maxComputeWorkgroupStorageSize) {
    throw new Error(`sort-by-latent: batch ${s.B} needs more workgroup memory than the adapter has`);
  }
  return phases(
    device,
    'sort-by-latent',
    code,
    [
      { entry: 'sort_count', groups: groupsFor(device, s.entries, 64) },
      { entry: 'sort_scan', groups: 1 },
      { entry: 'sort_scatter', groups: groupsFor(device, s.entries, 64) },
      { entry: 'sort_order_short', groups: groupsFor(device, s.N, 64) },
      // Enough workgroups to keep a real GPU busy; each walks the long list by stride.
      { entry: 'sort_order_long', groups: Math.min(256, sortLongSlots(s.entries) - 1) },
    ],
    { WORDS, SHORT: SORT_SHORT },
  );
}
