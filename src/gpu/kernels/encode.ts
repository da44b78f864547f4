import code from '../../../shaders/encode.wgsl?raw';
import { ENCODE_VARIANT_NAMES } from '../kernel-variants';
import { expand, getPipeline } from '../pipelines';
import { usedBindings } from './kernel';

export type EncodeVariant = (typeof ENCODE_VARIANT_NAMES)[number];
export const ENCODE_VARIANTS: EncodeVariant[] = [...ENCODE_VARIANT_NAMES];

/** Variants usable at width d (the vec4 ones and wgtile4x4 need d % 4 == 0). */
export function encodeVariantsFor(d: number): EncodeVariant[] {
  return ENCODE_VARIANTS.filter((v) => !needsVec4(v) || d % 4 === 0);
}

const needsVec4 = (v: EncodeVariant) => v.startsWith('vec4') || v.startsWith('unroll') || v === 'wgtile4x4';

/**
 * encode_unrolled's body for an RB×RN tile: offsets, accumulators, the per-c loads and dot products,
 * and the guarded stores, each as straight-line code over named variables (see encode.wgsl). The
 * loaded rows are xr/wr: a local `x4` would shadow the vec4 view of x from RB = 5 on. chunkMax: each
 * row's largest value also goes to pre_max[b, n0 / RN] (the 'chunkmax' TopK's chunk maxima).
 */
function unrolledBody(RB: number, RN: number, chunkMax: boolean): Record<string, string> {
  const I = [...Array(RB).keys()];
  const J = [...Array(RN).keys()];
  const lines = (xs: string[]) => xs.map((l) => `  ${l}`).join('\n');
  const value = (i: number, j: number) =>
    `a${i}_${j} + b_enc[sz.lat0 + ${chunkMax ? `min(n0 + ${j}u, sz.N - 1u)` : `n0 + ${j}u`}]`;
  const maxima = I.flatMap((i) => [
    `var m${i} = -3.4028234e38;`,
    ...J.map((j) => `m${i} = above(m${i}, p${i}_${j});`),
    `if (b0 + ${i}u < sz.B) { pre_max[(b0 + ${i}u) * ((sz.N + ${RN - 1}u) / ${RN}u) + n0 / ${RN}u] = m${i}; }`,
  ]);
  return {
    UNROLLED_SETUP: lines([
      ...I.map((i) => `let xo${i} = (sz.row0 + min(b0 + ${i}u, sz.B - 1u)) * d4;`),
      ...J.map((j) => `let wo${j} = (sz.wOff + min(n0 + ${j}u, sz.N - 1u)) * d4;`),
      ...I.flatMap((i) => J.map((j) => `var a${i}_${j} = 0.0;`)),
    ]),
    UNROLLED_STEP: lines([
      ...I.map((i) => `  let xr${i} = x4[xo${i} + c] - bp;`),
      ...J.flatMap((j) => [
        `  let wr${j} = W_enc4[wo${j} + c];`,
        ...I.map((i) => `  a${i}_${j} += dot(xr${i}, wr${j});`),
      ]),
    ]),
    // Without chunk maxima the stores are as before (each value computed where it is stored).
    UNROLLED_STORE: lines(
      chunkMax
        ? [
            ...I.flatMap((i) => J.map((j) => `let p${i}_${j} = ${value(i, j)};`)),
            ...I.flatMap((i) =>
              J.map(
                (j) =>
                  `if (b0 + ${i}u < sz.B && n0 + ${j}u < sz.N) { pre[(b0 + ${i}u) * sz.N + n0 + ${j}u] = p${i}_${j}; }`,
              ),
            ),
            ...maxima,
          ]
        : I.flatMap((i) =>
            J.map(
              (j) =>
                `if (b0 + ${i}u < sz.B && n0 + ${j}u < sz.N) { pre[(b0 + ${i}u) * sz.N + n0 + ${j}u] = ${value(i, j)}; }`,
            ),
          ),
    ),
  };
}
const NO_UNROLL = { UNROLLED_SETUP: '', UNROLLED_STEP: '', UNROLLED_STORE: '' };

export interface EncodeSizes {
  B: number;
  d: number;
  /** Latents this dispatch computes: the whole N, or the width n of a tile of latents [lat0, lat0 + n). */
  N: number;
  /** Global latent index of output column 0 (indexes b_enc, which stays the whole [N_total] vector). Default 0. */
  lat0?: number;
  /** Row of W_enc (the bound buffer, e.g. a shard holding a range of latents) for output column 0. Default 0. */
  wOff?: number;
  /** Row of x for output row 0 (a micro-batch of B rows inside a bigger x). Default 0. */
  row0?: number;
}

export interface EncodeBindings {
  /** [≥ row0 + B, d] */ x: GPUBuffer;
  /** [d] */ b_pre: GPUBuffer;
  /** [≥ wOff + N, d] */ W_enc: GPUBuffer;
  /** [≥ lat0 + N] (the whole vector) */ b_enc: GPUBuffer;
  /** [B, N] output (row stride N, the tile width) */ pre: GPUBuffer;
  /** [B, ⌈N / RN⌉] output with chunkMax: each row's largest value per RN latents */
  preMax?: GPUBuffer;
}

function tileOf(variant: EncodeVariant): { RB: number; RN: number } {
  const m = /(\d+)x(\d+)$/.exec(variant);
  return m ? { RB: Number(m[1]), RN: Number(m[2]) } : { RB: 4, RN: 4 };
}

const ENTRY: Record<EncodeVariant, string> = {
  naive: 'encode_naive',
  blocked4x4: 'encode_blocked',
  blocked2x4: 'encode_blocked',
  blocked4x8: 'encode_blocked',
  vec4x4: 'encode_blocked_v4',
  vec4x8: 'encode_blocked_v4',
  unroll2x4: 'encode_unrolled',
  unroll4x4: 'encode_unrolled',
  unroll4x8: 'encode_unrolled',
  unroll8x4: 'encode_unrolled',
  unroll8x8: 'encode_unrolled',
  unroll8x16: 'encode_unrolled',
  unroll16x8: 'encode_unrolled',
  unroll16x16: 'encode_unrolled',
  tiled: 'encode_tiled',
  wgtile4x4: 'encode_wgtile',
};

/**
 * pre = (x - b_pre) · W_encᵀ + b_enc. create() once per shape (and per latent tile: each call owns its
 * 32-byte Sizes uniform, freed by destroy()); run() records one dispatch.
 * Tile: pre[b, n] = (x[b] - b_pre) · W_enc[wOff + n] + b_enc[lat0 + n] for n < N (the tile width);
 * lat0 = wOff = 0 (the defaults) is the untiled product, bit for bit. row0: pre row b is x row row0 + b.
 */
export function createEncode(
  device: GPUDevice,
  sizes: EncodeSizes,
  variant: EncodeVariant = 'blocked4x4',
  opts: { chunkMax?: boolean; copy?: number } = {},
) {
  const { B, d, N } = sizes;
  const lat0 = sizes.lat0 ?? 0;
  const wOff = sizes.wOff ?? 0;
  const row0 = sizes.row0 ?? 0;
  if (needsVec4(variant) && d % 4 !== 0) variant = 'blocked4x4';
  const { RB, RN } = tileOf(variant);
  const entryPoint = ENTRY[variant];
  const chunkMax = opts.chunkMax ?? false;
  if (chunkMax && entryPoint !== 'encode_unrolled')
    throw new Error(`encode: chunk maxima need an unrolled variant, got ${variant}`);
  const unrolled = entryPoint === 'encode_unrolled' ? unrolledBody(RB, RN, chunkMax) : NO_UNROLL;
  const full = expand(code, { RB, RN, ...unrolled });
  const used = usedBindings(full, entryPoint);
  const layout = device.createBindGroupLayout({
    label: `encode:${entryPoint}:layout`,
    entries: used.map((b) => ({
      binding: b.binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: b.type },
    })),
  });
  const pipeline = getPipeline(device, { label: 'encode', code: full, entryPoint, layout, copy: opts.copy });
  const uniform = device.createBuffer({
    label: 'encode:sizes',
    size: 32,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(uniform, 0, new Uint32Array([B, d, N, lat0, wOff, row0, 0, 0]));
  const gridFor = (rows: number): [number, number] => {
    if (variant === 'naive') return [Math.ceil(N / 64), rows];
    if (variant === 'tiled') return [Math.ceil(N / 16), Math.ceil(rows / 16)];
    if (variant === 'wgtile4x4') return [Math.ceil(N / 64), Math.ceil(rows / 64)];
    return [Math.ceil(N / (8 * RN)), Math.ceil(rows / (8 * RB))];
  };
  const groups = gridFor(B);
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  if (groups[0] > max || groups[1] > max)
    throw new Error(`encode: grid ${groups} exceeds maxComputeWorkgroupsPerDimension`);
  const cache = new Map<string, GPUBindGroup>();
  // Rows in the Sizes uniform now (run() with fewer rows rewrites it, the next run with B restores it).
  let rowsWritten = B;
  return {
    variant,
    /** latents per chunk maximum (RN) where this encoder writes them, else 0 */
    chunkMaxWidth: chunkMax ? RN : 0,
    flops: 2 * B * d * N,
    /**
     * Records one dispatch over the first `rows` ≤ B rows (an evaluation's partial last batch): the
     * grid shrinks and the kernels' row guard (sz.B) is set to `rows`, so rows ≥ rows do no work. The
     * uniform is written at record time, so every run recorded into one submission must use the same
     * `rows` (the forward pass and the training step each do).
     */
    run(pass: GPUComputePassEncoder, b: EncodeBindings, rows = B) {
      if (!(Number.isInteger(rows) && rows >= 1 && rows <= B))
        throw new RangeError(`encode: rows must be in [1, ${B}], got ${rows}`);
      if (rows !== rowsWritten) {
        device.queue.writeBuffer(uniform, 0, new Uint32Array([rows]));
        rowsWritten = rows;
      }
      if (chunkMax && !b.preMax) throw new Error('encode: chunk maxima need a preMax buffer');
      const key = [b.x, b.b_pre, b.W_enc, b.b_enc, b.pre, b.preMax ?? b.pre].map((x) => x.label).join('|');
      let bg = cache.get(key);
      if (!bg) {
        // Bindings 6..8 are the vec4 views of x, b_pre and W_enc; 9 the chunk maxima.
        const all = [
          b.x,
          b.b_pre,
          b.W_enc,
          b.b_enc,
          b.pre,
          uniform,
          b.x,
          b.b_pre,
          b.W_enc,
          b.preMax ?? b.pre,
        ];
        bg = device.createBindGroup({
          label: `encode:${variant}`,
          layout: pipeline.getBindGroupLayout(0),
          entries: used.map((u) => ({ binding: u.binding, resource: { buffer: all[u.binding] } })),
        });
        cache.set(key, bg);
      }
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bg);
      const [gx, gy] = rows === B ? groups : gridFor(rows);
      pass.dispatchWorkgroups(gx, gy);
    },
    destroy() {
      uniform.destroy();
      cache.clear();
    },
  };
}
