import code from '../../../shaders/loss.wgsl?raw';
import { gpuForms, groupsFor, idleAux, loopGroups, phases } from './kernel';

/** Byte offset in deadInfo of loss_grad_v4's dispatch, which compact_dead writes (dead.wgsl). */
export const LOSS_GRAD_OFFSET = 64;

/**
 * loss_grad_v4's workgroups where its dispatch comes from deadInfo (0 workgroups while AuxK is idle):
 * the software vec4 form with IDLE_AUX; 0 elsewhere (then it is dispatched directly).
 */
export function lossGradIndirect(device: GPUDevice, s: { B: number; d: number; idleAux: boolean }): number {
  const v4 = !gpuForms(device) && s.d % 4 === 0;
  return v4 && s.idleAux && idleAux(device) ? lossGradGroups(device, s.B, s.d, true) : 0;
}

const lossGradGroups = (device: GPUDevice, B: number, d: number, v4: boolean) =>
  loopGroups(device, Math.ceil((B * d) / (v4 ? 4 : 1) / 256));

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
    /**
     * deadInfo, where compact_dead writes loss_grad_v4's dispatch (LOSS_GRAD_OFFSET), sized by
     * lossGradIndirect: used where that is not 0
     */
    indirect?: GPUBuffer;
  },
) {
  // The software forms (loss.wgsl): vec4 rows, column sums and gradients where d allows, finalize in
  // one thread; the same bits as the GPU forms.
  const soft = !gpuForms(device);
  const v4 = soft && s.d % 4 === 0;
  const auxTail4 = s.auxTail4 ?? 0;
  if (auxTail4 > 0 && !v4)
    throw new Error("loss: g's copy of g_aux is written by the vec4 software form only");
  const idle = { IDLE_AUX: (s.idleAux ?? false) && idleAux(device) };
  const k = phases(
    device,
    'loss',
    code,
    [
      {
        entry: v4 ? 'loss_rows_v4' : 'loss_rows',
        ...(v4 ? { constants: idle } : {}),
        groups: groupsFor(device, s.B, 64),
      },
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
        constants: idle,
        groups: lossGradGroups(device, s.B, s.d, v4),
        ...(s.indirect && lossGradIndirect(device, { B: s.B, d: s.d, idleAux: s.idleAux ?? false }) > 0
          ? { indirect: { buffer: s.indirect, offset: LOSS_GRAD_OFFSET } }
          : {}),
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
