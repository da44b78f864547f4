import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { writeNpy } from '../../../src/data/npy';
import { syntheticSource } from '../../../src/data/synthetic';
import { CHROME, itNeeds } from '../prereq';
import { cli } from './run';

const metrics = (dir: string) => JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8'));

describe('cli: --reproduce', () => {
  itNeeds(CHROME)(
    'reuses the recorded kernel variants and config: identical curve and metrics; another variant differs',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sae-cli-repro-'));
      const rows = 2000;
      const src = syntheticSource({ d: 16, nFeatures: 48, rows, seed: 9, expectedActive: 3, noiseStd: 0.01 });
      const data = join(dir, 'acts.npy');
      writeFileSync(data, writeNpy(await src.readRows(0, rows), [rows, 16]));
      const base = ['--n-latents', '64', '--k', '4', '--batch', '64', '--tokens', '3200', '--quiet'];
      const a = cli([
        'train',
        '--data',
        data,
        ...base,
        '--encode-variant',
        'vec4x8',
        '--out',
        join(dir, 'a'),
      ]);
      expect(a.status, a.stderr).toBe(0);
      const b = cli([
        'train',
        '--data',
        data,
        '--reproduce',
        join(dir, 'a'),
        '--quiet',
        '--out',
        join(dir, 'b'),
      ]);
      expect(b.status, b.stderr).toBe(0);
      const c = cli(['train', '--data', data, ...base, '--encode-variant', 'naive', '--out', join(dir, 'c')]);
      expect(c.status, c.stderr).toBe(0);
      const [ma, mb, mc] = [metrics(join(dir, 'a')), metrics(join(dir, 'b')), metrics(join(dir, 'c'))];
      expect(mb.kernels).toEqual(ma.kernels);
      expect(mb.config).toEqual(ma.config);
      expect(mb.curve.map((p: { loss: number }) => p.loss)).toEqual(
        ma.curve.map((p: { loss: number }) => p.loss),
      );
      expect(mb.final.nmse).toBe(ma.final.nmse);
      // The record matters: the scalar encoder sums in another order, so its bits differ.
      expect(mc.kernels.encode).toBe('naive');
      expect(mc.curve.map((p: { loss: number }) => p.loss)).not.toEqual(
        ma.curve.map((p: { loss: number }) => p.loss),
      );
      // Config flags next to --reproduce are refused, not ignored.
      const bad = cli([
        'train',
        '--data',
        data,
        '--reproduce',
        join(dir, 'a'),
        '--k',
        '8',
        '--out',
        join(dir, 'd'),
      ]);
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/--reproduce takes the config/);
    },
    600_000,
  );
});
