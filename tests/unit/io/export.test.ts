import { describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '../../../src/data/safetensors.ts';
import { exportSae } from '../../../src/io/export.ts';
import { transpose } from '../../../src/io/fold.ts';
import { reconstructRaw, topkForward } from '../../../src/io/forward.ts';
import { importSae, importSaes } from '../../../src/io/import.ts';
import type { ExportInput } from '../../../src/io/sae-files.ts';
import { filesFromZip, zipExport } from '../../../src/io/zip.ts';
import type { ParamsF32 } from '../../../src/sae/step-buffers.ts';
import { randn, randomParams, relErr } from './helpers.ts';

const d = 8;
const N = 24;
const k = 4;
const B = 16;

/** Raw activations far from unit scale, with an offset, as real residual streams are. */
function rawActs(seed: number): Float32Array {
  const x = randn(B * d, seed, 30);
  for (let i = 0; i < x.length; i++) x[i] += 5 * ((i % d) - d / 2);
  return x;
}

function scaleOf(x: Float32Array): number {
  let ss = 0;
  for (const v of x) ss += v * v;
  return Math.sqrt(d / (ss / B));
}

function input(params: ParamsF32, normalization: ExportInput['normalization']): ExportInput {
  return {
    params,
    config: { d, nLatents: N, k, batchSize: 256, tokens: 1e6 },
    normalization,
    tokensTrained: 123456,
    step: 482,
    metrics: { nmse: 0.12, l0: k, deadFraction: 0 },
    source: {
      modelName: 'stories260K',
      hookName: 'blocks.2.hook_resid_post',
      hookLayer: 2,
      contextSize: 256,
    },
    tokensSince: Uint32Array.from({ length: N }, (_, i) => i * 1000),
  };
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('SAELens export/import', () => {
  it('round trip without normalization is bit-identical, in the SAELens layout', () => {
    const p = randomParams(d, N, 1);
    const files = exportSae(input(p, { kind: 'none' }));
    expect([...files.keys()].sort()).toEqual(['cfg.json', 'sae_weights.safetensors']);
    const cfg = JSON.parse(new TextDecoder().decode(files.get('cfg.json')));
    expect(cfg).toMatchObject({
      architecture: 'topk',
      d_in: d,
      d_sae: N,
      k,
      apply_b_dec_to_input: true,
      normalize_activations: 'none',
      dtype: 'float32',
      metadata: { hook_name: 'blocks.2.hook_resid_post', hook_head_index: null, sae_lens_version: '6.0.0' },
      sae_lab: { normalization: { kind: 'none', scale: null }, tokens_trained: 123456 },
    });
    const { tensors } = readSafetensors(files.get('sae_weights.safetensors')!);
    expect(tensors.W_enc.shape).toEqual([d, N]);
    expect(tensors.W_dec.shape).toEqual([N, d]);
    expect(tensors.b_enc.shape).toEqual([N]);
    expect(tensors.b_dec.shape).toEqual([d]);
    // W_enc[j, i] (file) = ours[i, j]
    expect((tensors.W_enc.data as Float32Array)[3 * N + 5]).toBe(p.W_enc[5 * d + 3]);

    const imp = importSae(files);
    expect(imp.format).toBe('saelens');
    expect(imp.k).toBe(k);
    expect(imp.normalization).toEqual({ kind: 'none' });
    for (const key of ['W_enc', 'b_enc', 'W_dec', 'b_pre'] as const)
      expect(bits(imp.params[key]).equals(bits(p[key]))).toBe(true);
    expect(imp.config).toMatchObject({ d, nLatents: N, k, batchSize: 256 });
    expect(imp.source.hookLayer).toBe(2);
    expect(imp.tokensTrained).toBe(123456);
    expect(imp.metrics).toEqual({ nmse: 0.12, l0: k, deadFraction: 0 });
  });

  it('scalar normalization is folded: the exported SAE on RAW x gives raw x̂, and import un-folds it', () => {
    const p = randomParams(d, N, 2);
    const x = rawActs(3);
    const norm = { kind: 'scalar' as const, scale: scaleOf(x) };
    const ref = reconstructRaw(p, k, norm, x);
    const files = exportSae(input(p, norm));
    const cfg = JSON.parse(new TextDecoder().decode(files.get('cfg.json')));
    // Folded like SAELens's own fold_activation_norm_scaling_factor, which then says 'none'.
    expect(cfg.normalize_activations).toBe('none');
    expect(cfg.sae_lab.normalization.scale).toBe(norm.scale);
    expect(cfg.sae_lab.export.fold_factor).toBe(norm.scale);

    // The file's weights, used as-is on raw activations.
    const { tensors } = readSafetensors(files.get('sae_weights.safetensors')!);
    const folded: ParamsF32 = {
      W_enc: transpose(tensors.W_enc.data as Float32Array, d, N),
      b_enc: tensors.b_enc.data as Float32Array,
      W_dec: tensors.W_dec.data as Float32Array,
      b_pre: tensors.b_dec.data as Float32Array,
    };
    expect(relErr(topkForward(folded, k, x), ref)).toBeLessThan(1e-5);

    const imp = importSae(zipExport(files)); // through a zip too
    expect(imp.normalization).toEqual(norm);
    expect(relErr(imp.params.W_enc, p.W_enc)).toBeLessThan(1e-6);
    expect(relErr(reconstructRaw(imp.params, k, imp.normalization, x), ref)).toBeLessThan(1e-5);
  });

  it('foldScalar: false keeps the trained weights and says expected_average_only_in', () => {
    const p = randomParams(d, N, 4);
    const files = exportSae(input(p, { kind: 'scalar', scale: 0.25 }), { foldScalar: false });
    const cfg = JSON.parse(new TextDecoder().decode(files.get('cfg.json')));
    expect(cfg.normalize_activations).toBe('expected_average_only_in');
    expect(cfg.sae_lab.normalization).toEqual({ kind: 'scalar', scale: 0.25 });
    const imp = importSae(files);
    expect(bits(imp.params.W_enc).equals(bits(p.W_enc))).toBe(true);
    expect(imp.normalization).toEqual({ kind: 'scalar', scale: 0.25 });
  });

  it('per-token (paper) normalization exports as layer_norm with 1/sqrt(d-1) folded, and comes back', () => {
    const p = randomParams(d, N, 5);
    const x = rawActs(6);
    const files = exportSae(input(p, { kind: 'paper' }));
    const cfg = JSON.parse(new TextDecoder().decode(files.get('cfg.json')));
    expect(cfg.normalize_activations).toBe('layer_norm');
    const imp = importSae(files);
    expect(imp.normalization).toEqual({ kind: 'paper' });
    const ref = reconstructRaw(p, k, { kind: 'paper' }, x);
    expect(relErr(reconstructRaw(imp.params, k, imp.normalization, x), ref)).toBeLessThan(1e-5);
  });

  it('F16 / BF16 exports import as float32 of the rounded values', () => {
    const p = randomParams(d, N, 7);
    for (const dtype of ['F16', 'BF16'] as const) {
      const files = exportSae(input(p, { kind: 'none' }), { dtype });
      expect(JSON.parse(new TextDecoder().decode(files.get('cfg.json'))).dtype).toBe(
        dtype === 'F16' ? 'float16' : 'bfloat16',
      );
      const imp = importSae(files);
      expect(imp.params.W_dec).toBeInstanceOf(Float32Array);
      expect(relErr(imp.params.W_dec, p.W_dec)).toBeLessThan(dtype === 'F16' ? 1e-3 : 1e-2);
    }
  });

  it('imports apply_b_dec_to_input=false SAEs as the same function', () => {
    const p = randomParams(d, N, 8);
    const files = exportSae(input(p, { kind: 'none' }));
    const cfg = JSON.parse(new TextDecoder().decode(files.get('cfg.json')));
    delete cfg.sae_lab;
    cfg.apply_b_dec_to_input = false;
    files.set('cfg.json', new TextEncoder().encode(JSON.stringify(cfg)));
    const imp = importSae(files);
    expect(imp.warnings.join()).toMatch(/apply_b_dec_to_input/);
    // Their function: relu(topk(x·W_enc + b_enc))·W_dec + b_dec, i.e. ours with b_pre = 0 in the encoder.
    const x = randn(B * d, 9);
    const theirs = topkForward({ ...p, b_pre: new Float32Array(d) }, k, x).map((v, i) => v + p.b_pre[i % d]);
    expect(relErr(topkForward(imp.params, k, x), theirs)).toBeLessThan(1e-5);
  });
});

describe('openai/sparse_autoencoder names', () => {
  it('writes pre_bias, latent_bias, encoder.weight [N,d], decoder.weight [d,N], stats_last_nonzero', () => {
    const p = randomParams(d, N, 10);
    const files = exportSae(input(p, { kind: 'none' }), { format: 'openai' });
    const { tensors } = readSafetensors(files.get('openai_sae.safetensors')!);
    expect(tensors['encoder.weight'].shape).toEqual([N, d]);
    expect(tensors['decoder.weight'].shape).toEqual([d, N]);
    expect(tensors.pre_bias.shape).toEqual([d]);
    expect(tensors.latent_bias.shape).toEqual([N]);
    expect(tensors.stats_last_nonzero.dtype).toBe('I64');
    // 1000·i tokens since firing, batches of 256 tokens → floor(1000·i / 256) steps
    expect(Number((tensors.stats_last_nonzero.data as BigInt64Array)[5])).toBe(Math.floor(5000 / 256));
    expect(bits(tensors['encoder.weight'].data as Float32Array).equals(bits(p.W_enc))).toBe(true);
    const meta = JSON.parse(new TextDecoder().decode(files.get('openai_sae.json')));
    expect(meta).toMatchObject({
      n_latents: N,
      n_inputs: d,
      activation: 'TopK',
      activation_state_dict: { k },
      normalize: false,
    });
    const imp = importSae(files);
    expect(imp.format).toBe('openai');
    for (const key of ['W_enc', 'b_enc', 'W_dec', 'b_pre'] as const)
      expect(bits(imp.params[key]).equals(bits(p[key]))).toBe(true);
  });

  it('paper normalization → normalize: true and back', () => {
    const p = randomParams(d, N, 11);
    const x = rawActs(12);
    const files = exportSae(input(p, { kind: 'paper' }), { format: 'openai' });
    expect(JSON.parse(new TextDecoder().decode(files.get('openai_sae.json'))).normalize).toBe(true);
    const imp = importSae(files);
    expect(imp.normalization).toEqual({ kind: 'paper' });
    expect(
      relErr(reconstructRaw(imp.params, k, imp.normalization, x), reconstructRaw(p, k, { kind: 'paper' }, x)),
    ).toBeLessThan(1e-5);
  });
});

describe('import errors name the file and the problem', () => {
  const base = () => exportSae(input(randomParams(d, N, 13), { kind: 'none' }));
  const rewrite = (
    files: Map<string, Uint8Array>,
    edit: (
      t: Record<string, { dtype: 'F32' | 'I32'; shape: number[]; data: Float32Array | Int32Array }>,
    ) => void,
  ) => {
    const { tensors } = readSafetensors(files.get('sae_weights.safetensors')!);
    const t: Record<string, { dtype: 'F32' | 'I32'; shape: number[]; data: Float32Array | Int32Array }> = {};
    for (const [n, v] of Object.entries(tensors))
      t[n] = { dtype: 'F32', shape: v.shape, data: v.data as Float32Array };
    edit(t);
    files.set('sae_weights.safetensors', writeSafetensors(t));
    return files;
  };

  it('missing tensor', () => {
    const files = rewrite(base(), (t) => delete t.W_dec);
    expect(() => importSae(files)).toThrow(
      /^sae_weights\.safetensors: missing tensor 'W_dec' \[d_sae, d_in\] \(file has: W_enc, b_dec, b_enc\)/,
    );
  });
  it('wrong shape', () => {
    const files = rewrite(base(), (t) => {
      t.b_dec = { dtype: 'F32', shape: [d - 1], data: new Float32Array(d - 1) };
    });
    expect(() => importSae(files)).toThrow(
      `sae_weights.safetensors: tensor 'b_dec' has shape (${d - 1},), expected [d_in] = (${d},)`,
    );
  });
  it('cfg and weights disagree', () => {
    const files = base();
    const cfg = JSON.parse(new TextDecoder().decode(files.get('cfg.json')));
    cfg.d_in = d + 1;
    files.set('cfg.json', new TextEncoder().encode(JSON.stringify(cfg)));
    expect(() => importSae(files)).toThrow(
      `tensor 'W_enc' has shape (${d}, ${N}), expected [d_in, d_sae] = (${d + 1}, ${N})`,
    );
  });
  it('wrong dtype', () => {
    const files = rewrite(base(), (t) => {
      t.b_enc = { dtype: 'I32', shape: [N], data: new Int32Array(N) };
    });
    expect(() => importSae(files)).toThrow(
      "sae_weights.safetensors: tensor 'b_enc' has dtype I32; expected a float dtype (F32, F16, BF16 or F64)",
    );
  });
  it('unsupported architecture, no SAE, several SAEs, missing cfg', () => {
    const files = base();
    const cfg = JSON.parse(new TextDecoder().decode(files.get('cfg.json')));
    // SAELens 6: the architecture decides, and its tensors must be there (as load_state_dict wants)
    files.set('cfg.json', new TextEncoder().encode(JSON.stringify({ ...cfg, architecture: 'jumprelu' })));
    expect(() => importSae(files)).toThrow(/^sae_weights\.safetensors: missing tensor 'threshold'/);
    // the pre-6 flat layout: an activation the architecture cannot take
    const flat = { architecture: 'jumprelu', d_in: d, d_sae: N, activation_fn_str: 'topk' };
    files.set('cfg.json', new TextEncoder().encode(JSON.stringify(flat)));
    expect(() => importSae(files)).toThrow(
      /^cfg\.json: architecture 'jumprelu' is not supported \(activation 'topk'\)/,
    );
    files.set('cfg.json', new TextEncoder().encode(JSON.stringify({ ...cfg, architecture: 'matryoshka' })));
    expect(() => importSae(files)).toThrow(/architecture 'matryoshka' is not supported/);
    expect(() => importSaes(new Map([['notes.txt', new Uint8Array(3)]]))).toThrow(/no SAE found.*notes\.txt/);
    const two = new Map<string, Uint8Array>();
    for (const [n, b] of base()) {
      two.set(`a/${n}`, b);
      two.set(`b/${n}`, b);
    }
    expect(() => importSae(two)).toThrow(/holds 2 SAEs \(a, b\)/);
    expect(importSae(two, { path: 'b' }).path).toBe('b');
    const noCfg = base();
    noCfg.delete('cfg.json');
    expect(() => importSae(noCfg)).toThrow(/^cfg\.json: missing/);
    expect(() => importSae(new Uint8Array([1, 2, 3, 4]))).toThrow(/not a zip/);
  });
});

describe('zip', () => {
  it('zipExport → filesFromZip keeps names and bytes', () => {
    const files = exportSae(input(randomParams(d, N, 14), { kind: 'none' }));
    const back = filesFromZip(zipExport(files));
    expect([...back.keys()].sort()).toEqual([...files.keys()].sort());
    for (const [n, b] of files) expect(Buffer.from(back.get(n)!).equals(Buffer.from(b))).toBe(true);
  });
});
