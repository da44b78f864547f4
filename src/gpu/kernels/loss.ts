import code from '../../../shaders/loss.wgsl?raw';
import { gpuForms, groupsFor, idleAux, loopGroups, phases } from './kernel';

/**
 * Main and AuxK losses, the metrics slot, and the gradients w.r.t. x̂ and ê.
 * Bindings: x, xHat, eHat [B,d], valAll, rowScale [B], rowStats [B,4], colR [d], scal [8], deadInfo,
 * metrics ring, g [B,d] (out), gAux [B,d] (out), params.
 */
export function createLoss(
  device: GPUDevice,
  s: {
    B: number;
    d: number;
    /** where g's copy of g_aux starts, in vec4s (grad.ts oneWalkTail4; written by loss_grad_v4); 0: none */
    auxTail4?: number;
    /** AuxK's entries come from the AuxK TopK alone, and db_pre leaves g_aux out with no candidate */
    idleAux?: boolean;
  },
) {
  // The software forms (loss.wgsl): vec4 rows, column sums and gradients where d allows, finalize in
  // one thread; the same bits as the GPU forms.
  const soft = !gpuForms(device);
  const v4 = soft && s.d % 4 === 0;
  const auxTail4 = s.auxTail4 ?? 0;
  if (auxTail4 > 0 && !v4)
    throw new Error("loss: g's copy of g_aux is written by the vec4 software form only");
  const k = phases(
    device,
    'loss',
    code,
    [
      { entry: v4 ? 'loss_rows_v4' : 'loss_rows', groups: groupsFor(device, s.B, 64) },
      // A workgroup per column with a fixed tree on a GPU; the same sums by a thread per column on a
      // software adapter (bit for bit the same: colsum_r_seq in loss.wgsl).
      !soft
        ? { entry: 'colsum_r', groups: groupsFor(device, s.d) }
        : v4
          ? { entry: 'colsum_r_seq4', groups: groupsFor(device, s.d / 4, 4) }
          : { entry: 'colsum_r_seq', groups: groupsFor(device, s.d, 16) },
      { entry: soft ? 'finalize_seq' : 'finalize', groups: 1 },
      {
        entry: v4 ? 'loss_grad_v4' : 'loss_grad',
        constants: { IDLE_AUX: (s.idleAux ?? false) && idleAux(device) },
        groups: loopGroups(device, Math.ceil((s.B * s.d) / (v4 ? 4 : 1) / 256)),
      },
    ],
    { AUX_TAIL4: auxTail4 },
  );
  return {
    ...k,
    /** Bindings 0–12 as above; the vec4 views of x, xHat, eHat, g, gAux follow (13–17). */
    bind: (name: string, all: GPUBuffer[]) =>
      k.bind(name, [...all, all[0], all[1], all[2], all[10], all[11]]),
  };
}
