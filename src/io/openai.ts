/**
 * openai/sparse_autoencoder's state-dict names (model.py, `Autoencoder`), written and read:
 *   pre_bias [d], latent_bias [N], encoder.weight [N, d] (nn.Linear(n_inputs, n_latents)),
 *   decoder.weight [d, N] (nn.Linear(n_latents, n_inputs)), stats_last_nonzero [N] (int64),
 * in `openai_sae.safetensors`, with `openai_sae.json` beside it for the non-tensor fields
 * (`activation`, `activation_state_dict`, `normalize`) that its `state_dict()` mixes in. Import
 * also reads those fields from the safetensors' `__metadata__`, as a torch .pt state dict converts
 * (torch-pt.ts).
 */
import { DataError } from '../data/errors.ts';
import { readSafetensors, writeSafetensors } from '../data/safetensors.ts';
import { type Activation, isBatchCut } from '../sae/config.ts';
import type { ParamsF32 } from '../sae/step-buffers.ts';
import { type InputRule, transpose, unfoldParams } from './fold.ts';
import type { Normalization } from './forward.ts';
import {
  basename,
  dirOf,
  type ExportInput,
  type Files,
  floatTensor,
  type ImportedSae,
  intField,
  type Json,
  json,
  OPENAI_JSON,
  OPENAI_WEIGHTS,
  parseJson,
  readSaeLab,
  type SaeLabBlock,
  type WeightDtype,
} from './sae-files.ts';

/**
 * openai_sae.json and openai_sae.safetensors of a TopK or ReLU SAE whose normalization is already
 * folded into `p` (fold.ts); any other activation is a RangeError.
 */
export function exportOpenai(
  input: ExportInput,
  p: ParamsF32,
  rule: InputRule,
  dtype: WeightDtype,
  lab: SaeLabBlock,
): Map<string, Uint8Array> {
  const { d, nLatents: N, k } = input.config;
  const activation: Activation = input.config.activation ?? 'topk';
  const isTopK = activation === 'topk' || isBatchCut(activation);
  if (isBatchCut(activation) || (!isTopK && activation !== 'relu'))
    throw new RangeError(
      `export: the openai layout holds TopK and ReLU SAEs only; export ${activation} in the SAELens layout`,
    );

  // openai/sparse_autoencoder: stats_last_nonzero counts forward calls (steps) since a latent
  // was last nonzero; ours counts tokens, so divide by the batch size.
  const bs = input.config.batchSize ?? 1;
  const stats = new Int32Array(N);
  if (input.tokensSince) {
    for (let i = 0; i < N; i++) stats[i] = Math.min(0x7fffffff, Math.floor(input.tokensSince[i] / bs));
  }
  const files = new Map<string, Uint8Array>();
  files.set(
    OPENAI_JSON,
    json({
      n_latents: N,
      n_inputs: d,
      activation: isTopK ? 'TopK' : 'ReLU',
      activation_state_dict: isTopK ? { k } : {},
      // openai's Autoencoder.from_state_dict turns normalize on whenever activation is TopK; build
      // Autoencoder(n_latents, n_inputs, TopK(k), normalize=<this>) and load_state_dict instead.
      normalize: rule === 'layer_norm',
      tied: false,
      stats_last_nonzero_unit: `steps of ${bs} tokens`,
      sae_lab: lab,
    }),
  );
  files.set(
    OPENAI_WEIGHTS,
    writeSafetensors({
      pre_bias: { dtype, shape: [d], data: p.b_pre },
      latent_bias: { dtype, shape: [N], data: p.b_enc },
      'encoder.weight': { dtype, shape: [N, d], data: p.W_enc },
      'decoder.weight': { dtype, shape: [d, N], data: transpose(p.W_dec, N, d) },
      stats_last_nonzero: { dtype: 'I64', shape: [N], data: stats },
    }),
  );
  return files;
}

/**
 * The non-tensor entries of openai's state dict (`activation`, `activation_state_dict`, `normalize`)
 * as a state dict converted to safetensors carries them: `__metadata__` strings, JSON where the value
 * was not a string (`{"k": 32, "postact_fn": "ReLU"}`, `true`).
 */
function openaiMetadata(metadata: Record<string, string>): Json {
  const out: Json = {};
  for (const [key, v] of Object.entries(metadata)) {
    if (key === 'format') continue; // safetensors' own "pt"
    try {
      out[key] = /^[[{0-9tfn-]/.test(v) ? JSON.parse(v) : v;
    } catch {
      out[key] = v === 'True' ? true : v === 'False' ? false : v;
    }
  }
  return out;
}

/**
 * The SAE in `wName` (a .safetensors with openai's names) and the json beside it in `dir`, if any,
 * else the safetensors' metadata. TopK and ReLU only.
 */
export function importOpenai(dir: string, files: Files, wName: string): ImportedSae {
  const { tensors, metadata } = readSafetensors(files.get(wName)!, wName);
  const jsonName = [...files.keys()].find((f) => dirOf(f) === dir && f.endsWith('.json'));
  const cfg = jsonName ? parseJson(jsonName, files.get(jsonName)!) : openaiMetadata(metadata);
  const warnings: string[] = [];
  const enc = tensors['encoder.weight'];
  const N = intField(jsonName ?? wName, cfg, 'n_latents', enc?.shape[0]);
  const d = intField(jsonName ?? wName, cfg, 'n_inputs', enc?.shape[1]);
  const W_enc = floatTensor(wName, tensors, 'encoder.weight', [N, d], '[n_latents, n_inputs]', jsonName);
  const b_enc = floatTensor(wName, tensors, 'latent_bias', [N], '[n_latents]', jsonName);
  const W_dec_t = floatTensor(wName, tensors, 'decoder.weight', [d, N], '[n_inputs, n_latents]', jsonName);
  const b_pre = floatTensor(wName, tensors, 'pre_bias', [d], '[n_inputs]', jsonName);
  const act = cfg.activation ?? 'TopK';
  if (act !== 'TopK' && act !== 'ReLU')
    throw new DataError(
      jsonName ?? wName,
      `activation '${act}' is not supported; SAE Lab imports TopK and ReLU SAEs in this layout`,
    );
  const asd = (cfg.activation_state_dict ?? {}) as Json;
  if (act === 'TopK' && asd.k === undefined && cfg.k === undefined)
    throw new DataError(
      jsonName ?? wName,
      `no k: expected activation_state_dict.k in a json beside ${basename(wName)}`,
    );
  const labK = (cfg.sae_lab as { config?: { k?: unknown } } | undefined)?.config?.k;
  const k =
    act === 'TopK'
      ? intField(jsonName ?? wName, { k: asd.k ?? cfg.k }, 'k')
      : typeof labK === 'number'
        ? labK
        : Math.min(32, N);
  // A BatchTopK SAE is never written in this layout now; older SAE Lab ones were per-token TopK.
  const activation: Activation = act === 'ReLU' ? 'relu' : 'topk';
  let params: ParamsF32 = { W_enc, b_enc, W_dec: transpose(W_dec_t, d, N), b_pre };
  const lab = readSaeLab(cfg.sae_lab);
  let normalization: Normalization = { kind: 'none' };
  if (lab) {
    params = unfoldParams(params, lab.c);
    normalization = lab.normalization;
  } else if (cfg.normalize === true || (cfg.normalize === undefined && act === 'TopK')) {
    // model.py's Autoencoder.from_state_dict: normalize = (activation == "TopK"), whatever else
    params = unfoldParams(params, 1 / Math.sqrt(d - 1));
    normalization = { kind: 'paper' };
    warnings.push("openai LN normalization imported as per-token normalization (differs by LN's ε = 1e-5)");
  }
  return {
    format: 'openai',
    path: dir,
    params,
    d,
    nLatents: N,
    k,
    activation,
    config: { ...(lab?.config ?? {}), d, nLatents: N, k, activation },
    normalization,
    source: {},
    tokensTrained: lab?.tokens ?? null,
    metrics: lab?.metrics ?? null,
    logSparsity: null,
    warnings,
    rawConfig: cfg,
  };
}
