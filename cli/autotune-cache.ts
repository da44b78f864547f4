/**
 * The CLI's memory of the autotuner's choices between runs. Each CLI run opens a fresh browser
 * profile, so the page's own cache (OPFS) is gone by the next run, and the autotuner would compile
 * and time every candidate again (about 10 s at B=256, N=64 on SwiftShader; minutes at paper sizes).
 * The choices are kept in node_modules/.cache/sae-lab/autotune.json, keyed by the worker's autotune
 * key (adapter, batch, d, N, k, activation, latent tile), and handed to the worker with each run.
 * SAE_LAB_AUTOTUNE_CACHE=FILE keeps them elsewhere; =off neither reads nor writes them.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type KernelChoice, withoutCopy } from '../src/sae/step-host';

const DEFAULT_FILE = resolve(import.meta.dirname, '../node_modules/.cache/sae-lab/autotune.json');

/** The cache file, or null when SAE_LAB_AUTOTUNE_CACHE=off. */
function autotuneCacheFile(): string | null {
  const env = process.env.SAE_LAB_AUTOTUNE_CACHE;
  if (env === 'off') return null;
  return env ? resolve(env) : DEFAULT_FILE;
}

/** The remembered choices (an unreadable or foreign file reads as none: the autotuner then times). */
export function readAutotuneCache(): Record<string, KernelChoice> {
  const file = autotuneCacheFile();
  if (!file || !existsSync(file)) return {};
  try {
    const all = JSON.parse(readFileSync(file, 'utf8'));
    return all && typeof all === 'object' && !Array.isArray(all) ? all : {};
  } catch {
    return {};
  }
}

/** Adds one choice (written whole to a temporary file, then renamed over the old one). */
export function rememberAutotune(key: string, kernels: KernelChoice): void {
  const file = autotuneCacheFile();
  if (!file) return;
  // The encoder's compiled copy belongs to the run that compiled it (autotune.ts pickEncoderCopy).
  const all = { ...readAutotuneCache(), [key]: withoutCopy(kernels) };
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(all, null, 1)}\n`);
  renameSync(tmp, file);
}
