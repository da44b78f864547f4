import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeNpy } from '../../../src/data/npy';
import { syntheticSource } from '../../../src/data/synthetic';
import { importSae } from '../../../src/io/import';
import { CHROME, itNeeds } from '../prereq';
import { cli } from './run';

describe('cli', () => {
  it('bad flags and missing files: exit code 2 with one line', () => {
    const bad = cli(['train', '--data', 'x.npy', '--k', '3.5']);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual(["error: --k expects an integer, got '3.5'"]);
    const missing = cli(['eval', '--sae', '/nonexistent/sae', '--data', '/nonexistent.npy']);
    expect(missing.status).toBe(2);
    expect(missing.stderr.trim()).toMatch(/^error: --data \/nonexistent.npy: no such file$/);
  });

  itNeeds(CHROME)(
    'train writes metrics.json and a SAELens export that re-imports',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sae-cli-'));
      const src = syntheticSource({
        d: 16,
        nFeatures: 48,
        rows: 2048,
        seed: 1,
        expectedActive: 3,
        noiseStd: 0.01,
      });
      writeFileSync(join(dir, 'acts.npy'), writeNpy(await src.readRows(0, 2048), [2048, 16]));
      const out = join(dir, 'run');
      const r = cli([
        'train',
        '--data',
        join(dir, 'acts.npy'),
        '--n-latents',
        '64',
        '--k',
        '4',
        '--batch',
        '64',
        '--tokens',
        '4096',
        '--encode-variant',
        'blocked4x4',
        '--quiet',
        '--out',
        out,
      ]);
      expect(r.status, r.stderr).toBe(0);
      const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
      expect(m.config).toMatchObject({ d: 16, nLatents: 64, k: 4, batchSize: 64, tokens: 4096 });
      expect(m.dataset).toMatchObject({ rows: 2048, d: 16 });
      // Kernels named: no autotuner, so no timings.
      expect(m.kernels.encode).toBe('blocked4x4');
      expect(m.autotune_ms).toBeUndefined();
      expect(m.final.tokens).toBe(4096);
      for (const key of ['nmse', 'explained_variance', 'l0', 'dead_fraction', 'tokens_per_s'])
        expect(Number.isFinite(m.final[key])).toBe(true);
      expect(m.final.nmse).toBeLessThan(1);
      expect(m.curve.length).toBeGreaterThan(0);
      const files = new Map(
        ['cfg.json', 'sae_weights.safetensors'].map((n) => [
          n,
          new Uint8Array(readFileSync(join(out, 'sae', n))),
        ]),
      );
      const sae = importSae(files);
      expect([sae.format, sae.d, sae.nLatents, sae.k]).toEqual(['saelens', 16, 64, 4]);
      expect(sae.tokensTrained).toBe(4096);
    },
    150_000,
  );

  it('eval --lm-model: usage errors name the missing companion flag', () => {
    const r = cli(['eval', '--sae', 'x', '--lm-model', 'public/models/stories260K/stories260K.bin']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe('error: --lm-model needs --lm-tokenizer');
    const both = cli([
      'eval',
      '--sae',
      'x',
      '--downstream',
      '--data',
      'public/demo/stories260K_L2_resid.f16.npy',
    ]);
    expect(both.status).toBe(2);
    expect(both.stderr.trim()).toMatch(/--downstream needs a language model/);
  });

  itNeeds(CHROME)(
    'eval --lm-model extracts in the worker and reports downstream loss and ablation sparsity',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sae-cli-lm-'));
      const run = join(dir, 'run');
      const t = cli([
        'train',
        '--data',
        'demo',
        '--n-latents',
        '64',
        '--k',
        '4',
        '--batch',
        '128',
        '--tokens',
        '8192',
        '--quiet',
        '--out',
        run,
      ]);
      expect(t.status, t.stderr).toBe(0);
      const out = join(dir, 'eval');
      const m = 'public/models/stories260K/';
      const r = cli([
        'eval',
        '--sae',
        join(run, 'sae'),
        '--lm-model',
        `${m}stories260K.bin`,
        '--lm-tokenizer',
        `${m}tok512.bin`,
        '--lm-text',
        'public/text/tinystories_train_head.txt',
        '--layer',
        '2',
        '--lm-tokens',
        '1500',
        '--downstream',
        '--ablation',
        '4',
        '--out',
        out,
      ]);
      expect(r.status, r.stderr).toBe(0);
      const e = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8'));
      const ds = e.report.downstream;
      // The spliced model sits between the clean model and the zero-ablated one.
      expect(ds.cleanLoss).toBeLessThan(ds.splicedLoss);
      expect(ds.splicedLoss).toBeLessThan(ds.zeroLoss);
      expect(ds.fractionRecovered).toBeGreaterThan(0.3);
      expect(e.report.ablation.perLatent.length).toBeGreaterThan(0);
      expect(e.report.ablation.quantiles.find((q: { q: number }) => q.q === 0.5).fraction).toBeGreaterThan(0);
    },
    240_000,
  );
});
