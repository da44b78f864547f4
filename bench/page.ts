/**
 * Runs bench/index.html in headless Chromium (cli/browser.ts) with a query and returns what the page
 * leaves in window.__benchDone: { adapter, when, entries } or { error }. Page logs go to `log`.
 */

import type { Page } from 'playwright-core';
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
  opts: { timeoutMs?: number; during?: (page: Page) => Promise<void> } = {},
): Promise<BenchResult> {
  const session = await openSession(`/bench/index.html?${query}`, { log });
  try {
    // `during` (the soak's sampler) runs beside the page; its failure fails the bench.
    const during = opts.during?.(session.page);
    await session.page.waitForFunction(() => window.__benchDone !== undefined, null, {
      timeout: opts.timeoutMs ?? 60 * 60_000,
      polling: 500,
    });
    await during;
    const done = (await session.page.evaluate(() => window.__benchDone)) as BenchResult;
    return { ...done, robustness: robust() };
  } finally {
    await session.close();
  }
}
