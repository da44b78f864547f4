/**
 * SAELens 6 files: cfg.json in SAELens 6's layout (metadata.sae_lens_version ≥ 6, so its loader
 * skips the pre-6.0 conversion), the architecture's tensors, sparsity.safetensors from the fire
 * counts, import of SAELens 6 and pre-6 configs, and the refusal of architectures SAE Lab cannot
 * hold. With python3 + numpy, tests/fixtures/io/saelens6_load.py loads the exports the way
 * SAELens 6's load_from_disk does.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError } from '../../../src/data/errors.ts';
import { readSafetensors, writeSafetensors } from '../../../src/data/safetensors.ts';
import { exportSae } from '../../../src/io/export.ts';
import { transpose } from '../../../src/io/fold.ts';
import { reconstructRaw } from '../../../src/io/forward.ts';
import { importSae } from '../../../src/io/import.ts';
import type { ExportInput } from '../../../src/io/sae-files.ts';
import { LOG_SPARSITY_EPS, logFeatureSparsity } from '../../../src/io/saelens-export.ts';
import type { Activation } from '../../../src/sae/config.ts';
import type { ParamsF32 } from '../../../src/sae/step-buffers.ts';
import { describeNeeds, NUMPY } from '../prereq.ts';
import { randn, randomParams, relErr } from './helpers.ts';

const d = 8;
const N = 24;
const k = 4;
const B = 16;
const TOKENS = 40_960;

const FIX = join(__dirname, '../../fixtures/io');
/** Random params of an activation: biases of both signs, extra for gated / jumprelu. */
function paramsOf(activation: Activation, seed: number): ParamsF32 {
  const p = randomParams(d, N, seed);
  p.b_enc = randn(N, seed + 5, 0.8);
  if (activation === 'gated') {
    p.extra = new Float32Array(2 * N);
    p.extra.set(randn(N, seed + 6, 0.3), 0);
    p.extra.set(randn(N, seed + 7, 0.5), N);
  } else if (activation === 'jumprelu') {
    p.extra = new Float32Array(2 * N);
    p.extra.set(
      randn(N, seed + 8, 0.5).map((v) => v - 1),
      0,
    );
  }
  return p;
}

/** Fire counts: latent 0 never fired, latent 1 on every token, the rest in between. */
function firesOf(seed: number): Uint32Array {
  const r = randn(N, seed, 1);
  const f = Uint32Array.from(r, (v) => Math.floor(TOKENS * (0.5 + 0.49 * Math.tanh(v)) ** 3));
  f[0] = 0;
  f[1] = TOKENS;
  f[2] = 1;
  return f;
}

function input(activation: Activation, seed: number, extra: Partial<ExportInput> = {}): ExportInput {
  return {
    params: paramsOf(activation, seed),
    config: { d, nLatents: N, k, activation, batchSize: 256 },
    normalization: { kind: 'none' },
    tokensTrained: TOKENS,
    firesTotal: firesOf(seed + 1),
    // BatchTopK: the learned inference threshold (exported as JumpReLU's threshold)
    ...(activation === 'batchtopk' ? { inferenceThreshold: 0.25 } : {}),
    source: {
      modelName: 'stories260K',
      hookName: 'blocks.2.hook_resid_pre',
      contextSize: 256,
      prependBos: true,
      datasetPath: 'demo',
    },
    ...extra,
  };
}

const cfgOf = (files: Map<string, Uint8Array>) =>
  JSON.parse(new TextDecoder().decode(files.get('cfg.json'))) as Record<string, unknown> & {
    metadata: Record<string, unknown>;
  };
const setCfg = (files: Map<string, Uint8Array>, cfg: object) =>
  files.set('cfg.json', new TextEncoder().encode(JSON.stringify(cfg)));
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** SAELens 6's SAEConfig fields (saes/sae.py), in its order, and each architecture's own. */
const BASE = [
  'd_in',
  'd_sae',
  'dtype',
  'device',
  'apply_b_dec_to_input',
  'normalize_activations',
  'reshape_activations',
  'metadata',
];
const OWN: Record<string, string[]> = {
  topk: ['k', 'rescale_acts_by_decoder_norm'],
  jumprelu: [],
  gated: [],
  standard: [],
};
/** The state dict of each SAELens 6 architecture (load_state_dict is strict). */
const TENSORS: Record<string, Record<string, 'N' | 'd' | 'dN' | 'Nd'>> = {
  topk: { W_enc: 'dN', b_enc: 'N', W_dec: 'Nd', b_dec: 'd' },
  standard: { W_enc: 'dN', b_enc: 'N', W_dec: 'Nd', b_dec: 'd' },
  jumprelu: { W_enc: 'dN', b_enc: 'N', W_dec: 'Nd', b_dec: 'd', threshold: 'N' },
  gated: { W_enc: 'dN', b_gate: 'N', r_mag: 'N', b_mag: 'N', W_dec: 'Nd', b_dec: 'd' },
};
const SHAPE = { N: [N], d: [d], dN: [d, N], Nd: [N, d] };

const CASES: [Activation, string][] = [
  ['topk', 'topk'],
  ['jumprelu', 'jumprelu'],
  ['gated', 'gated'],
  ['batchtopk', 'jumprelu'],
];

describe('SAELens 6 export', () => {
  for (const [activation, arch] of CASES) {
    it(`${activation} → '${arch}': cfg.json in SAELens 6's layout with metadata.sae_lens_version ≥ 6`, () => {
      const cfg = cfgOf(exportSae(input(activation, 10)));
      // exactly SAELens 6's keys (plus our sae_lab block, which its from_dict drops), in its order
      expect(Object.keys(cfg)).toEqual([...BASE, ...OWN[arch], 'architecture', 'sae_lab']);
      expect(cfg).toMatchObject({
        architecture: arch,
        d_in: d,
        d_sae: N,
        dtype: 'float32',
        device: 'cpu',
        apply_b_dec_to_input: true,
        normalize_activations: 'none',
        reshape_activations: 'none',
      });
      if (arch === 'topk') expect(cfg).toMatchObject({ k, rescale_acts_by_decoder_norm: false });
      const m = cfg.metadata;
      expect(Number(String(m.sae_lens_version).split('.')[0])).toBeGreaterThanOrEqual(6);
      expect(m).toMatchObject({
        sae_lens_training_version: null,
        model_name: 'stories260K',
        hook_name: 'blocks.2.hook_resid_pre',
        hook_head_index: null,
        context_size: 256,
        prepend_bos: true,
        dataset_path: 'demo',
      });
      // none of the pre-6 flat fields
      for (const old of [
        'activation_fn_str',
        'activation_fn_kwargs',
        'model_name',
        'hook_name',
        'hook_layer',
      ])
        expect(cfg).not.toHaveProperty(old);
      if (activation === 'batchtopk')
        expect(String(m.sae_lab_architecture_note)).toMatch(
          /exported as JumpReLU with threshold = the inference threshold/,
        );
    });

    it(`${activation}: sae_weights.safetensors holds '${arch}''s tensors, shapes and dtype`, () => {
      for (const dtype of ['F32', 'F16', 'BF16'] as const) {
        const files = exportSae(input(activation, 11), { dtype });
        const { tensors } = readSafetensors(files.get('sae_weights.safetensors')!);
        expect(Object.keys(tensors).sort()).toEqual(Object.keys(TENSORS[arch]).sort());
        for (const [name, s] of Object.entries(TENSORS[arch])) {
          expect(tensors[name].shape, name).toEqual(SHAPE[s]);
          expect(tensors[name].dtype, name).toBe(dtype);
        }
        expect(cfgOf(files).dtype).toBe({ F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype]);
      }
    });

    it(`${activation}: sparsity.safetensors is log10(fires/tokens + 1e-10), −10 for a latent that never fired`, () => {
      const inp = input(activation, 12);
      // the sparsity stays float32 whatever the weights' dtype, as SAELens writes it
      const files = exportSae(inp, { dtype: 'BF16' });
      expect([...files.keys()].sort()).toEqual([
        'cfg.json',
        'sae_weights.safetensors',
        'sparsity.safetensors',
      ]);
      const { tensors } = readSafetensors(files.get('sparsity.safetensors')!);
      expect(Object.keys(tensors)).toEqual(['sparsity']);
      expect(tensors.sparsity).toMatchObject({ dtype: 'F32', shape: [N] });
      const s = tensors.sparsity.data as Float32Array;
      const fires = inp.firesTotal as Uint32Array;
      for (let i = 0; i < N; i++) expect(s[i]).toBe(Math.fround(Math.log10(fires[i] / TOKENS + 1e-10)));
      expect(s[0]).toBe(-10);
      expect(Math.abs(s[1])).toBeLessThan(1e-9);
      expect(s[2]).toBeCloseTo(Math.log10(1 / TOKENS), 5); // one fire in 40,960 tokens
    });

    it(`${activation}: import gives back the same weights, activation and sparsity`, () => {
      const inp = input(activation, 13);
      const files = exportSae(inp);
      const back = importSae(files);
      // BatchTopK comes back as trained, with its θ (the sae_lab block records both).
      expect(back.activation).toBe(activation);
      expect(back.inferenceThreshold).toBe(inp.inferenceThreshold);
      expect(back.k).toBe(k);
      expect(back.warnings).toEqual([]);
      for (const key of ['W_enc', 'b_enc', 'W_dec', 'b_pre'] as const)
        expect(bits(back.params[key]).equals(bits(inp.params[key])), key).toBe(true);
      if (activation === 'gated')
        expect(bits(back.params.extra as Float32Array).equals(bits(inp.params.extra as Float32Array))).toBe(
          true,
        );
      if (activation === 'jumprelu') {
        // threshold = exp(log_threshold) in float32, log of it back: float32 rounding
        const e = back.params.extra as Float32Array;
        for (let i = 0; i < N; i++)
          expect(Math.abs(e[i] - (inp.params.extra as Float32Array)[i])).toBeLessThan(1e-6);
      }
      expect(back.logSparsity).toEqual(logFeatureSparsity(inp.firesTotal as Uint32Array, TOKENS));
      expect(back.source).toMatchObject({
        modelName: 'stories260K',
        hookName: 'blocks.2.hook_resid_pre',
        hookLayer: 2, // off the hook name, as SAELens 6 does
        contextSize: 256,
        prependBos: true,
        datasetPath: 'demo',
      });
      // exported again (as the worker does for an imported SAE): the same sparsity file
      const again = exportSae({
        params: back.params,
        config: { ...back.config, d, nLatents: N, k: back.k },
        normalization: back.normalization,
        logSparsity: back.logSparsity ?? undefined,
        inferenceThreshold: back.inferenceThreshold,
      });
      expect(
        Buffer.from(again.get('sparsity.safetensors')!).equals(
          Buffer.from(files.get('sparsity.safetensors')!),
        ),
      ).toBe(true);
    });
  }

  it('no sparsity.safetensors without fire counts, without tokens, or in the openai layout', () => {
    expect(exportSae(input('topk', 1, { firesTotal: undefined })).has('sparsity.safetensors')).toBe(false);
    expect(exportSae(input('topk', 1, { tokensTrained: 0 })).has('sparsity.safetensors')).toBe(false);
    expect(exportSae(input('topk', 1), { format: 'openai' }).has('sparsity.safetensors')).toBe(false);
    expect(() => exportSae(input('topk', 1, { firesTotal: new Uint32Array(3) }))).toThrow(
      /firesTotal has 3 values/,
    );
  });

  it('unknown source fields are null in metadata, as SAELens reads a missing one', () => {
    const cfg = cfgOf(exportSae(input('relu', 2, { source: undefined })));
    expect(cfg.architecture).toBe('standard');
    expect(cfg.metadata).toMatchObject({
      model_name: null,
      hook_name: null,
      hook_head_index: null,
      context_size: null,
      prepend_bos: null,
      dataset_path: null,
    });
    expect(cfg.metadata).not.toHaveProperty('hook_layer');
    const back = importSae(exportSae(input('relu', 2, { source: undefined })));
    expect(back.source).toEqual({
      modelName: undefined,
      hookName: undefined,
      hookLayer: undefined,
      hookHeadIndex: null,
      contextSize: undefined,
      prependBos: undefined,
      datasetPath: undefined,
    });
  });

  it('logFeatureSparsity: SAELens convention, density clamped to 1, positive tokens only', () => {
    expect(LOG_SPARSITY_EPS).toBe(1e-10);
    expect([...logFeatureSparsity([0, 10, 100, 200], 100)]).toEqual(
      [-10, Math.log10(0.1 + 1e-10), Math.log10(1 + 1e-10), Math.log10(1 + 1e-10)].map(Math.fround),
    );
    expect(() => logFeatureSparsity([1], 0)).toThrow(/tokens must be positive/);
  });
});

describe('SAELens import: 6 and pre-6 configs, refusals', () => {
  it('an old flat (pre-6) config still imports: topk through activation_fn_kwargs, jumprelu with hook_layer', () => {
    const p = paramsOf('topk', 20);
    const files = exportSae(input('topk', 20, { params: p, firesTotal: undefined }));
    setCfg(files, {
      architecture: 'standard',
      d_in: d,
      d_sae: N,
      activation_fn: 'topk', // SAELens ≤ 5 spelling, renamed to activation_fn_str by its loaders
      activation_fn_kwargs: { k },
      apply_b_dec_to_input: true,
      finetuning_scaling_factor: false,
      context_size: 128,
      model_name: 'tiny-stories-1M',
      hook_name: 'blocks.1.hook_resid_post',
      hook_layer: 1,
      hook_head_index: null,
      prepend_bos: true,
      dataset_path: 'roneneldan/TinyStories',
      normalize_activations: 'none',
      dtype: 'float32',
      device: 'cpu',
      sae_lens_training_version: '5.3.0',
    });
    const topk = importSae(files);
    expect([topk.activation, topk.k, topk.source.hookLayer, topk.source.modelName]).toEqual([
      'topk',
      k,
      1,
      'tiny-stories-1M',
    ]);
    expect(bits(topk.params.W_enc).equals(bits(p.W_enc))).toBe(true);

    const pj = paramsOf('jumprelu', 21);
    const jf = exportSae(input('jumprelu', 21, { params: pj }));
    // metadata that names a SAELens 5 version: still the pre-6 reading
    setCfg(jf, {
      architecture: 'jumprelu',
      d_in: d,
      d_sae: N,
      activation_fn_str: 'relu',
      hook_name: 'blocks.3.hook_resid_post',
      hook_layer: 7,
      metadata: { sae_lens_version: '5.9.1' },
    });
    const jr = importSae(jf);
    expect(jr.activation).toBe('jumprelu');
    expect(jr.source.hookLayer).toBe(7);
    expect(bits(jr.params.W_dec).equals(bits(pj.W_dec))).toBe(true);
    const x = randn(B * d, 22, 2);
    expect(
      relErr(
        reconstructRaw(jr.params, k, jr.normalization, x, 'jumprelu'),
        reconstructRaw(pj, k, { kind: 'none' }, x, 'jumprelu'),
      ),
    ).toBeLessThan(1e-6);
  });

  it('the bundled SAELens 5.3 fixture still imports', () => {
    const dir = join(FIX, 'saelens');
    const files = new Map(
      ['cfg.json', 'sae_weights.safetensors'].map((n) => [n, new Uint8Array(readFileSync(join(dir, n)))]),
    );
    const sae = importSae(files);
    expect([sae.activation, sae.source.hookLayer, sae.logSparsity]).toEqual(['topk', 1, null]);
  });

  it('architectures SAE Lab cannot hold are refused with one line naming cfg.json and the architecture', () => {
    const files = exportSae(input('topk', 30));
    const cfg = cfgOf(files);
    for (const [arch, why] of [
      ['batchtopk', /training config; SAELens saves a trained BatchTopK SAE as jumprelu/],
      ['matryoshka_batchtopk', /training config/],
      ['transcoder', /transcoder predicts another activation/],
      ['skip_transcoder', /transcoder/],
      ['jumprelu_transcoder', /transcoder/],
      ['temporal', /not a SAELens architecture SAE Lab knows/],
    ] as const) {
      setCfg(files, { ...cfg, architecture: arch });
      let err: unknown;
      try {
        importSae(files);
      } catch (e) {
        err = e;
      }
      expect(err, arch).toBeInstanceOf(DataError);
      const msg = (err as DataError).message;
      expect(msg).not.toContain('\n');
      expect((err as DataError).file).toBe('cfg.json');
      expect(msg).toMatch(new RegExp(`^cfg\\.json: architecture '${arch}' is not supported`));
      expect(msg).toMatch(why);
    }
    // in a folder, the message names the file with its folder
    const nested = new Map([...files].map(([n, b]) => [`layer3/${n}`, b]));
    expect(() => importSae(nested)).toThrow(/^layer3\/cfg\.json: architecture 'temporal' is not supported/);
    // a SAELens 6 config must name its architecture
    const { architecture: _, ...noArch } = cfg;
    setCfg(files, noArch);
    expect(() => importSae(files)).toThrow(/^cfg\.json: SAELens 6\.0\.0 config without 'architecture'/);
  });

  it('SAELens 6 TopK with rescale_acts_by_decoder_norm (its training default) imports as the same function', () => {
    // A TopK SAE whose decoder rows are not unit norm, run the way TopKSAE runs it with the flag on:
    // select on pre·‖W_dec,i‖, decode a/‖W_dec,i‖.
    const p = paramsOf('topk', 40);
    const norms = Float32Array.from(randn(N, 41, 0.5), (v) => Math.exp(v));
    const W_dec = p.W_dec.map((w, i) => w * norms[Math.floor(i / d)]);
    const files = new Map<string, Uint8Array>();
    files.set(
      'sae_weights.safetensors',
      writeSafetensors({
        W_enc: { dtype: 'F32', shape: [d, N], data: transpose(p.W_enc, N, d) },
        b_enc: { dtype: 'F32', shape: [N], data: p.b_enc },
        W_dec: { dtype: 'F32', shape: [N, d], data: W_dec },
        b_dec: { dtype: 'F32', shape: [d], data: p.b_pre },
      }),
    );
    setCfg(files, {
      d_in: d,
      d_sae: N,
      dtype: 'float32',
      device: 'cpu',
      apply_b_dec_to_input: true,
      normalize_activations: 'none',
      reshape_activations: 'none',
      metadata: {
        sae_lens_version: '6.18.0',
        sae_lens_training_version: '6.18.0',
        hook_name: 'blocks.5.hook_resid_post',
      },
      k,
      rescale_acts_by_decoder_norm: true,
      architecture: 'topk',
    });
    const sae = importSae(files);
    expect(sae.warnings.join(' ')).toMatch(/rescale_acts_by_decoder_norm: decoder norms folded/);
    expect(sae.source.hookLayer).toBe(5);
    const x = randn(B * d, 42, 1);
    // theirs, float64
    const want = new Float64Array(B * d);
    for (let b = 0; b < B; b++) {
      const pre = Array.from({ length: N }, (_, i) => {
        let s = p.b_enc[i];
        for (let j = 0; j < d; j++) s += (x[b * d + j] - p.b_pre[j]) * p.W_enc[i * d + j];
        return s * norms[i];
      });
      const top = pre
        .map((_, i) => i)
        .sort((a, c) => pre[c] - pre[a] || a - c)
        .slice(0, k);
      for (let j = 0; j < d; j++) want[b * d + j] = p.b_pre[j];
      for (const i of top) {
        const a = Math.max(0, pre[i]) / norms[i];
        for (let j = 0; j < d; j++) want[b * d + j] += a * W_dec[i * d + j];
      }
    }
    expect(relErr(reconstructRaw(sae.params, sae.k, sae.normalization, x), want)).toBeLessThan(1e-5);
  });

  it('a sparsity.safetensors of the wrong shape is refused naming that file', () => {
    const files = exportSae(input('topk', 50));
    files.set(
      'sparsity.safetensors',
      writeSafetensors({ sparsity: { dtype: 'F32', shape: [N + 1], data: new Float32Array(N + 1) } }),
    );
    expect(() => importSae(files)).toThrow(/^sparsity\.safetensors: tensor 'sparsity' has shape \(25,\)/);
  });
});

describeNeeds(NUMPY)('python loads the exports the way SAELens 6 does', () => {
  const cases: [Activation, string, ExportInput['normalization']][] = [
    ['topk', 'topk', { kind: 'scalar', scale: 0.05 }],
    ['jumprelu', 'jumprelu', { kind: 'none' }],
    ['gated', 'gated', { kind: 'paper' }],
    ['batchtopk', 'jumprelu', { kind: 'none' }],
    ['relu', 'standard', { kind: 'none' }],
    ['prolu', 'jumprelu', { kind: 'none' }],
  ];
  for (const [activation, arch, norm] of cases) {
    it(`${activation} (${norm.kind} normalization)`, () => {
      const inp = input(activation, 60, { normalization: norm });
      const files = exportSae(inp, { dtype: activation === 'relu' ? 'BF16' : 'F32' });
      const dir = mkdtempSync(join(tmpdir(), 'sae-saelens6-'));
      for (const [f, b] of files) writeFileSync(join(dir, f), b);
      const x = randn(B * d, 61, 20);
      for (let i = 0; i < x.length; i++) x[i] += 2;
      writeFileSync(join(dir, 'x.json'), JSON.stringify({ x: Array.from(x) }));
      const out = JSON.parse(
        execFileSync('python3', [join(FIX, 'saelens6_load.py'), dir, join(dir, 'x.json')], {
          encoding: 'utf8',
          env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
        }),
      );
      expect(out.pre6).toBe(false);
      expect(out.architecture).toBe(arch);
      expect(out.fields).toEqual([...BASE, ...OWN[arch]].sort());
      expect(out.ignored).toEqual(['sae_lab']);
      expect(out.dtypes).toEqual([activation === 'relu' ? 'BF16' : 'F32']);
      expect(out.sparsity.dtype).toBe('F32');
      expect(out.sparsity.shape).toEqual([N]);
      expect(out.sparsity.values).toEqual([...logFeatureSparsity(inp.firesTotal as Uint32Array, TOKENS)]);
      const ours = reconstructRaw(inp.params, k, norm, x, activation, inp.inferenceThreshold);
      // BF16 weights keep 8 significant bits
      const tol = activation === 'relu' ? 3e-2 : norm.kind === 'paper' ? 1e-5 : 2e-6;
      expect(relErr(out.xhat, ours)).toBeLessThan(tol);
    });
  }
});
