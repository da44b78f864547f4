import { expect, test } from '@playwright/test';
import { shot, waitForAdapter } from './helpers';

// "Compare methods" in the sweep panel, tiny (SwiftShader is slow): the demo, N=64, TopK at k 4,8
// and ReLU+L1 at two λ, 4k tokens per run at batch 256. The runs go through the worker exactly as
// `npm run sweep -- --methods topk,relu` does; the frontier, dead fraction per method, the
// TopK-vs-ReLU readout and the exports appear.
const METHODS = (process.env.SAE_LAB_E2E_COMPARE ?? 'topk,relu').split(',');

test('compare methods on the demo: frontier per method, dead fractions, exports', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1100 });
  await page.goto('./');
  await waitForAdapter(page);
  await expect(page.getByTestId('dataset-card')).toContainText('stories260K', { timeout: 120_000 });
  await page.getByTestId('preset-quick').click();

  await page.getByTestId('sweeps').scrollIntoViewIfNeeded();
  await page.getByTestId('sweep-mode-compare').click();
  // default selection is topk + relu; set the one asked for
  for (const m of ['topk', 'relu'])
    if (!METHODS.includes(m)) await page.getByTestId(`compare-method-${m}`).uncheck();
  for (const m of METHODS) await page.getByTestId(`compare-method-${m}`).check();
  await page.getByTestId('compare-n').selectOption('64');
  await page.getByTestId('compare-k').fill('4,8');
  // the λ fields are enabled only when a method that uses them is selected
  if (METHODS.some((m) => ['relu', 'prolu', 'gated'].includes(m)))
    await page.getByTestId('compare-l1').fill('0.001,0.01');
  if (METHODS.includes('jumprelu')) await page.getByTestId('compare-l0').fill('0.001,0.01');
  await page.getByTestId('compare-tokens').fill('4k');
  await page.getByTestId('compare-evals').fill('2');
  const total = 2 * METHODS.length;
  await expect(page.getByTestId('compare-start')).toHaveText(`Start comparison (${total} runs)`);
  await page.getByTestId('compare-start').click();

  const progress = page.getByTestId('compare-progress');
  await expect(progress).toHaveAttribute('data-status', 'running');
  await expect(progress).toHaveAttribute('data-status', 'done', { timeout: 540_000 });
  await expect(progress).toHaveAttribute('data-done', String(total));
  for (const m of METHODS) {
    for (const id of m === 'relu' ? ['relu_l1=0.001', 'relu_l1=0.01'] : [`${m}_k4`, `${m}_k8`])
      await expect(page.getByTestId(`compare-run-${id}`)).toHaveAttribute('data-state', 'done');
    await expect(page.getByTestId(`compare-frontier-${m}`)).toHaveAttribute('data-points', '2');
    await expect(page.getByTestId(`compare-dead-${m}`)).toBeVisible();
  }
  // the frontier chart drew points (Recharts scatter symbols) and a line per method
  const chart = page.getByTestId('compare-chart-frontier');
  await expect(chart.locator('.recharts-scatter-symbol').first()).toBeVisible();
  expect(await chart.locator('.recharts-scatter-symbol').count()).toBe(total);
  expect(await chart.locator('path.recharts-curve').count()).toBeGreaterThanOrEqual(METHODS.length);
  if (METHODS.includes('topk') && METHODS.includes('relu'))
    await expect(page.getByTestId('compare-topk-vs-relu')).toContainText('TopK vs ReLU+L1 at equal L0');

  for (const id of [
    'export-compare-json',
    'export-compare-csv',
    'export-compare-svg',
    'export-compare-dead-csv',
  ])
    await expect(page.getByTestId(id)).toHaveAttribute('href', /^blob:/);
  const json = await page
    .getByTestId('export-compare-json')
    .evaluate(async (a) => (await fetch((a as HTMLAnchorElement).href)).json());
  expect(json.kind).toBe('method-comparison');
  expect(json.runs).toHaveLength(total);
  for (const r of json.runs) {
    expect(r.final.nmse).toBeGreaterThan(0);
    expect(r.final.l0).toBeGreaterThan(0);
    expect(r.tokens_per_s).toBeGreaterThan(0);
    expect(r.config.N).toBe(64);
  }
  const svg = await page
    .getByTestId('export-compare-svg')
    .evaluate(async (a) => (await fetch((a as HTMLAnchorElement).href)).text());
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg.match(/<g class="method"/g)).toHaveLength(METHODS.length);

  await page.getByTestId('compare-plots').scrollIntoViewIfNeeded();
  await shot(page, 'compare-01-done');
});
