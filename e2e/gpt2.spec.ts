import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, test } from '@playwright/test';
import { waitForAdapter } from './helpers';

const FIXTURE = resolve(import.meta.dirname, '../tests/fixtures/gpt2/bytes');

/**
 * GPT-2 in the page's extractor: the byte-level fixture folder (tests/fixtures/gpt2/bytes: d = 24, 2
 * layers, 24 positions) picked with the folder input, a few windows of the bundled text read at
 * blocks.1.hook_resid_mid on the WGSL forward (SwiftShader here); the rows become the dataset. A
 * folder without its weights gets one line naming the problem and the page keeps working.
 */
test('extract GPT-2 activations from a Hugging Face folder in the page', async ({ page }) => {
  await page.goto('./?nodemo');
  await waitForAdapter(page);
  await page.getByTestId('extract-section').locator('summary').click();
  await page.getByTestId('extract-model').selectOption('gpt2');
  await expect(page.getByTestId('extract-start')).toBeDisabled();

  // a folder without model.safetensors: refused in one line by the worker, nothing else changes
  const noWeights = mkdtempSync(join(tmpdir(), 'gpt2-no-weights-'));
  copyFileSync(join(FIXTURE, 'config.json'), join(noWeights, 'config.json'));
  await page.getByTestId('extract-gpt2-folder').setInputFiles(noWeights);
  await page.getByTestId('extract-start').click();
  await expect(page.getByTestId('extract-error')).toHaveText(/has no model\.safetensors/);

  await page.getByTestId('extract-gpt2-folder').setInputFiles(FIXTURE);
  await expect(page.getByTestId('extract-gpt2-name')).toHaveText('bytes · 2 layers');
  // the paper's 64-token windows, cut to the model's 24 positions
  await expect(page.getByTestId('extract-context')).toHaveValue('24');
  await page.getByTestId('extract-layer').fill('1');
  await page.getByTestId('extract-gpt2-site').selectOption('resid_mid');
  await page.getByTestId('extract-tokens').fill('60');
  await page.getByTestId('extract-start').click();
  await expect(page.getByTestId('extract-result')).toHaveAttribute('data-source', 'gpu', {
    timeout: 120_000,
  });
  await expect(page.getByTestId('dataset-shape')).toHaveText('[60, 24]');
  const lm = page.getByTestId('dataset-lm');
  await expect(lm).toContainText('bytes');
  await expect(lm).toContainText('blocks.1.hook_resid_mid');
  await expect(page.getByTestId('dataset-card')).toContainText('token ids · vocabulary');
});
