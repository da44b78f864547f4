import { setFusedRowUpdate } from '../../src/gpu/kernels/update-fused';
import { PARAM_NAMES } from '../../src/reference/state';
import { resolveConfig } from '../../src/sae/config';
import { GpuSae } from '../../src/sae/step';
import { DEFAULT_KERNELS } from '../../src/sae/step-host';
import { assert, gpuTest, randn } from './harness';
import { randomParams } from './step.gpu';

// update-fused.wgsl: the decoder projection, Adam on W_dec and W_enc, and the renormalization in one
// walk per latent row must give the three kernels' bits (step.gpu.ts pins theirs to a float32
// replay): every parameter, Adam moment, the projected gradient and ‖grad‖, over three steps with
// AuxK active, with and without the projection and the unit-norm decoder, and over latent shards.
for (const c of [
  { d: 12, project: true, unit: true, shardLatents: 0 },
  { d: 16, project: false, unit: false, shardLatents: 0 },
  { d: 8, project: true, unit: true, shardLatents: 64 },
]) {
  gpuTest(
    `fused row update equals projection + Adam + renormalization bit for bit (d=${c.d}, projection ${c.project}, unit norm ${c.unit}${c.shardLatents ? ', shards' : ''})`,
    async (device) => {
      const B = 16;
      const N = c.shardLatents ? 150 : 40;
      const cfg = resolveConfig({
        d: c.d,
        nLatents: N,
        k: 3,
        kAux: 6,
        batchSize: B,
        deadTokens: 100,
        gradProjection: c.project,
        unitNormDecoder: c.unit,
        lr: 1e-2,
        // A binding cap of shardLatents rows of W_dec: the [N, d] tensors in several shards.
        ...(c.shardLatents ? { maxBindingMiB: (c.shardLatents * c.d * 4) / 2 ** 20 } : {}),
      });
      const build = (fused: boolean) => {
        setFusedRowUpdate(device, fused);
        const sae = new GpuSae(device, cfg, DEFAULT_KERNELS);
        setFusedRowUpdate(device, null);
        sae.setState({ params: randomParams(N, c.d, 51), tokensSince: new Uint32Array(N).fill(100) });
        return sae;
      };
      const fused = build(true);
      const plain = build(false);
      if (c.shardLatents) assert(fused.plan.shards.length > 1, 'the case meant shards has one');
      for (let t = 1; t <= 3; t++) {
        const x = randn(B * c.d, 60 + t);
        for (const sae of [fused, plain]) {
          sae.writeBatch(x, new Float32Array(B).fill(1));
          sae.step(t, cfg.lr, 1 / B);
        }
      }
      const bits = async (sae: GpuSae, name: Parameters<GpuSae['readF32']>[0]) =>
        new Uint32Array((await sae.readF32(name)).buffer);
      for (const name of ['dW_dec', 'dW_enc', 'normPart', 'metrics'] as const) {
        const a = await bits(fused, name);
        const b = await bits(plain, name);
        assert(
          a.every((v, i) => v === b[i]),
          `${name}: bits differ`,
        );
      }
      const sa = await fused.readState();
      const sb = await plain.readState();
      for (const p of PARAM_NAMES)
        for (const [what, a, b] of [
          ['θ', sa.params[p], sb.params[p]],
          ['m', sa.m[p], sb.m[p]],
          ['v', sa.v[p], sb.v[p]],
        ] as const) {
          const ua = new Uint32Array(a.buffer);
          const ub = new Uint32Array(b.buffer);
          const o = ua.findIndex((v, i) => v !== ub[i]);
          assert(o < 0, `${what} ${p}[${o}]: ${a[o]} != ${b[o]} without the fused update`);
        }
      const [m] = await fused.readMetrics(2, 3);
      assert(m.deadCount > 0 && m.auxLoss > 0, 'the case meant AuxK active has none');
      fused.destroy();
      plain.destroy();
    },
  );
}
