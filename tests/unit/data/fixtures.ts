/** Helpers for the data-layer tests: fixture paths, Blobs and expected values. */
import { openAsBlob, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/data');

function fixturePath(name: string): string {
  return join(FIXTURES, name);
}

/** A fixture as a lazy Blob, the same way the benchmark and CLI open files. */
export function fixtureBlob(name: string): Promise<Blob> {
  return openAsBlob(fixturePath(name));
}

export interface Expected {
  n: number;
  d: number;
  b: number;
  s: number;
  x_f64: number[][];
  x_f32: number[][];
  x_f16: (number | string)[][];
  x_bf16: number[][];
  tokens: number[];
  vocab: string[];
  nan_rows: number[];
  stats_f32: { mean: number[]; mean_sq_norm: number; mean_sq_norm_centered: number };
}

export const expected: Expected = JSON.parse(readFileSync(fixturePath('expected.json'), 'utf8'));

/** Flattens expected rows to float32 values ("inf" strings -> Infinity). */
export function flat(rows: (number | string)[][]): Float32Array {
  return Float32Array.from(rows.flat(), (v) =>
    typeof v === 'string' ? (v.startsWith('-') ? -Infinity : Infinity) : v,
  );
}
