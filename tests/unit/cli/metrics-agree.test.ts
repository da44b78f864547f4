import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeNpy } from '../../../src/data/npy';
import { syntheticSource } from '../../../src/data/synthetic';
import { cli } from './run';

const haveChrome = existsSync(process.env.CHROME_PATH ?? '/usr/bin/chromium');

describe('cli: metrics.json and eval.json agree', () => {
  it.skipIf(!haveChrome)(
    'train, then eval on the exported SAE: the same nMSE, EV, L0 and never-fired fraction (live and EMA weights)',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sae-cli-agree-'));
      const rows = 3000;
      const src = syntheticSource({ d: 16, nFeatures: 48, rows, seed: 4, expectedActive: 3, noiseStd: 0.01 });
      const data = join(dir, 'acts.npy');
      writeFileSync(data, writeNpy(await src.readRows(0, rows), [rows, 16]));
      for (const ema of [false, true]) {
        const run = join(dir, ema ? 'run-ema' : 'run');
        // 300 held-out rows in batches of 64 (the last one partial); eval runs them in batches of
        // 4096 (its imported model's own batch size): the numbers must not depend on the batching.
        // No input normalization, so the exported weights round-trip exactly (a scalar one is folded
        // into them and divided out again on import, which may round).
        const t = cli([
          'train',
          '--data',
          data,
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
          '--input-norm',
          'none',
          ...(ema ? ['--ema', '--ema-decay', '0.9'] : []),
          '--quiet',
          '--out',
          run,
        ]);
        expect(t.status, t.stderr).toBe(0);
        const m = JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8'));
        const out = join(dir, ema ? 'eval-ema' : 'eval');
        const e = cli(['eval', '--sae', run, '--data', data, '--out', out]);
        expect(e.status, e.stderr).toBe(0);
        const r = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8')).report;
        expect(m.final.eval_rows).toBe(300);
        expect([r.rows, r.nmse, r.explainedVariance, r.l0, r.deadFraction]).toEqual([
          m.final.eval_rows,
          m.final.nmse,
          m.final.explained_variance,
          m.final.l0,
          m.final.dead_fraction_eval,
        ]);
        expect(m.final.weights).toBe(ema ? 'ema' : 'live');
        const cfg = JSON.parse(readFileSync(join(run, 'sae', 'cfg.json'), 'utf8'));
        expect(cfg.sae_lab.weights).toBe(ema ? 'ema' : 'live');
      }
    },
    600_000,
  );
});
