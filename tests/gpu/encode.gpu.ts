import { createBufferFrom, readF32, STORAGE } from '../../src/gpu/buffers';
import { createEncode, ENCODE_VARIANTS } from '../../src/gpu/kernels/encode';
import { encodeRef } from '../../src/reference/encode';
import { assertClose, gpuTest, randn } from './harness';

// Shapes: a random one, then edges — B, d, N not multiples of any tile, N = 1, d = 1, B = 1.
const SHAPES = [
  { B: 64, d: 48, N: 96 },
  { B: 13, d: 20, N: 29 },
  { B: 37, d: 19, N: 53 },
  { B: 5, d: 7, N: 1 },
  { B: 9, d: 1, N: 33 },
  { B: 1, d: 33, N: 70 },
];

for (const variant of ENCODE_VARIANTS) {
  for (const { B, d, N } of SHAPES) {
    gpuTest(`encode ${variant} B=${B} d=${d} N=${N}`, async (device) => {
      const x = randn(B * d, 1);
      const b_pre = randn(d, 2, 0.5);
      const W_enc = randn(N * d, 3, 1 / Math.sqrt(d));
      const b_enc = randn(N, 4, 0.1);
      const bufs = {
        x: createBufferFrom(device, 'x', x),
        b_pre: createBufferFrom(device, 'b_pre', b_pre),
        W_enc: createBufferFrom(device, 'W_enc', W_enc),
        b_enc: createBufferFrom(device, 'b_enc', b_enc),
        pre: device.createBuffer({ label: 'pre', size: B * N * 4, usage: STORAGE }),
      };
      const k = createEncode(device, { B, d, N }, variant);
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      k.run(pass, bufs);
      pass.end();
      device.queue.submit([enc.finish()]);
      const got = await readF32(device, bufs.pre, B * N);
      const want = encodeRef(x, b_pre, W_enc, b_enc, B, d, N);
      // f32 accumulation over d terms of size ~1: error grows like sqrt(d)·eps; 1e-5 relative + tiny abs.
      assertClose(got, want, 1e-5 * Math.sqrt(d), 1e-5, 'pre');
      k.destroy();
      for (const b of Object.values(bufs)) b.destroy();
    });
  }
}
