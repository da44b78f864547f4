/**
 * Latent shards and tiles: the same seed, the same batches, once with every tensor in one buffer and
 * once with a binding cap that splits W_enc/W_dec (and their gradients, moments, EMA) into shards and
 * the encoder + TopK into tiles. Parameters, Adam moments, EMA, dead counters and metrics must agree
 * bit for bit after several steps, with latents dying and AuxK active.
 */
import { setGpuForms } from '../../src/gpu/kernels/kernel';
import { type ResolvedConfig, resolveConfig, type SaeConfig } from '../../src/sae/config';
import { bufferPlan } from '../../src/sae/plan';
import { GpuSae } from '../../src/sae/step';
import type { StepMetrics } from '../../src/sae/step-buffers';
import { DEFAULT_KERNELS, type KernelChoice } from '../../src/sae/step-host';
import { snapshotState } from '../../src/sae/trainer-checkpoint';
import { assert, gpuTest, randn } from './harness';
import { randomParams } from './step.gpu';

const STEPS = 6;

async function run(device: GPUDevice, cfg: ResolvedConfig, kernels: KernelChoice, tileLatents?: number) {
  const { batchSize: B, d, nLatents: N } = cfg;
  const sae = new GpuSae(device, cfg, kernels, { tileLatents });
  try {
    // Half the latents start near death, so AuxK has candidates in several tiles and shards.
    const tokensSince = new Uint32Array(N).map((_, i) => (i % 2 ? cfg.deadTokens : 0));
    sae.setState({ params: randomParams(N, d, 3), tokensSince });
    for (let t = 1; t <= STEPS; t++) {
      sae.writeBatch(randn(B * d, 100 + t), new Float32Array(B).fill(1.5));
      sae.step(t, cfg.lr, 1 / (B * 1.1));
    }
    const state = await sae.readState();
    // The checkpoint's snapshot reads the same state: in one submission, and in rounds of at most
    // 1000 bytes of staging (shards split mid-row), as a state past SNAPSHOT_STAGING_BYTES is read.
    const snap = await snapshotState(sae);
    const snapRounds = await snapshotState(sae, 1000);
    // and a read-back in chunks of 1000 bytes
    const wDecChunked = new Float32Array(await sae.readTensor('W_dec', undefined, 1000));
    const metrics = await sae.readMetrics(0, STEPS);
    const entries = await sae.readU32('idxAll');
    return { state, snap, snapRounds, wDecChunked, metrics, entries, plan: sae.plan };
  } finally {
    sae.destroy();
  }
}

function sameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string) {
  assert(a.length === b.length, `${what}: length ${a.length} vs ${b.length}`);
  const fa = new Float32Array(a as ArrayLike<number>);
  const fb = new Float32Array(b as ArrayLike<number>);
  const ua = new Uint32Array(fa.buffer);
  const ub = new Uint32Array(fb.buffer);
  for (let i = 0; i < ua.length; i++)
    if (ua[i] !== ub[i]) throw new Error(`${what}[${i}]: ${fa[i]} vs ${fb[i]} (bits differ)`);
}

const CASES: {
  name: string;
  cfg: Partial<SaeConfig> & { d: number };
  kernels?: Partial<KernelChoice>;
  /** force the split long-list gradient sums (GPU-only by default) */
  splitLong?: boolean;
  /** the whole run forms gv in the gradient sums, the sharded one in gv's own kernel (asserted) */
  gvAcross?: boolean;
}[] = [
  {
    name: 'topk, AuxK, EMA, clip',
    cfg: { d: 12, nLatents: 160, k: 4, kAux: 6, ema: true, clipGrad: true, clipNorm: 0.05 },
    gvAcross: true,
  },
  {
    name: 'topk insert, vec4 encoder',
    cfg: { d: 16, nLatents: 130, k: 3, kAux: 5, batchSize: 32 },
    kernels: { topk: 'insert', encode: 'vec4x4' },
    gvAcross: true,
  },
  // AuxK lists of about B·kAux/(N/2) ≈ 43 entries: the split sums, whose latents come from one long
  // list shared by every shard.
  {
    name: 'topk, long lists through the split sums',
    cfg: { d: 32, nLatents: 192, k: 8, kAux: 32, batchSize: 128 },
    splitLong: true,
  },
  { name: 'multitopk', cfg: { d: 12, nLatents: 150, k: 2, activation: 'topk', multiTopK: true } },
  { name: 'batchtopk, AuxK', cfg: { d: 12, nLatents: 170, k: 3, kAux: 4, activation: 'batchtopk' } },
  {
    // Scalar gradient kernels (d % 4 ≠ 0), levels that straddle the shard boundaries.
    name: 'matryoshka, AuxK',
    cfg: { d: 10, nLatents: 170, k: 3, kAux: 4, activation: 'matryoshka', matryoshkaWidths: [7, 50, 170] },
  },
];

for (const cs of CASES) {
  gpuTest(`shards: sharded + tiled run equals the unsharded run bit for bit (${cs.name})`, async (device) => {
    const base = { batchSize: 16, deadTokens: 32, lr: 1e-2, ...cs.cfg };
    const kernels = { ...DEFAULT_KERNELS, ...cs.kernels };
    const whole = resolveConfig(base);
    // The smallest cap every buffer but the [N, d] tensors and the pre-activations fits (and the sort's
    // row-block counts, which shrink to the cap, or give way to the atomic sort: the same lists; gv's
    // parts, which give way to gv's own kernel: the same gv; and g's copy of g_aux, which gives way to
    // the two walks of the gradient sums: the same sums).
    const wholePlan = bufferPlan(whole, device.limits);
    const levels = whole.matryoshkaWidths.length;
    const capBytes = Math.max(
      ...wholePlan.buffers
        .map((x) =>
          x.key === 'g' && wholePlan.gAuxTail ? { ...x, bytes: (x.bytes / (levels + 1)) * levels } : x,
        )
        .filter(
          (x) =>
            !x.key.includes('#') &&
            x.group !== 'pre-activations' &&
            x.key !== 'sortBlocks' &&
            x.key !== 'gvPart',
        )
        .map((x) => x.bytes),
    );
    const sharded = resolveConfig({ ...base, maxBindingMiB: capBytes / 2 ** 20 });
    const plan = bufferPlan(sharded, device.limits);
    assert(plan.problems.length === 0, `plan problems: ${plan.problems.join('; ')}`);
    assert(plan.shards.length >= 2, `expected several shards, got ${plan.shards.length}`);
    assert(
      plan.tiles.length > plan.shards.length,
      `expected several tiles per shard, got ${plan.tiles.length}`,
    );
    // With vec4 rows on software the whole run forms gv inside the gradient sums (gvPart), in one walk
    // where the device has quads (g holds g_aux's copy); the sharded plan's cap is below gvPart and g
    // with the copy, so that run keeps gv's own kernel and two walks: the bits below hold them alike.
    if (cs.gvAcross) {
      const g = [wholePlan.gvParts, plan.gvParts];
      assert(g[0] === 4 && g[1] === 0, `gvParts whole/sharded ${g.join('/')}: expected 4/0`);
      assert(
        wholePlan.gAuxTail && !plan.gAuxTail,
        `gAuxTail whole/sharded ${wholePlan.gAuxTail}/${plan.gAuxTail}`,
      );
    }
    if (cs.splitLong !== undefined) setGpuForms(device, cs.splitLong);
    const [a, b] = await (async () => {
      try {
        return [await run(device, whole, kernels), await run(device, sharded, kernels)];
      } finally {
        setGpuForms(device, null);
      }
    })();
    assert(a.plan.shards.length === 1 && a.plan.tiles.length === 1, 'the reference run must be unsharded');
    for (const key of ['params', 'm', 'v'] as const)
      for (const [p, arr] of Object.entries(a.state[key]))
        sameBits(arr, b.state[key][p as 'W_enc'], `${key}.${p}`);
    if (a.state.ema)
      for (const [p, arr] of Object.entries(a.state.ema))
        sameBits(arr, b.state.ema![p as 'W_enc'], `ema.${p}`);
    sameBits(a.state.tokensSince, b.state.tokensSince, 'tokensSince');
    for (const r of [a, b])
      sameBits(r.wDecChunked, r.state.params.W_dec, 'W_dec read in chunks of 1000 bytes');
    for (const r of [a, b])
      for (const [how, s] of [
        ['snapshot', r.snap],
        ['snapshot in rounds', r.snapRounds],
      ] as const) {
        for (const key of ['params', 'm', 'v'] as const)
          for (const [p, arr] of Object.entries(r.state[key]))
            sameBits(s[key][p as 'W_enc'], arr, `${how} ${key}.${p}, ${r.plan.shards.length} shard(s)`);
        sameBits(s.tokensSince, r.state.tokensSince, `${how} tokensSince`);
        sameBits(s.firesTotal, r.state.firesTotal, `${how} firesTotal`);
        if (r.state.ema)
          for (const [p, arr] of Object.entries(r.state.ema))
            sameBits(s.ema![p as 'W_enc'], arr, `${how} ema.${p}`);
      }
    sameBits(a.entries, b.entries, 'idxAll');
    const flat = (m: StepMetrics[]) => m.flatMap((s) => Object.values(s));
    sameBits(flat(a.metrics), flat(b.metrics), 'metrics');
    // The run must have exercised AuxK: some step saw dead latents.
    if (whole.auxk && whole.kAux > 0)
      assert(
        a.metrics.some((m) => m.deadCount > 0),
        'no dead latents: AuxK untested',
      );
  });
}

gpuTest('shards: the untiled path and a forced tile width agree bit for bit (one shard)', async (device) => {
  const cfg = resolveConfig({ d: 12, nLatents: 40, k: 4, kAux: 6, batchSize: 16, deadTokens: 32, lr: 1e-2 });
  const a = await run(device, cfg, DEFAULT_KERNELS);
  const b = await run(device, cfg, DEFAULT_KERNELS, 7);
  assert(b.plan.tiles.length === 6, `expected 6 tiles, got ${b.plan.tiles.length}`);
  for (const [p, arr] of Object.entries(a.state.params)) sameBits(arr, b.state.params[p as 'W_enc'], p);
  sameBits(a.entries, b.entries, 'idxAll');
});

gpuTest(
  'shards: fused encode+TopK steps equal the unfused step bit for bit (one tile, and sharded)',
  async (device) => {
    const base = { d: 16, nLatents: 300, k: 4, kAux: 6, batchSize: 16, deadTokens: 32, lr: 1e-2 };
    const cfg = resolveConfig(base);
    const unfused = await run(device, cfg, { ...DEFAULT_KERNELS, encode: 'vec4x4' });
    const fused = await run(device, cfg, {
      ...DEFAULT_KERNELS,
      encode: 'vec4x4',
      fused: 'vec4x4',
      fusedChunk: 128,
    });
    assert(
      fused.plan.tiles.length === 1 && fused.plan.fusedChunkMin > 0,
      'expected one tile with the fused kernel',
    );
    const capBytes = 16 * 300; // 75 latents per shard → 4 shards
    const sharded = resolveConfig({ ...base, maxBindingMiB: capBytes / 2 ** 20 });
    const fusedSharded = await run(device, sharded, {
      ...DEFAULT_KERNELS,
      encode: 'blocked4x4',
      fused: 'blocked4x4',
    });
    const scalar = await run(device, cfg, DEFAULT_KERNELS);
    assert(fusedSharded.plan.shards.length >= 2, `expected shards, got ${fusedSharded.plan.shards.length}`);
    for (const [p, arr] of Object.entries(unfused.state.params))
      sameBits(arr, fused.state.params[p as 'W_enc'], p);
    for (const [p, arr] of Object.entries(scalar.state.params))
      sameBits(arr, fusedSharded.state.params[p as 'W_enc'], `sharded ${p}`);
    sameBits(unfused.entries, fused.entries, 'idxAll');
    sameBits(scalar.entries, fusedSharded.entries, 'sharded idxAll');
    const flat = (m: StepMetrics[]) => m.flatMap((s) => Object.values(s));
    sameBits(flat(unfused.metrics), flat(fused.metrics), 'metrics');
    assert(
      unfused.metrics.some((m) => m.deadCount > 0),
      'no dead latents: AuxK untested',
    );
  },
);

gpuTest(
  'plan: the engine allocates what the plan estimates, for every activation (within 5%; exact but for kernel uniforms)',
  async (device) => {
    const activations = ['topk', 'batchtopk', 'matryoshka', 'relu', 'prolu', 'gated', 'jumprelu'] as const;
    for (const activation of activations)
      for (const extra of [{}, { ema: true }, { multiTopK: true }, { maxBindingMiB: 0.02 }]) {
        if ('multiTopK' in extra && activation !== 'topk') continue;
        if ('maxBindingMiB' in extra && !['topk', 'batchtopk', 'matryoshka'].includes(activation)) continue;
        const cfg = resolveConfig({
          d: 16,
          nLatents: 600,
          k: 4,
          kAux: 8,
          batchSize: 32,
          activation,
          ...extra,
        });
        const plan = bufferPlan(cfg, device.limits);
        const sae = new GpuSae(device, cfg, DEFAULT_KERNELS);
        try {
          const what = `${activation} ${JSON.stringify(extra)}`;
          assert(
            sae.bytes === plan.totalBytes,
            `${what}: allocated ${sae.bytes}, planned ${plan.totalBytes}`,
          );
          assert(Math.abs(sae.bytes - plan.totalBytes) <= 0.05 * plan.totalBytes, what);
        } finally {
          sae.destroy();
        }
      }
  },
);
