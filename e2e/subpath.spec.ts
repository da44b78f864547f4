import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve } from 'node:path';
import { expect, test } from '@playwright/test';
import { consoleErrors } from './helpers';

const DIST = resolve('dist');
const BASE = '/some/sub/path/';
const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
};

/** A bare static server that serves dist/ under a sub-path, like any static host would. */
function serve(): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (!url.pathname.startsWith(BASE)) {
      res.writeHead(404).end();
      return;
    }
    let rel = normalize(decodeURIComponent(url.pathname.slice(BASE.length)));
    if (rel === '.' || rel === '') rel = 'index.html';
    const file = join(DIST, rel);
    if (!file.startsWith(DIST) || !existsSync(file) || statSync(file).isDirectory()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

test('the built site works under a sub-path and makes no outside requests', async ({ page }) => {
  const server = await serve();
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const outside: string[] = [];
  const failed: string[] = [];
  const errors = consoleErrors(page);
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith('blob:') && !u.startsWith('data:')) outside.push(u);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
  });
  try {
    // The declared icon is fetched from under the sub-path (not /favicon.ico at the root).
    const icon = page.waitForResponse((r) => r.url().endsWith('favicon.svg'), { timeout: 30_000 });
    await page.goto(`${origin}${BASE}`);
    await expect(page.getByTestId('adapter-info')).toContainText('architecture');
    await expect(page.getByTestId('dataset-shape')).toHaveText('[40960, 64]');
    expect(outside).toEqual([]);
    expect(failed).toEqual([]);
    expect(errors).toEqual([]);
    const iconResponse = await icon;
    expect(iconResponse.url()).toBe(`${origin}${BASE}favicon.svg`);
    expect(iconResponse.status()).toBe(200);
  } finally {
    server.close();
  }
});
