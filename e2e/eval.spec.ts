import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { unzipSync } from 'fflate';
import { consoleErrors, readout, setField, shot, waitForAdapter } from './helpers';

// The full visit (load, train, evaluate, export) also checks that the page logs no error.
test('train on the demo, evaluate (explanations + downstream), open a latent, export; a clean console', async ({
  page,
}) => {
  const errors = consoleErrors(page);
  await page.setViewportSize({ width: 1440, height: 1000 });
  await page.goto('./');
  await waitForAdapter(page);
  await expect(page.getByTestId('dataset-shape')).toHaveText('[40960, 64]');

  // a short run: Quick test preset (N=256, k=8, B=256), 100 steps
  await page.getByTestId('preset-quick').click();
  await setField(page, 'tokens', '25600');
  await page.getByTestId('start').click();
  const status = page.getByTestId('run-status');
  await expect(status).toHaveAttribute('data-status', 'done', { timeout: 300_000 });

  const panel = page.getByTestId('eval-panel');
  await panel.scrollIntoViewIfNeeded();
  await page.getByTestId('eval-explain').fill('12');
  await expect(page.getByTestId('eval-downstream')).toBeChecked();
  await page.getByTestId('eval-run').click();
  await expect(page.getByTestId('eval-report')).toBeVisible({ timeout: 300_000 });

  // metric tiles and the density histogram
  const nmse = await readout(page, 'eval-nmse');
  expect(nmse).toBeGreaterThan(0);
  expect(nmse).toBeLessThan(1);
  expect(await readout(page, 'eval-l0')).toBeGreaterThan(0);
  expect(await readout(page, 'eval-rows')).toBeGreaterThan(1000);
  await expect(page.getByTestId('chart-density').locator('.recharts-bar-rectangle').first()).toBeVisible();
  await expect(page.getByTestId('chart-explanations')).toBeVisible();
  // downstream: the spliced SAE sits between clean and zero-ablated
  const clean = await readout(page, 'ds-clean');
  const spliced = await readout(page, 'ds-spliced');
  const zero = await readout(page, 'ds-zero');
  expect(clean).toBeGreaterThan(0);
  expect(spliced).toBeGreaterThan(clean);
  expect(zero).toBeGreaterThan(spliced);
  await panel.screenshot({ path: 'test-results/screens/eval-01-report.png' });

  // latent browser: best-explained latent first, open it
  await page.getByTestId('sort-f1').click();
  const first = page.getByTestId('latent-table').locator('tbody tr').first();
  await first.click();
  const detail = page.getByTestId('latent-detail');
  await expect(detail).toBeVisible({ timeout: 60_000 });
  await expect(detail.getByTestId('active-token').first()).toBeVisible();
  await expect(detail.getByTestId('latent-explanation')).toContainText('F1');
  expect(await detail.getByTestId('latent-contexts').locator('li').count()).toBeGreaterThan(2);
  // its dashboard: quantile-band contexts, and the logits it moves through stories260K (the demo's model)
  await expect(detail.getByTestId('latent-bands')).toBeVisible();
  await expect(detail.getByTestId('logits-up').locator('li')).toHaveCount(10);
  await expect(detail.getByTestId('logits-down').locator('li')).toHaveCount(10);
  await page.getByTestId('latent-browser').screenshot({ path: 'test-results/screens/eval-02-latent.png' });

  // a neighbour opens another latent
  const before = await detail.getAttribute('data-latent');
  await detail.getByTestId('latent-neighbours').locator('button').first().click();
  await expect(page.getByTestId('latent-detail')).not.toHaveAttribute('data-latent', before ?? '');
  await shot(page, 'eval-03-page');

  // every latent's dashboard as a static folder, zipped
  const [dash] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId('export-dashboards').click(),
  ]);
  expect(dash.suggestedFilename()).toBe('sae-dashboards.zip');
  const zipped = unzipSync(new Uint8Array(readFileSync(await dash.path())));
  expect(Object.keys(zipped).sort()).toEqual(
    expect.arrayContaining([
      'sae-dashboards/index.html',
      'sae-dashboards/data/list.js',
      'sae-dashboards/data/block-0.js',
    ]),
  );
  expect(new TextDecoder().decode(zipped['sae-dashboards/index.html'])).toContain("connect-src 'none'");
  await expect(page.getByTestId('dashboards-done')).toContainText('256 latents');

  // export the trained SAE
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId('export-saelens').click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/saelens\.zip$/);
  await expect(page.getByTestId('last-export')).toContainText(download.suggestedFilename());

  expect(errors).toEqual([]);
});
