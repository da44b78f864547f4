/** The StepParams uniform: one list gives the WGSL struct and the writer, so a field read in WGSL is the one written. */
import { describe, expect, it } from 'vitest';
import {
  STEP_FLAGS,
  STEP_PARAMS,
  STEP_PARAMS_BYTES,
  STEP_PARAMS_WGSL,
  writeStepParams,
} from '../../../src/gpu/step-params';
import { resolveConfig } from '../../../src/sae/config';
import { stepParamsBytes } from '../../../src/sae/step-uniform';

describe('StepParams', () => {
  it('is 112 bytes, a multiple of 16, one 4-byte field each', () => {
    expect(STEP_PARAMS_BYTES).toBe(112);
    expect(STEP_PARAMS_BYTES % 16).toBe(0);
  });
  it('declares every field in order in WGSL, and every flag', () => {
    const fields = [...STEP_PARAMS_WGSL.matchAll(/^ {2}(\w+): (u32|f32),/gm)].map((m) => [m[1], m[2]]);
    expect(fields).toEqual(STEP_PARAMS.map(([n, t]) => [n, t]));
    for (const [name, bit] of Object.entries(STEP_FLAGS))
      expect(STEP_PARAMS_WGSL).toContain(`const FLAG_${name}: u32 = ${bit}u;`);
  });
  it('writes each value at its field’s offset, u32 as integers and f32 as floats', () => {
    const c = resolveConfig({ d: 12, nLatents: 40, k: 4, kAux: 6, batchSize: 16, clipGrad: true });
    const buf = stepParamsBytes(c, 3, 1e-3, 0.5);
    const u = new Uint32Array(buf);
    const f = new Float32Array(buf);
    const at = (name: string) => STEP_PARAMS.findIndex(([n]) => n === name);
    expect(u[at('B')]).toBe(16);
    expect(u[at('N')]).toBe(40);
    expect(u[at('kAux')]).toBe(6);
    expect(u[at('slot')]).toBe(2);
    expect(u[at('flags')] & STEP_FLAGS.CLIP).toBe(STEP_FLAGS.CLIP);
    expect(f[at('lr')]).toBeCloseTo(1e-3, 9);
    expect(f[at('lossScale')]).toBe(0.5);
    expect(u[at('kBatch')]).toBe(64);
    // 1 − β from float64, not 1 − f32(β): for β2 = 0.999 the latter is 1.3e-5 low.
    expect(f[at('oneMinusBeta2')]).toBe(Math.fround(1 - 0.999));
    expect(f[at('oneMinusBeta2')]).not.toBe(Math.fround(1 - Math.fround(0.999)));
    // BatchTopK's θ: β and 1 − β (from float64), and the update flag only from the start step on.
    const btk = resolveConfig({
      d: 12,
      nLatents: 40,
      k: 4,
      batchSize: 16,
      activation: 'batchtopk',
      batchTopKThresholdStart: 3,
      batchTopKThresholdBeta: 0.999,
    });
    const at3 = new Uint32Array(stepParamsBytes(btk, 3, 1e-3, 0.5));
    const at4 = stepParamsBytes(btk, 4, 1e-3, 0.5);
    expect(at3[at('flags')] & STEP_FLAGS.THETA_UPDATE).toBe(0);
    expect(new Uint32Array(at4)[at('flags')] & STEP_FLAGS.THETA_UPDATE).toBe(STEP_FLAGS.THETA_UPDATE);
    expect(new Float32Array(at4)[at('thetaBeta')]).toBe(Math.fround(0.999));
    expect(new Float32Array(at4)[at('oneMinusThetaBeta')]).toBe(Math.fround(1 - 0.999));
    expect(u[at('flags')] & STEP_FLAGS.THETA_UPDATE).toBe(0); // never for TopK
    // the defaults: start min(1000, steps/10), β min(0.999, 1 − 10/steps)
    expect(
      resolveConfig({ d: 4, nLatents: 8, k: 2, batchSize: 10, tokens: 800 }).batchTopKThresholdBeta,
    ).toBe(1 - 10 / 80);
    expect(
      resolveConfig({ d: 4, nLatents: 8, k: 2, batchSize: 10, tokens: 1e7 }).batchTopKThresholdBeta,
    ).toBe(0.999);
    expect(
      resolveConfig({ d: 4, nLatents: 8, k: 2, batchSize: 10, tokens: 500 }).batchTopKThresholdStart,
    ).toBe(5);
    expect(
      resolveConfig({ d: 4, nLatents: 8, k: 2, batchSize: 10, tokens: 1e7 }).batchTopKThresholdStart,
    ).toBe(1000);
    const v = new Uint32Array(
      writeStepParams({ ...Object.fromEntries(STEP_PARAMS.map(([n]) => [n, 7])) } as never),
    );
    expect(v[at('pad0')]).toBe(0);
  });
});

describe('kernel variant names', () => {
  it('the CLI’s lists equal the kernels’', async () => {
    const names = await import('../../../src/gpu/kernel-variants');
    const { ENCODE_VARIANTS } = await import('../../../src/gpu/kernels/encode');
    const { ENCODE_TOPK_VARIANTS } = await import('../../../src/gpu/kernels/encode-topk');
    expect([...names.ENCODE_VARIANT_NAMES]).toEqual(ENCODE_VARIANTS);
    expect([...names.ENCODE_TOPK_VARIANT_NAMES]).toEqual(ENCODE_TOPK_VARIANTS);
  });
});
