import { describe, expect, it } from 'vitest';
import { parseFlags } from '../../../cli/args';
import { DEFAULT_ABLATION_LATENTS, EVAL_FLAGS, expandOptionalFlags } from '../../../cli/eval';
import { extractProblem, extractRequest, useExtract } from '../../../src/store/extract';

describe('npm run eval -- --ablation [N]', () => {
  const parse = (argv: string[]) => parseFlags(expandOptionalFlags(argv), EVAL_FLAGS);
  it('a bare --ablation means the default number of latents', () => {
    expect(parse(['--ablation', '--downstream']).ablation).toBe(DEFAULT_ABLATION_LATENTS);
    expect(parse(['--data', 'demo', '--ablation']).ablation).toBe(64);
  });
  it('takes a count, with or without =', () => {
    expect(parse(['--ablation', '16', '--data', 'demo']).ablation).toBe(16);
    expect(parse(['--ablation=8']).ablation).toBe(8);
    expect(parse(['--ablation-tokens', '256']).ablation).toBeUndefined();
    expect(parse(['--ablation-tokens', '256'])['ablation-tokens']).toBe(256);
  });
  it('rejects a count that is not an integer', () => {
    expect(() => parse(['--ablation', 'many'])).toThrow(/--ablation expects an integer/);
  });
});

describe('the page extractor form', () => {
  const base = useExtract.getState().options;
  it('defaults to stories260K layer 2 residual over the bundled text', () => {
    expect(extractProblem(base)).toBeNull();
    const r = extractRequest(base);
    if (r.family === 'gpt2') throw new Error('expected a llama2.c request');
    expect(r.modelName).toBe('stories260K');
    expect(r.checkpoint).toEqual({ kind: 'bundled', path: 'models/stories260K/stories260K.bin' });
    expect(r.text).toEqual({ kind: 'bundled', path: 'text/tinystories_train_head.txt' });
    expect([r.layer, r.site]).toEqual([2, 'resid']);
  });
  it('says what is missing or out of range', () => {
    expect(extractProblem({ ...base, layer: 6 })).toMatch(/layer must be 0..5/);
    expect(extractProblem({ ...base, site: 'mlp', layer: 5 })).toMatch(/layer must be 0..4/);
    expect(extractProblem({ ...base, model: 'custom' })).toMatch(/checkpoint/);
    expect(extractProblem({ ...base, text: 'custom' })).toMatch(/text file/);
    expect(extractProblem({ ...base, maxTokens: 0 })).toMatch(/tokens/);
  });
});
