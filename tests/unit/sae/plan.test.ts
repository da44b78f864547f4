/**
 * The buffer plan (src/sae/plan.ts): every limit a config can break is named in one problem line,
 * and a small binding cap splits the [N, d] tensors into shards and the encoder + TopK into tiles
 * that cover the latents exactly.
 */
import { describe, expect, it } from 'vitest';
import { STEP_BUFFERS } from '../../../src/sae/buffer-names';
import { resolveConfig, type SaeConfig } from '../../../src/sae/config';
import {
  assertPlan,
  bufferPlan,
  DEFAULT_LIMITS,
  LimitError,
  outOfMemoryError,
  type PlanLimits,
} from '../../../src/sae/plan';

const cfg = (c: Partial<SaeConfig> & { d: number }) => resolveConfig(c);
const MiB = 2 ** 20;

/** Ranges sorted by lat0 tile [0, N) with no gap and no overlap. */
function expectCover(ranges: { lat0: number; n: number }[], N: number) {
  const sorted = [...ranges].sort((a, b) => a.lat0 - b.lat0);
  let next = 0;
  for (const r of sorted) {
    expect(r.n).toBeGreaterThan(0);
    expect(r.lat0).toBe(next);
    next = r.lat0 + r.n;
  }
  expect(next).toBe(N);
}

describe('bufferPlan', () => {
  it('plans each of the step buffers (GpuSae.b) once, and no whole buffer besides them', () => {
    for (const c of [cfg({ d: 64 }), cfg({ d: 64, ema: true, activation: 'gated' })]) {
      const whole = bufferPlan(c, DEFAULT_LIMITS)
        .buffers.map((b) => b.key)
        .filter((k) => !k.includes('#'));
      // EMA's small buffers exist only with EMA on; everything else is planned for every config.
      const want = STEP_BUFFERS.filter((k) => c.ema || !k.startsWith('ema_'));
      expect([...whole].sort()).toEqual([...want].sort());
    }
  });

  it('the default config on default limits has no problem, one shard, and sums its buffers', () => {
    const p = bufferPlan(cfg({ d: 64 }), DEFAULT_LIMITS);
    expect(p.problems).toEqual([]);
    expect(p.shards).toEqual([{ lat0: 0, n: 4096 }]);
    expect(p.totalBytes).toBe(p.buffers.reduce((a, b) => a + b.bytes, 0));
    // a page below the adapter's limit: SwiftShader refused a buffer of exactly its limit (src/gpu/limits.ts)
    expect(p.bindingCap).toBe(DEFAULT_LIMITS.maxStorageBufferBindingSize - 4096);
    expect(() => assertPlan(p)).not.toThrow();
  });

  it('an over-limit batch: the batch buffers are named with their size, the limit and the batch that fits', () => {
    // x [B, d] = 32768·1024·4 bytes = 128 MiB, over a 64 MiB cap
    const p = bufferPlan(
      cfg({ d: 1024, nLatents: 4096, batchSize: 32768, maxBindingMiB: 64 }),
      DEFAULT_LIMITS,
    );
    expect(p.bindingCap).toBe(64 * MiB);
    const x = p.problems.find((l) => l.startsWith('buffer x '));
    expect(x).toBeDefined();
    expect(x).toMatch(
      /^buffer x \[32768, 1024\] needs .+, over .+ \(maxBindingMiB 64\): lower the batch to ≤ 16384$/,
    );
    for (const name of ['xHat', 'eHat', 'g', 'gAux'])
      expect(p.problems.some((l) => l.startsWith(`buffer ${name} `))).toBe(true);
    const err = (() => {
      try {
        assertPlan(p);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(LimitError);
    expect((err as LimitError).problems).toEqual(p.problems);
    expect((err as LimitError).message.startsWith(p.problems[0])).toBe(true);
  });

  it('too many shards for the decoder to bind: one problem naming W_enc/W_dec, the shard count and the N that fits', () => {
    const limits: PlanLimits = { ...DEFAULT_LIMITS, maxStorageBuffersPerShaderStage: 8 };
    // d = 256: one row is 1 KiB; a 0.25 MiB cap holds 256 latents per shard; N = 4096 needs 16 > 8 − 4
    const p = bufferPlan(cfg({ d: 256, nLatents: 4096, k: 16, batchSize: 64, maxBindingMiB: 0.25 }), limits);
    expect(p.shards).toHaveLength(16);
    const line = p.problems.find((l) => l.startsWith('W_enc/W_dec'));
    expect(line).toMatch(/\[4096, 256\] need 16 shards/);
    expect(line).toMatch(/over the 4 the decoder can bind \(maxStorageBuffersPerShaderStage 8/);
    expect(line).toMatch(/lower N to ≤ 1024/);
  });

  it('a dense activation whose [B, N] exceeds the cap: micro-batches of b rows whose [b, N] fits', () => {
    // relu: [B, N] = 1024·8192·4 = 32 MiB over a 16 MiB cap ([N, d] = 2 MiB still fits one shard)
    const c = cfg({ d: 64, nLatents: 8192, batchSize: 1024, activation: 'relu', maxBindingMiB: 16 });
    const p = bufferPlan(c, DEFAULT_LIMITS);
    expect(p.problems).toEqual([]);
    expect(p.shards).toHaveLength(1);
    expect(p.microBatch).toBe(512);
    expect(p.microBatches).toEqual([
      { row0: 0, n: 512 },
      { row0: 512, n: 512 },
    ]);
    for (const name of ['pre', 'act', 'gact', 'gpre']) {
      const b = p.buffers.find((x) => x.key === name)!;
      expect(b.shape).toBe('[512, 8192]');
      expect(b.bytes).toBe(512 * 8192 * 4);
    }
    for (const b of p.buffers) expect(b.bytes).toBeLessThanOrEqual(p.bindingCap);
    // a ragged last micro-batch; Gated's aux buffers sized alike
    const g = bufferPlan(
      cfg({ ...c, activation: 'gated', batchSize: 1000, maxBindingMiB: 12 }),
      DEFAULT_LIMITS,
    );
    expect(g.problems).toEqual([]);
    expect(g.microBatch).toBe(384);
    expect(g.microBatches.map((m) => m.n)).toEqual([384, 384, 232]);
    expect(g.buffers.find((x) => x.key === 'gactAux')!.shape).toBe('[384, 8192]');
    // the whole batch when it fits; forced (tests)
    expect(bufferPlan(cfg({ ...c, maxBindingMiB: 64 }), DEFAULT_LIMITS).microBatch).toBe(1024);
    expect(
      bufferPlan(cfg({ ...c, maxBindingMiB: 64 }), DEFAULT_LIMITS, { microBatch: 5 }).microBatches,
    ).toHaveLength(205);
    // the sparse family keeps the whole batch
    expect(bufferPlan(cfg({ ...c, activation: 'topk' }), DEFAULT_LIMITS).microBatch).toBe(1024);
  });

  it("the 'chunkmax' TopK's chunk maxima are planned where that TopK can run (one tile, K ≤ 64, d % 4 = 0)", () => {
    const preMax = (over: Partial<SaeConfig>) => {
      const p = bufferPlan(
        cfg({ nLatents: 1024, batchSize: 4096, k: 8, kAux: 32, ...over, d: over.d ?? 64 }),
        DEFAULT_LIMITS,
      );
      return p.buffers.find((b) => b.key === 'preMax')!;
    };
    // the narrowest unrolled tile is 4 latents wide: [B, N / 4]
    expect(preMax({})).toMatchObject({ shape: '[4096, 256]', bytes: 4096 * 256 * 4 });
    expect(preMax({ nLatents: 1030 })).toMatchObject({ shape: '[4096, 258]' });
    // no per-row list TopK: k over 64, a dense activation, d not a multiple of 4, latent tiles
    const others: Partial<SaeConfig>[] = [
      { k: 65 },
      { activation: 'relu' },
      { d: 66 },
      { nLatents: 65536, maxBindingMiB: 64 },
    ];
    for (const over of others) expect(preMax(over).bytes, JSON.stringify(over)).toBe(16);
  });

  it("gv's parts are planned where the software sums can form gv (d % 4 = 0, d ≤ 1536, sparse, fits a binding)", () => {
    const plan = (over: Partial<SaeConfig>) =>
      bufferPlan(
        cfg({ nLatents: 1024, batchSize: 1024, k: 32, kAux: 384, ...over, d: over.d ?? 768 }),
        DEFAULT_LIMITS,
      );
    const part = (p: ReturnType<typeof plan>) => p.buffers.find((b) => b.key === 'gvPart')!;
    // a part per thread of a latent: 4 up to d = 768 (48 vec4 column groups a thread), 8 up to 1536
    for (const [d, parts] of [
      [4, 4],
      [64, 4],
      [768, 4],
      [772, 8],
      [1024, 8],
      [1536, 8],
    ]) {
      const p = plan({ d });
      expect(p.gvParts, `d=${d}`).toBe(parts);
      expect(part(p)).toMatchObject({ shape: `[${1024 * 416}, ${parts}]`, bytes: 1024 * 416 * 4 * parts });
    }
    // 12 threads a latent past d = 1536, a scalar d, a dense activation, and gvPart over the binding cap
    // (E = 1024·416 entries of 16 bytes is 6.5 MiB)
    for (const over of [{ d: 1540 }, { d: 66 }, { activation: 'relu' as const }, { maxBindingMiB: 6 }]) {
      const p = plan(over);
      expect(p.gvParts, JSON.stringify(over)).toBe(0);
      expect(part(p).bytes, JSON.stringify(over)).toBe(16);
      expect(p.problems, JSON.stringify(over)).toEqual([]);
    }
  });

  it('g holds a copy of g_aux after its levels where the one-walk sums apply (gv in 4 parts, AuxK on, fits)', () => {
    const plan = (over: Partial<SaeConfig>) =>
      bufferPlan(
        cfg({ nLatents: 1024, batchSize: 512, k: 32, kAux: 64, ...over, d: over.d ?? 64 }),
        DEFAULT_LIMITS,
      );
    const g = (p: ReturnType<typeof plan>) => p.buffers.find((b) => b.key === 'g')!;
    const cases: [Partial<SaeConfig>, number, boolean][] = [
      [{ d: 64 }, 2, true],
      [{ d: 768 }, 2, true],
      // Matryoshka: the copy after its 2 levels
      [{ activation: 'matryoshka' as const, matryoshkaWidths: [256, 1024] }, 3, true],
      // gv in 8 parts, no AuxK, a dense activation, g with the copy over the cap (2·512·768·4 = 3 MiB;
      // gvPart, 512·96·16 bytes, and g alone fit 2 MiB)
      [{ d: 772 }, 1, false],
      [{ kAux: 0 }, 1, false],
      [{ activation: 'relu' as const }, 1, false],
      [{ d: 768, maxBindingMiB: 2 }, 1, false],
    ];
    for (const [over, rows, tail] of cases) {
      const p = plan(over);
      const d = over.d ?? 64;
      expect(p.gAuxTail, JSON.stringify(over)).toBe(tail);
      if (over.maxBindingMiB) expect(p.gvParts).toBe(4);
      expect(g(p).bytes, JSON.stringify(over)).toBe(rows * 512 * d * 4);
      expect(p.problems, JSON.stringify(over)).toEqual([]);
    }
  });

  it('a large threshold config: b keeps [b, N] within the tile budget, so memory has no B·N term', () => {
    // relu, B = 4096, N = 131072, d = 1024 under a 1 GiB cap: [B, N] = 2 GiB; the budget is 256 MiB → b = 512
    const limits: PlanLimits = {
      ...DEFAULT_LIMITS,
      maxStorageBufferBindingSize: 2 ** 31,
      maxBufferSize: 2 ** 31,
    };
    const c = cfg({ d: 1024, nLatents: 131072, batchSize: 4096, activation: 'relu', maxBindingMiB: 1024 });
    const p = bufferPlan(c, limits);
    expect(p.problems).toEqual([]);
    expect(p.microBatch).toBe(512);
    expect(p.microBatches).toHaveLength(8);
    const pre = p.buffers.filter((b) => b.group === 'pre-activations').reduce((a, b) => a + b.bytes, 0);
    // pre, act, gact, gpre (+ Gated's two and the sparse chunk maxima, here 16 bytes each)
    expect(pre).toBe(4 * 256 * MiB + 3 * 16);
    // twice the batch: the same pre-activation memory, twice the micro-batches
    const p2 = bufferPlan(cfg({ ...c, batchSize: 8192 }), limits);
    expect(p2.microBatches).toHaveLength(16);
    expect(p2.buffers.filter((b) => b.group === 'pre-activations').reduce((a, b) => a + b.bytes, 0)).toBe(
      pre,
    );
  });

  it('a dense activation whose one row [1, N] exceeds the cap: one line naming pre, its size, the cap and N', () => {
    // N·4 = 4 MiB over a 2 MiB cap: not even a micro-batch of one row fits
    const c = cfg({ d: 16, nLatents: 2 ** 20, batchSize: 64, activation: 'jumprelu', maxBindingMiB: 2 });
    const p = bufferPlan(c, { ...DEFAULT_LIMITS, maxStorageBuffersPerShaderStage: 1000 });
    const lines = p.problems.filter((l) => l.startsWith('buffer pre ') || l.startsWith('buffer act'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^buffer pre \[1, 1048576\] \(a micro-batch of one row\) needs 4 MiB, over 2 MiB \(maxBindingMiB 2\): .*lower N to ≤ 524288/,
    );
    expect(() => assertPlan(p)).toThrow(LimitError);
  });

  it('topk under a small maxBindingMiB: no problem, several shards and tiles covering [0, N) exactly', () => {
    // d = 64: one row 256 B; a 1/16 MiB cap holds 256 latents per shard → N = 1000 in 4 shards (the last 232)
    const c = cfg({ d: 64, nLatents: 1000, k: 8, batchSize: 128, maxBindingMiB: 1 / 16 });
    const p = bufferPlan(c, DEFAULT_LIMITS);
    expect(p.problems).toEqual([]);
    expect(p.shards.length).toBeGreaterThan(1);
    expect(p.shards.length).toBeLessThanOrEqual(DEFAULT_LIMITS.maxStorageBuffersPerShaderStage - 4);
    expectCover(p.shards, 1000);
    for (const s of p.shards) expect(s.n * 64 * 4).toBeLessThanOrEqual(p.bindingCap);
    // tiles: [B, n] fits the cap, several of them, inside their shard, covering [0, N) exactly
    expect(p.tiles.length).toBeGreaterThan(p.shards.length);
    expect(128 * p.tileLatents * 4).toBeLessThanOrEqual(p.bindingCap);
    expectCover(p.tiles, 1000);
    for (const t of p.tiles) {
      const s = p.shards[t.shard];
      expect(t.lat0).toBe(s.lat0 + t.wOff);
      expect(t.wOff + t.n).toBeLessThanOrEqual(s.n);
    }
    // each sharded tensor has one buffer per shard, none over the cap
    expect(p.buffers.filter((b) => b.key.startsWith('W_dec#'))).toHaveLength(p.shards.length);
    for (const b of p.buffers) expect(b.bytes).toBeLessThanOrEqual(p.bindingCap);
  });

  it('shard ranges cover [0, N) exactly for awkward N and caps', () => {
    for (const [N, d, cap] of [
      [1, 16, 1],
      [7, 16, 1 / 1024],
      [4097, 32, 1 / 8],
      [12345, 8, 1 / 64],
    ] as const) {
      const p = bufferPlan(cfg({ d, nLatents: N, k: 1, batchSize: 16, maxBindingMiB: cap }), {
        ...DEFAULT_LIMITS,
        maxStorageBuffersPerShaderStage: 1000,
      });
      expectCover(p.shards, N);
      expectCover(p.tiles, N);
    }
  });

  it('a tensor of exactly the adapter limit is split: a buffer that size did not allocate (src/gpu/limits.ts)', () => {
    // W_enc [2^19, 64] = 128 MiB = DEFAULT_LIMITS' binding: two shards, none over the limit less a page
    const limits = { ...DEFAULT_LIMITS, maxBufferSize: 128 * MiB };
    const p = bufferPlan(cfg({ d: 64, nLatents: 2 ** 19, k: 8, batchSize: 64 }), limits);
    expect(p.problems).toEqual([]);
    expect(p.shards).toEqual([
      { lat0: 0, n: 2 ** 19 - 16 },
      { lat0: 2 ** 19 - 16, n: 16 },
    ]);
    for (const b of p.buffers) expect(b.bytes, b.key).toBeLessThanOrEqual(128 * MiB - 4096);
    // one latent fewer (256 bytes less) is still over: the shards are whole rows under the cap
    expect(
      bufferPlan(cfg({ d: 64, nLatents: 2 ** 19 - 16, k: 8, batchSize: 64 }), limits).shards,
    ).toHaveLength(1);
  });

  it('an allocation the device refused: one line naming the buffer, the plan in all and its largest groups', () => {
    const p = bufferPlan(cfg({ d: 64, nLatents: 4096, k: 8, batchSize: 64 }), DEFAULT_LIMITS);
    const e = outOfMemoryError(p, 'sae:W_enc#0');
    expect(e).toBeInstanceOf(LimitError);
    const group = (g: string) => p.buffers.filter((b) => b.group === g).reduce((a, b) => a + b.bytes, 0);
    // W_enc, W_dec [4096, 64] and their moments
    expect(group('parameters')).toBeGreaterThan(2 * 4096 * 64 * 4);
    expect(group('adam')).toBeGreaterThan(4 * 4096 * 64 * 4);
    expect(e.message).toMatch(
      /^the GPU ran out of memory allocating sae:W_enc#0: this run's buffers need \d+ MiB in all \(adam 4 MiB, parameters 2 MiB, \w+ [\d.]+ [KM]iB\); lower N or the batch size$/,
    );
  });
});

describe('plan constants', () => {
  it('LAT_STATS equals the activation kernel’s', async () => {
    const { LAT_STATS } = await import('../../../src/sae/buffer-names');
    const kernel = await import('../../../src/gpu/kernels/activation');
    expect(LAT_STATS).toBe(kernel.LAT_STATS);
  });
});
