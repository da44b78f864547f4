/**
 * The WGSL GPT-2 forward (src/lm/gpt2/gpu-forward.ts) against the CPU twin Gpt2 in float64
 * (src/lm/gpt2/forward.ts) on seeded random checkpoints at three shapes, one of them GPT-2 small's
 * widths (d = 768, 12 heads of 64, MLP 3072) with two layers and a small vocabulary so SwiftShader
 * stays fast: every site of every layer and the logits; the replacement hook at every site kind (a
 * clean replacement changes nothing bit for bit; an edit matches the twin's); the pass stopped at the deepest hook without
 * logits; the device-limit check; the downstream loss through the LmRunner adapter (gpt2Runner)
 * on the WGSL forward against the same measure on the twin.
 *
 * Tolerance: per row t, ‖got_t − want_t‖ / ‖want_t‖ ≤ 1e-5 (f32 storage and sums against float64).
 */
import { Rng } from '../../src/data/rng';
import { gpt2Runner } from '../../src/eval/gpt2-runner';
import { downstreamLossOn } from '../../src/eval/lm-runner';
import { createBufferFrom } from '../../src/gpu/buffers';
import { Gpt2 } from '../../src/lm/gpt2/forward';
import { GpuGpt2, gpt2GpuFit } from '../../src/lm/gpt2/gpu-forward';
import {
  type Gpt2Checkpoint,
  type Gpt2Config,
  type Gpt2Site,
  type Gpt2SiteKind,
  hookName,
} from '../../src/lm/gpt2/types';
import { assert, assertClose, gpuTest } from './harness';

const TOL = 1e-5;
const KINDS: Gpt2SiteKind[] = ['resid_pre', 'attn_out', 'resid_mid', 'mlp_out', 'resid_post'];

interface Shape {
  nLayer: number;
  nHead: number;
  nEmbd: number;
  nInner: number;
  vocabSize: number;
  nPositions: number;
  layerNormEps: number;
}

/**
 * A GPT-2 with seeded random weights on the scale that keeps every activation O(1): matrices
 * N(0, 1/fan_in), embeddings N(0, 0.5²), LayerNorm gains 1 + N(0, 0.2²), biases N(0, 0.1²).
 */
function randomGpt2(s: Shape, seed: number): Gpt2Checkpoint {
  const r = new Rng(seed);
  const { nLayer: L, nEmbd: d, nInner: F, vocabSize: V, nPositions: P } = s;
  const normal = (n: number, std: number, mean = 0) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = mean + std * r.normal();
    return a;
  };
  const config: Gpt2Config = { ...s, headSize: d / s.nHead };
  return {
    name: `random-gpt2-d${d}`,
    config,
    weights: {
      wte: normal(V * d, 0.5),
      wpe: normal(P * d, 0.5),
      ln1G: normal(L * d, 0.2, 1),
      ln1B: normal(L * d, 0.1),
      attnW: normal(L * 3 * d * d, 1 / Math.sqrt(d)),
      attnB: normal(L * 3 * d, 0.1),
      attnProjW: normal(L * d * d, 1 / Math.sqrt(d)),
      attnProjB: normal(L * d, 0.1),
      ln2G: normal(L * d, 0.2, 1),
      ln2B: normal(L * d, 0.1),
      fcW: normal(L * F * d, 1 / Math.sqrt(d)),
      fcB: normal(L * F, 0.1),
      projW: normal(L * d * F, 1 / Math.sqrt(F)),
      projB: normal(L * d, 0.1),
      lnFG: normal(d, 0.2, 1),
      lnFB: normal(d, 0.1),
    },
  };
}

function randomTokens(T: number, V: number, seed: number): Int32Array {
  const r = new Rng(seed);
  return Int32Array.from({ length: T }, () => r.nextInt(V));
}

/** max over rows t of ‖a_t − b_t‖ / ‖b_t‖, rows of width n. */
function rowErr(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number {
  assert(a.length === b.length, `length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let o = 0; o < b.length; o += n) {
    let num = 0;
    let den = 0;
    for (let i = o; i < o + n; i++) {
      num += (a[i] - b[i]) ** 2;
      den += b[i] ** 2;
    }
    // A zero row (a zero-ablated residual) is measured in absolute terms.
    worst = Math.max(worst, Math.sqrt(den > 0 ? num / den : num));
  }
  return worst;
}

const allSites = (L: number): Gpt2Site[] =>
  Array.from({ length: L }, (_, layer) => KINDS.map((kind) => ({ kind, layer }))).flat();

/** Every requested site and the logits within TOL of `want`; returns the largest error. */
function compare(
  got: { sites: Map<string, ArrayLike<number>>; logits: ArrayLike<number> | null },
  want: { sites: Map<string, ArrayLike<number>>; logits: ArrayLike<number> | null },
  c: Gpt2Config,
  what: string,
): number {
  let worst = 0;
  const one = (
    name: string,
    a: ArrayLike<number> | null | undefined,
    b: ArrayLike<number> | null | undefined,
  ) => {
    assert(a && b, `${what}: ${name} missing`);
    const e = rowErr(a, b, name === 'logits' ? c.vocabSize : c.nEmbd);
    if (!(e <= TOL)) throw new Error(`${what}: ${name} row error ${e.toExponential(3)} > ${TOL}`);
    worst = Math.max(worst, e);
  };
  for (const [name, b] of want.sites) one(name, got.sites.get(name), b);
  assert(got.sites.size === want.sites.size, `${what}: ${got.sites.size} sites, want ${want.sites.size}`);
  if (want.logits) one('logits', got.logits, want.logits);
  return worst;
}

const SHAPES: (Shape & { T: number })[] = [
  { nLayer: 3, nHead: 2, nEmbd: 16, nInner: 64, vocabSize: 37, nPositions: 24, layerNormEps: 1e-5, T: 13 },
  // n_inner ≠ 4d, eps 1e-3, a window filling the context
  { nLayer: 2, nHead: 3, nEmbd: 24, nInner: 40, vocabSize: 50, nPositions: 20, layerNormEps: 1e-3, T: 20 },
  // GPT-2 small's widths
  {
    nLayer: 2,
    nHead: 12,
    nEmbd: 768,
    nInner: 3072,
    vocabSize: 300,
    nPositions: 32,
    layerNormEps: 1e-5,
    T: 16,
  },
];

for (const [i, s] of SHAPES.entries()) {
  gpuTest(
    `gpt2 forward d=${s.nEmbd} heads=${s.nHead} L=${s.nLayer} F=${s.nInner} V=${s.vocabSize} T=${s.T}: every site and logits vs the float64 twin`,
    async (device) => {
      const ckpt = randomGpt2(s, 100 + i);
      const tokens = randomTokens(s.T, s.vocabSize, 200 + i);
      const sites = allSites(s.nLayer);
      const want = new Gpt2(ckpt, { dtype: 'f64' }).run(tokens, { sites });
      const model = GpuGpt2.create(device, ckpt);
      try {
        const got = await model.forward(tokens, { sites });
        const err = compare(got, want, ckpt.config, 'forward');
        // A shorter window is the prefix of the longer one (causal), within the same tolerance.
        const short = await model.forward(tokens.subarray(0, 5), {
          sites: [{ kind: 'resid_post', layer: 0 }],
        });
        const full = got.sites.get('blocks.0.hook_resid_post')!;
        const e5 = rowErr(
          short.sites.get('blocks.0.hook_resid_post')!,
          full.subarray(0, 5 * s.nEmbd),
          s.nEmbd,
        );
        assert(e5 <= TOL, `T=5 prefix: ${e5}`);
        console.log(`    max row error ${err.toExponential(2)} over ${sites.length} sites + logits`);
      } finally {
        model.destroy();
      }
    },
  );
}

gpuTest('gpt2 forward without logits: nothing past the deepest hook runs, same values', async (device) => {
  const s = SHAPES[0];
  const ckpt = randomGpt2(s, 100);
  const tokens = randomTokens(s.T, s.vocabSize, 200);
  const model = GpuGpt2.create(device, ckpt, 16);
  try {
    const sites = allSites(s.nLayer);
    const full = await model.forward(tokens, { sites });
    for (const site of [
      { kind: 'resid_pre', layer: 0 },
      { kind: 'resid_pre', layer: 2 },
      { kind: 'attn_out', layer: 1 },
      { kind: 'resid_post', layer: 2 },
    ] as Gpt2Site[]) {
      const part = await model.forward(tokens, { sites: [site], logits: false });
      assert(part.logits === null && part.sites.size === 1, `${hookName(site)}: one site, no logits`);
      assertClose(part.sites.get(hookName(site))!, full.sites.get(hookName(site))!, 0, 0, hookName(site));
    }
    const none = await model.forward(tokens, { logits: false });
    assert(none.logits === null && none.sites.size === 0, 'nothing requested: nothing returned');
    // Refusals: a window past the capacity, an unknown token, a layer out of range, a short replacement.
    const refuse = async (what: string, f: () => Promise<unknown>) => {
      let msg = '';
      try {
        await f();
      } catch (e) {
        msg = String(e);
      }
      assert(msg !== '', `${what} is refused`);
    };
    await refuse('T > capacity', () => model.forward(new Int32Array(17)));
    await refuse('token ≥ V', () => model.forward([0, s.vocabSize]));
    await refuse('layer ≥ L', () => model.forward(tokens, { sites: [{ kind: 'mlp_out', layer: 3 }] }));
    const replace = { site: { kind: 'attn_out', layer: 0 } as Gpt2Site, data: new Float32Array(5) };
    await refuse('short replacement', () => model.forward(tokens, { replace }));
  } finally {
    model.destroy();
  }
});

// Every kind with an edit and a zero ablation on the small shape; two kinds, edit only, at d = 768.
for (const [s, kinds, zero] of [
  [SHAPES[0], KINDS, true],
  [SHAPES[2], ['attn_out', 'resid_mid'], false],
] as const) {
  gpuTest(
    `gpt2 replace at ${kinds.join(', ')} d=${s.nEmbd}: clean is a no-op, an edit matches the twin`,
    async (device) => {
      const ckpt = randomGpt2(s, 300);
      const tokens = randomTokens(s.T, s.vocabSize, 301);
      const d = s.nEmbd;
      const layer = s.nLayer - 2;
      const later: Gpt2Site[] = KINDS.map((kind) => ({ kind, layer: layer + 1 }));
      const cpu = new Gpt2(ckpt, { dtype: 'f64' });
      const model = GpuGpt2.create(device, ckpt, s.T);
      const errs: string[] = [];
      try {
        const sites = allSites(s.nLayer);
        const base = await model.forward(tokens, { sites });
        for (const kind of kinds) {
          const site: Gpt2Site = { kind, layer };
          const name = hookName(site);
          const clean = base.sites.get(name)!;
          const same = await model.forward(tokens, { sites, replace: { site, data: clean } });
          assertClose(same.logits!, base.logits!, 0, 0, `logits, clean ${name} replaced`);
          for (const [n, v] of base.sites)
            assertClose(same.sites.get(n)!, v, 0, 0, `${n}, clean ${name} replaced`);
          // An edit (the SAE splice's shape): half the clean value plus noise, and a zero ablation.
          const r = new Rng(400);
          const edit = clean.map((v) => 0.5 * v + r.normal());
          const edits: [string, Float32Array][] = [['edit', edit]];
          if (zero) edits.push(['zero', new Float32Array(s.T * d)]);
          for (const [label, data] of edits) {
            const req = { sites: [site, ...later], replace: { site, data } };
            const got = await model.forward(tokens, req);
            const want = cpu.run(tokens, req);
            assertClose(got.sites.get(name)!, clean, 0, 0, `${name} is read before the replacement`);
            const e = compare(got, want, ckpt.config, `${label} ${name}`);
            assert(
              rowErr(got.logits!, base.logits!, s.vocabSize) > 1e-3,
              `${label} ${name} changes the logits`,
            );
            errs.push(`${kind} ${label} ${e.toExponential(1)}`);
          }
        }
        // The replacement from a GPUBuffer (the runner's path) equals the one from an array.
        const site: Gpt2Site = { kind: 'mlp_out', layer };
        const data = base.sites.get(hookName(site))!.map((v) => -v);
        const src = createBufferFrom(device, 'replacement', data);
        const viaBuf = await model.forward(tokens, { replace: { site, data: src } });
        src.destroy();
        const viaArr = await model.forward(tokens, { replace: { site, data } });
        assertClose(viaBuf.logits!, viaArr.logits!, 0, 0, 'replacement from a GPUBuffer');
        console.log(`    max row error: ${errs.join(', ')}`);
      } finally {
        model.destroy();
      }
    },
  );
}

gpuTest('gpt2 device limits: GPT-2 small needs more than the default 128 MiB binding', async (device) => {
  const small: Gpt2Config = {
    nLayer: 12,
    nHead: 12,
    nEmbd: 768,
    nPositions: 1024,
    nInner: 3072,
    vocabSize: 50257,
    layerNormEps: 1e-5,
    headSize: 64,
  };
  const limits = {
    maxStorageBufferBindingSize: 2 ** 27,
    maxBufferSize: 2 ** 28,
    maxComputeWorkgroupStorageSize: 16384,
    maxComputeWorkgroupsPerDimension: 65535,
  };
  const wte = gpt2GpuFit(small, 64, limits);
  assert(wte?.startsWith('wte needs 147.2 MiB'), `default limits: ${wte}`);
  const big = { ...limits, maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 2 ** 30 };
  assert(gpt2GpuFit(small, 1024, big) === null, 'fits in 1 GiB bindings');
  const logits = gpt2GpuFit(small, 1024, { ...big, maxStorageBufferBindingSize: 2 ** 27 * 1.5 });
  assert(logits?.startsWith('logits needs 196.3 MiB') && logits.includes('smaller capacity'), `${logits}`);
  assert(gpt2GpuFit({ ...small, headSize: 60 }, 64, big) !== null, 'n_embd ≠ n_head · head size');
  const l = device.limits;
  console.log(
    `    this device: binding ${l.maxStorageBufferBindingSize / 2 ** 20} MiB, buffer ${l.maxBufferSize / 2 ** 20} MiB; GPT-2 small at T=64 ${gpt2GpuFit(small, 64, l) ?? 'fits'}`,
  );
});

gpuTest(
  'gpt2 runner: downstream loss on the WGSL forward equals the twin at mlp_out and resid_post',
  async (device) => {
    const s = SHAPES[0];
    const ckpt = randomGpt2(s, 500);
    const windows = [randomTokens(13, s.vocabSize, 501), randomTokens(9, s.vocabSize, 502)];
    // A reconstruction worse than the clean value and better than zero: 0.7·x + 0.1.
    const recon = (x: Float32Array) => x.map((v) => 0.7 * v + 0.1);
    const model = GpuGpt2.create(device, ckpt, 16);
    const cpu = new Gpt2(ckpt, { dtype: 'f64' });
    try {
      const out: string[] = [];
      for (const [kind, layer] of [
        ['mlp_out', 1],
        ['resid_post', 1],
      ] as const) {
        const g = gpt2Runner(model, kind);
        const c = gpt2Runner(cpu, kind);
        assert(
          g.backend === 'gpu' && c.backend === 'cpu' && g.config.dim === s.nEmbd,
          'runner backends and dims',
        );
        const read = await g.run(windows[0], { resid: layer, logits: false });
        const want = cpu.run(windows[0], { sites: [{ kind, layer }], logits: false });
        const e = rowErr(read.resid!, want.sites.get(hookName({ kind, layer }))!, s.nEmbd);
        assert(e <= TOL && read.logits === null, `${kind} ${layer} read: ${e}`);
        const gd = await downstreamLossOn(g, windows, layer, recon);
        const cd = await downstreamLossOn(c, windows, layer, recon);
        for (const key of ['cleanLoss', 'splicedLoss', 'zeroLoss', 'kl'] as const)
          assert(Math.abs(gd[key] - cd[key]) <= 1e-5, `${kind} ${key}: gpu ${gd[key]} vs twin ${cd[key]}`);
        assert(gd.tokens === cd.tokens && gd.splicedLoss !== gd.cleanLoss, `${kind}: the splice is applied`);
        out.push(
          `${kind} ${layer}: clean ${gd.cleanLoss.toFixed(5)} spliced ${gd.splicedLoss.toFixed(5)} zero ${gd.zeroLoss.toFixed(5)}`,
        );
      }
      console.log(`    ${out.join('; ')}`);
    } finally {
      model.destroy();
    }
  },
);
