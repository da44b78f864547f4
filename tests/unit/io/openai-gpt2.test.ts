/**
 * An openai/sparse_autoencoder state dict (model.py's `Autoencoder.state_dict()`: pre_bias,
 * latent_bias, encoder.weight [N, d], decoder.weight [d, N], the stats buffers, and the non-tensor
 * `activation` = "TopK" with `activation_state_dict` = {k, postact_fn}) converted to safetensors,
 * randomly initialized at a small size, imported and applied to GPT-2 activations of the fixture
 * model (CPU twin). `Autoencoder.from_state_dict` turns `normalize` on for every TopK SAE, so the
 * reference below is model.py's forward in float64: LN (unbiased std, ε = 1e-5), encode, TopK with
 * ReLU after, decode, then × std + μ.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../../../src/data/safetensors';
import { encodeRows } from '../../../src/eval/lm-runner';
import { importSae } from '../../../src/io/import';
import { extractGpt2Activations } from '../../../src/lm/extract';
import { readGpt2Checkpoint } from '../../../src/lm/gpt2/checkpoint';
import { Gpt2 } from '../../../src/lm/gpt2/forward';
import { readGpt2Tokenizer } from '../../../src/lm/gpt2/tokenizer';
import { K, N, openaiStateDict } from './openai-helpers';

const DIR = resolve(__dirname, '../../fixtures/gpt2/bytes');

/** model.py's Autoencoder(normalize=True, TopK(k)).forward on one row, float64: reconstruction and latents. */
function openaiForward(sd: Record<string, Float32Array>, x: ArrayLike<number>, d: number) {
  let mu = 0;
  for (let j = 0; j < d; j++) mu += x[j];
  mu /= d;
  let ss = 0;
  for (let j = 0; j < d; j++) ss += (x[j] - mu) ** 2;
  const std = Math.sqrt(ss / (d - 1)); // torch.std: unbiased
  const xn = Array.from({ length: d }, (_, j) => (x[j] - mu) / (std + 1e-5) - sd.pre_bias[j]);
  const pre = Array.from({ length: N }, (_, i) => {
    let a = sd.latent_bias[i];
    for (let j = 0; j < d; j++) a += sd['encoder.weight'][i * d + j] * xn[j];
    return a;
  });
  const top = [...pre.keys()].sort((a, b) => pre[b] - pre[a]).slice(0, K);
  const lat = new Map(top.map((i) => [i, Math.max(0, pre[i])]));
  const rec = Array.from({ length: d }, (_, j) => {
    let r = sd.pre_bias[j];
    for (const [i, v] of lat) r += sd['decoder.weight'][j * N + i] * v;
    return r * std + mu;
  });
  return { rec, lat };
}

describe('openai/sparse_autoencoder state dicts on GPT-2 activations', () => {
  it('imports as TopK k=32 with LN normalization (from_state_dict: TopK ⇒ normalize) and matches model.py', async () => {
    const ckpt = await readGpt2Checkpoint({
      config: readFileSync(resolve(DIR, 'config.json'), 'utf8'),
      model: new Blob([readFileSync(resolve(DIR, 'model.safetensors'))]),
    });
    const tok = readGpt2Tokenizer(
      ['vocab.json', 'merges.txt'].map((n) => ({ name: n, bytes: readFileSync(resolve(DIR, n)) })),
    );
    const d = ckpt.config.nEmbd;
    const text = 'The lab reads GPT-2 and openai SAEs.\n\nA second paragraph, with more words in it.';
    const x = extractGpt2Activations(
      new Gpt2(ckpt),
      tok,
      text,
      { kind: 'resid_post', layer: 1 },
      { window: 24 },
    );
    expect(x.nTokens).toBeGreaterThan(40);

    const st = openaiStateDict(d);
    const sae = importSae(new Map([['v5_32k/layer1.safetensors', st]]));
    expect([sae.format, sae.activation, sae.k, sae.nLatents, sae.d]).toEqual(['openai', 'topk', K, N, d]);
    expect(sae.normalization.kind).toBe('paper');

    const sd = Object.fromEntries(
      Object.entries(readSafetensors(st).tensors).map(([k, t]) => [k, t.data as Float32Array]),
    );
    const enc = encodeRows(
      { sae: { params: sae.params, k: sae.k, activation: sae.activation }, perRow: true },
      x.acts,
      x.nTokens,
      d,
    );
    let worst = 0;
    let same = 0;
    for (let r = 0; r < x.nTokens; r++) {
      const ref = openaiForward(sd, x.acts.subarray(r * d, (r + 1) * d), d);
      let err = 0;
      let norm = 0;
      for (let j = 0; j < d; j++) {
        err = Math.max(err, Math.abs(enc.xhat[r * d + j] - ref.rec[j]));
        norm += ref.rec[j] ** 2;
      }
      worst = Math.max(worst, err / Math.sqrt(norm));
      const ids = new Set(Array.from(enc.codes.idx.subarray(r * enc.codes.k, (r + 1) * enc.codes.k)));
      if ([...ref.lat.keys()].every((i) => ids.has(i))) same++;
    }
    // LN's ε = 1e-5 against a row spread of order 1 is the only difference.
    expect(worst).toBeLessThan(1e-4);
    expect(same).toBeGreaterThanOrEqual(x.nTokens - 1);
  });

  it('an explicit normalize=false in the state dict is kept (no LN)', () => {
    const sae = importSae(new Map([['layer0.safetensors', openaiStateDict(24, 7, true)]]));
    expect(sae.normalization.kind).toBe('none');
  });
});
