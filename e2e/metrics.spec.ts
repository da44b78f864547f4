import { expect, test } from '@playwright/test';
import { readout, setField, waitForAdapter } from './helpers';

// One SAE, one set of numbers (issue #16): the run panel's final held-out metrics and the evaluation
// panel's are the same numbers (src/sae/metrics.ts over the same rows and forward), here with the
// weight EMA on, which both report on and the evaluation panel names.
test('the run panel and the evaluation panel report identical metrics (EMA weights)', async ({ page }) => {
  await page.goto('./');
  await waitForAdapter(page);
  await expect(page.getByTestId('dataset-shape')).toHaveText('[40960, 64]');
  await page.getByTestId('preset-quick').click();
  await setField(page, 'tokens', '5120');
  await page.getByTestId('cfg-ema').check();
  await page.getByTestId('start').click();
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-status', 'done', { timeout: 300_000 });
  const final = page.getByTestId('final');
  await expect(final).toContainText('EMA weights');
  const attr = async (name: string) => Number(await final.getAttribute(name));

  await page.getByTestId('eval-panel').scrollIntoViewIfNeeded();
  await page.getByTestId('eval-explain').fill('0');
  await page.getByTestId('eval-downstream').uncheck();
  await page.getByTestId('eval-run').click();
  await expect(page.getByTestId('eval-report')).toBeVisible({ timeout: 300_000 });
  await expect(page.getByTestId('eval-weights')).toContainText('EMA');
  expect(await readout(page, 'eval-rows')).toBe(await attr('data-rows'));
  expect(await readout(page, 'eval-nmse')).toBe(await attr('data-nmse'));
  expect(await readout(page, 'eval-ev')).toBe(await attr('data-ev'));
  expect(await readout(page, 'eval-l0')).toBe(await attr('data-l0'));
  expect(await readout(page, 'eval-dead')).toBe(await attr('data-never-fired'));
});
