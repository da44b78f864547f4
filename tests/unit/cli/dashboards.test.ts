import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { afterAll, describe, expect } from 'vitest';
import { chromePath } from '../../../cli/browser';
import { CHROME, itNeeds } from '../prereq';
import { cli } from './run';

describe('npm run eval -- --dashboards DIR', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sae-cli-dash-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  itNeeds(CHROME)(
    "writes the folder; opened from disk it shows a latent's contexts and logit tokens (stories260K), offline",
    async () => {
      const run = join(dir, 'run');
      const train = [
        'train',
        '--data',
        'demo',
        '--n-latents',
        '64',
        '--k',
        '4',
        '--batch',
        '256',
        '--tokens',
        '4096',
        '--out',
        run,
      ];
      const cache = join(dir, 'autotune.json');
      const t = cli(train, undefined, { SAE_LAB_AUTOTUNE_CACHE: cache });
      expect(t.status, t.stderr).toBe(0);
      // Autotuned (no kernels named): metrics.json says which candidates it timed and how fast, and
      // stderr (not a terminal) had a line per stage of the autotuner while the run prepared.
      const m = JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8'));
      expect(Object.keys(m.autotune_ms)).toContain(`encode:${m.kernels.encode}`);
      const stages = t.stderr.split('\n').filter((l) => l.startsWith('autotuning kernels: '));
      expect(stages).toEqual([
        'autotuning kernels: timing the encoders on the whole batch',
        'autotuning kernels: timing the TopK variants',
        ...(m.autotune_ms['select:chunkmax'] === undefined
          ? []
          : [
              `autotuning kernels: timing the TopK on chunk maxima from the encoder (${m.kernels.encode}) against its own scan`,
            ]),
      ]);
      // The choice is remembered by its key: the same shape again takes it without timing anything.
      const remembered = JSON.parse(readFileSync(cache, 'utf8'));
      expect(Object.values(remembered)).toEqual([m.kernels]);
      const again = join(dir, 'again');
      const t2 = cli([...train.slice(0, -1), again], undefined, { SAE_LAB_AUTOTUNE_CACHE: cache });
      expect(t2.status, t2.stderr).toBe(0);
      const m2 = JSON.parse(readFileSync(join(again, 'metrics.json'), 'utf8'));
      expect(m2.kernels).toEqual(m.kernels);
      expect(m2.autotune_ms).toBeUndefined();
      expect(m2.autotune_remembered).toBe(Object.keys(remembered)[0]);
      expect(t2.stderr).not.toMatch(/autotuning kernels: timing/);
      const dash = join(dir, 'dash');
      const e = cli([
        'eval',
        '--sae',
        run,
        '--data',
        'demo',
        '--max-rows',
        '2048',
        '--explain',
        '4',
        '--dashboards',
        dash,
        '--out',
        join(dir, 'eval'),
      ]);
      expect(e.status, e.stderr).toBe(0);
      expect(e.stdout).toMatch(/dashboards: 64 latents, 5 files, [\d.]+ MiB/);
      expect(existsSync(join(dash, 'index.html'))).toBe(true);
      expect(readdirSync(join(dash, 'data')).sort()).toEqual([
        'block-0.js',
        'list.js',
        'meta.js',
        'pieces.js',
      ]);

      const browser = await chromium.launch({ executablePath: chromePath(), args: ['--no-sandbox'] });
      try {
        const page = await browser.newPage();
        const requests: string[] = [];
        page.on('request', (r) => requests.push(r.url()));
        await page.goto(pathToFileURL(join(dash, 'index.html')).href);
        expect(await page.locator('header').textContent()).toContain('logit effects through stories260K');
        // the densest latent: it fired, so it has contexts with text
        await page.locator('button[data-sort="density"]').click();
        const first = page.locator('tbody tr').first();
        const id = await first.getAttribute('data-id');
        await first.click();
        await expect.poll(() => page.locator('#detail').getAttribute('data-latent')).toBe(id);
        const contexts = await page.locator('#top .ctx .toks').allTextContents();
        expect(contexts.length).toBeGreaterThan(2);
        expect(contexts.join('')).toMatch(/[a-z]{3}/);
        expect(await page.locator('#top .tok.on').count()).toBe(contexts.length);
        expect(await page.locator('#bands h3').count()).toBeGreaterThan(0);
        // logit tokens from stories260K's vocabulary (512 pieces), 10 each way
        expect(await page.locator('#logits-up li').count()).toBe(10);
        expect(await page.locator('#logits-down li').count()).toBe(10);
        expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    400_000,
  );
});
