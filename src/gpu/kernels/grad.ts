import code from '../../../shaders/grad-latent.wgsl?raw';
import { groupsFor, loopGroups, phases } from './kernel';
import { levelOfWgsl } from './levels';

/**
 * Sparse backward: gv per entry, then per-latent sums over the sorted lists, then db_pre; each of
 * gv, grad_dec, grad_enc and bpre_part runs once per latent shard (`shardN`: most latents in one).
 * Bindings: idxAll, valAll, g, gAux, W_dec shard, gvAll (out), start, rows, x, b_pre, W_enc shard,
 * dW_dec shard, dW_enc shard, db_enc, db_pre, params, shard uniform, encPart [d].
 * `widths` (Matryoshka): g is [G, B, d] and a main entry reads its latent's level's slice.
 * Run 'gv' before the sums (`sums`, which read it); the sort may run in between; bpre_part over
 * every shard in order, then bpre_final.
 */
export function createGrad(
  device: GPUDevice,
  s: { d: number; shardN: number; entries: number; widths?: readonly number[] },
) {
  // vec4 sums where d allows (bit-identical; fewer per-entry reads per column), scalar otherwise.
  const v4 = s.d % 4 === 0;
  const sums = v4 ? ['grad_dec_v4', 'grad_enc_v4'] : ['grad_dec', 'grad_enc'];
  const k = phases(
    device,
    'grad-latent',
    code,
    [
      { entry: 'gv', groups: groupsFor(device, s.entries, 64) },
      ...sums.map((entry) => ({ entry, groups: loopGroups(device, s.shardN) })),
      { entry: 'bpre_part', groups: groupsFor(device, s.d, 64) },
      { entry: 'bpre_final', groups: groupsFor(device, s.d, 64) },
    ],
    {
      CPT: Math.max(1, Math.ceil(s.d / 64)),
      CPT4: Math.max(1, Math.ceil(s.d / 4 / 16)),
      LEVEL_OF: levelOfWgsl(s.widths ?? [1]),
    },
  );
  return {
    /** the per-latent sums' entry points (run after the sort) */
    sums,
    /** Buffers in binding order 0–17 (see above); the vec4 views 18–23 are added here. */
    bind: (name: string, all: GPUBuffer[]) =>
      k.bind(name, [...all, all[2], all[3], all[8], all[9], all[11], all[12]]),
    run: k.run,
  };
}
