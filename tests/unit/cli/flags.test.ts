import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFlags, UsageError } from '../../../cli/args';
import { EVAL_FLAGS, loadSae, readSaeInput } from '../../../cli/eval';
import { configFromFlags, TRAIN_FLAGS } from '../../../cli/train-flags';
import { exportSae } from '../../../src/io/export';
import { zipExport } from '../../../src/io/zip';

describe('parseFlags', () => {
  it('reads --name value, --name=value, switches, k/M suffixes and underscores', () => {
    const f = parseFlags(
      [
        '--data',
        'a.npy',
        '--n-latents=4096',
        '--k',
        '32',
        '--tokens',
        '2M',
        '--batch',
        '4_096',
        '--clip',
        '--lr',
        '1e-3',
        '--eval-every',
        '500k',
      ],
      TRAIN_FLAGS,
    );
    expect(f).toEqual({
      data: 'a.npy',
      'n-latents': 4096,
      k: 32,
      tokens: 2e6,
      batch: 4096,
      clip: true,
      lr: 1e-3,
      'eval-every': 5e5,
    });
  });

  it('rejects unknown flags, missing values, bad numbers and stray arguments with a UsageError', () => {
    expect(() => parseFlags(['--nope'], TRAIN_FLAGS)).toThrow(UsageError);
    expect(() => parseFlags(['--nope'], TRAIN_FLAGS)).toThrow(/unknown flag --nope/);
    expect(() => parseFlags(['--k'], TRAIN_FLAGS)).toThrow(/--k needs a value/);
    expect(() => parseFlags(['--k', '3.5'], TRAIN_FLAGS)).toThrow(/--k expects an integer, got '3.5'/);
    expect(() => parseFlags(['--lr', 'fast'], TRAIN_FLAGS)).toThrow(/--lr expects a number/);
    expect(() => parseFlags(['data.npy'], TRAIN_FLAGS)).toThrow(/unexpected argument 'data.npy'/);
  });

  it('eval flags', () => {
    const f = parseFlags(
      ['--sae', 'runs/a', '--data', 'x.npy', '--labels', 'l.npy', '--max-rows', '8k', '--out', 'o'],
      EVAL_FLAGS,
    );
    expect(f).toEqual({ sae: 'runs/a', data: 'x.npy', labels: 'l.npy', 'max-rows': 8000, out: 'o' });
    expect(() => parseFlags(['--sae'], EVAL_FLAGS)).toThrow(/needs a value/);
  });
});

describe('configFromFlags', () => {
  it('maps flags onto SaeConfig fields, switches onto booleans', () => {
    const f = parseFlags(
      [
        '--n-latents',
        '1024',
        '--k',
        '16',
        '--batch',
        '512',
        '--tokens',
        '1M',
        '--seed',
        '3',
        '--eval-frac',
        '0.05',
        '--lr-warmup',
        '10',
        '--k-aux',
        '64',
        '--aux-coef',
        '0.1',
        '--dead-tokens',
        '100k',
        '--input-norm',
        'paper',
        '--b-pre-init',
        'mean',
        '--clip',
        '--clip-norm',
        '2',
        '--ema',
        '--ema-decay',
        '0.99',
        '--no-tied-init',
        '--no-auxk',
        '--no-grad-projection',
        '--metrics-every',
        '4',
      ],
      TRAIN_FLAGS,
    );
    expect(configFromFlags(f)).toEqual({
      nLatents: 1024,
      k: 16,
      batchSize: 512,
      tokens: 1e6,
      seed: 3,
      evalFrac: 0.05,
      lrWarmupSteps: 10,
      kAux: 64,
      auxCoef: 0.1,
      deadTokens: 1e5,
      inputNorm: 'paper',
      bPreInit: 'mean',
      clipGrad: true,
      clipNorm: 2,
      ema: true,
      emaDecay: 0.99,
      tiedInit: false,
      auxk: false,
      gradProjection: false,
      metricsEvery: 4,
    });
  });

  it('leaves unset flags to the defaults and rejects bad enum values', () => {
    expect(configFromFlags(parseFlags(['--data', 'x.npy'], TRAIN_FLAGS))).toEqual({});
    expect(() => configFromFlags({ 'input-norm': 'layer' })).toThrow(
      /--input-norm must be scalar\|paper\|none/,
    );
    expect(() => configFromFlags({ 'b-pre-init': 'median' })).toThrow(UsageError);
  });
});

describe('eval: reading the SAE argument', () => {
  const d = 4;
  const N = 8;
  const params = {
    W_enc: new Float32Array(N * d).map((_, i) => Math.sin(i)),
    b_enc: new Float32Array(N),
    W_dec: new Float32Array(N * d).map((_, i) => Math.cos(i)),
    b_pre: new Float32Array(d),
  };
  const files = exportSae({ params, config: { d, nLatents: N, k: 2 }, normalization: { kind: 'none' } });

  it('accepts a training output DIR (DIR/sae), the SAE folder, one of its files, or a zip', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sae-eval-'));
    mkdirSync(join(dir, 'sae'));
    for (const [n, b] of files) writeFileSync(join(dir, 'sae', n), b);
    writeFileSync(join(dir, 'metrics.json'), '{}');
    writeFileSync(join(dir, 'sae.zip'), zipExport(files));
    for (const p of [dir, join(dir, 'sae'), join(dir, 'sae', 'cfg.json'), join(dir, 'sae.zip')]) {
      const { sae } = loadSae(p);
      expect([sae.d, sae.nLatents, sae.k]).toEqual([d, N, 2]);
    }
    expect(readSaeInput(dir)).toBeInstanceOf(Map);
  });

  it('bad input is a UsageError (exit code 2) naming the problem', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sae-eval-'));
    expect(() => loadSae(join(dir, 'missing'))).toThrow(/no such file/);
    expect(() => loadSae(dir)).toThrow(UsageError);
    writeFileSync(join(dir, 'cfg.json'), '{"d_in": 4}');
    writeFileSync(join(dir, 'sae_weights.safetensors'), 'garbage');
    expect(() => loadSae(dir)).toThrow(UsageError);
  });
});
