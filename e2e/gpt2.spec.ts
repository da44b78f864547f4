import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, type Page, test } from '@playwright/test';
import { readout, waitForAdapter } from './helpers';

const FIXTURE = resolve(import.meta.dirname, '../tests/fixtures/gpt2/bytes');

/**
 * GPT-2 in the page's extractor: the byte-level fixture folder (tests/fixtures/gpt2/bytes: d = 24, 2
 * layers, 24 positions) picked with the folder input, a few windows of the bundled text read at
 * blocks.1.hook_resid_mid on the WGSL forward (SwiftShader here); the rows become the dataset. A
 * folder without its weights gets one line naming the problem and the page keeps working; a long
 * extraction is cancelled while it runs. Then an
 * openai/sparse_autoencoder state dict (random, N=32, k=8, a torch .pt as openai ships them) is imported and
 * evaluated on those activations, with the downstream loss and ablation sparsity spliced in at that
 * site of the same GPT-2.
 */
test('extract GPT-2 activations from a Hugging Face folder in the page, evaluate an openai SAE on them', async ({
  page,
}) => {
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
  await page.getByTestId('extract-dtype').selectOption('f16');
  await page.getByTestId('extract-start').click();
  await expect(page.getByTestId('extract-result')).toHaveAttribute('data-source', 'gpu', {
    timeout: 120_000,
  });
  await expect(page.getByTestId('dataset-shape')).toHaveText('[60, 24]');
  // the rows were streamed to the private file system and the dataset opened from there
  const cache = await opfsCache(page);
  expect(cache).toHaveLength(1);
  const entry = cache[0];
  expect(entry.files['acts.npy'].header).toContain(
    "'descr': '<f2', 'fortran_order': False, 'shape': (60, 24), }",
  );
  expect(entry.files['acts.npy'].size).toBe(128 + 60 * 24 * 2);
  expect(entry.files['tokens.npy'].header).toContain(
    "'descr': '<i4', 'fortran_order': False, 'shape': (60,), }",
  );
  expect(entry.files['positions.npy'].size).toBe(128 + 60 * 4);
  expect(JSON.parse(entry.files['meta.json'].text)).toMatchObject({
    nTokens: 60,
    d: 24,
    dtype: 'f16',
    window: 24,
  });
  await expect(page.getByTestId('dataset-card')).toContainText('float16');
  const lm = page.getByTestId('dataset-lm');
  await expect(lm).toContainText('bytes');
  await expect(lm).toContainText('blocks.1.hook_resid_mid');
  await expect(page.getByTestId('dataset-card')).toContainText('token ids · vocabulary');

  // a long extraction cancelled while it runs: one line, the dataset stays
  await page.getByTestId('extract-tokens').fill('50000');
  await page.getByTestId('extract-start').click();
  await expect(page.getByTestId('extract-phase')).toContainText('extracting (WGSL forward)');
  await page.getByTestId('extract-cancel').click();
  await expect(page.getByTestId('extract-error')).toHaveText('extraction cancelled');
  await expect(page.getByTestId('dataset-shape')).toHaveText('[60, 24]');
  // the cancelled extraction's partial files are gone; the finished entry stays
  expect((await opfsCache(page)).map((e) => e.key)).toEqual([entry.key]);

  // an openai state dict on these activations, as openai ships them (a torch.save'd .pt; the
  // fixture of scripts/fixtures/openai_pt_fixture.py, N=32, k=8): imported with LN, evaluated with
  // GPT-2 spliced in
  await page
    .getByTestId('import-input')
    .setInputFiles(resolve(import.meta.dirname, '../tests/fixtures/openai/layer_5.pt'));
  await expect(page.getByTestId('import-summary')).toContainText('openai SAE');
  await expect(page.getByTestId('import-summary')).toContainText('N=32, k=8');
  await expect(page.getByTestId('eval-downstream')).toBeChecked();
  await page.getByTestId('eval-ablation').check();
  await page.getByTestId('eval-ablation-latents').fill('4');
  await page.getByTestId('eval-ablation-tokens').fill('128');
  await page.getByTestId('eval-run').click();
  await expect(page.getByTestId('eval-report')).toBeVisible({ timeout: 300_000 });
  expect(await readout(page, 'eval-l0')).toBeCloseTo(8, 5);
  for (const id of ['ds-clean', 'ds-spliced', 'ds-zero', 'ds-kl'])
    expect(Number.isFinite(await readout(page, id))).toBe(true);
  await expect(page.getByTestId('ds-backend')).toHaveAttribute('data-backend', 'gpu');
  await expect(page.getByTestId('eval-ablation-report')).toBeVisible();
});

/**
 * A GPT-2 folder dropped on the page: a real directory drag (the browser's own drop data, sent over
 * the DevTools protocol as the OS would, so `webkitGetAsEntry()` returns a directory entry) opens the
 * extractor with the folder, and the dropped files are what the worker reads.
 */
test('a GPT-2 folder dropped on the page opens the extractor with it', async ({ page }) => {
  await page.goto('./?nodemo');
  await waitForAdapter(page);
  const zone = await page.getByTestId('dropzone').boundingBox();
  if (!zone) throw new Error('no drop zone');
  const cdp = await page.context().newCDPSession(page);
  const at = { x: zone.x + zone.width / 2, y: zone.y + zone.height / 2 };
  const data = { items: [], files: [FIXTURE], dragOperationsMask: 1 };
  for (const type of ['dragEnter', 'dragOver', 'drop'] as const)
    await cdp.send('Input.dispatchDragEvent', { type, ...at, data });
  await expect(page.getByTestId('extract-section')).toHaveAttribute('open', '');
  await expect(page.getByTestId('extract-model')).toHaveValue('gpt2');
  await expect(page.getByTestId('extract-gpt2-name')).toHaveText('bytes · 2 layers');
  await expect(page.getByTestId('extract-context')).toHaveValue('24');
  await page.getByTestId('extract-tokens').fill('20');
  await page.getByTestId('extract-start').click();
  await expect(page.getByTestId('extract-result')).toHaveAttribute('data-source', 'gpu', {
    timeout: 120_000,
  });
  await expect(page.getByTestId('dataset-shape')).toHaveText('[20, 24]');
  await expect(page.getByTestId('dataset-lm')).toContainText('blocks.1.hook_resid_post');
});

/** One file of an OPFS cache entry: its size, its first 128 bytes (a .npy header) and, for JSON, its text. */
type OpfsFileInfo = { size: number; header: string; text: string };

/** The page's extraction cache in the private file system: each entry's files (sae-lab-lm-cache/<key>/). */
function opfsCache(page: Page): Promise<{ key: string; files: Record<string, OpfsFileInfo> }[]> {
  return page.evaluate(async () => {
    type Dir = FileSystemDirectoryHandle & {
      values(): AsyncIterable<FileSystemDirectoryHandle | FileSystemFileHandle>;
    };
    const root = (await navigator.storage.getDirectory()) as Dir;
    const top = (await root.getDirectoryHandle('sae-lab-lm-cache').catch(() => null)) as Dir | null;
    const out: { key: string; files: Record<string, OpfsFileInfo> }[] = [];
    if (!top) return out;
    for await (const e of top.values()) {
      if (e.kind !== 'directory') continue;
      const files: Record<string, OpfsFileInfo> = {};
      for await (const f of (e as Dir).values()) {
        if (f.kind !== 'file') continue;
        const file = await (f as FileSystemFileHandle).getFile();
        const head = new Uint8Array(await file.slice(0, 128).arrayBuffer());
        files[f.name] = {
          size: file.size,
          header: String.fromCharCode(...head),
          text: f.name.endsWith('.json') ? await file.text() : '',
        };
      }
      out.push({ key: e.name, files });
    }
    return out;
  });
}
