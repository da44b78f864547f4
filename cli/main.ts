/**
 * Headless SAE Lab: `tsx cli/main.ts <train|sweep|eval|extract> [flags]` (npm run train / sweep / eval / extract).
 * Bad input or flags, or a config that breaks a limit of the GPU: one line on stderr and exit code 2.
 * A GPU error (validation, out-of-memory, internal), a diverged run or a worker's error ends the run: one
 * line on stderr and exit code 1.
 */
import { GpuFailure, RunFailure, UsageError } from './args';

const commands: Record<string, () => Promise<{ main(argv: string[]): Promise<number> }>> = {
  train: () => import('./train'),
  sweep: () => import('./sweep'),
  eval: () => import('./eval'),
  extract: () => import('./extract'),
};

async function run(): Promise<number> {
  const [cmd, ...rest] = process.argv.slice(2);
  const load = commands[cmd ?? ''];
  if (!load) {
    console.error(`usage: tsx cli/main.ts <${Object.keys(commands).join('|')}> [flags] (--help for each)`);
    return 2;
  }
  try {
    return await (await load()).main(rest);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    // Data and config problems are the user's to fix: one line, exit 2.
    if (
      e instanceof UsageError ||
      /^invalid config|: (no such file|file is empty|not a|truncated|header|unsupported|expected|row \d+ contains)/.test(
        msg,
      ) ||
      (e as { name?: string }).name === 'DataError'
    ) {
      console.error(`error: ${msg.split('\n')[0]}`);
      return 2;
    }
    // A GPU error: one line (the driver's message can span several), exit 1.
    if (e instanceof GpuFailure || e instanceof RunFailure) {
      console.error(`error: ${msg.replace(/\s*\n\s*/g, ' ').trim()}`);
      return 1;
    }
    console.error(e instanceof Error ? (e.stack ?? msg) : msg);
    return 1;
  }
}

run().then((code) => process.exit(code));
