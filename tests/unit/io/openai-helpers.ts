/** A randomly initialized openai/sparse_autoencoder state dict (model.py's layout), as safetensors. */
import { Rng } from '../../../src/data/rng';
import { writeSafetensors } from '../../../src/data/safetensors';

/** latents and k of the state dict (openai's released GPT-2 SAEs: k = 32) */
export const N = 96;
export const K = 32;

/** A random state dict of openai's layout, as safetensors with the non-tensor entries in __metadata__. */
export function openaiStateDict(d: number, seed = 7, withNormalizeKey = false): Uint8Array {
  const rng = new Rng(seed);
  const g = (n: number, s: number) => Float32Array.from({ length: n }, () => rng.normal() * s);
  return writeSafetensors(
    {
      pre_bias: { dtype: 'F32', shape: [d], data: g(d, 0.1) },
      latent_bias: { dtype: 'F32', shape: [N], data: g(N, 0.05) },
      'encoder.weight': { dtype: 'F32', shape: [N, d], data: g(N * d, 1 / Math.sqrt(d)) },
      'decoder.weight': { dtype: 'F32', shape: [d, N], data: g(d * N, 1 / Math.sqrt(N)) },
      stats_last_nonzero: { dtype: 'I64', shape: [N], data: new Int32Array(N) },
      latents_activation_frequency: { dtype: 'F32', shape: [N], data: new Float32Array(N).fill(1) },
      latents_mean_square: { dtype: 'F32', shape: [N], data: new Float32Array(N) },
    },
    {
      activation: 'TopK',
      activation_state_dict: JSON.stringify({ k: K, postact_fn: 'ReLU' }),
      ...(withNormalizeKey ? { normalize: 'false' } : {}),
    },
  );
}
