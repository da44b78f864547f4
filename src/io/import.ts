/**
 * Import of trained SAEs: finds every SAE in a set of files (or a zip of them), one per folder,
 * and hands each folder to its layout's reader (saelens-import.ts, sparsify.ts, openai.ts).
 */
import { DataError } from '../data/errors.ts';
import { readSafetensors } from '../data/safetensors.ts';
import { importOpenai } from './openai.ts';
import {
  dirOf,
  type Files,
  type ImportedSae,
  join,
  SAELENS_CFG,
  SAELENS_WEIGHTS,
  SPARSIFY_WEIGHTS,
} from './sae-files.ts';
import { importSaelens } from './saelens-import.ts';
import { importSparsify } from './sparsify.ts';
import { torchStateDictToSafetensors } from './torch-pt.ts';
import { filesFromZip, isZip } from './zip.ts';

/** The files (unzipped first if a zip) with '/'-separated paths, no leading './' or '/'. */
function normalizeFiles(input: Files | Uint8Array, zipName: string): Files {
  const raw = input instanceof Uint8Array ? filesFromZip(input, zipName) : input;
  const out: Files = new Map();
  for (const [p, b] of raw)
    out.set(
      p
        .replace(/\\/g, '/')
        .replace(/^(\.\/)+/, '')
        .replace(/^\/+/, ''),
      b,
    );
  return out;
}

/**
 * Finds and imports every SAE in a set of files (or a zip of them), one per folder: SAELens
 * (sae_weights.safetensors + cfg.json), sparsify (sae.safetensors [+ cfg.json], one folder per
 * hookpoint) or openai names (any other .safetensors holding pre_bias / encoder.weight /
 * decoder.weight, with an optional json beside it).
 * @throws DataError naming the file and the problem
 */
export function importSaes(input: Files | Uint8Array, opts: { name?: string } = {}): ImportedSae[] {
  if (!(input instanceof Uint8Array)) return importFileMap(input, 'input');
  // A zip's own name leads every message, so a problem inside it still names the file given.
  const zipName = opts.name ?? 'input';
  if (!isZip(input)) throw new DataError(zipName, 'not a zip file; pass a zip or a map of file name → bytes');
  try {
    return importFileMap(normalizeFiles(input, zipName), zipName);
  } catch (e) {
    if (e instanceof DataError && e.file !== zipName) throw new DataError(zipName, e.message);
    throw e;
  }
}

/** Every SAE in the files, folders in sorted order; a DataError labelled `label` when there is none. */
function importFileMap(input: Files, label: string): ImportedSae[] {
  const files = normalizeFiles(input, label);
  // openai's released SAEs are torch.save'd state dicts: read as the safetensors they would convert to
  for (const [name, bytes] of [...files])
    if (/\.pt$/i.test(name)) {
      files.delete(name);
      files.set(name.replace(/\.pt$/i, '.safetensors'), torchStateDictToSafetensors(bytes, name));
    }
  const dirs = [...new Set([...files.keys()].map(dirOf))].sort();
  const out: ImportedSae[] = [];
  for (const dir of dirs) {
    if (files.has(join(dir, SAELENS_WEIGHTS))) out.push(importSaelens(dir, files));
    else if (files.has(join(dir, SPARSIFY_WEIGHTS))) out.push(importSparsify(dir, files));
    else {
      for (const f of files.keys()) {
        if (dirOf(f) !== dir || !f.endsWith('.safetensors')) continue;
        const names = Object.keys(readSafetensors(files.get(f)!, f).tensors);
        if (names.includes('pre_bias') || names.includes('decoder.weight'))
          out.push(importOpenai(dir, files, f));
      }
    }
  }
  if (out.length === 0) {
    throw new DataError(
      label,
      `no SAE found: expected ${SAELENS_WEIGHTS} + ${SAELENS_CFG} (SAELens), ${SPARSIFY_WEIGHTS} + cfg.json (sparsify), or a .safetensors / torch .pt state dict with pre_bias/encoder.weight/decoder.weight (openai); got ${[...files.keys()].join(', ') || 'no files'}`,
    );
  }
  return out;
}

/**
 * Imports one SAE. With several (e.g. a sparsify run over many hookpoints) `path` picks the
 * folder; without it the call fails listing the choices.
 */
export function importSae(
  input: Files | Uint8Array,
  opts: { path?: string /** the zip's file name, for messages */; name?: string } = {},
): ImportedSae {
  const all = importSaes(input, { name: opts.name });
  if (opts.path !== undefined) {
    const hit = all.find((s) => s.path === opts.path);
    if (!hit)
      throw new DataError(
        opts.path || '(top level)',
        `no SAE in this folder; found: ${all.map((s) => s.path || '(top level)').join(', ')}`,
      );
    return hit;
  }
  if (all.length > 1) {
    throw new DataError(
      opts.name ?? 'input',
      `holds ${all.length} SAEs (${all.map((s) => s.path || '(top level)').join(', ')}); choose one with opts.path`,
    );
  }
  return all[0];
}
