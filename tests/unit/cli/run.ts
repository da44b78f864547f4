/** The CLI as a user runs it (`npm run <command> -- …` is `tsx cli/main.ts <command> …`), for the CLI tests. */
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../../..');

/**
 * The autotuner's remembered choices for the CLI tests (cli/autotune-cache.ts): one file for the
 * tests, not the user's, so runs at a shape autotuned once take its choice. Tests of the autotuner
 * name their own file.
 */
const TEST_AUTOTUNE_CACHE = join(tmpdir(), 'sae-lab-tests', 'autotune.json');

/** Exit status, stdout and stderr of one CLI command (killed after `timeout` ms; `env` added). */
export const cli = (args: string[], timeout = 240_000, env: Record<string, string> = {}) =>
  spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), join(ROOT, 'cli/main.ts'), ...args],
    {
      cwd: ROOT,
      encoding: 'utf8',
      timeout,
      env: { ...process.env, SAE_LAB_AUTOTUNE_CACHE: TEST_AUTOTUNE_CACHE, ...env },
    },
  );
