import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { dropFiles, npyF32, readout, setField, shot, sparseActivations, waitForAdapter } from './helpers';

const ROWS = 4096;
const D = 32;

test.describe.configure({ mode: 'serial' });

test('drop a .npy, train, see nMSE fall, pause, resume, stop', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1000 });
  await page.goto('./?nodemo');
  await waitForAdapter(page);
  await shot(page, '01-empty');

  const buffer = npyF32(ROWS, D, sparseActivations(ROWS, D));
  await page
    .getByTestId('file-input')
    .setInputFiles({ name: 'sparse_acts.npy', mimeType: 'application/octet-stream', buffer });
  const card = page.getByTestId('dataset-card');
  await expect(card).toContainText('sparse_acts.npy');
  await expect(page.getByTestId('dataset-shape')).toHaveText(`[${ROWS}, ${D}]`);
  await shot(page, '02-dataset-ready');

  // tiny run: N=256, k=8, B=256; a long budget so that there is time to pause, stopped early
  await page.getByTestId('preset-quick').click();
  await setField(page, 'tokens', '1000000');
  await expect(page.getByTestId('estimate-memory')).not.toBeEmpty();
  await page.getByTestId('start').click();
  const status = page.getByTestId('run-status');
  await expect(status).toHaveAttribute('data-status', 'running');

  await expect.poll(() => readout(page, 'nmse-latest')).toBeGreaterThan(0);
  const first = await readout(page, 'nmse-latest');
  // nMSE falls: wait until it is well below the first reading
  await expect.poll(() => readout(page, 'nmse-latest'), { timeout: 120_000 }).toBeLessThan(first * 0.8);
  await shot(page, '03-training');

  await page.getByTestId('pause').click();
  await expect(status).toHaveAttribute('data-status', 'paused');
  await page.waitForTimeout(500); // metrics already in flight may still land
  const pausedAt = await readout(page, 'tokens-done');
  await page.waitForTimeout(2500);
  expect(await readout(page, 'tokens-done')).toBe(pausedAt);
  await shot(page, '04-paused');

  await page.getByTestId('resume').click();
  await expect(status).toHaveAttribute('data-status', 'running');
  await expect.poll(() => readout(page, 'tokens-done')).toBeGreaterThan(pausedAt);

  await page.getByTestId('stop').click();
  await expect(status).toHaveAttribute('data-status', /stopped|done/);
  const chart = page.getByTestId('chart-loss');
  await expect(chart.locator('.recharts-line').first()).toBeVisible();
  await shot(page, '05-stopped');
});

test('a corrupt file shows an error naming it, and the page keeps working', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1000 });
  await page.goto('./?nodemo');
  await waitForAdapter(page);
  const bad = readFileSync('tests/fixtures/data/bad_magic.npy');
  await dropFiles(page, [{ name: 'bad_magic.npy', buffer: bad }]);
  const banner = page.getByTestId('banner-dataset-error');
  await expect(banner).toBeVisible();
  await expect(banner).toContainText('bad_magic.npy');
  await shot(page, '06-bad-file');

  // the page still works: a good file dropped next loads and trains
  const good = npyF32(1024, 16, sparseActivations(1024, 16, 64, 3, 7));
  await dropFiles(page, [{ name: 'good.npy', buffer: good }]);
  await expect(page.getByTestId('dataset-shape')).toHaveText('[1024, 16]');
  await expect(banner).toBeHidden();
  await page.getByTestId('preset-quick').click();
  await page.getByTestId('start').click();
  await expect.poll(() => readout(page, 'nmse-latest')).toBeGreaterThan(0);
  await page.getByTestId('stop').click();
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-status', 'stopped');
});

test('impossible config values are flagged and block the start', async ({ page }) => {
  await page.goto('./?nodemo');
  await waitForAdapter(page);
  const good = npyF32(512, 16, sparseActivations(512, 16, 32, 2, 3));
  await page
    .getByTestId('file-input')
    .setInputFiles({ name: 'small.npy', mimeType: 'application/octet-stream', buffer: good });
  await expect(page.getByTestId('dataset-card')).toBeVisible();
  await setField(page, 'k', '0');
  await expect(page.getByTestId('config-problems')).toContainText('k must be');
  await expect(page.getByTestId('start')).toBeDisabled();
  await setField(page, 'k', '8');
  await expect(page.getByTestId('config-problems')).toBeHidden();
});

test('a field typed right after a preset keeps what was typed (the preset does not land late)', async ({
  page,
}) => {
  await page.goto('./?nodemo');
  await waitForAdapter(page);
  const tokens = page.getByTestId('cfg-tokens');
  // Click Quick test and, once the click's own update has rendered (React renders it in a
  // microtask) but before the browser's next task, select the token budget's text, as a fast user
  // or Playwright's fill can; then, after the page has run anything it deferred, type over it.
  // The preset's 102400 used to reach the input in a passive effect, a later task, after the
  // selection: the caret jumped to the end and the typed text was appended (1024002560, 1.02G).
  await page.evaluate(async () => {
    (document.querySelector('[data-testid="preset-quick"]') as HTMLButtonElement).click();
    for (let i = 0; i < 5; i++) await Promise.resolve();
    const input = document.querySelector('[data-testid="cfg-tokens"]') as HTMLInputElement;
    input.focus();
    input.select();
  });
  await page.waitForTimeout(300);
  await page.keyboard.insertText('2560');
  await expect(tokens).toHaveValue('2560');
  // the store holds what the screen shows: the dead-latent window is tokens/10
  await expect(page.getByTestId('cfg-deadTokens')).toHaveAttribute('placeholder', 'auto: 256');
  await page.waitForTimeout(300);
  await expect(tokens).toHaveValue('2560');
});

test('the demo dataset is ready on load and trains in one click', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1000 });
  await page.goto('./');
  await waitForAdapter(page);
  const card = page.getByTestId('dataset-card');
  await expect(card).toContainText('real language-model activations');
  await expect(card).toContainText('40,960');
  await expect(page.getByTestId('dataset-shape')).toHaveText('[40960, 64]');
  await shot(page, '07-demo-ready');
  await page.getByTestId('preset-quick').click();
  await setField(page, 'tokens', '2560'); // ten steps: SwiftShader is slow
  await page.getByTestId('start').click();
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-status', 'running');
  await shot(page, '08-demo-training');
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-status', 'done', { timeout: 180_000 });
  await expect(page.getByTestId('final')).toContainText('nMSE');
  await expect.poll(() => readout(page, 'nmse-eval')).toBeLessThan(1);
  await shot(page, '09-demo-done');
  await page.getByTestId('theme-toggle').click(); // system → dark
  await shot(page, '10-demo-done-dark');
});

test('on an emulated adapter the paper-sized budget comes with a proposal that finishes in minutes', async ({
  page,
}) => {
  await page.goto('./');
  await waitForAdapter(page);
  await expect(page.getByTestId('dataset-card')).toBeVisible();
  const proposal = page.getByTestId('budget-proposal');
  await expect(proposal).toContainText('emulates the GPU');
  const before = await page.getByTestId('cfg-nLatents').inputValue();
  await page.getByTestId('budget-proposal-apply').click();
  const tokens = Number((await page.getByTestId('cfg-tokens').inputValue()).replace(/[_,]/g, ''));
  const batch = Number((await page.getByTestId('cfg-batchSize').inputValue()).replace(/[_,]/g, ''));
  expect(tokens).toBeGreaterThan(0);
  expect(tokens % batch).toBe(0);
  // only the budget changed, and the run it sets up is short enough to need no proposal
  expect(await page.getByTestId('cfg-nLatents').inputValue()).toBe(before);
  await expect(proposal).toHaveCount(0);
  // the paper's recipe sets its own input normalization (and keeps the budget just chosen)
  await page.getByTestId('preset-paper').click();
  await expect(page.getByTestId('cfg-inputNorm')).toHaveValue('paper');
  expect(Number((await page.getByTestId('cfg-tokens').inputValue()).replace(/[_,]/g, ''))).toBe(tokens);
  // The first click: while the run prepares (the autotuner: tens of seconds here) the page says which
  // stage it is in, variant by variant.
  await page.getByTestId('start').click();
  await expect(page.getByTestId('run-status')).toHaveAttribute('data-status', 'preparing');
  await expect(page.getByTestId('run-message')).toContainText(
    /autotuning kernels: screening the encoders on \d+ rows: compiling and timing \w+ \(\d+\/\d+\)/,
    { timeout: 60_000 },
  );
  await expect(page.getByTestId('run-message')).toContainText('later runs of this shape reuse the choice');
});
