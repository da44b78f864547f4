import { expect, test } from '@playwright/test';
import { setField, waitForAdapter } from './helpers';

// Matryoshka BatchTopK from the page: the activation, its nested widths (checked as typed), a run on
// the demo, and the held-out nMSE of each inner prefix in the run's final line (issue #18).
test('Matryoshka: nested widths are checked, the run trains and reports each prefix', async ({ page }) => {
  await page.goto('./');
  await waitForAdapter(page);
  await expect(page.getByTestId('dataset-shape')).toHaveText('[40960, 64]');
  await page.getByTestId('preset-quick').click(); // N = 256, k = 8, B = 256
  await setField(page, 'tokens', '2560'); // ten steps: SwiftShader is slow
  await page.getByTestId('cfg-activation').selectOption('matryoshka');
  const widths = page.getByTestId('cfg-matryoshkaWidths');
  await expect(widths).toHaveAttribute('placeholder', 'auto: 4, 16, 64, 256');
  await widths.fill('16, 64');
  await expect(page.getByTestId('config-problems')).toContainText(
    'matryoshkaWidths must end at nLatents = 256',
  );
  await expect(page.getByTestId('start')).toBeDisabled();
  await widths.fill('16, 64, 256');
  await expect(page.getByTestId('config-problems')).toBeHidden();
  await page.getByTestId('start').click();
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-status', 'done', { timeout: 180_000 });
  const prefixes = page.getByTestId('prefix-nmse');
  await expect(prefixes).toContainText('m = 16:');
  await expect(prefixes).toContainText('m = 64:');
  const values = ((await prefixes.textContent()) ?? '').match(/m = \d+: ([\d.]+)/g) ?? [];
  const nmse = values.map((v) => Number(v.split(': ')[1]));
  const full = Number(await page.getByTestId('final').getAttribute('data-nmse'));
  // Wider prefixes reconstruct better, and the whole dictionary best.
  expect(nmse).toHaveLength(2);
  expect(nmse[0]).toBeGreaterThan(nmse[1]);
  expect(nmse[1]).toBeGreaterThan(full);
});
