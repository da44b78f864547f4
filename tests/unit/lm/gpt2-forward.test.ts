import { describe, expect, it } from 'vitest';
import { Gpt2 } from '../../../src/lm/gpt2/forward';
import type { Gpt2Site } from '../../../src/lm/gpt2/types';
import { loadVariant, maxRowRelErr, REF_KINDS, reference, VARIANTS } from './gpt2-helpers';

const ref = reference();
const [L, , T, D] = ref.sites.shape;
const V = ref.logits.shape[1];
const refSite = (l: number, k: number) =>
  ref.sites.data.subarray((l * 5 + k) * T * D, (l * 5 + k + 1) * T * D);
const allSites: Gpt2Site[] = [];
for (let l = 0; l < L; l++) for (const kind of REF_KINDS) allSites.push({ kind, layer: l });

describe('GPT-2 CPU twin vs the independent float64 numpy forward', () => {
  // Bounds are relative to each row's norm. f64 differs from numpy only in summation order
  // (measured: sites 3.3e-15, logits 1.3e-15); f32 rounds every stored activation to float32
  // (measured: sites 2.0e-7, logits 8.7e-8). The four files hold the same weights.
  for (const [dtype, tol] of [
    ['f64', 1e-10],
    ['f32', 1e-5],
  ] as const) {
    for (const v of VARIANTS) {
      it(`${dtype}, ${v}: every site of every layer and the logits`, async () => {
        const model = new Gpt2(await loadVariant(v), { dtype });
        const out = model.run(ref.tokens, { sites: allSites });
        for (let l = 0; l < L; l++) {
          for (let k = 0; k < 5; k++) {
            const got = out.sites.get(`blocks.${l}.hook_${REF_KINDS[k]}`);
            expect(got, `blocks.${l}.hook_${REF_KINDS[k]}`).toBeDefined();
            const e = maxRowRelErr(got!, refSite(l, k), D);
            expect(e, `blocks.${l}.hook_${REF_KINDS[k]}`).toBeLessThan(tol);
          }
        }
        const e = maxRowRelErr(out.logits!, ref.logits.data, V);
        expect(e, 'logits').toBeLessThan(tol);
      });
    }
  }

  it('f32 holds activations in Float32Array, f64 in Float64Array', async () => {
    const ckpt = await loadVariant('f32');
    const a = new Gpt2(ckpt, { dtype: 'f32' }).run(ref.tokens, { sites: [{ kind: 'mlp_out', layer: 0 }] });
    const b = new Gpt2(ckpt, { dtype: 'f64' }).run(ref.tokens, { sites: [{ kind: 'mlp_out', layer: 0 }] });
    expect(a.logits).toBeInstanceOf(Float32Array);
    expect(b.logits).toBeInstanceOf(Float64Array);
    expect(a.sites.get('blocks.0.hook_mlp_out')).toBeInstanceOf(Float32Array);
  });

  it('logits: false stops after the deepest site and gives the same values', async () => {
    const model = new Gpt2(await loadVariant('f32'), { dtype: 'f64' });
    const full = model.run(ref.tokens, { sites: allSites });
    for (const site of allSites) {
      const out = model.run(ref.tokens, { sites: [site], logits: false });
      expect(out.logits).toBeNull();
      expect([...out.sites.keys()]).toEqual([`blocks.${site.layer}.hook_${site.kind}`]);
      expect(out.sites.get(`blocks.${site.layer}.hook_${site.kind}`)).toEqual(
        full.sites.get(`blocks.${site.layer}.hook_${site.kind}`),
      );
    }
    // Deeper sites are not computed: a replacement past the deepest read-out changes nothing read.
    const out = model.run(ref.tokens, {
      sites: [{ kind: 'resid_mid', layer: 0 }],
      logits: false,
      replace: { site: { kind: 'resid_pre', layer: 1 }, data: new Float32Array(T * D) },
    });
    expect(out.sites.size).toBe(1);
  });

  it('a shorter window equals the first rows of a longer one (causal)', async () => {
    const model = new Gpt2(await loadVariant('f32'), { dtype: 'f64' });
    const full = model.run(ref.tokens, { sites: [{ kind: 'resid_post', layer: 1 }] });
    const part = model.run(ref.tokens.subarray(0, 5), { sites: [{ kind: 'resid_post', layer: 1 }] });
    const a = part.sites.get('blocks.1.hook_resid_post')!;
    const b = full.sites.get('blocks.1.hook_resid_post')!.subarray(0, 5 * D);
    expect(maxRowRelErr(a, b, D)).toBeLessThan(1e-14);
    expect(maxRowRelErr(part.logits!, full.logits!.subarray(0, 5 * V), V)).toBeLessThan(1e-14);
  });
});

describe('GPT-2 twin: shapes off the 4 × 4 blocks', () => {
  it('a vocabulary and windows that are not multiples of 4 give the same values', async () => {
    const ckpt = await loadVariant('f32');
    const base = new Gpt2(ckpt, { dtype: 'f64' });
    // Three more vocabulary rows: the residual stream cannot change, the first V logits neither.
    const V2 = V + 3;
    const wte = new Float32Array(V2 * D);
    wte.set(ckpt.weights.wte);
    for (let i = V * D; i < V2 * D; i++) wte[i] = Math.sin(i);
    const grown = new Gpt2(
      { ...ckpt, config: { ...ckpt.config, vocabSize: V2 }, weights: { ...ckpt.weights, wte } },
      { dtype: 'f64' },
    );
    for (const n of [1, 2, 3, 7, 13]) {
      const toks = ref.tokens.subarray(0, n);
      const a = base.run(toks, { sites: [{ kind: 'resid_post', layer: L - 1 }] });
      const b = grown.run(toks, { sites: [{ kind: 'resid_post', layer: L - 1 }] });
      const x = b.sites.get(`blocks.${L - 1}.hook_resid_post`)!;
      expect(x).toEqual(a.sites.get(`blocks.${L - 1}.hook_resid_post`));
      // Rows of the window shorter than the blocks match the full window's first rows.
      expect(maxRowRelErr(a.logits!, ref.logits.data.subarray(0, n * V), V), `T = ${n}`).toBeLessThan(1e-10);
      const { lnFG: g, lnFB: bias } = ckpt.weights;
      for (let t = 0; t < n; t++) {
        const row = Array.from(x.subarray(t * D, (t + 1) * D));
        const mean = row.reduce((p, v) => p + v, 0) / D;
        const inv = 1 / Math.sqrt(row.reduce((p, v) => p + (v - mean) ** 2, 0) / D + 1e-5);
        for (let v = 0; v < V2; v++) {
          let dot = 0;
          for (let i = 0; i < D; i++) dot += ((row[i] - mean) * inv * g[i] + bias[i]) * wte[v * D + i];
          if (v < V) expect(b.logits![t * V2 + v]).toBe(a.logits![t * V + v]);
          expect(Math.abs(b.logits![t * V2 + v] - dot)).toBeLessThan(1e-12);
        }
      }
    }
  });
});

describe('GPT-2 replace hook', () => {
  for (const dtype of ['f64', 'f32'] as const) {
    it(`${dtype}: replacing any site with its clean value is a no-op`, async () => {
      const model = new Gpt2(await loadVariant('f32'), { dtype });
      const clean = model.run(ref.tokens, { sites: allSites });
      for (const site of allSites) {
        const name = `blocks.${site.layer}.hook_${site.kind}`;
        const data = Float32Array.from(clean.sites.get(name)!);
        const out = model.run(ref.tokens, { sites: allSites, replace: { site, data } });
        // f32 activations round-trip through Float32Array exactly; f64 ones are rounded to float32.
        const tol = dtype === 'f32' ? 0 : 1e-6;
        expect(maxRowRelErr(out.logits!, clean.logits!, V), name).toBeLessThanOrEqual(tol);
        expect(out.sites.get(name), `${name} reads the clean value`).toEqual(clean.sites.get(name));
      }
    });
  }

  it('zero-ablating a site changes the logits and everything downstream, nothing upstream', async () => {
    const model = new Gpt2(await loadVariant('f32'), { dtype: 'f64' });
    const clean = model.run(ref.tokens, { sites: allSites });
    for (const site of allSites) {
      const out = model.run(ref.tokens, {
        sites: allSites,
        replace: { site, data: new Float32Array(T * D) },
      });
      const name = `blocks.${site.layer}.hook_${site.kind}`;
      expect(maxRowRelErr(out.logits!, clean.logits!, V), name).toBeGreaterThan(1e-3);
      const at = site.layer * 5 + REF_KINDS.indexOf(site.kind);
      for (const other of allSites) {
        const o = `blocks.${other.layer}.hook_${other.kind}`;
        const depth = other.layer * 5 + REF_KINDS.indexOf(other.kind);
        const diff = maxRowRelErr(out.sites.get(o)!, clean.sites.get(o)!, D);
        if (depth <= at) expect(diff, `${o} upstream of ${name}`).toBe(0);
        else expect(diff, `${o} downstream of ${name}`).toBeGreaterThan(0);
      }
    }
  });

  it('refuses bad requests with one line', async () => {
    const model = new Gpt2(await loadVariant('f32'));
    expect(() => model.run([])).toThrow(/window of 0 tokens: must be 1\.\.24/);
    expect(() => model.run(new Int32Array(25))).toThrow(/window of 25 tokens/);
    expect(() => model.run([0, 80])).toThrow(/token id 80 at 1 is outside 0\.\.79/);
    expect(() => model.run([0], { sites: [{ kind: 'resid_post', layer: 2 }] })).toThrow(
      /layer 2 is outside 0\.\.1/,
    );
    expect(() => model.run([0], { sites: [{ kind: 'mlp_in' as never, layer: 0 }] })).toThrow(
      /unknown GPT-2 site/,
    );
    expect(() =>
      model.run([0, 1], { replace: { site: { kind: 'attn_out', layer: 0 }, data: new Float32Array(D) } }),
    ).toThrow(/has 24 values, expected T·d = 48/);
  });
});
