import type { KnipConfig } from 'knip';

/**
 * Dead-code check (`npm run lint:dead`, part of `npm test`): unused files, exports, types and
 * dependencies. Knip's plugins already find most ways in:
 *   vite       index.html → src/main.tsx, and the worker behind `new Worker(new URL(...))`;
 *              `?raw` WGSL imports are resolved (a missing shader is an unresolved import)
 *   vitest     tests/unit/**\/*.test.ts (vitest.config.ts's include)
 *   playwright e2e/**\/*.spec.ts (playwright.config.ts's testDir)
 *   scripts    package.json: cli/main.ts, bench/run.ts, bench/hw.ts, tests/gpu/run.ts
 *   glob       tests/gpu/main.ts's import.meta.glob('./**\/*.gpu.ts')
 * What they cannot see is listed in `entry`.
 */
const config: KnipConfig = {
  entry: [
    // Pages that node opens in headless Chromium through Vite's dev server (cli/browser.ts);
    // each page's only script is its entry (knip reads index.html at the root only).
    'cli/page.ts', // cli/index.html
    'bench/main.ts', // bench/index.html
    'tests/gpu/main.ts', // tests/gpu/index.html
    // Run by hand with tsx, documented in their headers and the README.
    'bench/data.ts',
    // Bundled by bench/vite.dawn.config.ts for `npm run bench:dawn` (node, no browser).
    'bench/dawn.ts',
    'scripts/*.ts',
  ],
  // A stale entry or ignore fails the check too.
  treatConfigHintsAsErrors: true,
};

export default config;
