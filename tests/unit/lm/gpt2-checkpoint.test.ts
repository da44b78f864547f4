import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError } from '../../../src/data/errors';
import { readSafetensors, type StTensorIn, writeSafetensors } from '../../../src/data/safetensors';
import { parseGpt2Config, readGpt2Checkpoint } from '../../../src/lm/gpt2/checkpoint';
import { fixtureBytes, loadVariant, VARIANTS } from './gpt2-helpers';

const CONFIG = readFileSync(resolve(__dirname, '../../fixtures/gpt2/f32/config.json'), 'utf8');
const config = (edit: Record<string, unknown>) => JSON.stringify({ ...JSON.parse(CONFIG), ...edit });

/** The f32 fixture's tensors, edited, as a new model.safetensors Blob. */
function edited(edit: (t: Record<string, StTensorIn>) => void): Blob {
  const { tensors } = readSafetensors(fixtureBytes('f32/model.safetensors'));
  const t: Record<string, StTensorIn> = {};
  for (const [k, v] of Object.entries(tensors))
    t[k] = { dtype: 'F32', shape: v.shape, data: v.data as Float32Array };
  edit(t);
  return new Blob([writeSafetensors(t) as Uint8Array<ArrayBuffer>]);
}

/** The one-line message of reading (config, model), or '' when it loads. */
async function refusal(cfg: string, model: Blob): Promise<string> {
  try {
    await readGpt2Checkpoint({
      config: cfg,
      model,
      configName: 'm/config.json',
      modelName: 'm/model.safetensors',
    });
    return '';
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
}

describe('GPT-2 checkpoint reader', () => {
  it('reads the config as Hugging Face writes it', async () => {
    const c = (await loadVariant('f32')).config;
    expect(c).toEqual({
      nLayer: 2,
      nHead: 3,
      nEmbd: 24,
      nPositions: 24,
      nInner: 40,
      vocabSize: 80,
      layerNormEps: 1e-5,
      headSize: 8,
    });
    // n_inner null is 4·n_embd; n_ctx stands in for a missing n_positions; defaults for eps and activation.
    const { n_positions, layer_norm_epsilon, activation_function, ...rest } = JSON.parse(CONFIG);
    const old = parseGpt2Config(JSON.stringify({ ...rest, n_inner: null, n_ctx: 16 }));
    expect([old.nInner, old.nPositions, old.layerNormEps]).toEqual([96, 16, 1e-5]);
    expect(parseGpt2Config(config({ activation_function: 'gelu_pytorch_tanh' })).nInner).toBe(40);
  });

  it('all four layouts give the same weights, Conv1D transposed to [out, in]', async () => {
    const ref = await loadVariant('f32');
    for (const v of VARIANTS.slice(1)) {
      const w = (await loadVariant(v)).weights;
      for (const [k, a] of Object.entries(ref.weights))
        expect(w[k as keyof typeof w], `${v} ${k}`).toEqual(a);
    }
    const stored = readSafetensors(fixtureBytes('f32/model.safetensors')).tensors;
    const { nEmbd: d, nInner: F } = ref.config;
    const cAttn = stored['h.1.attn.c_attn.weight'].data as Float32Array; // [d, 3d]
    const cProj = stored['h.1.mlp.c_proj.weight'].data as Float32Array; // [F, d]
    for (const [o, i] of [
      [0, 0],
      [5, 17],
      [3 * d - 1, d - 1],
    ])
      expect(ref.weights.attnW[d * 3 * d + o * d + i]).toBe(cAttn[i * 3 * d + o]);
    for (const [o, i] of [
      [0, 39],
      [d - 1, 7],
    ])
      expect(ref.weights.projW[d * F + o * F + i]).toBe(cProj[i * d + o]);
  });

  it('refuses files that are not a GPT-2 checkpoint', async () => {
    const llama = new Blob([
      readFileSync(resolve(__dirname, '../../../public/models/stories260K/stories260K.bin')),
    ]);
    expect(await refusal(CONFIG, llama)).toMatch(/^m\/model\.safetensors: not a safetensors file/);
    const acts = new Blob([readFileSync(resolve(__dirname, '../../fixtures/data/acts.safetensors'))]);
    expect(await refusal(CONFIG, acts)).toMatch(
      /^m\/model\.safetensors: not a GPT-2 checkpoint: no 'wte\.weight' or 'transformer\.wte\.weight' \(tensors: /,
    );
    const model = new Blob([fixtureBytes('f32/model.safetensors')]);
    expect(await refusal('{"n_layer": 2,', model)).toMatch(
      /^m\/config\.json: not a Hugging Face config\.json: not JSON/,
    );
    expect(await refusal('[1, 2]', model)).toBe(
      'm/config.json: not a Hugging Face config.json: not a JSON object',
    );
    expect(await refusal(config({ model_type: 'llama' }), model)).toBe(
      "m/config.json: model_type 'llama' is not gpt2 (only GPT-2 models are read)",
    );
    expect(await refusal(config({ architectures: ['GPT2ForSequenceClassification'] }), model)).toMatch(
      /architectures \["GPT2ForSequenceClassification"\]: expected GPT2LMHeadModel/,
    );
    expect(await refusal(config({ n_layer: undefined }), model)).toBe(
      "m/config.json: no 'n_layer' (is it a GPT-2 config.json?)",
    );
  });

  it('refuses unsupported configs, naming the field', async () => {
    const model = new Blob([fixtureBytes('f32/model.safetensors')]);
    const cases: [Record<string, unknown>, string][] = [
      [
        { activation_function: 'relu' },
        'unsupported activation_function "relu" (supported: gelu_new, gelu_pytorch_tanh)',
      ],
      [{ activation_function: 'gelu' }, 'unsupported activation_function "gelu"'],
      [
        { scale_attn_by_inverse_layer_idx: true },
        'unsupported config: scale_attn_by_inverse_layer_idx = true',
      ],
      [{ reorder_and_upcast_attn: true }, 'unsupported config: reorder_and_upcast_attn = true'],
      [{ add_cross_attention: true }, 'unsupported config: add_cross_attention = true'],
      [{ scale_attn_weights: false }, 'unsupported config: scale_attn_weights = false'],
      [{ tie_word_embeddings: false }, 'unsupported config: tie_word_embeddings = false'],
      [{ n_head: 5 }, 'n_embd = 24 is not a multiple of n_head = 5'],
      [{ n_layer: 0 }, 'n_layer = 0 is not an integer in 1..1024'],
      [{ n_embd: 2.5 }, 'n_embd = 2.5 is not an integer in 1..65536'],
      [{ vocab_size: '80' }, 'vocab_size = "80" is not an integer'],
      [{ layer_norm_epsilon: -1 }, 'layer_norm_epsilon = -1 is not a number in (0, 1)'],
    ];
    for (const [edit, msg] of cases) {
      const m = await refusal(config(edit), model);
      expect(m, JSON.stringify(edit)).toContain(`m/config.json: ${msg}`);
    }
  });

  it('refuses a missing tensor, a wrong shape, a bad dtype, extra tensors and an untied lm_head', async () => {
    const missing = edited((t) => delete t['h.1.mlp.c_fc.bias']);
    expect(await refusal(CONFIG, missing)).toBe(
      "m/model.safetensors: missing tensor 'h.1.mlp.c_fc.bias' (config.json says n_layer = 2)",
    );
    // c_attn stored [out, in] (a Linear export), not Conv1D's [in, out].
    const linear = edited((t) => {
      t['h.0.attn.c_attn.weight'].shape = [72, 24];
    });
    expect(await refusal(CONFIG, linear)).toBe(
      "m/model.safetensors: tensor 'h.0.attn.c_attn.weight' has shape (72, 24); config.json implies (24, 72) = [n_embd, 3·n_embd] (Conv1D [in, out])",
    );
    // The weights say 40 MLP units; a config that says 4·n_embd (n_inner null) does not fit them.
    const m = await refusal(config({ n_inner: null }), new Blob([fixtureBytes('f32/model.safetensors')]));
    expect(m).toBe(
      "m/model.safetensors: tensor 'h.0.mlp.c_fc.weight' has shape (24, 40); config.json implies (24, 96) = [n_embd, n_inner] (Conv1D [in, out])",
    );
    const ints = edited((t) => {
      const b = t['ln_f.bias'];
      t['ln_f.bias'] = { dtype: 'I32', shape: b.shape, data: new Int32Array(24) };
    });
    expect(await refusal(CONFIG, ints)).toBe(
      "m/model.safetensors: tensor 'ln_f.bias' is I32; GPT-2 weights must be F32, F16 or BF16",
    );
    const extra = edited((t) => {
      t['score.weight'] = { dtype: 'F32', shape: [2, 24], data: new Float32Array(48) };
    });
    expect(await refusal(CONFIG, extra)).toBe(
      "m/model.safetensors: unexpected tensor 'score.weight': not part of a GPT2LMHeadModel with n_layer = 2",
    );
    // A config with fewer layers than the file.
    expect(await refusal(config({ n_layer: 1 }), new Blob([fixtureBytes('f32/model.safetensors')]))).toBe(
      "m/model.safetensors: unexpected tensors 'h.1.ln_1.weight', 'h.1.ln_1.bias', 'h.1.attn.c_attn.weight', … (12): not part of a GPT2LMHeadModel with n_layer = 1",
    );
    const untied = edited((t) => {
      const wte = t['wte.weight'];
      const data = Float32Array.from(wte.data as Float32Array);
      data[24 * 7 + 3] += 1;
      t['lm_head.weight'] = { dtype: 'F32', shape: wte.shape, data };
    });
    expect(await refusal(CONFIG, untied)).toBe(
      'm/model.safetensors: lm_head.weight differs from wte.weight (at row 7): an untied output embedding is not supported',
    );
    const tied = edited((t) => {
      t['lm_head.weight'] = { ...t['wte.weight'] };
    });
    expect(await refusal(CONFIG, tied)).toBe('');
  });

  it('reads F64 weights (rounded to float32) and names the checkpoint', async () => {
    const f64 = edited((t) => {
      for (const k of Object.keys(t)) if (k.endsWith('.weight')) t[k] = { ...t[k], dtype: 'F64' };
    });
    const a = await readGpt2Checkpoint({ config: new Blob([CONFIG]), model: f64, name: 'tiny-gpt2' });
    const b = await loadVariant('f32');
    expect(a.name).toBe('tiny-gpt2');
    expect(a.weights).toEqual(b.weights);
  });
});
