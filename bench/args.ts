/** The command line of a bench script: `--name value` options, and one-line failures (exit 1). */
export function benchArgs(tool: string) {
  const args = process.argv.slice(2);
  return {
    args,
    opt: (name: string): string | undefined => {
      const i = args.indexOf(`--${name}`);
      return i >= 0 ? args[i + 1] : undefined;
    },
    fail: (line: string): never => {
      process.stderr.write(`${tool}: ${line}\n`);
      process.exit(1);
    },
  };
}
