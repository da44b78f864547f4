import { expect, test } from '@playwright/test';
import { shot, waitForAdapter } from './helpers';

/**
 * The in-page extractor: stories260K over a few hundred tokens of the bundled text at layer 2, on
 * the WGSL forward (SwiftShader here), with progress; the rows become the dataset, labeled as LM
 * activations. The same settings again are a cache hit (OPFS): no forward pass, said so in the UI.
 */
test('extract activations from stories260K in the page, then hit the cache', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1000 });
  await page.goto('./?nodemo');
  await waitForAdapter(page);

  const section = page.getByTestId('extract-section');
  await section.locator('summary').click();
  await expect(page.getByTestId('extract-model')).toHaveValue('stories260K');
  await page.getByTestId('extract-site').selectOption('resid');
  await page.getByTestId('extract-layer').fill('2');
  await page.getByTestId('extract-tokens').fill('300');

  // record every progress line the page shows (extraction of 300 tokens can be quick)
  await page.evaluate(() => {
    const w = window as unknown as { __phases: string[] };
    w.__phases = [];
    new MutationObserver(() => {
      const el = document.querySelector('[data-testid=extract-phase]');
      if (el?.textContent && w.__phases[w.__phases.length - 1] !== el.textContent)
        w.__phases.push(el.textContent);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  const t0 = Date.now();
  await page.getByTestId('extract-start').click();
  const result = page.getByTestId('extract-result');
  await expect(result).toHaveAttribute('data-source', 'gpu', { timeout: 60_000 });
  const first = Date.now() - t0;
  const phases = await page.evaluate(() => (window as unknown as { __phases: string[] }).__phases);
  expect(phases.length).toBeGreaterThan(0);
  expect(phases.some((p) => /extracting \(WGSL forward\)|loading model/.test(p))).toBe(true);

  const card = page.getByTestId('dataset-card');
  await expect(card).toContainText('LM activations');
  await expect(page.getByTestId('dataset-shape')).toHaveText('[300, 64]');
  const lm = page.getByTestId('dataset-lm');
  await expect(lm).toContainText('stories260K');
  await expect(lm).toContainText('layer 2');
  await expect(lm).toContainText('residual stream');
  await expect(lm).toContainText('300 tokens');
  await expect(page.getByTestId('dataset-description')).toContainText('real LM activations');
  await expect(card).toContainText('token ids · vocabulary');
  await shot(page, 'extract-01-done');

  // the same settings again: opened from the cache, no forward pass
  const t1 = Date.now();
  await page.getByTestId('extract-start').click();
  await expect(result).toHaveAttribute('data-source', 'cache', { timeout: 30_000 });
  const second = Date.now() - t1;
  await expect(result).toContainText('Cache hit');
  await expect(lm).toHaveAttribute('data-source', 'cache');
  await expect(page.getByTestId('dataset-shape')).toHaveText('[300, 64]');
  console.log(`extract: first ${first} ms (WGSL forward), second ${second} ms (cache hit)`);
  expect(second).toBeLessThan(first);
  await shot(page, 'extract-02-cache');
});

test('a bad checkpoint gets one line naming the file, and the page keeps working', async ({ page }) => {
  await page.goto('./?nodemo');
  await waitForAdapter(page);
  await page.getByTestId('extract-section').locator('summary').click();
  await page.getByTestId('extract-model').selectOption('custom');
  await page.getByTestId('extract-checkpoint').setInputFiles({
    name: 'broken.bin',
    mimeType: 'application/octet-stream',
    buffer: Buffer.from('not a checkpoint at all'),
  });
  await page.getByTestId('extract-tokenizer').setInputFiles({
    name: 'tok.bin',
    mimeType: 'application/octet-stream',
    buffer: Buffer.alloc(64),
  });
  await page.getByTestId('extract-start').click();
  const banner = page.getByTestId('banner-dataset-error');
  await expect(banner).toBeVisible();
  await expect(banner).toContainText('broken.bin');
  await expect(page.getByTestId('extract-error')).toContainText('broken.bin');
  await expect(page.getByTestId('extract-start')).toBeEnabled();
});

test('train on extracted activations; evaluate downstream loss and ablation sparsity on the WGSL forward', async ({
  page,
}) => {
  await page.setViewportSize({ width: 1440, height: 1000 });
  await page.goto('./?nodemo');
  await waitForAdapter(page);
  await page.getByTestId('extract-section').locator('summary').click();
  await page.getByTestId('extract-tokens').fill('1024');
  await page.getByTestId('extract-start').click();
  await expect(page.getByTestId('dataset-lm')).toContainText('1,024 tokens', { timeout: 60_000 });

  await page.getByTestId('preset-quick').click(); // N=256, k=8, B=256
  await page.getByTestId('cfg-tokens').fill('2560'); // ten steps
  await page.getByTestId('start').click();
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-status', 'done', { timeout: 120_000 });

  await page.getByTestId('eval-panel').scrollIntoViewIfNeeded();
  await page.getByTestId('eval-explain').fill('0');
  await expect(page.getByTestId('eval-downstream')).toBeChecked();
  await page.getByTestId('eval-ablation').check();
  await page.getByTestId('eval-ablation-latents').fill('6');
  await page.getByTestId('eval-ablation-tokens').fill('128');
  await page.getByTestId('eval-run').click();
  await expect(page.getByTestId('eval-ablation-report')).toBeVisible({ timeout: 120_000 });
  await expect(page.getByTestId('ds-backend')).toHaveAttribute('data-backend', 'gpu');
  const median = Number(await page.getByTestId('ablation-q50').getAttribute('data-value'));
  expect(median).toBeGreaterThan(0);
  expect(median).toBeLessThanOrEqual(1);
  await expect(page.getByTestId('chart-ablation')).toBeVisible();
  await page.getByTestId('eval-panel').screenshot({ path: 'test-results/screens/extract-03-eval.png' });
});

test('an extraction can be cancelled; the form is usable again', async ({ page }) => {
  await page.goto('./?nodemo');
  await waitForAdapter(page);
  await page.getByTestId('extract-section').locator('summary').click();
  await page.getByTestId('extract-model').selectOption('babyllama');
  await page.getByTestId('extract-site').selectOption('mlp');
  await page.getByTestId('extract-layer').fill('3');
  await page.getByTestId('extract-tokens').fill('50000');
  await page.getByTestId('extract-start').click();
  await expect(page.getByTestId('extract-phase')).toContainText('extracting', { timeout: 30_000 });
  await page.getByTestId('extract-cancel').click();
  await expect(page.getByTestId('extract-error')).toContainText('cancelled');
  await expect(page.getByTestId('banner-dataset-error')).toBeHidden();
  await expect(page.getByTestId('extract-start')).toBeEnabled();
});
