/**
 * Faults a real machine does to a run, on the page (issue 16, "Faults"):
 * - the GPU device lost mid-run (the test-only `?lose-device=STEP` destroys the worker's device right
 *   after that step) resumes by itself from the last checkpoint and ends bit-identical to an
 *   uninterrupted run of the same seed;
 * - a tab reload mid-run offers the run for resuming and, resumed, ends bit-identical too;
 * - a diverging run (non-finite loss) stops with a message and reports no final metrics;
 * - rows holding NaN or Inf are skipped with a count, or refused naming the file and the row.
 * "Bit-identical" is checked on the exported float32 weights and sparsity (byte for byte) and on the
 * final held-out metrics (their exact decimal strings). All runs share one page, so the autotuner's
 * cached kernel choice (OPFS, per adapter and shape) is the same for every run.
 */
import { readFileSync } from 'node:fs';
import { expect, type Page, test } from '@playwright/test';
import { filesFromZip } from '../src/io/zip';
import { npyF32, readout, setField, sparseActivations, waitForAdapter } from './helpers';

/** 64 steps of 256 rows on the demo, a checkpoint every 8 steps (the `checkpoint-every` test hook). */
const STEPS = 64;

async function quickRun(page: Page) {
  await page.getByTestId('preset-quick').click();
  await setField(page, 'tokens', String(STEPS * 256));
}

/** The finished run's final metrics and its exported float32 tensors (name → bytes). */
async function outcome(page: Page) {
  const final = page.getByTestId('final');
  await expect(final).toBeVisible({ timeout: 300_000 });
  const metrics = await final.evaluate((el) => ({
    nmse: el.getAttribute('data-nmse'),
    ev: el.getAttribute('data-ev'),
    l0: el.getAttribute('data-l0'),
    neverFired: el.getAttribute('data-never-fired'),
  }));
  await page.getByTestId('export-dtype').selectOption('F32');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId('export-saelens').click(),
  ]);
  const files = filesFromZip(new Uint8Array(readFileSync(await download.path())));
  const tensors = [...files].filter(([name]) => name.endsWith('.safetensors'));
  expect(tensors.length).toBeGreaterThanOrEqual(2); // weights and sparsity
  return {
    metrics,
    tensors: Object.fromEntries(tensors.map(([n, b]) => [n, Buffer.from(b).toString('base64')])),
  };
}

test('device loss mid-run resumes from the last checkpoint and ends bit-identical to an uninterrupted run', async ({
  page,
}) => {
  test.setTimeout(15 * 60_000);
  await page.setViewportSize({ width: 1440, height: 1000 });
  const status = page.getByTestId('run-status');

  // 1. Uninterrupted.
  await page.goto('./?checkpoint-every=8');
  await waitForAdapter(page);
  await expect(page.getByTestId('dataset-shape')).toHaveText('[40960, 64]');
  await quickRun(page);
  await page.getByTestId('start').click();
  await expect(status).toHaveAttribute('data-status', 'done', { timeout: 300_000 });
  const reference = await outcome(page);
  expect(Number(reference.metrics.nmse)).toBeGreaterThan(0);

  // 2. The device destroyed after step 21: the worker resumes from the last checkpoint on a new
  // device, repeats the steps after it and finishes. (The store reads the hooks from the URL at each
  // start.) That checkpoint is step 16's, or one at a later read-back (the quick preset reads back
  // every 2 steps) where step 8's save was still being written at step 16, or step 8's where step 16's
  // was still being written when the device went: one save is in flight at a time, and a save due
  // meanwhile waits for the next read-back (CI once resumed from step 18). Timed saves (every 120 s)
  // also fall on read-backs, so on a slow machine they stay within these steps too.
  await page.evaluate(() => history.replaceState(null, '', './?checkpoint-every=8&lose-device=21'));
  await page.getByTestId('start').click();
  await expect(page.getByTestId('banner-device-lost')).toBeVisible({ timeout: 300_000 });
  await expect(page.getByTestId('banner-device-lost')).toContainText('continues on a new device');
  const recovery = page.getByTestId('run-recovery');
  await expect(recovery).toHaveText(/^GPU device lost; resuming from checkpoint step \d+$/);
  const from = Number((await recovery.textContent())?.match(/step (\d+)$/)?.[1]);
  expect(from % 2 === 0 && from >= 8 && from <= 20, `resumed from step ${from}`).toBe(true);
  await expect(status).toHaveAttribute('data-status', 'done', { timeout: 300_000 });
  // it ran to its last step (the repeated steps are not counted twice)
  expect(await readout(page, 'step')).toBe(STEPS);
  const lost = await outcome(page);
  expect(lost.metrics).toEqual(reference.metrics);
  expect(lost.tensors).toEqual(reference.tensors);
  // A reload mid-run is covered by e2e/persist.spec.ts (pause, reload, resume); without a pause the
  // reload raced the run's end on a fast machine (the offer named the finished run), so it is not here.
});

test('a diverging run stops with a message and no final metrics', async ({ page }) => {
  await page.setViewportSize({ width: 1440, height: 1000 });
  await page.goto('./?nodemo');
  await waitForAdapter(page);
  // Activations of size 1e20 without input normalization: the float32 squared error overflows, so
  // the loss is not finite from the first step (the config caps the learning rate below 1, so data
  // is the way to make a run diverge on purpose).
  const x = sparseActivations(1024, 32, 64, 3, 5).map((v) => v * 1e20);
  await page
    .getByTestId('file-input')
    .setInputFiles({ name: 'huge.npy', mimeType: 'application/octet-stream', buffer: npyF32(1024, 32, x) });
  await expect(page.getByTestId('dataset-shape')).toHaveText('[1024, 32]');
  await page.getByTestId('preset-quick').click();
  await page.getByTestId('cfg-inputNorm').selectOption('none');
  await page.getByTestId('start').click();
  const status = page.getByTestId('run-status');
  await expect(status).toHaveAttribute('data-status', 'failed', { timeout: 300_000 });
  const banner = page.getByTestId('banner-nan');
  await expect(banner).toBeVisible();
  await expect(banner).toContainText(
    /loss became (NaN|-?Infinity) at step \d+, the run stopped; no checkpoint was saved/,
  );
  // it stopped right away, and a diverged run shows no final metrics
  expect(await readout(page, 'step')).toBeLessThan(400);
  await expect(page.getByTestId('final')).toBeHidden();
});

test('rows holding NaN or Inf are skipped with a count, or refused naming the file and the row', async ({
  page,
}) => {
  await page.setViewportSize({ width: 1440, height: 1000 });
  await page.goto('./?nodemo');
  await waitForAdapter(page);
  const x = sparseActivations(512, 16, 32, 3, 7);
  x[37 * 16 + 3] = Number.NaN;
  x[200 * 16] = Number.POSITIVE_INFINITY;
  const file = { name: 'bad.npy', mimeType: 'application/octet-stream', buffer: npyF32(512, 16, x) };

  // the default: skipped, counted in the dataset card
  await expect(page.getByTestId('non-finite')).toHaveValue('skip');
  await page.getByTestId('file-input').setInputFiles(file);
  await expect(page.getByTestId('dataset-shape')).toHaveText('[512, 16]');
  await expect(page.getByTestId('dataset-problems')).toContainText(
    '2 row(s) contain NaN or Inf (first: 37, 200); they are skipped in training',
  );

  // refused, the file and the row named; the previous dataset stays open
  await page.getByTestId('non-finite').selectOption('stop');
  await page.getByTestId('file-input').setInputFiles({ ...file, name: 'bad2.npy' });
  const banner = page.getByTestId('banner-dataset-error');
  await expect(banner).toBeVisible();
  await expect(banner).toContainText('Could not read bad2.npy');
  await expect(banner).toContainText(
    'bad2.npy: 2 row(s) contain NaN or Inf, first at row 37 (rows 37, 200 of the dataset)',
  );
});
