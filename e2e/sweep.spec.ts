import { expect, test } from '@playwright/test';
import { shot, waitForAdapter } from './helpers';

// A tiny sweep on the bundled demo: N 32..256 × k 4,8, 4k tokens per run at batch 256 (SwiftShader is
// slow). 8 runs give L(N) fits per k and the joint L(N,k) fit; L(k) has only 2 k per N, so its
// readouts show the FitError message instead. Halfway through, the page is reloaded and the sweep is
// resumed from localStorage.
test('tiny sweep on the demo: queue, reload + resume, fitted curves, exports', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1100 });
  await page.goto('./');
  await waitForAdapter(page);
  await expect(page.getByTestId('dataset-card')).toContainText('stories260K', { timeout: 120_000 });

  // batch 256 for every run comes from the configuration panel
  await page.getByTestId('preset-quick').click();

  const sweeps = page.getByTestId('sweeps');
  await sweeps.scrollIntoViewIfNeeded();
  // default N selection is 256..2048: keep 256, drop the rest, add 32..128
  for (const n of [512, 1024, 2048, 32, 64, 128]) await page.getByTestId(`sweep-n-${n}`).click();
  await page.getByTestId('sweep-k').fill('4,8');
  await page.getByTestId('sweep-tokens').fill('4k');
  await page.getByTestId('sweep-evals').fill('4');
  await page.getByTestId('sweep-tol').fill('0.05');
  await expect(page.getByTestId('sweep-lr-rule')).toContainText('N=32 → 4.53e-3');
  await expect(page.getByTestId('sweep-start')).toHaveText('Start sweep (8 runs)');
  await page.getByTestId('sweep-start').click();

  const progress = page.getByTestId('sweep-progress');
  await expect(progress).toHaveAttribute('data-status', 'running');
  await expect(page.getByTestId('sweep-current')).toContainText('run 1/8');
  await expect(progress).toHaveAttribute('data-done', '2', { timeout: 240_000 });
  // partial sweep: fits that cannot be made yet show why
  await expect(page.getByTestId('fit-LN-k4')).toHaveAttribute('data-ok', 'false');
  await expect(page.getByTestId('fit-LN-k4')).toContainText('needs at least 4 points');
  await shot(page, 'sweep-01-running');

  // reload: the finished runs come back from localStorage and the rest can be resumed
  await page.reload();
  await waitForAdapter(page);
  await expect(progress).toHaveAttribute('data-status', 'interrupted');
  const doneBefore = Number(await progress.getAttribute('data-done'));
  expect(doneBefore).toBeGreaterThanOrEqual(2);
  const resume = page.getByTestId('sweep-resume');
  await expect(resume).toBeEnabled({ timeout: 120_000 });
  await resume.click();
  await expect(progress).toHaveAttribute('data-status', 'running');
  await expect(progress).toHaveAttribute('data-status', 'done', { timeout: 480_000 });
  await expect(progress).toHaveAttribute('data-done', '8');

  // fitted curves drawn over the points, with parameter readouts
  for (const k of [4, 8]) {
    await expect(page.getByTestId(`curve-LN-k${k}`)).toBeVisible();
    await expect(page.getByTestId(`fit-LN-k${k}`)).toHaveAttribute('data-ok', 'true');
    const beta = Number(await page.getByTestId(`fit-LN-k${k}-beta`).getAttribute('data-value'));
    expect(beta).toBeLessThan(0);
    const r2 = Number(await page.getByTestId(`fit-LN-k${k}-r2`).getAttribute('data-value'));
    expect(Number.isFinite(r2)).toBe(true);
  }
  await expect(page.getByTestId('fit-LNk')).toHaveAttribute('data-ok', 'true');
  await expect(page.getByTestId('curve-LNk-k4')).toBeVisible();
  await expect(page.getByTestId('fit-Lk-N64')).toContainText('needs at least 3 points');
  // the plots drew one path per fitted curve (Recharts lines) on log axes
  // (and the points: a chart that stays blank after live updates would fail here)
  await expect(page.getByTestId('sweep-chart-LN').locator('.recharts-scatter-symbol').first()).toBeVisible();
  expect(await page.getByTestId('sweep-chart-LN').locator('.recharts-scatter-symbol').count()).toBe(8);
  expect(
    await page.getByTestId('sweep-chart-LN').locator('path.recharts-curve').count(),
  ).toBeGreaterThanOrEqual(2);

  // exports are local Blob URLs
  for (const id of ['export-sweep-json', 'export-sweep-csv', 'export-L_vs_N.svg', 'export-T_vs_N.svg']) {
    await expect(page.getByTestId(id)).toHaveAttribute('href', /^blob:/);
  }
  const json = await page.getByTestId('export-sweep-json').evaluate(async (a) => {
    const r = await fetch((a as HTMLAnchorElement).href);
    return r.json();
  });
  expect(json.runs).toHaveLength(8);
  expect(json.fits.LN[0].outcome.ok).toBe(true);
  const svg = await page
    .getByTestId('export-L_vs_N.svg')
    .evaluate(async (a) => (await fetch((a as HTMLAnchorElement).href)).text());
  expect(svg.startsWith('<svg')).toBe(true);

  await page.getByTestId('sweep-plots').scrollIntoViewIfNeeded();
  await shot(page, 'sweep-02-done');
  await page.getByTestId('sweeps').screenshot({ path: 'test-results/screens/sweep-03-section.png' });
});
