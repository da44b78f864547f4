/** Flag parsing shared by the CLI commands: --name value / --name=value / --switch. */

export class UsageError extends Error {}

/**
 * A GPU error (validation, out-of-memory, internal) ended the command: the worker's 'run-error' of
 * kind 'gpu', or a 'gpu-error' outside a run. cli/main.ts prints it on one line and exits 1.
 */
export class GpuFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuFailure';
  }
}

/**
 * The run (or request) failed in the worker for a reason that is not bad input: a diverged run, a
 * device loss it could not recover from, an error message of the worker. One line, exit 1.
 */
export class RunFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunFailure';
  }
}

export interface FlagSpec {
  /** value kind; 'bool' flags take no value */
  kind: 'string' | 'int' | 'number' | 'bool' | 'list';
  help: string;
  /** left out of --help (test hooks) */
  hidden?: boolean;
}

export function parseFlags(
  argv: string[],
  spec: Record<string, FlagSpec>,
): Record<string, string | number | boolean | number[]> {
  const out: Record<string, string | number | boolean | number[]> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument '${a}' (see --help)`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const s = spec[name];
    if (!s) throw new UsageError(`unknown flag --${name} (see --help)`);
    if (s.kind === 'bool') {
      out[name] = true;
      continue;
    }
    let v: string;
    if (eq > 0) v = a.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`);
      v = argv[++i];
    }
    if (s.kind === 'int' || s.kind === 'number') {
      const n = Number(
        v
          .replace(/_/g, '')
          .replace(/([0-9.])[kK]$/, '$1e3')
          .replace(/([0-9.])[mM]$/, '$1e6'),
      );
      if (!Number.isFinite(n) || (s.kind === 'int' && !Number.isInteger(n)))
        throw new UsageError(`--${name} expects ${s.kind === 'int' ? 'an integer' : 'a number'}, got '${v}'`);
      out[name] = n;
    } else if (s.kind === 'list') {
      const xs = v.split(',').map((p) => Number(p.trim()));
      if (xs.some((x) => !Number.isFinite(x)))
        throw new UsageError(`--${name} expects numbers separated by commas, got '${v}'`);
      out[name] = xs;
    } else out[name] = v;
  }
  return out;
}

export function helpText(usage: string, spec: Record<string, FlagSpec>): string {
  const w = Math.max(...Object.keys(spec).map((k) => k.length)) + 4;
  return [
    usage,
    '',
    ...Object.entries(spec)
      .filter(([, s]) => !s.hidden)
      .map(([k, s]) => `  --${k}${s.kind === 'bool' ? '' : ' V'}`.padEnd(w + 6) + s.help),
  ].join('\n');
}
