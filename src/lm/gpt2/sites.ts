/**
 * Names of GPT-2 read-out sites: TransformerLens hook names (`blocks.8.hook_resid_post`), their bare
 * kinds (`resid_post`, with the layer given apart, as `--site resid_post --layer 8`), and the location
 * names of openai/sparse_autoencoder's released GPT-2 SAEs, which map onto the same tensors:
 *
 *   resid_post_attn  → resid_mid     (residual stream after the attention block)
 *   resid_post_mlp   → resid_post    (after the MLP block)
 *   resid_delta_attn → attn_out      (what attention adds)
 *   resid_delta_mlp  → mlp_out       (what the MLP adds)
 */

import type { Gpt2Site, Gpt2SiteKind } from './types.ts';

const KINDS: readonly Gpt2SiteKind[] = ['resid_pre', 'resid_mid', 'resid_post', 'attn_out', 'mlp_out'];

const OPENAI: Record<string, Gpt2SiteKind> = {
  resid_post_attn: 'resid_mid',
  resid_post_mlp: 'resid_post',
  resid_delta_attn: 'attn_out',
  resid_delta_mlp: 'mlp_out',
};

const HELP =
  `use blocks.L.hook_{${KINDS.join('|')}}, a bare kind with a layer, ` +
  `or openai's ${Object.keys(OPENAI).join(', ')}`;

/**
 * Parses a site name.
 * @param name   `blocks.L.hook_<kind>`, `hook_<kind>`, `<kind>` or an openai location name
 * @param nLayer the model's layers (the layer must be in 0..nLayer−1)
 * @param layer  the layer when the name carries none; must agree when it does
 * @throws Error with one line saying what is wrong and which names are accepted
 */
export function parseGpt2Site(name: string, nLayer: number, layer?: number): Gpt2Site {
  const full = /^blocks\.(\d+)\.hook_([a-z_]+)$/.exec(name);
  const bare = full ? full[2] : name.replace(/^hook_/, '');
  let kind: Gpt2SiteKind | undefined;
  if ((KINDS as readonly string[]).includes(bare)) kind = bare as Gpt2SiteKind;
  else if (!full && Object.hasOwn(OPENAI, bare)) kind = OPENAI[bare];
  if (!kind) throw new Error(`unknown GPT-2 site '${name}': ${HELP}`);
  let l = layer;
  if (full) {
    const inName = Number(full[1]);
    if (layer !== undefined && layer !== inName) {
      throw new Error(`site '${name}' is in layer ${inName}, but layer ${layer} was given`);
    }
    l = inName;
  }
  if (l === undefined) throw new Error(`site '${name}' needs a layer (0..${nLayer - 1})`);
  if (!Number.isInteger(l) || l < 0 || l >= nLayer) {
    throw new Error(`site '${name}': layer ${l} is outside 0..${nLayer - 1} (n_layer = ${nLayer})`);
  }
  return { kind, layer: l };
}
