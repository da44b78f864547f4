import code from '../../../shaders/topk-merge.wgsl?raw';
import { groupsFor, phases } from './kernel';

/** Bytes of a MergeParams uniform (C, 3 × pad). */
const MERGE_PARAMS_BYTES = 16;

/**
 * Running TopK over latent tiles (shaders/topk-merge.wgsl). K is the per-row list width the StepParams
 * give for this mode: k (main), kAux (aux), k + kAux (multi); any K ≥ 1.
 *
 * Bindings (one positional list for all three phases, as phases().bind takes):
 *   0 listIdx [C, B, K] u32, 1 listVal [C, B, K] f32  (raw lists from a tiled TopK or the fused kernel)
 *   2 bestIdx [B, K] u32, 3 bestVal [B, K] f32          (the running best; B·K·8 bytes)
 *   4 idxAll, 5 valAll                                  (the step's entry arrays, written by emit)
 *   6 params (StepParams), 7 mergeParams(C)
 * Phases: init (best ← padding), merge (best ← top K of best ∪ the C lists), emit (best → entries).
 * Per step: init once, merge after each tile's lists are written, emit once after the last tile.
 * mergeParams(C) returns one cached 16-byte uniform per C; destroy() frees them.
 */
export function createTopKMerge(
  device: GPUDevice,
  s: { B: number; K: number; aux?: boolean; multi?: boolean },
) {
  if (s.K < 1) throw new Error(`topk-merge: K must be ≥ 1, got ${s.K}`);
  const constants = { AUX: s.aux ?? false, MULTI: s.multi ?? false };
  const kernel = phases(device, 'topk-merge', code, [
    { entry: 'merge_init', constants, groups: groupsFor(device, s.B * s.K, 64) },
    { entry: 'merge_lists', constants, groups: groupsFor(device, s.B, 64) },
    { entry: 'merge_emit', constants, groups: groupsFor(device, s.B * s.K, 64) },
  ]);
  const uniforms = new Map<number, GPUBuffer>();
  return {
    ...kernel,
    /** The MergeParams uniform for C lists per merge (cached per C; binding 7). */
    mergeParams(C: number): GPUBuffer {
      if (!(C >= 1)) throw new Error(`topk-merge: C must be ≥ 1, got ${C}`);
      let buf = uniforms.get(C);
      if (!buf) {
        buf = device.createBuffer({
          label: `topk-merge:C=${C}`,
          size: MERGE_PARAMS_BYTES,
          usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        });
        device.queue.writeBuffer(buf, 0, new Uint32Array([C, 0, 0, 0]));
        uniforms.set(C, buf);
      }
      return buf;
    },
    init(pass: GPUComputePassEncoder, bgs: GPUBindGroup[]) {
      kernel.run(pass, bgs, ['merge_init']);
    },
    merge(pass: GPUComputePassEncoder, bgs: GPUBindGroup[]) {
      kernel.run(pass, bgs, ['merge_lists']);
    },
    emit(pass: GPUComputePassEncoder, bgs: GPUBindGroup[]) {
      kernel.run(pass, bgs, ['merge_emit']);
    },
    destroy() {
      for (const b of uniforms.values()) b.destroy();
      uniforms.clear();
    },
  };
}
