/**
 * Errors raised by the activation-data layer.
 *
 * Every problem with a user's file is reported as a `DataError` whose message is a
 * single line `"<file>: <problem>"`, so the UI can show it verbatim and tests can
 * match on `file` / `problem` without parsing.
 */
export class DataError extends Error {
  /** Name of the file (or shard / tensor path) the problem is in. */
  readonly file: string;
  /** What is wrong, one line, no file name. */
  readonly problem: string;

  constructor(file: string, problem: string) {
    const oneLine = problem.replace(/\s*\n\s*/g, ' ');
    super(`${file}: ${oneLine}`);
    this.name = 'DataError';
    this.file = file;
    this.problem = oneLine;
  }
}

/** Formats a byte count for messages: "1.5 GB", "312 bytes". */
export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ['KB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

/** Formats a shape like numpy does: (3, 4) or (5,). */
export function fmtShape(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}
