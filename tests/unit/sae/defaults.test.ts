import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../cli/args';
import { configFromFlags } from '../../../cli/train-flags';
import { DEFAULT_SOURCES, DEFAULTS, RECIPES, resolveConfig } from '../../../src/sae/config';

const README = readFileSync(join(resolve(import.meta.dirname, '../../..'), 'README.md'), 'utf8');

describe('defaults and their sources', () => {
  it('every default names a source, and README lists each with the same source', () => {
    expect(Object.keys(DEFAULT_SOURCES).sort()).toEqual(Object.keys(DEFAULTS).sort());
    for (const [key, { source }] of Object.entries(DEFAULT_SOURCES)) {
      expect(source.length, key).toBeGreaterThan(0);
      const row = README.split('\n').find((l) => l.startsWith(`| \`${key}\` |`));
      expect(row, `README row for ${key}`).toBeDefined();
      expect(row!.split('|')[3].trim(), key).toBe(source);
    }
  });
});

describe('--recipe', () => {
  it('paper sets the paper’s choices; flags beside it win; an unknown recipe is refused', () => {
    const c = resolveConfig({ d: 16, ...configFromFlags({ recipe: 'paper', k: 8 }) });
    expect(c.inputNorm).toBe('paper');
    expect(c.ema).toBe(true);
    expect(c.clipGrad).toBe(true);
    expect(c.k).toBe(8);
    const over = configFromFlags({ recipe: 'paper', 'input-norm': 'none' });
    expect(over.inputNorm).toBe('none');
    expect(resolveConfig({ d: 16, ...configFromFlags({ recipe: 'default' }) }).inputNorm).toBe(
      DEFAULTS.inputNorm,
    );
    expect(() => configFromFlags({ recipe: 'sparsify' })).toThrow(UsageError);
    expect(Object.keys(RECIPES)).toEqual(['default', 'paper']);
  });
});
