import code from '../../../shaders/encode-dead.wgsl?raw';
import type { EncodeVariant } from './encode';
import { stepShader } from './kernel';

/**
 * AuxK's pre-activations of the dead latents of one latent tile [lat0, lat0 + n), after the dead
 * update, bit-identical to the encoder variant `variant` (vec4 variants → the vec4 form).
 * Bindings: x [B,d], b_pre [d], W_enc shard, b_enc [N], pre tile [B,n] (dead columns written),
 * deadList [N], deadInfo [DEAD_INFO_WORDS], params, then the tile uniform (created here, one per tile) and the vec4
 * views of x, b_pre, W_enc. `groups` bounds the grid-stride loop over blocks of 4 rows × 4 dead latents.
 */
export function createEncodeDead(
  device: GPUDevice,
  s: { B: number; d: number; n: number },
  variant: EncodeVariant,
) {
  const v4 = variant.startsWith('vec4') && s.d % 4 === 0;
  const ep = stepShader(device, 'encode-dead', code).entry(v4 ? 'encode_dead_v4' : 'encode_dead');
  const groups = Math.max(
    1,
    Math.min(
      Math.ceil((Math.ceil(s.B / 4) * Math.ceil(s.n / 4)) / 64),
      4096,
      device.limits.maxComputeWorkgroupsPerDimension,
    ),
  );
  const uniforms: GPUBuffer[] = [];
  return {
    /** One tile's bind group: [lat0, lat0 + n) at row wOff of `W_enc` (a shard buffer). */
    bind(
      tile: { lat0: number; n: number; wOff: number },
      b: {
        x: GPUBuffer;
        b_pre: GPUBuffer;
        W_enc: GPUBuffer;
        b_enc: GPUBuffer;
        pre: GPUBuffer;
        deadList: GPUBuffer;
        deadInfo: GPUBuffer;
        params: GPUBuffer;
      },
    ): GPUBindGroup {
      const u = device.createBuffer({
        label: `encode-dead:tile@${tile.lat0}+${tile.n}`,
        size: 16,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      });
      device.queue.writeBuffer(u, 0, new Uint32Array([tile.lat0, tile.n, tile.wOff, 0]));
      uniforms.push(u);
      const all = [
        b.x,
        b.b_pre,
        b.W_enc,
        b.b_enc,
        b.pre,
        b.deadList,
        b.deadInfo,
        b.params,
        u,
        b.x,
        b.b_pre,
        b.W_enc,
      ];
      return ep.bind(`tile@${tile.lat0}`, all);
    },
    run(pass: GPUComputePassEncoder, bg: GPUBindGroup) {
      pass.setPipeline(ep.pipeline);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(groups);
    },
    destroy() {
      for (const u of uniforms) u.destroy();
      uniforms.length = 0;
    },
  };
}
