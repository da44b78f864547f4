import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/data/rng';
import { readGpt2Checkpoint } from '../../../src/lm/gpt2/checkpoint';
import { Gpt2 } from '../../../src/lm/gpt2/forward';
import { openaiStateDict } from '../io/openai-helpers';
import { CHROME, itNeeds } from '../prereq';
import { cli, ROOT } from './run';

const MODEL = join(ROOT, 'tests/fixtures/gpt2/bytes');

/** `paragraphs` paragraphs of 23 bytes each sampled from the fixture model (bytes 33..126 only). */
async function modelText(paragraphs: number, seed = 3): Promise<string> {
  const ckpt = await readGpt2Checkpoint({
    config: readFileSync(join(MODEL, 'config.json'), 'utf8'),
    model: new Blob([readFileSync(join(MODEL, 'model.safetensors'))]),
  });
  const m = new Gpt2(ckpt, { dtype: 'f32' });
  const V = ckpt.config.vocabSize;
  const rng = new Rng(seed);
  const out: string[] = [];
  for (let p = 0; p < paragraphs; p++) {
    const ids = [256]; // <|endoftext|>
    while (ids.length < 24) {
      const row = (m.run(ids).logits as Float32Array).subarray((ids.length - 1) * V, ids.length * V);
      let mx = -Infinity;
      for (let b = 33; b < 127; b++) mx = Math.max(mx, row[b]);
      const w = Array.from({ length: 94 }, (_, j) => Math.exp(row[33 + j] - mx));
      let u = rng.nextFloat() * w.reduce((a, b) => a + b, 0);
      let pick = 126;
      for (let j = 0; j < 94; j++) {
        u -= w[j];
        if (u <= 0) {
          pick = 33 + j;
          break;
        }
      }
      ids.push(pick);
    }
    out.push(String.fromCharCode(...ids.slice(1)));
  }
  return `${out.join('\n\n')}\n`;
}

describe('GPT-2 in the CLI', () => {
  it('eval --lm-model DIR: usage errors in one line', () => {
    const noText = cli(['eval', '--sae', 'x', '--lm-model', MODEL, '--layer', '1']);
    expect(noText.status).toBe(2);
    expect(noText.stderr.trim()).toBe('error: --lm-model needs --lm-text');
    const badSite = cli([
      'eval',
      '--sae',
      'x',
      '--lm-model',
      MODEL,
      '--lm-text',
      join(MODEL, 'text.txt'),
      '--site',
      'blocks.2.hook_resid_post',
    ]);
    expect(badSite.status).toBe(2);
    expect(badSite.stderr.trim()).toMatch(/^error: site 'blocks.2.hook_resid_post': layer 2 is outside 0..1/);
  });

  itNeeds(CHROME)(
    'extract → train → eval --downstream --ablation on the fixture: finite, clean < spliced < zero-ablated',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sae-cli-gpt2-'));
      const text = join(dir, 'text.txt');
      writeFileSync(text, await modelText(260));
      const acts = join(dir, 'acts.npy');
      const x = cli([
        'extract',
        '--model',
        MODEL,
        '--text',
        text,
        '--layer',
        '1',
        '--site',
        'resid_mid',
        '--context',
        '24',
        '--tokens',
        '4000',
        '--out',
        acts,
      ]);
      expect(x.status, x.stderr).toBe(0);
      const run = join(dir, 'run');
      const t = cli([
        'train',
        '--data',
        acts,
        '--n-latents',
        '64',
        '--k',
        '8',
        '--batch',
        '128',
        '--tokens',
        '16384',
        '--quiet',
        '--out',
        run,
      ]);
      expect(t.status, t.stderr).toBe(0);
      const out = join(dir, 'eval');
      const r = cli([
        'eval',
        '--sae',
        join(run, 'sae'),
        '--lm-model',
        MODEL,
        '--lm-text',
        text,
        '--site',
        'blocks.1.hook_resid_mid',
        '--lm-tokens',
        '4000',
        '--downstream',
        '--ablation',
        '4',
        '--out',
        out,
      ]);
      expect(r.status, r.stderr).toBe(0);
      const e = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8'));
      expect(e.dataset.description).toMatch(/GPT-2\), blocks\.1\.hook_resid_mid/);
      expect(e.dataset.rows).toBe(4000);
      const ds = e.report.downstream;
      for (const v of [ds.cleanLoss, ds.splicedLoss, ds.zeroLoss, ds.kl])
        expect(Number.isFinite(v)).toBe(true);
      expect(ds.cleanLoss).toBeLessThan(ds.splicedLoss);
      expect(ds.splicedLoss).toBeLessThan(ds.zeroLoss);
      expect(ds.fractionRecovered).toBeGreaterThan(0.3);
      expect(e.report.downstreamRun.backend).toBe('gpu');
      expect(e.report.ablation.vocab).toBe(257);
      expect(e.report.ablation.perLatent.length).toBeGreaterThan(0);
    },
    600_000,
  );

  itNeeds(CHROME)(
    'an openai/sparse_autoencoder state dict (random, N=96, k=32) evaluates on GPT-2 activations extracted in the worker',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sae-cli-gpt2-oa-'));
      const text = join(dir, 'text.txt');
      writeFileSync(text, await modelText(60, 5));
      const sae = join(dir, 'layer1.safetensors');
      writeFileSync(sae, openaiStateDict(24));
      const out = join(dir, 'eval');
      const r = cli([
        'eval',
        '--sae',
        sae,
        '--lm-model',
        MODEL,
        '--lm-text',
        text,
        '--layer',
        '1',
        '--site',
        'resid_post_mlp',
        '--lm-tokens',
        '600',
        '--downstream',
        '--ablation',
        '4',
        '--out',
        out,
      ]);
      expect(r.status, r.stderr).toBe(0);
      const e = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8'));
      expect([e.sae.format, e.sae.k, e.sae.n_latents, e.sae.normalization.kind]).toEqual([
        'openai',
        32,
        96,
        'paper',
      ]);
      expect(e.dataset.description).toMatch(/blocks\.1\.hook_resid_post/);
      expect(e.report.l0).toBeCloseTo(32, 5);
      const ds = e.report.downstream;
      for (const v of [ds.cleanLoss, ds.splicedLoss, ds.zeroLoss, ds.kl])
        expect(Number.isFinite(v)).toBe(true);
      expect(e.report.ablation.perLatent.length).toBeGreaterThan(0);
    },
    300_000,
  );
});
