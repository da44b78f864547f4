/**
 * Matryoshka BatchTopK through the CLI (issue #18's pass bar): it trains with --group-sizes, its
 * SAELens export is JumpReLU with the learned threshold and the nesting in the sae_lab block, and
 * `sweep --methods` puts it in compare.json with its own frontier.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeNpy } from '../../../src/data/npy';
import { readSafetensors } from '../../../src/data/safetensors';
import { syntheticSource } from '../../../src/data/synthetic';
import { CHROME, itNeeds } from '../prereq';
import { cli } from './run';

async function dataset(dir: string) {
  const src = syntheticSource({
    d: 16,
    nFeatures: 48,
    rows: 4096,
    seed: 5,
    expectedActive: 3,
    noiseStd: 0.01,
  });
  const path = join(dir, 'acts.npy');
  writeFileSync(path, writeNpy(await src.readRows(0, 4096), [4096, 16]));
  return path;
}

describe('cli: Matryoshka BatchTopK', () => {
  it('--group-sizes and --matryoshka-widths are refused with one line when they do not fit', () => {
    const r = cli(['train', '--data', 'demo', '--activation', 'batchtopk', '--group-sizes', '8,56']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe("error: --group-sizes needs --activation matryoshka, got 'batchtopk'");
    const s = cli([
      'train',
      '--data',
      'demo',
      '--activation',
      'matryoshka',
      '--n-latents',
      '64',
      '--group-sizes',
      '8,50',
    ]);
    expect(s.status).toBe(2);
    expect(s.stderr).toMatch(/matryoshkaWidths must end at nLatents = 64, got 8,58/);
  });

  itNeeds(CHROME)(
    'trains, exports as JumpReLU with θ, and appears in compare.json with a frontier',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sae-matryoshka-'));
      const data = await dataset(dir);
      const common = ['--data', data, '--batch', '128', '--encode-variant', 'blocked4x4', '--quiet'];
      const out = join(dir, 'run');
      const r = cli([
        'train',
        ...common,
        '--activation',
        'matryoshka',
        '--group-sizes',
        '4,12,48',
        '--n-latents',
        '64',
        '--k',
        '4',
        '--tokens',
        '16k',
        // No input normalization: the exported weights then round-trip exactly (a scalar one is
        // folded into them and divided out again on import, which rounds).
        '--input-norm',
        'none',
        '--out',
        out,
      ]);
      expect(r.status, r.stderr).toBe(0);
      const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
      expect(m.config).toMatchObject({ activation: 'matryoshka', matryoshkaWidths: [4, 16, 64] });
      expect(m.final.nmse).toBeLessThan(0.5);
      expect(Math.abs(m.final.l0 - 4)).toBeLessThan(1.5);
      // Each inner prefix's held-out nMSE, narrowest first, above the full width's.
      expect(m.final.prefix_nmse).toHaveLength(2);
      expect(m.final.prefix_nmse[0]).toBeGreaterThan(m.final.prefix_nmse[1]);
      expect(m.final.prefix_nmse[1]).toBeGreaterThan(m.final.nmse);
      // The evaluation of the exported SAE reports the same numbers (one definition, src/sae/metrics.ts).
      const ev = cli(['eval', '--sae', out, '--data', data, '--out', join(dir, 'eval')]);
      expect(ev.status, ev.stderr).toBe(0);
      const rep = JSON.parse(readFileSync(join(dir, 'eval', 'eval.json'), 'utf8')).report;
      expect([rep.nmse, rep.l0, rep.prefixNmse, rep.prefixWidths]).toEqual([
        m.final.nmse,
        m.final.l0,
        m.final.prefix_nmse,
        [4, 16],
      ]);
      const cfg = JSON.parse(readFileSync(join(out, 'sae/cfg.json'), 'utf8'));
      expect(cfg.architecture).toBe('jumprelu');
      expect(cfg.sae_lab.config.matryoshkaWidths).toEqual([4, 16, 64]);
      const w = readSafetensors(new Uint8Array(readFileSync(join(out, 'sae/sae_weights.safetensors'))));
      const theta = w.tensors.threshold.data as Float32Array;
      expect(theta.length).toBe(64);
      expect(theta[0]).toBeGreaterThan(0);
      expect(theta.every((t) => t === theta[0])).toBe(true);

      const cmp = join(dir, 'cmp');
      const c = cli([
        'sweep',
        ...common,
        '--methods',
        'batchtopk,matryoshka',
        '--n-latents',
        '64',
        '--k',
        '2,8',
        '--tokens',
        '8k',
        '--out',
        cmp,
      ]);
      expect(c.status, c.stderr).toBe(0);
      const doc = JSON.parse(readFileSync(join(cmp, 'compare.json'), 'utf8'));
      type Run = { config: { id: string; method: string }; final: { nmse: number; l0: number } };
      const runs = (doc.runs as Run[]).filter((x) => x.config.method === 'matryoshka');
      expect(runs.map((x) => x.config.id)).toEqual(['matryoshka_k2', 'matryoshka_k8']);
      for (const x of runs) expect(x.final.nmse).toBeLessThan(1);
      const frontier = (doc.frontiers as { method: string; pareto: { id: string }[] }[]).find(
        (f) => f.method === 'matryoshka',
      );
      expect(frontier?.pareto.map((p) => p.id)).toEqual(['matryoshka_k2', 'matryoshka_k8']);
    },
    600_000,
  );
});
