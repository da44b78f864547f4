import { createBufferFrom, readU32, STORAGE } from '../../src/gpu/buffers';
import { stepShader } from '../../src/gpu/kernels/kernel';
import { assert, gpuTest } from './harness';

// common.wgsl's div_rows (the row of an entry in the gradient walks and the sort): ⌊e / k⌋ exactly,
// against integer division here, through its branch-free corrections (e < 2^22·k) and the loops past
// them (up to e + k < 2^32; entries index buffers, far below).
gpuTest('div_rows: ⌊e / k⌋ exactly, near every multiple and past 2^31', async (device) => {
  const pairs: [number, number][] = [];
  for (const k of [1, 2, 3, 7, 8, 31, 32, 33, 384, 416, 1000, 4097, 65535]) {
    for (const m of [0, 1, 2, 1023, 1024, 4095, 65536, 1 << 20, (1 << 22) - 1]) {
      for (const dv of [-1, 0, 1]) {
        const e = m * k + dv;
        if (e >= 0 && e + k < 2 ** 32) pairs.push([e, k]);
      }
    }
  }
  for (const e of [2 ** 32 - 500, 2 ** 31 + 12345, 2 ** 24 + 1, 2 ** 25 - 1, 16777217, 3e9]) {
    for (const k of [1, 3, 7, 416]) pairs.push([e, k]);
  }
  const n = pairs.length;
  const input = new Uint32Array(2 * n);
  for (const [j, [e, k]] of pairs.entries()) input.set([e, k], 2 * j);
  const shader = stepShader(
    device,
    'div-rows-test',
    `@group(0) @binding(0) var<storage, read> ek: array<u32>;
@group(0) @binding(1) var<storage, read_write> q: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < ${n}u) { q[g.x] = div_rows(ek[2u * g.x], ek[2u * g.x + 1u]); }
}`,
  ).entry('main');
  const src = createBufferFrom(device, 'ek', input);
  const out = device.createBuffer({ size: n * 4, usage: STORAGE });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(shader.pipeline);
  pass.setBindGroup(0, shader.bind('t', [src, out]));
  pass.dispatchWorkgroups(Math.ceil(n / 64));
  pass.end();
  device.queue.submit([enc.finish()]);
  const got = await readU32(device, out, n);
  src.destroy();
  out.destroy();
  pairs.forEach(([e, k], j) => {
    const want = Math.floor(e / k);
    assert(got[j] === want, `div_rows(${e}, ${k}) = ${got[j]}, want ${want}`);
  });
});
