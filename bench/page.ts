/**
 * Runs bench/index.html in headless Chromium (cli/browser.ts) with a query and returns what the page
 * leaves in window.__benchDone: { adapter, when, entries } or { error }. Page logs go to `log`.
 */

import { openSession, robust } from '../cli/browser';
import type { AdapterReport } from '../src/gpu/device';

export interface BenchResult {
  adapter?: AdapterReport;
  when?: string;
  entries?: unknown[];
  error?: string;
  /** Dawn's index clamping in shaders (cli/browser.ts): off unless SAE_LAB_ROBUST=1 */
  robustness?: boolean;
}

export async function runBenchPage(
  query: URLSearchParams,
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<BenchResult> {
  const session = await openSession(`/bench/index.html?${query}`, { log });
  try {
    await session.page.waitForFunction(() => window.__benchDone !== undefined, null, {
      timeout: 60 * 60_000,
      polling: 500,
    });
    const done = (await session.page.evaluate(() => window.__benchDone)) as BenchResult;
    return { ...done, robustness: robust() };
  } finally {
    await session.close();
  }
}
