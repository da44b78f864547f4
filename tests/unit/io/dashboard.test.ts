import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runInNewContext } from 'node:vm';
import { chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { chromePath } from '../../../cli/browser';
import type { LatentDashboard } from '../../../src/eval/dashboard';
import { type DashboardMeta, writeDashboardFolder } from '../../../src/io/dashboard';
import { CHROME, itNeeds } from '../prereq';

const META: DashboardMeta = {
  title: 'Test <dashboards>',
  N: 5,
  d: 4,
  k: 2,
  activation: 'topk',
  rows: 100,
  dataset: 'toy',
  model: 'toyLM',
  tokens: true,
};

/** Latent i: fires on 10·(i+1) rows; latent 3 never fired; latent 1 has an explanation and a hostile token. */
function latent(i: number): LatentDashboard {
  const dead = i === 3;
  const ctx = (row: number, value: number) => ({
    row,
    value,
    tokens: ['Once', ' upon', i === 1 ? '<b>x</b>' : ' a', ' time'],
    acts: [0, value / 2, value, null],
    active: 2,
  });
  return {
    id: i,
    freq: dead ? 0 : (10 * (i + 1)) / 100,
    meanAct: dead ? Number.NaN : 1 + i / 3,
    maxAct: dead ? 0 : 2 + i,
    fired: dead ? 0 : 10 * (i + 1),
    histogram: { edges: [0, 1, 2], counts: dead ? [0, 0] : [3, 7] },
    top: dead ? [] : [ctx(7, 2 + i), ctx(9, 1.5)],
    bands: [
      { qLo: 0, qHi: 0.5, lo: 0.1, hi: 0.9, count: dead ? 0 : 5, contexts: dead ? [] : [ctx(20, 0.5)] },
      { qLo: 0.5, qHi: 1, lo: 1, hi: 2 + i, count: dead ? 0 : 5, contexts: dead ? [] : [ctx(21, 1.2345678)] },
    ],
    logits: {
      up: [
        { token: 11, piece: ' dragon', value: 0.75 },
        { token: 12, piece: ' castle', value: 0.5 },
      ],
      down: [{ token: 13, piece: ' the', value: -0.25 }],
    },
    ...(i === 1 ? { explanation: { text: '"upon" " a"', precision: 0.9, recall: 0.8, f1: 0.847 } } : {}),
  };
}

const text = (files: Map<string, Uint8Array>, p: string) => new TextDecoder().decode(files.get(p));

/** The globals the folder's data scripts set, as the viewer sees them. */
function loadData(files: Map<string, Uint8Array>): Record<string, unknown> {
  const window: { SAE_DASH?: Record<string, unknown> } = {};
  for (const p of files.keys()) if (p.endsWith('.js')) runInNewContext(text(files, p), { window });
  return window.SAE_DASH ?? {};
}

describe('writeDashboardFolder: index.html + data/*.js', () => {
  it('writes the viewer, meta, pieces, list and one script per block of latents', async () => {
    const files = await writeDashboardFolder(META, latent, { blockLatents: 2 });
    expect([...files.keys()].sort()).toEqual([
      'data/block-0.js',
      'data/block-1.js',
      'data/block-2.js',
      'data/list.js',
      'data/meta.js',
      'data/pieces.js',
      'index.html',
    ]);
    const D = loadData(files) as {
      meta: { N: number; blocks: number; blockLatents: number; model: string };
      pieces: string[];
      list: unknown[][];
      'block-0': { id: number; top: unknown[][]; logits: { up: unknown[][] }; expl: unknown }[];
      'block-1': { id: number; meanAct: number | null; top: unknown[] }[];
    };
    expect(D.meta).toMatchObject({ N: 5, blocks: 3, blockLatents: 2, model: 'toyLM' });
    expect(D.list).toEqual([
      [0, 0.1, 1, 2, null, null],
      [1, 0.2, 1.333, 3, 0.847, '"upon" " a"'],
      [2, 0.3, 1.667, 4, null, null],
      [3, 0, null, 0, null, null],
      [4, 0.5, 2.333, 6, null, null],
    ]);
    // each token text is stored once; contexts point into the table
    expect(new Set(D.pieces).size).toBe(D.pieces.length);
    const l1 = D['block-0'][1];
    expect(l1.id).toBe(1);
    const [row, value, active, pieceIds, acts] = l1.top[0] as [
      number,
      number,
      number,
      number[],
      (number | null)[],
    ];
    expect([row, value, active]).toEqual([7, 3, 2]);
    expect(pieceIds.map((p) => D.pieces[p])).toEqual(['Once', ' upon', '<b>x</b>', ' time']);
    expect(acts).toEqual([0, 1.5, 3, null]);
    expect(l1.logits.up.map(([p, t, v]) => [D.pieces[p as number], t, v])).toEqual([
      [' dragon', 11, 0.75],
      [' castle', 12, 0.5],
    ]);
    expect(l1.expl).toEqual({ text: '"upon" " a"', precision: 0.9, recall: 0.8, f1: 0.847 });
    // 4 significant digits; the never-fired latent's NaN mean is null
    expect(D['block-1'][1]).toMatchObject({ id: 3, meanAct: null, top: [] });
    const band = (D['block-1'][0] as unknown as { bands: { ctx: unknown[][] }[] }).bands[1].ctx[0];
    expect(band[1]).toBe(1.235);
  });

  it('index.html: a CSP that forbids every connection and allows the inline viewer by its hash', async () => {
    const files = await writeDashboardFolder(META, latent);
    const html = text(files, 'index.html');
    const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)?.[1] ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'none'");
    expect(csp).not.toMatch(/unsafe-inline|https?:|\*/);
    const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1] ?? '';
    const style = /<style>([\s\S]*)<\/style>/.exec(html)?.[1] ?? '';
    const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
    expect(csp).toContain(`script-src 'self' ${hash(script)}`);
    expect(csp).toContain(`style-src ${hash(style)}`);
    expect(html).toContain('<title>Test &lt;dashboards&gt;</title>');
    // no address anywhere but the SVG namespace (a name, never fetched)
    expect(html.replaceAll('http://www.w3.org/2000/svg', '')).not.toMatch(/https?:\/\//);
  });

  it('refuses a dashboard handed in for the wrong latent', async () => {
    await expect(writeDashboardFolder(META, (i) => latent(Math.min(i, 2)))).rejects.toThrow(
      /latent 2 given for latent 3/,
    );
  });
});

describe('the folder opened from disk (file://) in headless Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sae-dash-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  itNeeds(CHROME)(
    "shows the list and a latent's contexts, shading and logit tokens, with no request off disk",
    async () => {
      const files = await writeDashboardFolder(META, latent, { blockLatents: 2 });
      for (const [p, bytes] of files) {
        mkdirSync(dirname(join(dir, p)), { recursive: true });
        writeFileSync(join(dir, p), bytes);
      }
      const browser = await chromium.launch({ executablePath: chromePath(), args: ['--no-sandbox'] });
      try {
        const page = await browser.newPage();
        const requests: string[] = [];
        const problems: string[] = [];
        page.on('request', (r) => requests.push(r.url()));
        page.on('pageerror', (e) => problems.push(e.message));
        page.on('console', (m) => {
          if (m.type() === 'error') problems.push(m.text());
        });
        const url = pathToFileURL(join(dir, 'index.html')).href;
        await page.goto(`${url}#1`);
        const detail = page.locator('#detail');
        await expect.poll(() => detail.getAttribute('data-latent')).toBe('1');
        expect(await page.locator('#top .ctx').count()).toBe(2);
        // every token with a value is shaded, not only the anchor; the hostile token is text
        const shaded = await page
          .locator('#top .ctx')
          .first()
          .locator('.tok')
          .evaluateAll((ts) => ts.map((t) => [t.textContent, (t as HTMLElement).style.backgroundColor]));
        expect(shaded).toEqual([
          ['Once', ''],
          [' upon', 'rgba(255, 140, 0, 0.5)'],
          ['<b>x</b>', 'rgb(255, 140, 0)'],
          [' time', ''],
        ]);
        expect(await page.locator('#top b').count()).toBe(0);
        expect(await page.locator('#logits-up li').allTextContents()).toEqual([
          '" dragon"  0.750',
          '" castle"  0.500',
        ]);
        expect(await page.locator('#logits-down li').allTextContents()).toEqual(['" the"  -0.250']);
        await expect
          .poll(() => page.locator('#bands h3').allTextContents())
          .toEqual([
            'Quantile 0.50–1.00 · activation 1.00–3.00 · 5 rows',
            'Quantile 0.00–0.50 · activation 0.100–0.900 · 5 rows',
          ]);
        expect(await detail.textContent()).toContain('F1 0.85');
        // search by explanation text, then open a latent of another block from the list
        await page.fill('#search', 'upon');
        expect(await page.locator('tbody tr').count()).toBe(1);
        await page.fill('#search', '');
        await page.locator('tbody tr[data-id="4"]').click();
        await expect.poll(() => detail.getAttribute('data-latent')).toBe('4');
        expect(await page.locator('#top .ctx').count()).toBe(2);
        // sort by density, descending: latent 4 first
        await page.locator('button[data-sort="latent"]').click();
        await page.locator('button[data-sort="density"]').click();
        expect(await page.locator('tbody tr').first().getAttribute('data-id')).toBe('4');
        // the CSP refuses a connection the page would try
        const fetched = await page.evaluate(() =>
          fetch('http://127.0.0.1:9/x.json').then(
            () => 'fetched',
            () => 'refused',
          ),
        );
        expect(fetched).toBe('refused');
        expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
        expect(requests.some((u) => u.endsWith('/data/block-2.js'))).toBe(true);
        expect(problems.filter((p) => !p.includes('127.0.0.1:9'))).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    120_000,
  );
});
