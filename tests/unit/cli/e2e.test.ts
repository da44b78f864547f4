/**
 * The CLI end to end on a tiny synthetic .npy: headless Chromium (WebGPU on SwiftShader here),
 * N=64, k=4, batch 64, 4096 tokens. Skipped when no Chromium is available (CHROME_PATH or /usr/bin/chromium).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeNpy } from '../../../src/data/npy';
import { syntheticSource } from '../../../src/data/synthetic';
import { importSae } from '../../../src/io/export';

const ROOT = resolve(import.meta.dirname, '../../..');
const cli = (args: string[], timeout = 150_000) =>
  spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), join(ROOT, 'cli/main.ts'), ...args],
    { cwd: ROOT, encoding: 'utf8', timeout },
  );
const haveChrome = existsSync(process.env.CHROME_PATH ?? '/usr/bin/chromium');

describe('cli', () => {
  it('bad flags and missing files: exit code 2 with one line', () => {
    const bad = cli(['train', '--data', 'x.npy', '--k', '3.5']);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual(["error: --k expects an integer, got '3.5'"]);
    const missing = cli(['eval', '--sae', '/nonexistent/sae', '--data', '/nonexistent.npy']);
    expect(missing.status).toBe(2);
    expect(missing.stderr.trim()).toMatch(/^error: --data \/nonexistent.npy: no such file$/);
  });

  it.skipIf(!haveChrome)(
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
});
