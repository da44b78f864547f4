/**
 * extractActivationsAsync (the worker's path, over any SiteReader) gives the same rows, tokens,
 * positions and progress as the synchronous extractor, honours maxTokens and the abort signal.
 */
import { describe, expect, it } from 'vitest';
import {
  type ExtractProgress,
  extractActivations,
  extractActivationsAsync,
  llamaSiteReader,
  type SiteReader,
} from '../../../src/lm/extract';
import { Llama } from '../../../src/lm/forward';
import { stories, text } from './helpers';

describe('extractActivationsAsync', () => {
  const { ckpt, tok } = stories();
  const sample = text().slice(0, 4000);
  /** the CPU reader behind a promise, as the GPU reader is */
  const asyncReader = (): SiteReader => {
    const r = llamaSiteReader(new Llama(ckpt));
    return { config: r.config, capacity: r.capacity, read: async (w, s, l) => r.read(w, s, l) };
  };

  for (const site of ['resid', 'mlp'] as const) {
    it(`equals the synchronous extractor (site ${site}, window 32, maxTokens 300)`, async () => {
      const opts = { layer: 2, site, window: 32, maxTokens: 300 };
      const pa: ExtractProgress[] = [];
      const pb: ExtractProgress[] = [];
      const a = extractActivations(new Llama(ckpt), tok, sample, { ...opts, onProgress: (p) => pa.push(p) });
      const b = await extractActivationsAsync(asyncReader(), tok, sample, {
        ...opts,
        onProgress: (p) => pb.push(p),
      });
      expect(b.nTokens).toBe(300);
      expect(b.nTokens).toBe(a.nTokens);
      expect(b.windows).toBe(a.windows);
      expect(b.acts).toEqual(a.acts);
      expect(b.tokens).toEqual(a.tokens);
      expect(b.positions).toEqual(a.positions);
      expect(pb).toEqual(pa);
    });
  }

  it('stops on abort with the signal reason', async () => {
    const ctl = new AbortController();
    const reader = asyncReader();
    let windows = 0;
    const p = extractActivationsAsync(reader, tok, sample, {
      layer: 1,
      onProgress: () => {
        if (++windows === 2) ctl.abort(new Error('extraction cancelled'));
      },
      signal: ctl.signal,
    });
    await expect(p).rejects.toThrow('extraction cancelled');
    expect(windows).toBe(2);
  });

  it('rejects a layer outside the model', async () => {
    await expect(
      extractActivationsAsync(asyncReader(), tok, sample, { layer: 5, site: 'mlp' }),
    ).rejects.toThrow(/layer 5 is outside 0..4 for site 'mlp'/);
  });
});
