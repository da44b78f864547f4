import { Rng } from '../data/rng';
import { createBufferFrom, readF32, STORAGE } from '../gpu/buffers';
import { withErrorScopes } from '../gpu/device';
import { createEncode, type EncodeVariant } from '../gpu/kernels/encode';
import { encodeRef } from '../reference/encode';

export interface SelfCheckResult {
  kernel: string;
  variant: string;
  shape: { B: number; d: number; N: number };
  /** ‖got − want‖ / ‖want‖ */
  relErr: number;
  ok: boolean;
  ms: number;
}

function randomArray(n: number, seed: number, scale: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => (rng.nextFloat() - 0.5) * 2 * scale);
}

/** Runs the encode kernel on random data and compares it with the float64 reference. */
export async function encodeSelfCheck(device: GPUDevice, variant: EncodeVariant): Promise<SelfCheckResult> {
  const B = 33;
  const d = 45;
  const N = 70;
  const t0 = performance.now();
  const x = randomArray(B * d, 1, 1);
  const b_pre = randomArray(d, 2, 0.2);
  const W_enc = randomArray(N * d, 3, 0.2);
  const b_enc = randomArray(N, 4, 0.1);
  return withErrorScopes(device, 'encode self-check', async () => {
    const bufs = {
      x: createBufferFrom(device, 'check:x', x),
      b_pre: createBufferFrom(device, 'check:b_pre', b_pre),
      W_enc: createBufferFrom(device, 'check:W_enc', W_enc),
      b_enc: createBufferFrom(device, 'check:b_enc', b_enc),
      pre: device.createBuffer({ label: 'check:pre', size: B * N * 4, usage: STORAGE }),
    };
    const k = createEncode(device, { B, d, N }, variant);
    const enc = device.createCommandEncoder({ label: 'selfcheck' });
    const pass = enc.beginComputePass();
    k.run(pass, bufs);
    pass.end();
    device.queue.submit([enc.finish()]);
    const got = await readF32(device, bufs.pre, B * N);
    const want = encodeRef(x, b_pre, W_enc, b_enc, B, d, N);
    // Norm-wise relative error ‖got − want‖ / ‖want‖: element-wise ratios blow up where pre ≈ 0.
    let num = 0;
    let den = 0;
    for (let i = 0; i < got.length; i++) {
      num += (got[i] - want[i]) ** 2;
      den += want[i] ** 2;
    }
    const relErr = Math.sqrt(num / den);
    k.destroy();
    for (const b of Object.values(bufs)) b.destroy();
    return {
      kernel: 'encode',
      variant,
      shape: { B, d, N },
      relErr,
      ok: relErr < 1e-5,
      ms: performance.now() - t0,
    };
  });
}
