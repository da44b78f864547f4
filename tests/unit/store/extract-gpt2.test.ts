/**
 * The page's extractor form with a GPT-2 folder (src/store/extract.ts): which dropped files make a
 * folder, what config.json sets (layers, context cut to n_positions), what is missing or out of
 * range, and the worker request (family gpt2, the folder's files with their relative paths).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  chooseGpt2Folder,
  extractProblem,
  extractRequest,
  gpt2FilesOf,
  setExtractOption,
  useExtract,
} from '../../../src/store/extract';

const DIR = resolve(import.meta.dirname, '../../fixtures/gpt2/bytes');
const file = (name: string, path = `bytes/${name}`) => {
  const f = new File([readFileSync(resolve(DIR, name))], name);
  Object.defineProperty(f, 'webkitRelativePath', { value: path });
  return f;
};
const initial = useExtract.getState().options;

describe('extractor form: a GPT-2 folder', () => {
  beforeEach(() => useExtract.setState({ options: initial }));

  it('config.json and model.safetensors together make a GPT-2 folder; either alone does not', () => {
    const cfg = file('config.json');
    const st = file('model.safetensors');
    expect(gpt2FilesOf([cfg, st, file('vocab.json')])).toHaveLength(3);
    expect(gpt2FilesOf([st])).toBeNull();
    expect(gpt2FilesOf([cfg, file('text.txt')])).toBeNull();
  });

  it('reads n_layer and n_positions, cuts the 64-token default context to 24, and builds the request', async () => {
    setExtractOption('model', 'gpt2');
    expect(extractProblem(useExtract.getState().options)).toMatch(/choose a GPT-2 folder/);
    setExtractOption('layer', 4);
    const files = ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt'].map((n) => file(n));
    await chooseGpt2Folder(files);
    const o = useExtract.getState().options;
    expect(o.gpt2).toMatchObject({ name: 'bytes', nLayer: 2, nPositions: 24 });
    expect([o.layer, o.context, o.gpt2Site, o.keepBos]).toEqual([1, 24, 'resid_post', false]);
    expect(extractProblem(o)).toBeNull();
    expect(extractProblem({ ...o, layer: 2 })).toBe('layer must be 0..1 for site resid_post');
    expect(extractProblem({ ...o, context: 25 })).toBe('context must be an integer in 2..24');
    const r = extractRequest({ ...o, gpt2Site: 'mlp_out', keepBos: true });
    if (r.family !== 'gpt2') throw new Error('expected a GPT-2 request');
    expect(r.files.map((f) => f.name)).toEqual([
      'bytes/config.json',
      'bytes/model.safetensors',
      'bytes/vocab.json',
      'bytes/merges.txt',
    ]);
    expect([r.modelName, r.layer, r.site, r.window, r.keepBos]).toEqual(['bytes', 1, 'mlp_out', 24, true]);
  });

  it('a dropped folder is named by the drop; a config that does not parse leaves the limits unknown', async () => {
    const bad = new File(['{not json'], 'config.json');
    await chooseGpt2Folder([bad, new File([''], 'model.safetensors')], 'my-gpt2');
    const o = useExtract.getState().options;
    expect(o.gpt2).toMatchObject({ name: 'my-gpt2', nLayer: null, nPositions: null });
    expect(extractProblem(o)).toBeNull(); // the worker's reader reports the config in one line
  });
});
