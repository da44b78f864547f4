/** The CLI as a user runs it (`npm run <command> -- …` is `tsx cli/main.ts <command> …`), for the CLI tests. */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../../..');

/** Exit status, stdout and stderr of one CLI command (killed after `timeout` ms). */
export const cli = (args: string[], timeout = 240_000) =>
  spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), join(ROOT, 'cli/main.ts'), ...args],
    {
      cwd: ROOT,
      encoding: 'utf8',
      timeout,
    },
  );
