/**
 * npm run bench [-- --only encode,step --samples 3 --out FILE]: runs bench/index.html in headless Chromium
 * and prints one JSON document (adapter, shapes, median ms per variant, GFLOP/s, ratios).
 */
import { writeFileSync } from 'node:fs';
import { openSession } from '../cli/browser';

const args = process.argv.slice(2);
const opt = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const q = new URLSearchParams();
if (opt('only')) q.set('only', opt('only')!);
if (opt('samples')) q.set('samples', opt('samples')!);

const session = await openSession(`/bench/index.html?${q}`, {
  log: (l) => process.stderr.write(`${l}\n`),
});
try {
  await session.page.waitForFunction(() => window.__benchDone !== undefined, null, {
    timeout: 60 * 60_000,
    polling: 500,
  });
  const result = await session.page.evaluate(() => window.__benchDone);
  const json = JSON.stringify(result, null, 2);
  console.log(json);
  if (opt('out')) writeFileSync(opt('out')!, json);
  if ((result as { error?: string }).error) process.exitCode = 1;
} finally {
  await session.close();
}
