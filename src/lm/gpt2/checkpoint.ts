/**
 * GPT-2 checkpoints as a user downloads them from Hugging Face: `config.json` + `model.safetensors`.
 *
 * The safetensors file holds a GPT2LMHeadModel (keys `transformer.h.0.attn.c_attn.weight`, …) or
 * its bare GPT2Model (`h.0.attn.c_attn.weight`, … as in the gpt2 repository), in F32, F16 or BF16
 * (F64 is read and rounded). Conv1D weights are stored [in, out] and are transposed here to the
 * lab's [out, in]. The output embedding is tied to `wte`: an `lm_head.weight` present in the file
 * must equal it. The causal-mask buffers older saves carry (`attn.bias`, `attn.masked_bias`) are
 * skipped. Every problem is one DataError line naming the file.
 *
 * Pure TS over Blobs (a worker's File, node's fs.openAsBlob): the header first, then one tensor at
 * a time, so the peak is the float32 weights plus one stored tensor.
 */

import { DataError, fmtBytes, fmtShape } from '../../data/errors.ts';
import { readSafetensorsHeader } from '../../data/safetensors.ts';
import { decodeFloats, type FloatDtype } from '../../data/source.ts';
import type { Gpt2Checkpoint, Gpt2Config, Gpt2Weights } from './types.ts';

/** Upper bounds no runnable checkpoint exceeds; they catch a wrong file before any allocation. */
const LIMITS = {
  n_layer: 1024,
  n_head: 1024,
  n_embd: 1 << 16,
  n_positions: 1 << 20,
  n_inner: 1 << 18,
  vocab_size: 1 << 21,
} as const;

/** Both are GELU's tanh form (modeling_gpt2's ACT2FN: NewGELU and torch's approximate='tanh'). */
const ACTIVATIONS = new Set(['gelu_new', 'gelu_pytorch_tanh']);

/** Switches of GPT2Config whose non-default value changes the forward this code computes. */
const REFUSED_FLAGS: [key: string, bad: boolean, why: string][] = [
  ['scale_attn_weights', false, 'attention scores without the 1/sqrt(head size) scale'],
  ['scale_attn_by_inverse_layer_idx', true, 'attention scores scaled by 1/(layer+1)'],
  ['reorder_and_upcast_attn', true, 'attention reordered and upcast for mixed-precision training'],
  ['add_cross_attention', true, 'cross-attention layers (an encoder-decoder model)'],
  ['tie_word_embeddings', false, 'an lm_head untied from wte'],
];

const STORED: Record<string, FloatDtype> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
};

/**
 * Parses a GPT2LMHeadModel `config.json`.
 * @param text the file's text
 * @param file shown in messages
 */
export function parseGpt2Config(text: string, file = 'config.json'): Gpt2Config {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new DataError(file, `not a Hugging Face config.json: not JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new DataError(file, 'not a Hugging Face config.json: not a JSON object');
  }
  const c = raw as Record<string, unknown>;
  if (c.model_type !== undefined && c.model_type !== 'gpt2') {
    throw new DataError(
      file,
      `model_type '${String(c.model_type)}' is not gpt2 (only GPT-2 models are read)`,
    );
  }
  const arch = c.architectures;
  if (Array.isArray(arch) && !arch.some((a) => a === 'GPT2LMHeadModel' || a === 'GPT2Model')) {
    throw new DataError(file, `architectures ${JSON.stringify(arch)}: expected GPT2LMHeadModel`);
  }
  const int = (key: keyof typeof LIMITS, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (v === undefined) throw new DataError(file, `no '${key}' (is it a GPT-2 config.json?)`);
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > LIMITS[key]) {
      throw new DataError(file, `${key} = ${JSON.stringify(v)} is not an integer in 1..${LIMITS[key]}`);
    }
    return v as number;
  };
  const nLayer = int('n_layer');
  const nHead = int('n_head');
  const nEmbd = int('n_embd');
  // Configs from before n_positions was the name carry only n_ctx.
  const nPositions = int('n_positions', c.n_ctx as number | undefined);
  const vocabSize = int('vocab_size');
  const nInner = c.n_inner === null || c.n_inner === undefined ? 4 * nEmbd : int('n_inner');
  if (nEmbd % nHead !== 0)
    throw new DataError(file, `n_embd = ${nEmbd} is not a multiple of n_head = ${nHead}`);
  const eps = c.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== 'number' || !(eps > 0 && eps < 1)) {
    throw new DataError(file, `layer_norm_epsilon = ${JSON.stringify(eps)} is not a number in (0, 1)`);
  }
  const act = c.activation_function ?? 'gelu_new';
  if (typeof act !== 'string' || !ACTIVATIONS.has(act)) {
    throw new DataError(
      file,
      `unsupported activation_function ${JSON.stringify(act)} (supported: ${[...ACTIVATIONS].join(', ')})`,
    );
  }
  for (const [key, bad, why] of REFUSED_FLAGS) {
    if (c[key] === bad) throw new DataError(file, `unsupported config: ${key} = ${bad} (${why})`);
  }
  return {
    nLayer,
    nHead,
    nEmbd,
    nPositions,
    nInner,
    vocabSize,
    layerNormEps: eps,
    headSize: nEmbd / nHead,
  };
}

/** One weight of Gpt2Weights and where it sits in the file. */
interface Slot {
  field: keyof Gpt2Weights;
  /** HF name after `h.{l}.` (per layer) or after the prefix (global) */
  key: string;
  perLayer: boolean;
  /** the stored shape in config.json's names (Conv1D: [in, out]) */
  dims: string[];
  /** Conv1D: stored [in, out], held [out, in] */
  transpose: boolean;
}

// field, HF key, per layer, stored shape, Conv1D (transposed on reading)
const SLOTS: Slot[] = (
  [
    ['wte', 'wte.weight', false, 'vocab_size n_embd', false],
    ['wpe', 'wpe.weight', false, 'n_positions n_embd', false],
    ['ln1G', 'ln_1.weight', true, 'n_embd', false],
    ['ln1B', 'ln_1.bias', true, 'n_embd', false],
    ['attnW', 'attn.c_attn.weight', true, 'n_embd 3·n_embd', true],
    ['attnB', 'attn.c_attn.bias', true, '3·n_embd', false],
    ['attnProjW', 'attn.c_proj.weight', true, 'n_embd n_embd', true],
    ['attnProjB', 'attn.c_proj.bias', true, 'n_embd', false],
    ['ln2G', 'ln_2.weight', true, 'n_embd', false],
    ['ln2B', 'ln_2.bias', true, 'n_embd', false],
    ['fcW', 'mlp.c_fc.weight', true, 'n_embd n_inner', true],
    ['fcB', 'mlp.c_fc.bias', true, 'n_inner', false],
    ['projW', 'mlp.c_proj.weight', true, 'n_inner n_embd', true],
    ['projB', 'mlp.c_proj.bias', true, 'n_embd', false],
    ['lnFG', 'ln_f.weight', false, 'n_embd', false],
    ['lnFB', 'ln_f.bias', false, 'n_embd', false],
  ] as const
).map(([field, key, perLayer, dims, transpose]) => ({
  field,
  key,
  perLayer,
  dims: dims.split(' '),
  transpose,
}));

/** A slot's stored shape in numbers. */
function shapeOf(slot: Slot, c: Gpt2Config): number[] {
  const size: Record<string, number> = {
    n_embd: c.nEmbd,
    '3·n_embd': 3 * c.nEmbd,
    n_inner: c.nInner,
    vocab_size: c.vocabSize,
    n_positions: c.nPositions,
  };
  return slot.dims.map((k) => size[k]);
}

/** A slot's shape in config terms, for messages: "[n_embd, n_inner] (Conv1D [in, out])". */
const shapeText = (slot: Slot): string =>
  `[${slot.dims.join(', ')}]${slot.transpose ? ' (Conv1D [in, out])' : ''}`;

/** Per-layer buffers of the attention module, not weights (the causal mask and its fill value). */
const BUFFER_RE = /^h\.\d+\.attn\.(bias|masked_bias)$/;

/**
 * Reads the weights of `model.safetensors` for a parsed config.
 * @returns float32 weights, matrices [out, in] (see Gpt2Weights for the shapes)
 */
async function readGpt2Weights(
  blob: Blob,
  config: Gpt2Config,
  file = 'model.safetensors',
): Promise<Gpt2Weights> {
  const header = await readSafetensorsHeader(blob, file);
  const byName = new Map(header.entries.map((e) => [e.name, e]));
  const prefix = byName.has('transformer.wte.weight') ? 'transformer.' : byName.has('wte.weight') ? '' : null;
  if (prefix === null) {
    const some = header.entries.slice(0, 4).map((e) => e.name);
    throw new DataError(
      file,
      `not a GPT-2 checkpoint: no 'wte.weight' or 'transformer.wte.weight' (tensors: ${some.join(', ') || 'none'}${header.entries.length > 4 ? ', …' : ''})`,
    );
  }
  const { nLayer: L } = config;
  const known = new Set<string>();
  for (const e of header.entries) {
    const local = e.name.startsWith(prefix) ? e.name.slice(prefix.length) : e.name;
    if (BUFFER_RE.test(local) || e.name === 'lm_head.weight') known.add(e.name);
  }
  const plan: { slot: Slot; layer: number; name: string }[] = [];
  for (const slot of SLOTS) {
    for (let l = 0; l < (slot.perLayer ? L : 1); l++) {
      const name = `${prefix}${slot.perLayer ? `h.${l}.` : ''}${slot.key}`;
      const e = byName.get(name);
      if (!e) throw new DataError(file, `missing tensor '${name}' (config.json says n_layer = ${L})`);
      const want = shapeOf(slot, config);
      if (e.shape.length !== want.length || e.shape.some((x, i) => x !== want[i])) {
        throw new DataError(
          file,
          `tensor '${name}' has shape ${fmtShape(e.shape)}; config.json implies ${fmtShape(want)} = ${shapeText(slot)}`,
        );
      }
      if (!(e.dtype in STORED)) {
        throw new DataError(file, `tensor '${name}' is ${e.dtype}; GPT-2 weights must be F32, F16 or BF16`);
      }
      known.add(name);
      plan.push({ slot, layer: l, name });
    }
  }
  const extra = header.entries.filter((e) => !known.has(e.name)).map((e) => e.name);
  if (extra.length > 0) {
    throw new DataError(
      file,
      `unexpected tensor${extra.length > 1 ? 's' : ''} ${extra
        .slice(0, 3)
        .map((n) => `'${n}'`)
        .join(
          ', ',
        )}${extra.length > 3 ? `, … (${extra.length})` : ''}: not part of a GPT2LMHeadModel with n_layer = ${L}`,
    );
  }

  const weights = allocWeights(config, file);
  for (const { slot, layer, name } of plan) {
    const e = byName.get(name)!;
    const want = shapeOf(slot, config);
    const count = want.reduce((a, b) => a * b, 1);
    const dst = weights[slot.field];
    const off = layer * count;
    const raw = await blob.slice(e.begin, e.end).arrayBuffer();
    if (!slot.transpose) {
      decodeFloats(raw, 0, count, STORED[e.dtype], true, dst, off);
      continue;
    }
    const src = new Float32Array(count);
    decodeFloats(raw, 0, count, STORED[e.dtype], true, src, 0);
    const [nIn, nOut] = want;
    for (let i = 0; i < nIn; i++) {
      for (let o = 0; o < nOut; o++) dst[off + o * nIn + i] = src[i * nOut + o];
    }
  }

  const head = byName.get('lm_head.weight');
  if (head) {
    const shape = [config.vocabSize, config.nEmbd];
    if (head.shape.length !== 2 || head.shape[0] !== shape[0] || head.shape[1] !== shape[1]) {
      throw new DataError(
        file,
        `tensor 'lm_head.weight' has shape ${fmtShape(head.shape)}; expected ${fmtShape(shape)}`,
      );
    }
    if (!(head.dtype in STORED))
      throw new DataError(file, `tensor 'lm_head.weight' is ${head.dtype}; expected F32, F16 or BF16`);
    const lm = new Float32Array(weights.wte.length);
    decodeFloats(
      await blob.slice(head.begin, head.end).arrayBuffer(),
      0,
      lm.length,
      STORED[head.dtype],
      true,
      lm,
    );
    for (let i = 0; i < lm.length; i++) {
      if (lm[i] !== weights.wte[i]) {
        throw new DataError(
          file,
          `lm_head.weight differs from wte.weight (at row ${Math.floor(i / config.nEmbd)}): an untied output embedding is not supported`,
        );
      }
    }
  }
  return weights;
}

/** Zeroed float32 arrays for every weight; one line when the sizes cannot be allocated. */
function allocWeights(c: Gpt2Config, file: string): Gpt2Weights {
  const out: Partial<Gpt2Weights> = {};
  let bytes = 0;
  for (const slot of SLOTS)
    bytes += 4 * (slot.perLayer ? c.nLayer : 1) * shapeOf(slot, c).reduce((a, b) => a * b, 1);
  try {
    for (const slot of SLOTS) {
      out[slot.field] = new Float32Array(
        (slot.perLayer ? c.nLayer : 1) * shapeOf(slot, c).reduce((a, b) => a * b, 1),
      );
    }
  } catch (e) {
    throw new DataError(
      file,
      `cannot allocate ${fmtBytes(bytes)} of float32 weights (${(e as Error).message})`,
    );
  }
  return out as Gpt2Weights;
}

/** Where a checkpoint's two files come from. */
export interface Gpt2Files {
  /** config.json (text or its Blob) */
  config: string | Blob;
  /** model.safetensors */
  model: Blob;
  /** names in messages; defaults config.json and model.safetensors */
  configName?: string;
  modelName?: string;
  /** the checkpoint's name (a folder, a Hub id); default: modelName */
  name?: string;
}

/** Reads config.json, then the weights it describes. */
export async function readGpt2Checkpoint(f: Gpt2Files): Promise<Gpt2Checkpoint> {
  const configName = f.configName ?? 'config.json';
  const modelName = f.modelName ?? 'model.safetensors';
  const text = typeof f.config === 'string' ? f.config : await f.config.text();
  const config = parseGpt2Config(text, configName);
  const weights = await readGpt2Weights(f.model, config, modelName);
  return { name: f.name ?? modelName, config, weights };
}
