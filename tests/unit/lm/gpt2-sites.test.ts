import { describe, expect, it } from 'vitest';
import { parseGpt2Site } from '../../../src/lm/gpt2/sites';
import { hookName } from '../../../src/lm/gpt2/types';

describe('GPT-2 site names', () => {
  it('reads TransformerLens hook names and bare kinds', () => {
    for (const kind of ['resid_pre', 'resid_mid', 'resid_post', 'attn_out', 'mlp_out'] as const) {
      expect(parseGpt2Site(`blocks.8.hook_${kind}`, 12)).toEqual({ kind, layer: 8 });
      expect(parseGpt2Site(kind, 12, 3)).toEqual({ kind, layer: 3 });
      expect(parseGpt2Site(`hook_${kind}`, 12, 0)).toEqual({ kind, layer: 0 });
      expect(hookName(parseGpt2Site(`blocks.11.hook_${kind}`, 12))).toBe(`blocks.11.hook_${kind}`);
    }
    expect(parseGpt2Site('blocks.8.hook_resid_post', 12, 8)).toEqual({ kind: 'resid_post', layer: 8 });
  });

  it("maps openai/sparse_autoencoder's location names", () => {
    expect(parseGpt2Site('resid_post_attn', 12, 8)).toEqual({ kind: 'resid_mid', layer: 8 });
    expect(parseGpt2Site('resid_post_mlp', 12, 8)).toEqual({ kind: 'resid_post', layer: 8 });
    expect(parseGpt2Site('resid_delta_attn', 12, 0)).toEqual({ kind: 'attn_out', layer: 0 });
    expect(parseGpt2Site('resid_delta_mlp', 12, 11)).toEqual({ kind: 'mlp_out', layer: 11 });
  });

  it('refuses anything else with one clear line', () => {
    const help =
      "use blocks.L.hook_{resid_pre|resid_mid|resid_post|attn_out|mlp_out}, a bare kind with a layer, or openai's resid_post_attn, resid_post_mlp, resid_delta_attn, resid_delta_mlp";
    for (const bad of [
      'resid',
      'blocks.8.hook_mlp_in',
      'blocks.8.resid_post',
      'blocks.x.hook_resid_pre',
      'constructor',
      'blocks.8.hook_resid_post_mlp',
      '',
    ]) {
      expect(() => parseGpt2Site(bad, 12, 1), bad).toThrow(`unknown GPT-2 site '${bad}': ${help}`);
    }
    expect(() => parseGpt2Site('resid_post', 12)).toThrow("site 'resid_post' needs a layer (0..11)");
    expect(() => parseGpt2Site('blocks.12.hook_resid_post', 12)).toThrow(
      "site 'blocks.12.hook_resid_post': layer 12 is outside 0..11 (n_layer = 12)",
    );
    expect(() => parseGpt2Site('mlp_out', 12, -1)).toThrow('layer -1 is outside 0..11');
    expect(() => parseGpt2Site('blocks.3.hook_attn_out', 12, 4)).toThrow(
      "site 'blocks.3.hook_attn_out' is in layer 3, but layer 4 was given",
    );
  });
});
