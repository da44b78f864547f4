/**
 * Limits and GPU errors on the page: a config whose buffer plan breaks a binding limit shows the plan's
 * problem and keeps Start disabled; a real invalid GPU command injected during a run (the test-only
 * `?inject-gpu-error=STEP` query parameter) stops the run with an error message, and the page can start
 * another run afterwards.
 */
import { expect, test } from '@playwright/test';
import { npyF32, readout, setField, shot, sparseActivations, waitForAdapter } from './helpers';

test.describe.configure({ mode: 'serial' });

async function loadSmallDataset(page: import('@playwright/test').Page) {
  const buffer = npyF32(1024, 32, sparseActivations(1024, 32, 64, 3, 5));
  await page
    .getByTestId('file-input')
    .setInputFiles({ name: 'acts.npy', mimeType: 'application/octet-stream', buffer });
  await expect(page.getByTestId('dataset-shape')).toHaveText('[1024, 32]');
}

test('a config over the binding cap shows the plan problem and Start stays disabled', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1000 });
  await page.goto('./?nodemo');
  await waitForAdapter(page);
  await loadSmallDataset(page);
  await page.getByTestId('preset-quick').click(); // N=256, k=8, B=256
  const start = page.getByTestId('start');
  await expect(start).toBeEnabled();

  // x [256, 32] floats = 32 KiB, over a 1/64 MiB = 16 KiB cap
  await setField(page, 'maxBindingMiB', '0.015625');
  const problems = page.getByTestId('plan-problems');
  await expect(problems).toBeVisible();
  await expect(problems).toContainText('buffer x [256, 32]');
  await expect(problems).toContainText('maxBindingMiB 0.015625');
  await expect(problems).toContainText('lower the batch');
  await expect(start).toBeDisabled();
  await shot(page, 'limits-01-over-cap');

  // a smaller batch fits: the problem goes, the plan shards the latents, Start is enabled again
  await setField(page, 'batchSize', '64');
  await expect(problems).toBeHidden();
  await expect(page.getByTestId('estimate-shards')).toContainText('latent shards');
  await expect(start).toBeEnabled();
  // no cap: back to one binding
  await setField(page, 'maxBindingMiB', '');
  await expect(page.getByTestId('estimate-shards')).toBeHidden();
  await expect(start).toBeEnabled();
});

test('an injected GPU error stops the run with a message; another run starts afterwards', async ({
  page,
}) => {
  await page.setViewportSize({ width: 1440, height: 1000 });
  await page.goto('./?nodemo&inject-gpu-error=3');
  await waitForAdapter(page);
  await loadSmallDataset(page);
  await page.getByTestId('preset-quick').click();
  await page.getByTestId('start').click();

  const status = page.getByTestId('run-status');
  await expect(status).toHaveAttribute('data-status', 'failed');
  const banner = page.getByTestId('banner-gpu-error');
  await expect(banner).toBeVisible();
  await expect(banner).toContainText('GPU error: the run stopped');
  await expect(banner).toContainText('GPUValidationError');
  await expect(page.locator('section.run')).toContainText('GPUValidationError during training');
  // nothing computed after the fault was reported: the run never reached its end
  expect(await readout(page, 'step')).toBeLessThan(400);
  await expect(page.getByTestId('final')).toBeHidden();
  await shot(page, 'limits-02-gpu-error');

  // The page keeps working: without the hook (the store reads the URL at each start) a new run trains.
  await page.evaluate(() => history.replaceState(null, '', './?nodemo'));
  await expect(page.getByTestId('start')).toBeEnabled();
  await page.getByTestId('start').click();
  await expect(status).toHaveAttribute('data-status', 'running');
  await expect.poll(() => readout(page, 'nmse-latest')).toBeGreaterThan(0);
  await page.getByTestId('stop').click();
  await expect(status).toHaveAttribute('data-status', 'stopped');
});
