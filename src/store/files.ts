/** Classifies dropped or picked files by name into activations and sidecars. */
import type { FileRole } from './lab';

export const ACCEPT = '.npy,.npz,.safetensors,.bin,.f32,.f16,.raw,.json,.txt';

const RAW_EXT = /\.(bin|f32|f16|raw)$/i;

export function classifyFile(name: string): FileRole {
  const n = name.toLowerCase();
  if (/(^|[._-])tokens?(_ids)?\.npy$/.test(n) || n.endsWith('.tokens.npy') || n.endsWith('.ids.npy'))
    return 'tokens';
  if (n === 'tokenizer.json' || n.endsWith('.tokenizer.json') || n.endsWith('vocab.json')) return 'vocab';
  if (n.endsWith('.vocab.txt') || n === 'vocab.txt' || n.endsWith('.txt')) return 'vocab';
  if (n.endsWith('.npy') || n.endsWith('.npz') || n.endsWith('.safetensors') || RAW_EXT.test(n))
    return 'activations';
  if (n.endsWith('.json')) return 'vocab';
  return 'ignore';
}

export const isRaw = (name: string) => RAW_EXT.test(name);

/** dtype implied by a raw file's extension (.f16 → f16, everything else f32). */
export const rawDtypeOf = (name: string): 'f32' | 'f16' => (/\.f16$/i.test(name) ? 'f16' : 'f32');

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${units[i]}`;
}
