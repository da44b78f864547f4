import { createBufferFrom, readF32, STORAGE } from '../../src/gpu/buffers';
import { createDecode } from '../../src/gpu/kernels/decode';
import { setGpuForms } from '../../src/gpu/kernels/kernel';
import { STEP_PARAMS_BYTES } from '../../src/gpu/step-params';
import { decodeRef, NONE } from '../../src/reference/step';
import { resolveConfig } from '../../src/sae/config';
import { stepParamsBytes } from '../../src/sae/step-uniform';
import { assertClose, gpuTest, randn } from './harness';

// Wide rows on a software adapter: decode_lanes_pass (named sums, a walk of the row's list per 8
// columns of a lane) must give decode_lanes_array's bits and the GPU form's (the same additions in the
// same order), and the float64 reference's values. Main (with b_pre) and AuxK (no b_pre, a list that
// ends in ReLU'd zeros and NONE padding); d = 136 (vec4, 34 groups: a ragged last pass) and d = 771
// (scalar, 193 columns a lane); W_dec in 1 and 3 shards; one row's list all padding.
for (const d of [136, 771]) {
  gpuTest(
    `decode: wide rows in passes (d=${d}), the array form's and GPU form's bits, vs reference`,
    async (device) => {
      const [B, N, k, kAux] = [9, 50, 5, 7];
      const cfg = resolveConfig({ d, nLatents: N, k, kAux, batchSize: B, deadTokens: 1 });
      const params = device.createBuffer({
        size: STEP_PARAMS_BYTES,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      device.queue.writeBuffer(params, 0, stepParamsBytes(cfg, 1, 1e-3, 1));
      const E = B * (k + kAux);
      const idx = new Uint32Array(E).map((_, e) => (e * 37 + 11) % N);
      const val = randn(E, 7).map((v) => Math.abs(v) + 0.01);
      for (let b = 0; b < B; b++) {
        // AuxK rows: the last 3 entries ReLU'd to 0, the last one padding.
        const o = B * k + b * kAux;
        val.fill(0, o + kAux - 3, o + kAux);
        idx[o + kAux - 1] = NONE;
      }
      idx.fill(NONE, 2 * k, 3 * k); // row 2's main list: padding only
      const W = randn(N * d, 8, 0.5);
      const bPre = randn(d, 9);
      const bufs = [
        createBufferFrom(device, 'idx', idx),
        createBufferFrom(device, 'val', val),
        createBufferFrom(device, 'b_pre', bPre),
      ];
      const run = async (aux: boolean, shards: number, form: 'pass' | 'array' | 'gpu') => {
        if (form === 'gpu') setGpuForms(device, true);
        const shardN = Math.ceil(N / shards);
        const kernel = createDecode(device, { B, d, aux, shards, shardN, passes: form !== 'array' });
        setGpuForms(device, null);
        const Ws = Array.from({ length: shards }, (_, s) =>
          createBufferFrom(device, `W${s}`, W.slice(s * shardN * d, Math.min(N, (s + 1) * shardN) * d)),
        );
        const out = device.createBuffer({ size: B * d * 4, usage: STORAGE });
        const enc = device.createCommandEncoder();
        const pass = enc.beginComputePass();
        kernel.run(pass, kernel.bind('t', [...bufs, out, params, ...Ws]));
        pass.end();
        device.queue.submit([enc.finish()]);
        const got = await readF32(device, out, B * d);
        for (const w of Ws) w.destroy();
        out.destroy();
        return got;
      };
      for (const aux of [false, true]) {
        const K = aux ? kAux : k;
        const off = aux ? B * k : 0;
        const want = decodeRef(
          idx.slice(off, off + B * K),
          val.slice(off, off + B * K),
          W,
          aux ? null : bPre,
          B,
          d,
          K,
        );
        for (const shards of [1, 3]) {
          const got = await run(aux, shards, 'pass');
          for (const form of ['array', 'gpu'] as const) {
            const other = await run(aux, shards, form);
            const bits = [new Uint32Array(got.buffer), new Uint32Array(other.buffer)];
            const at = bits[0].findIndex((v, i) => v !== bits[1][i]);
            if (at >= 0)
              throw new Error(
                `aux=${aux} shards=${shards}: [${at}] ${got[at]} vs the ${form} form's ${other[at]}`,
              );
          }
          assertClose(got, want, 1e-5, 1e-5, `aux=${aux} shards=${shards}`);
        }
      }
      for (const b of [...bufs, params]) b.destroy();
    },
  );
}
