import { timeGpu } from '../src/gpu/timing';

/**
 * The fixed cost of one dispatch on this adapter: a pass of M dispatches of a kernel that does almost
 * nothing (G workgroups of 64 invocations each add 1 to one float), M = 1 and M = 64, in one run; the
 * slope is the per-dispatch cost, which a step pays once per kernel it records (~30 dispatches).
 */
export async function benchDispatch(device: GPUDevice, samples: number) {
  const module = device.createShaderModule({
    code: `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) { a[g.x] += 1.0; }`,
  });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const out: Record<string, number> = {};
  for (const G of [1, 64]) {
    const buf = device.createBuffer({ size: G * 64 * 4, usage: GPUBufferUsage.STORAGE });
    const bind = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: buf } }],
    });
    const time = async (M: number) =>
      (
        await timeGpu(
          device,
          (enc) => {
            const pass = enc.beginComputePass();
            pass.setPipeline(pipeline);
            pass.setBindGroup(0, bind);
            for (let i = 0; i < M; i++) pass.dispatchWorkgroups(G);
            pass.end();
          },
          { samples },
        )
      ).medianMs;
    const one = await time(1);
    const many = await time(64);
    out[`groups_${G}_ms_1`] = one;
    out[`groups_${G}_ms_64`] = many;
    out[`groups_${G}_ms_per_dispatch`] = (many - one) / 63;
    buf.destroy();
  }
  return { name: 'dispatch', ...out };
}
