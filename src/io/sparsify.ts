/**
 * EleutherAI sparsify's SAEs, read (its trainer config is written by scaleout.ts): a folder per
 * hookpoint with `cfg.json` + `sae.safetensors` holding encoder.weight [N, d], encoder.bias [N],
 * W_dec [N, d], b_dec [d]. Sparsify encodes relu(encoder(x − b_dec)) then TopK, which keeps the
 * same positive values as TopK-then-ReLU, so the weights map one to one onto ours.
 */
import { DataError } from '../data/errors.ts';
import { readSafetensors } from '../data/safetensors.ts';
import type { ParamsF32 } from '../sae/step-buffers.ts';
import {
  basename,
  type Files,
  floatTensor,
  type ImportedSae,
  intField,
  join,
  parseJson,
  SPARSIFY_WEIGHTS,
} from './sae-files.ts';

/** The TopK SAE in `dir` (sae.safetensors, cfg.json optional); transcoders and skip connections are refused. */
export function importSparsify(dir: string, files: Files): ImportedSae {
  const cfgName = join(dir, 'cfg.json');
  const wName = join(dir, SPARSIFY_WEIGHTS);
  const cfg = files.has(cfgName) ? parseJson(cfgName, files.get(cfgName)!) : {};
  const where = files.has(cfgName) ? cfgName : wName;
  if (cfg.activation !== undefined && cfg.activation !== 'topk')
    throw new DataError(where, `activation '${cfg.activation}' is not TopK; only TopK SAEs can be imported`);
  if (cfg.transcode === true)
    throw new DataError(
      where,
      'this is a transcoder (transcode: true): it predicts another activation, not its input',
    );
  const { tensors } = readSafetensors(files.get(wName)!, wName);
  if (cfg.skip_connection === true || tensors.W_skip)
    throw new DataError(wName, 'has a linear skip connection (W_skip), which SAE Lab models do not have');
  const enc = tensors['encoder.weight'];
  const d = intField(where, cfg, 'd_in', enc?.shape[1]);
  const ef = typeof cfg.expansion_factor === 'number' ? cfg.expansion_factor : 0;
  const N = intField(where, { n: (cfg.num_latents as number) || ef * d || enc?.shape[0] }, 'n');
  const k = intField(where, cfg, 'k');
  const from = files.has(cfgName) ? cfgName : undefined;
  const params: ParamsF32 = {
    W_enc: floatTensor(wName, tensors, 'encoder.weight', [N, d], '[num_latents, d_in]', from),
    b_enc: floatTensor(wName, tensors, 'encoder.bias', [N], '[num_latents]', from),
    W_dec: floatTensor(wName, tensors, 'W_dec', [N, d], '[num_latents, d_in]', from),
    b_pre: floatTensor(wName, tensors, 'b_dec', [d], '[d_in]', from),
  };
  const warnings: string[] = [];
  if (cfg.multi_topk === true)
    warnings.push('trained with Multi-TopK; imported as a plain TopK SAE with the same k');
  return {
    format: 'sparsify',
    path: dir,
    params,
    d,
    nLatents: N,
    k,
    activation: 'topk',
    config: { d, nLatents: N, k, activation: 'topk' },
    normalization: { kind: 'none' },
    source: { hookName: dir ? basename(dir) : undefined },
    tokensTrained: null,
    metrics: null,
    logSparsity: null,
    warnings,
    rawConfig: cfg,
  };
}
