import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { readout, setField, shot, waitForAdapter } from './helpers';

test('train the demo, pause, export SAELens, reload, resume from the checkpoint', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1000 });
  await page.goto('./');
  await waitForAdapter(page);
  await expect(page.getByTestId('dataset-shape')).toHaveText('[40960, 64]');
  const panel = page.getByTestId('persist-panel');
  await expect(panel.getByTestId('checkpoints-empty')).toBeVisible();
  await expect(page.getByTestId('export-saelens')).toBeDisabled();
  await expect(page.getByTestId('export-model')).toHaveValue('stories260K');
  await expect(page.getByTestId('export-hook')).toHaveValue('blocks.2.hook_resid_pre');

  // a long budget, paused after a few steps (SwiftShader is slow)
  await page.getByTestId('preset-quick').click();
  await setField(page, 'tokens', '1000000');
  await page.getByTestId('start').click();
  const status = page.getByTestId('run-status');
  await expect(status).toHaveAttribute('data-status', 'running', { timeout: 120_000 });
  await expect.poll(() => readout(page, 'tokens-done'), { timeout: 120_000 }).toBeGreaterThanOrEqual(4 * 256);
  await page.getByTestId('pause').click();
  await expect(status).toHaveAttribute('data-status', 'paused');

  // the checkpoint saved on pause shows up in the list
  const row = panel.getByTestId('checkpoint-row').first();
  await expect(row).toBeVisible();
  const runId = await row.getAttribute('data-run');
  const step = Number(await row.getAttribute('data-step'));
  expect(runId).toMatch(/^run-/);
  expect(step).toBeGreaterThan(0);
  await expect(page.getByTestId('checkpoint-quota')).toContainText('used of');
  await page.waitForTimeout(500); // metrics already in flight may still land
  const pausedAt = await readout(page, 'tokens-done');

  // export: a zip download
  await page.getByTestId('export-dtype').selectOption('F16');
  await expect(page.getByTestId('export-saelens')).toBeEnabled();
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId('export-saelens').click(),
  ]);
  expect(download.suggestedFilename()).toMatch(/saelens\.zip$/);
  const path = await download.path();
  const bytes = readFileSync(path);
  expect(bytes.length).toBeGreaterThan(0);
  expect(bytes.subarray(0, 2).toString('latin1')).toBe('PK');
  await expect(page.getByTestId('last-export')).toContainText(download.suggestedFilename());
  await shot(page, 'persist-01-paused-exported');

  // reload: the run is offered for resuming (the demo dataset loads again by itself)
  await page.reload();
  await waitForAdapter(page);
  const offer = page.getByTestId('resume-offer');
  await expect(offer).toBeVisible();
  await expect(offer).toContainText(`Resume run ${runId} from step ${step}`);
  await expect(page.getByTestId('dataset-shape')).toHaveText('[40960, 64]');
  await expect(panel.getByTestId('checkpoint-row').first()).toHaveAttribute('data-run', runId ?? '');
  await shot(page, 'persist-02-resume-offer');
  await page.getByTestId('resume-offer-button').click();
  await expect(offer).toBeHidden();
  await expect(status).toHaveAttribute('data-status', 'running', { timeout: 120_000 });
  await expect.poll(() => readout(page, 'tokens-done'), { timeout: 120_000 }).toBeGreaterThan(pausedAt);
  // the resumed run's curve so far came back with it: the plots continue from the first point
  const firstStep = Number(await page.getByTestId('points-count').getAttribute('data-first-step'));
  expect(firstStep).toBeLessThanOrEqual(step);
  const resumedAt = await readout(page, 'tokens-done');
  await expect.poll(() => readout(page, 'tokens-done'), { timeout: 120_000 }).toBeGreaterThan(resumedAt);
  await shot(page, 'persist-03-resumed');

  await page.getByTestId('stop').click();
  await expect(status).toHaveAttribute('data-status', /stopped|done/);
  // the stop saved a newer checkpoint of the same run
  await expect
    .poll(async () => Number(await panel.getByTestId('checkpoint-row').first().getAttribute('data-step')))
    .toBeGreaterThan(step);

  // the exported zip imports back (it becomes the model evaluation and export read)
  await page
    .getByTestId('import-input')
    .setInputFiles({ name: download.suggestedFilename(), mimeType: 'application/zip', buffer: bytes });
  await expect(page.getByTestId('import-summary')).toContainText('N=256, k=8');
  // and the run config for sparsify downloads too
  const [cfg] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId('export-run-config').click(),
  ]);
  expect(cfg.suggestedFilename()).toMatch(/run-config\.zip$/);
  await shot(page, 'persist-04-stopped');
});
