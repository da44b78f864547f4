/**
 * Export / import of the activation variants (issue "Baselines, variants and ablations"): SAELens
 * architecture per activation, the tensors SAELens reads for it, the function the exported model
 * computes (a float64 transcription of SAELens's encode for each architecture, on RAW inputs),
 * and the way back. ProLU is exported as JumpReLU; its equivalence is checked in float64 on random
 * data with biases of both signs.
 */
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../../../src/data/safetensors.ts';
import { exportSae } from '../../../src/io/export.ts';
import { transpose } from '../../../src/io/fold.ts';
import { reconstructRaw } from '../../../src/io/forward.ts';
import { importSae } from '../../../src/io/import.ts';
import type { ExportInput } from '../../../src/io/sae-files.ts';
import type { Activation } from '../../../src/sae/config.ts';
import type { ParamsF32 } from '../../../src/sae/step-buffers.ts';
import { batchTau, randn, randomParams, relErr } from './helpers.ts';

const d = 8;
const N = 24;
const k = 4;
const B = 32;

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

/** Random params of an activation: biases of both signs, extra for gated / jumprelu. */
function variantParams(activation: Activation, seed: number): ParamsF32 {
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

function input(
  params: ParamsF32,
  activation: Activation,
  normalization: ExportInput['normalization'],
): ExportInput {
  return {
    params,
    config: { d, nLatents: N, k, activation, batchSize: 256, tokens: 1e6 },
    normalization,
  };
}

type T = Record<string, Float64Array>;
const f64 = (a: ArrayLike<number>) => Float64Array.from(a);

/** The exported tensors as float64 (SAELens layout: W_enc [d_in, d_sae]). */
function tensorsOf(files: Map<string, Uint8Array>): T {
  const { tensors } = readSafetensors(files.get('sae_weights.safetensors')!, 'w');
  const out: T = {};
  for (const [name, t] of Object.entries(tensors)) out[name] = f64(t.data as Float32Array);
  return out;
}

/**
 * SAELens's forward (saes/standard_sae.py, topk_sae.py, jumprelu_sae.py, gated_sae.py) with
 * normalize_activations 'none' and apply_b_dec_to_input, in float64.
 */
function saelensForward(arch: string, t: T, x: ArrayLike<number>, kk: number): Float64Array {
  const out = new Float64Array(B * d);
  const z = new Float64Array(d);
  const pre = new Float64Array(N);
  const gate = new Float64Array(N);
  const acts = new Float64Array(N);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < d; j++) z[j] = x[b * d + j] - t.b_dec[j];
    for (let i = 0; i < N; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += z[j] * t.W_enc[j * N + i];
      if (arch === 'gated') {
        gate[i] = s + t.b_gate[i];
        pre[i] = s * Math.exp(t.r_mag[i]) + t.b_mag[i];
      } else pre[i] = s + t.b_enc[i];
    }
    for (let i = 0; i < N; i++) {
      if (arch === 'standard') acts[i] = Math.max(0, pre[i]);
      else if (arch === 'jumprelu') acts[i] = Math.max(0, pre[i]) * (pre[i] > t.threshold[i] ? 1 : 0);
      else if (arch === 'gated') acts[i] = (gate[i] > 0 ? 1 : 0) * Math.max(0, pre[i]);
      else acts[i] = 0;
    }
    if (arch === 'topk') {
      const idx = Array.from({ length: N }, (_, i) => i).sort((a, c) => pre[c] - pre[a] || a - c);
      for (let r = 0; r < kk; r++) acts[idx[r]] = Math.max(0, pre[idx[r]]);
    }
    for (let j = 0; j < d; j++) {
      let s = t.b_dec[j];
      for (let i = 0; i < N; i++) s += acts[i] * t.W_dec[i * d + j];
      out[b * d + j] = s;
    }
  }
  return out;
}

const cfgOf = (files: Map<string, Uint8Array>) =>
  JSON.parse(new TextDecoder().decode(files.get('cfg.json'))) as Record<string, unknown>;

describe('SAELens export of the variants', () => {
  const cases: [Activation, string, string[]][] = [
    ['topk', 'topk', ['W_enc', 'b_dec', 'b_enc', 'W_dec']],
    ['batchtopk', 'jumprelu', ['W_enc', 'b_dec', 'b_enc', 'W_dec', 'threshold']],
    ['relu', 'standard', ['W_enc', 'b_dec', 'b_enc', 'W_dec']],
    ['jumprelu', 'jumprelu', ['W_enc', 'b_dec', 'b_enc', 'W_dec', 'threshold']],
    ['prolu', 'jumprelu', ['W_enc', 'b_dec', 'b_enc', 'W_dec', 'threshold']],
    ['gated', 'gated', ['W_enc', 'b_dec', 'W_dec', 'b_gate', 'r_mag', 'b_mag']],
  ];
  for (const [activation, arch, names] of cases) {
    it(`${activation} → architecture '${arch}': SAELens's forward on raw x equals ours, and it imports back`, () => {
      const x = rawActs(11);
      const norm = { kind: 'scalar' as const, scale: scaleOf(x) };
      const p = variantParams(activation, 40);
      // BatchTopK: θ as one batch cut of these rows would set it (a threshold that bites).
      const { tau: theta, maxAbove } = batchTau(
        p,
        x.map((v) => v * norm.scale),
        k,
      );
      const btk = activation === 'batchtopk';
      if (btk) expect(maxAbove).toBeLessThanOrEqual(Math.min(N, 4 * k));
      const files = exportSae({
        ...input(p, activation, norm),
        ...(btk ? { inferenceThreshold: theta } : {}),
      });
      const cfg = cfgOf(files);
      expect(cfg.architecture).toBe(arch);
      expect((cfg.metadata as Record<string, unknown>).sae_lens_version).toBe('6.0.0');
      expect(cfg.k === undefined).toBe(arch !== 'topk');
      expect(cfg.normalize_activations).toBe('none');
      const t = tensorsOf(files);
      expect(Object.keys(t).sort()).toEqual([...names].sort());
      if (btk) {
        // one threshold for every latent, θ itself (the scalar fold leaves pre-activations unchanged)
        expect([...new Set(t.threshold)]).toEqual([Math.fround(theta)]);
        expect((cfg.sae_lab as { inference_threshold: number }).inference_threshold).toBe(theta);
      }
      // the exported model, run the way SAELens runs it, on raw activations
      const theirs = saelensForward(arch, t, x, k);
      const ours = reconstructRaw(p, k, norm, x, activation, btk ? theta : undefined);
      expect(relErr(theirs, ours)).toBeLessThan(1e-5);
      // import: same activation, same function
      const back = importSae(files);
      // BatchTopK comes back as trained (its sae_lab block and θ everywhere), with θ.
      expect(back.activation).toBe(activation);
      expect(back.config.activation).toBe(activation);
      expect(back.inferenceThreshold).toBe(btk ? theta : undefined);
      expect(back.normalization).toEqual(norm);
      expect(
        relErr(
          reconstructRaw(
            back.params,
            back.k,
            back.normalization,
            x,
            back.activation,
            back.inferenceThreshold,
          ),
          ours,
        ),
      ).toBeLessThan(1e-5);
      if (activation === 'batchtopk')
        expect(String((cfg.metadata as Record<string, unknown>).sae_lab_architecture_note)).toMatch(
          /exported as JumpReLU with threshold = the inference threshold learned in training/,
        );
      if (activation === 'prolu')
        expect(
          String((cfg.sae_lab as { export: { architecture_note: string } }).export.architecture_note),
        ).toMatch(/JumpReLU with b_enc = 0 and threshold = max\(0, −b\)/);
    });
  }

  it('round trip without normalization: relu / gated bit-identical, jumprelu log-threshold to float32 rounding', () => {
    for (const activation of ['relu', 'gated', 'jumprelu'] as const) {
      const p = variantParams(activation, 7);
      const back = importSae(exportSae(input(p, activation, { kind: 'none' })));
      expect(back.params.W_enc).toEqual(p.W_enc);
      expect(back.params.W_dec).toEqual(p.W_dec);
      expect(back.params.b_pre).toEqual(p.b_pre);
      expect(back.params.b_enc).toEqual(p.b_enc);
      if (activation === 'relu') expect(back.params.extra).toBeUndefined();
      if (activation === 'gated') expect(back.params.extra).toEqual(p.extra);
      if (activation === 'jumprelu') {
        const e = back.params.extra as Float32Array;
        expect(e.length).toBe(2 * N);
        for (let i = 0; i < N; i++) expect(Math.abs(e[i] - (p.extra as Float32Array)[i])).toBeLessThan(1e-6);
      }
    }
  });

  it('jumprelu writes threshold = exp(log_threshold); gated writes b_gate = b_enc, r_mag, b_mag', () => {
    const pj = variantParams('jumprelu', 3);
    const tj = tensorsOf(exportSae(input(pj, 'jumprelu', { kind: 'none' })));
    for (let i = 0; i < N; i++)
      expect(tj.threshold[i]).toBeCloseTo(Math.exp((pj.extra as Float32Array)[i]), 6);
    const pg = variantParams('gated', 3);
    const tg = tensorsOf(exportSae(input(pg, 'gated', { kind: 'none' })));
    expect(tg.b_gate).toEqual(f64(pg.b_enc));
    expect(tg.r_mag).toEqual(f64((pg.extra as Float32Array).subarray(0, N)));
    expect(tg.b_mag).toEqual(f64((pg.extra as Float32Array).subarray(N)));
    expect(tg.W_enc).toEqual(f64(transpose(pg.W_enc, N, d)));
  });

  it('gated / jumprelu without params.extra are refused', () => {
    const p = randomParams(d, N, 1);
    expect(() => exportSae(input(p, 'gated', { kind: 'none' }))).toThrow(/gated needs params\.extra/);
    expect(() => exportSae(input(p, 'jumprelu', { kind: 'none' }))).toThrow(/2N = 48/);
  });
});

describe('ProLU exported as JumpReLU (b_enc = 0, threshold = max(0, −b))', () => {
  /** ProLU straight from its definition, float64: a = m·[m>0]·[m+b>0], m = W_enc(x − b_pre). */
  function proluDirect(p: ParamsF32, x: ArrayLike<number>): { xhat: Float64Array; active: number } {
    const out = new Float64Array(B * d);
    let active = 0;
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < d; j++) out[b * d + j] = p.b_pre[j];
      for (let i = 0; i < N; i++) {
        let m = 0;
        for (let j = 0; j < d; j++) m += p.W_enc[i * d + j] * (x[b * d + j] - p.b_pre[j]);
        const a = m > 0 && m + p.b_enc[i] > 0 ? m : 0;
        if (a === 0) continue;
        active++;
        for (let j = 0; j < d; j++) out[b * d + j] += a * p.W_dec[i * d + j];
      }
    }
    return { xhat: out, active };
  }
  /** SAELens JumpReLU on given tensors (float64), counting active latents. */
  function jumpDirect(t: T, x: ArrayLike<number>): { xhat: Float64Array; active: number } {
    const out = new Float64Array(B * d);
    let active = 0;
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < d; j++) out[b * d + j] = t.b_dec[j];
      for (let i = 0; i < N; i++) {
        let pre = t.b_enc[i];
        for (let j = 0; j < d; j++) pre += (x[b * d + j] - t.b_dec[j]) * t.W_enc[j * N + i];
        const a = pre > t.threshold[i] ? Math.max(0, pre) : 0;
        if (a === 0) continue;
        active++;
        for (let j = 0; j < d; j++) out[b * d + j] += a * t.W_dec[i * d + j];
      }
    }
    return { xhat: out, active };
  }

  it('computes the same function on random data (float64), and a wrong mapping would not', () => {
    for (const seed of [1, 2, 3]) {
      const p = variantParams('prolu', seed * 100);
      // inputs around b_pre, scaled so that |m| and |b| are comparable: the gate m + b > 0 decides often
      const x = randn(B * d, seed + 50, 0.6).map((v, i) => v + p.b_pre[i % d]);
      const files = exportSae(input(p, 'prolu', { kind: 'none' }));
      const t = tensorsOf(files);
      expect([...t.b_enc].every((v) => v === 0)).toBe(true);
      for (let i = 0; i < N; i++) expect(t.threshold[i]).toBe(Math.max(0, -p.b_enc[i]));
      const want = proluDirect(p, x);
      const got = jumpDirect(t, x);
      expect(got.active).toBe(want.active);
      expect(relErr(got.xhat, want.xhat)).toBeLessThan(1e-12);
      // sensitivity: some latents are gated off by b < 0 and some b > 0 exist
      const gatedOff = proluDirect({ ...p, b_enc: p.b_enc.map(() => 0) }, x).active - want.active;
      expect(gatedOff).toBeGreaterThan(0);
      expect([...p.b_enc].some((b) => b > 0)).toBe(true);
      // a wrong mapping (keeping b_enc as JumpReLU's bias, or threshold = |b|) changes the output
      const wrong1 = jumpDirect({ ...t, b_enc: f64(p.b_enc) }, x);
      const wrong2 = jumpDirect({ ...t, threshold: f64(p.b_enc.map(Math.abs)) }, x);
      expect(relErr(wrong1.xhat, want.xhat)).toBeGreaterThan(1e-3);
      expect(relErr(wrong2.xhat, want.xhat)).toBeGreaterThan(1e-3);
    }
  });

  it('imports back as ProLU with b = −threshold (b ≥ 0 becomes 0: the same function)', () => {
    const p = variantParams('prolu', 9);
    const back = importSae(exportSae(input(p, 'prolu', { kind: 'none' })));
    expect(back.activation).toBe('prolu');
    expect(back.params.b_enc).toEqual(p.b_enc.map((b) => Math.min(b, 0)));
    expect(back.params.W_enc).toEqual(p.W_enc);
  });

  it('a JumpReLU file from elsewhere (no sae_lab block) imports as jumprelu with log(threshold)', () => {
    const p = variantParams('prolu', 9);
    const files = exportSae(input(p, 'prolu', { kind: 'none' }));
    const cfg = cfgOf(files);
    delete cfg.sae_lab;
    files.set('cfg.json', new TextEncoder().encode(JSON.stringify(cfg)));
    const back = importSae(files);
    expect(back.activation).toBe('jumprelu');
    const e = back.params.extra as Float32Array;
    for (let i = 0; i < N; i++) {
      const th = Math.max(0, -p.b_enc[i]);
      if (th > 0) expect(e[i]).toBeCloseTo(Math.log(th), 5);
      else expect(Math.exp(e[i])).toBeLessThan(1e-37);
    }
    expect(back.warnings.join(' ')).toMatch(/threshold\(s\) ≤ 0 were raised/);
  });
});

describe('openai layout and the variants', () => {
  it('relu exports as activation ReLU and comes back; threshold variants are refused', () => {
    const p = variantParams('relu', 5);
    const files = exportSae(input(p, 'relu', { kind: 'none' }), { format: 'openai' });
    const meta = JSON.parse(new TextDecoder().decode(files.get('openai_sae.json')));
    expect(meta.activation).toBe('ReLU');
    expect(meta.activation_state_dict).toEqual({});
    const back = importSae(files);
    expect(back.activation).toBe('relu');
    expect(back.params.b_enc).toEqual(p.b_enc);
    for (const a of ['gated', 'jumprelu', 'prolu'] as const)
      expect(() => exportSae(input(variantParams(a, 5), a, { kind: 'none' }), { format: 'openai' })).toThrow(
        /openai layout holds TopK and ReLU SAEs only/,
      );
  });
});
