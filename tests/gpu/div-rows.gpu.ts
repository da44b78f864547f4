import { createBufferFrom, readU32, STORAGE } from '../../src/gpu/buffers';
import { stepShader } from '../../src/gpu/kernels/kernel';
import { assert, gpuTest, rng } from './harness';

// common.wgsl's div_rows (the row of an entry in the gradient walks and the sort): ⌊e / k⌋ exactly,
// against integer division here, over its range e < 2^22·k (batches are capped far below: config.ts
// MAX_BATCH_ROWS): around every multiple of k up to the last row, and at random rows; a quotient off
// by one either way (a correction dropped) fails.
gpuTest('div_rows: ⌊e / k⌋ exactly for rows below 2^22', async (device) => {
  const pairs: [number, number][] = [];
  const add = (e: number, k: number) => {
    if (e >= 0 && e < 2 ** 22 * k && e < 2 ** 32) pairs.push([e, k]);
  };
  for (const k of [1, 2, 3, 7, 8, 31, 32, 33, 384, 416, 1000, 4097, 65535]) {
    for (const m of [0, 1, 2, 1023, 1024, 4095, 65536, 1 << 20, 3_000_001, (1 << 22) - 1, 1 << 22]) {
      for (const dv of [-1, 0, 1, k - 1]) add(m * k + dv, k);
    }
  }
  const r = rng(7);
  for (let t = 0; t < 20000; t++) {
    const k = 1 + Math.floor(r.u() * (r.u() < 0.5 ? 64 : 1024));
    add(Math.floor(r.u() * 2 ** 22) * k + Math.floor(r.u() * k), k);
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
