/**
 * openai/sparse_autoencoder's released SAEs are torch.save'd state dicts (.pt). The fixture
 * (scripts/fixtures/openai_pt_fixture.py) is one written the way torch.save writes it, without
 * torch: a zip of data.pkl (OrderedDict, _rebuild_tensor_v2, persistent storage ids, _metadata) and
 * raw storages, decoder.weight a transposed view (stride (1, d)), int64 and float16 buffers. It must
 * import as the same SAE as the safetensors conversion of the same state dict, and a pickle that
 * would run anything else is refused in one line.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { decodeNpy } from '../../../src/data/npy';
import { writeSafetensors } from '../../../src/data/safetensors';
import { importSae } from '../../../src/io/import';

const DIR = resolve(import.meta.dirname, '../../fixtures/openai');
const npy = (n: string) => {
  const a = decodeNpy(readFileSync(resolve(DIR, n)));
  return { dtype: 'F32' as const, shape: a.shape, data: a.data as Float32Array };
};

describe('torch .pt state dicts (openai/sparse_autoencoder)', () => {
  it('import as the safetensors conversion of the same state dict: TopK k=8 with LN', () => {
    const pt = importSae(
      new Map([['v5_32k/layer_5.pt', new Uint8Array(readFileSync(resolve(DIR, 'layer_5.pt')))]]),
    );
    const st = writeSafetensors(
      {
        pre_bias: npy('pre_bias.npy'),
        latent_bias: npy('latent_bias.npy'),
        'encoder.weight': npy('encoder.npy'),
        'decoder.weight': npy('decoder.npy'),
      },
      { activation: 'TopK', activation_state_dict: '{"k": 8, "postact_fn": "ReLU"}' },
    );
    const ref = importSae(new Map([['v5_32k/layer_5.safetensors', st]]));
    expect([pt.format, pt.path, pt.d, pt.nLatents, pt.k, pt.activation]).toEqual([
      'openai',
      'v5_32k',
      24,
      32,
      8,
      'topk',
    ]);
    expect(pt.normalization.kind).toBe('paper');
    for (const k of ['W_enc', 'b_enc', 'W_dec', 'b_pre'] as const) {
      expect(pt.params[k].length).toBeGreaterThan(0);
      expect(Array.from(pt.params[k])).toEqual(Array.from(ref.params[k]));
    }
  });

  it('refuses a pickle that calls anything but the state-dict builders, and a file that is not a torch zip', () => {
    // protocol 2: os.system('echo hi') — what a malicious .pt would hold
    const evil = Uint8Array.from('\x80\x02cos\nsystem\nX\x07\x00\x00\x00echo hi\x85R.', (c) =>
      c.charCodeAt(0),
    );
    const zip = zipSync({ 'x/data.pkl': evil, 'x/version': new TextEncoder().encode('3\n') });
    expect(() => importSae(new Map([['x.pt', zip]]))).toThrow(
      'x.pt: not a state dict of tensors: it holds os.system, which this reader does not run',
    );
    expect(() => importSae(new Map([['old.pt', new Uint8Array([0x80, 2, 0x7d, 0x2e])]]))).toThrow(
      /old\.pt: not a torch\.save zip/,
    );
  });
});
