import { expect, type Page } from '@playwright/test';

/** A version-1.0 .npy file holding a little-endian float32 array of the given 2-D shape. */
export function npyF32(rows: number, cols: number, data: Float32Array): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([
    pre,
    Buffer.from(header, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  ]);
}

/**
 * Sparse synthetic activations: each row is a sum of `active` of `nFeatures` random unit directions
 * with positive magnitudes, plus a little noise — something a TopK SAE can learn quickly.
 */
export function sparseActivations(
  rows: number,
  d: number,
  nFeatures = 128,
  active = 4,
  seed = 1,
): Float32Array {
  let s = seed >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const dirs = new Float32Array(nFeatures * d);
  for (let f = 0; f < nFeatures; f++) {
    let n = 0;
    for (let j = 0; j < d; j++) {
      const v = gauss();
      dirs[f * d + j] = v;
      n += v * v;
    }
    n = Math.sqrt(n);
    for (let j = 0; j < d; j++) dirs[f * d + j] /= n;
  }
  const x = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    for (let a = 0; a < active; a++) {
      const f = Math.floor(rand() * nFeatures);
      const m = 1 + 2 * rand();
      for (let j = 0; j < d; j++) x[r * d + j] += m * dirs[f * d + j];
    }
    for (let j = 0; j < d; j++) x[r * d + j] += 0.02 * gauss();
  }
  return x;
}

/** Drops files on the drop zone through a real DataTransfer, as a user's drag and drop would. */
export async function dropFiles(page: Page, files: { name: string; buffer: Buffer }[]) {
  const payload = files.map((f) => ({ name: f.name, b64: f.buffer.toString('base64') }));
  const dt = await page.evaluateHandle((fs) => {
    const t = new DataTransfer();
    for (const f of fs) {
      const bin = atob(f.b64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      t.items.add(new File([bytes], f.name));
    }
    return t;
  }, payload);
  const zone = page.getByTestId('dropzone');
  await zone.dispatchEvent('dragover', { dataTransfer: dt });
  await zone.dispatchEvent('drop', { dataTransfer: dt });
}

/** The numeric value behind a data-testid'd readout (its data-value attribute). */
export async function readout(page: Page, testid: string): Promise<number> {
  const v = await page.getByTestId(testid).getAttribute('data-value');
  return v === null ? Number.NaN : Number(v);
}

export async function waitForAdapter(page: Page) {
  await expect(page.getByTestId('adapter-info')).toContainText('architecture');
}

export async function shot(page: Page, name: string) {
  await page.screenshot({ path: `test-results/screens/${name}.png`, fullPage: true });
}

/** Sets a config number field (clears it first). */
export async function setField(page: Page, key: string, value: string) {
  const f = page.getByTestId(`cfg-${key}`);
  await f.fill(value);
}

/**
 * Collects what the page reports as errors from now on: console.error messages (the browser logs
 * a failed resource load, such as a 404 for /favicon.ico, this way too) and uncaught exceptions.
 * Read the returned array at the end of a visit; it should be empty.
 */
export function consoleErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  return errors;
}
