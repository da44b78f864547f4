import updateWgsl from '../../../shaders/update.wgsl?raw';
import code from '../../../shaders/update-fused.wgsl?raw';
import { gpuForms, groupsFor, phases } from './kernel';

/**
 * Whether the step updates W_dec and W_enc with update_rows_v4 (update-fused.wgsl) instead of the
 * projection, Adam and renormalization kernels: software adapters (a thread per row, as their
 * forms of those kernels), d % 4 == 0 (vec4 views), no gradient clipping (Adam would wait for
 * the global norm), and a device that binds its 10 storage buffers (WebGPU's default is 8; createGpu
 * asks for the adapter's limit, 10 on SwiftShader).
 */
export function fusedRowUpdate(device: GPUDevice, s: { d: number; clipGrad: boolean }): boolean {
  return (
    (rowUpdateOverride.get(device) ?? !gpuForms(device)) &&
    s.d % 4 === 0 &&
    !s.clipGrad &&
    device.limits.maxStorageBuffersPerShaderStage >= STORAGE_BUFFERS
  );
}

/** Storage buffers update_rows_v4 binds. */
const STORAGE_BUFFERS = 10;

const rowUpdateOverride = new WeakMap<GPUDevice, boolean>();
/** Tests: the fused row update on or off for steps built after this on `device` (null: the device decides). */
export function setFusedRowUpdate(device: GPUDevice, on: boolean | null) {
  if (on === null) rowUpdateOverride.delete(device);
  else rowUpdateOverride.set(device, on);
}

/**
 * The [N, d] tensors' projection, Adam and renormalization in one walk per latent row of a shard of
 * `shardN` latents. Bindings: W_dec, dW_dec, W_enc, dW_enc, m_W_dec, v_W_dec, m_W_enc, v_W_enc (the
 * shard's), db_enc [N], normPart [N], params, shard uniform. The module is update.wgsl's with
 * update-fused.wgsl appended (its bindings and row sums).
 */
export function createUpdateFused(device: GPUDevice, s: { shardN: number; renorm: boolean }) {
  const k = phases(device, 'update-fused', updateWgsl + code, [
    { entry: 'update_rows_v4', constants: { RENORM: s.renorm }, groups: groupsFor(device, s.shardN, 64) },
  ]);
  return {
    ...k,
    bind: (name: string, all: GPUBuffer[]) => {
      const [W_dec, dW_dec, W_enc, dW_enc, m_dec, v_dec, m_enc, v_enc, db_enc, normPart, params, shard] = all;
      // update.wgsl's positions 0–12 (4, 6, 7 unused here: any buffer), then update-fused.wgsl's 13–17.
      return k.bind(name, [
        W_dec,
        dW_dec,
        dW_enc,
        db_enc,
        db_enc,
        normPart,
        normPart,
        normPart,
        params,
        shard,
        W_dec,
        dW_dec,
        dW_enc,
        W_enc,
        m_dec,
        v_dec,
        m_enc,
        v_enc,
      ]);
    },
  };
}
