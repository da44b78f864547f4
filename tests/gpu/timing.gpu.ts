// profileDispatches (src/gpu/timing.ts), the step bench's in-pass profile: one entry per dispatch in
// recording order, labelled by the group set while recording and the pipeline's label, each a
// non-negative time; null on a device without in-pass timestamps (the harness's device).
import { IN_PASS_TIMESTAMPS, profileDispatches } from '../../src/gpu/timing';
import { assert, gpuTest } from './harness';

gpuTest(
  'profileDispatches: a labelled time per dispatch in order, null without the feature',
  async (device) => {
    const record = (dev: GPUDevice) => {
      const module = dev.createShaderModule({
        code: `@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) { a[g.x] += 1.0; }`,
      });
      const pipelines = ['first', 'second'].map((label) =>
        dev.createComputePipeline({ label, layout: 'auto', compute: { module, entryPoint: 'main' } }),
      );
      const buf = dev.createBuffer({
        size: 64 * 4 * 4,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
      });
      const bgs = pipelines.map((p) =>
        dev.createBindGroup({
          layout: p.getBindGroupLayout(0),
          entries: [{ binding: 0, resource: { buffer: buf } }],
        }),
      );
      return {
        buf,
        run: (pass: GPUComputePassEncoder, setGroup: (name: string) => void) => {
          setGroup('A');
          pass.setPipeline(pipelines[0]);
          pass.setBindGroup(0, bgs[0]);
          pass.dispatchWorkgroups(4);
          pass.dispatchWorkgroups(2);
          setGroup('B');
          pass.setPipeline(pipelines[1]);
          pass.setBindGroup(0, bgs[1]);
          pass.dispatchWorkgroups(1);
        },
      };
    };
    if (!device.features.has(IN_PASS_TIMESTAMPS)) {
      const r = record(device);
      assert((await profileDispatches(device, r.run, 2)) === null, 'a profile without in-pass timestamps');
      r.buf.destroy();
    }
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter?.features.has(IN_PASS_TIMESTAMPS)) {
      console.log(`    (${IN_PASS_TIMESTAMPS} missing on this adapter: only the null case checked)`);
      return;
    }
    const dev = await adapter.requestDevice({
      requiredFeatures: ['timestamp-query', IN_PASS_TIMESTAMPS as GPUFeatureName],
    });
    const r = record(dev);
    const prof = await profileDispatches(dev, r.run, 3);
    // Each dispatch ran: the buffer's first 64 floats were added to by all three dispatches, 3 times + 1 warm-up.
    const read = dev.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = dev.createCommandEncoder();
    enc.copyBufferToBuffer(r.buf, 0, read, 0, 4);
    dev.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const first = new Float32Array(read.getMappedRange().slice(0))[0];
    read.unmap();
    dev.destroy();
    assert(prof !== null, 'no profile on a device with in-pass timestamps');
    assert(
      prof.map((p) => p.label).join() === 'A:first,A:first,B:second',
      `labels ${prof.map((p) => p.label).join()}`,
    );
    assert(
      prof.every((p) => Number.isFinite(p.ms) && p.ms >= 0),
      `times ${prof.map((p) => p.ms)}`,
    );
    assert(first === 12, `the profiled dispatches ran ${first / 3} times each, not 4 (3 samples + warm-up)`);
  },
);
