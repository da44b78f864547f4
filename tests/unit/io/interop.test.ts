/**
 * Interop with numpy: SAEs exported here are read by python (safetensors header parsed by hand,
 * tests/fixtures/io/st.py) and applied with the PyTorch tools' rules (check_export.py); SAEs
 * written by python in the SAELens and sparsify layouts (make_fixtures.py) are imported here.
 * The python half needs python3 + numpy (tests/unit/prereq.ts: skipped without, failed under CI).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportSae } from '../../../src/io/export.ts';
import { type Normalization, reconstructRaw, topkForward } from '../../../src/io/forward.ts';
import { importSae, importSaes } from '../../../src/io/import.ts';
import { describeNeeds, itNeeds, NUMPY } from '../prereq.ts';
import { randn, randomParams, relErr } from './helpers.ts';

const FIX = join(__dirname, '../../fixtures/io');

function readTree(dir: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p).split('\\').join('/'), new Uint8Array(readFileSync(p)));
    }
  };
  walk(dir);
  return out;
}

describeNeeds(NUMPY)('python reads our exports', () => {
  const d = 12;
  const N = 40;
  const k = 5;
  const B = 20;
  const cases: [string, 'saelens' | 'openai', Normalization][] = [
    ['SAELens, no normalization', 'saelens', { kind: 'none' }],
    ['SAELens, scalar normalization folded', 'saelens', { kind: 'scalar', scale: 0.037 }],
    ['SAELens, per-token normalization as layer_norm', 'saelens', { kind: 'paper' }],
    ['openai names, no normalization', 'openai', { kind: 'none' }],
    ['openai names, per-token normalization as normalize=True', 'openai', { kind: 'paper' }],
  ];
  for (const [name, format, norm] of cases) {
    it(name, () => {
      const p = randomParams(d, N, 21);
      const x = randn(B * d, 22, 25);
      for (let i = 0; i < x.length; i++) x[i] += 3;
      const files = exportSae(
        {
          params: p,
          config: { d, nLatents: N, k, batchSize: 64 },
          normalization: norm,
          tokensSince: new Uint32Array(N),
        },
        { format },
      );
      const dir = mkdtempSync(join(tmpdir(), 'sae-export-'));
      for (const [f, b] of files) writeFileSync(join(dir, f), b);
      writeFileSync(join(dir, 'x.json'), JSON.stringify({ x: Array.from(x) }));
      const out = JSON.parse(
        execFileSync('python3', [join(FIX, 'check_export.py'), dir, format, join(dir, 'x.json')], {
          encoding: 'utf8',
          env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
        }),
      );
      expect(out.k).toBe(k);
      if (format === 'saelens')
        expect(out.shapes).toEqual({ W_enc: [d, N], b_enc: [N], W_dec: [N, d], b_dec: [d] });
      else
        expect(out.shapes).toEqual({
          pre_bias: [d],
          latent_bias: [N],
          'encoder.weight': [N, d],
          'decoder.weight': [d, N],
          stats_last_nonzero: [N],
        });
      // python's reconstruction of RAW x with the tool's own rule = ours. For layer_norm the
      // only difference is LN's ε = 1e-5 added to the std (inputs here have std ≈ 25).
      const ours = reconstructRaw(p, k, norm, x);
      expect(relErr(out.xhat, ours)).toBeLessThan(norm.kind === 'paper' ? 1e-5 : 2e-6);
    });
  }
});

describe('python-written fixtures import here', () => {
  const exp = JSON.parse(readFileSync(join(FIX, 'expected.json'), 'utf8'));

  it('SAELens (cfg.json + sae_weights.safetensors, 5.x architecture standard + activation topk)', () => {
    const sae = importSae(readTree(join(FIX, 'saelens')));
    expect(sae).toMatchObject({
      format: 'saelens',
      d: exp.d,
      nLatents: exp.N,
      k: exp.k,
      normalization: { kind: 'none' },
    });
    expect(sae.source).toMatchObject({
      modelName: 'tiny-stories-1M',
      hookName: 'blocks.1.hook_resid_post',
      hookLayer: 1,
    });
    expect(relErr(topkForward(sae.params, sae.k, exp.x), exp.saelens_xhat)).toBeLessThan(1e-6);
  });

  it('sparsify (folder per hookpoint, F16 weights)', () => {
    const all = importSaes(readTree(join(FIX, 'sparsify')));
    expect(all.map((s) => s.path)).toEqual(['layers.1']);
    const sae = all[0];
    expect(sae).toMatchObject({ format: 'sparsify', d: exp.d, nLatents: exp.N, k: exp.k });
    expect(sae.source.hookName).toBe('layers.1');
    expect(relErr(topkForward(sae.params, sae.k, exp.x), exp.sparsify_xhat)).toBeLessThan(1e-6);
  });

  it('sparsify errors: skip connection, transcoder, missing W_dec', () => {
    const files = readTree(join(FIX, 'sparsify'));
    const cfg = JSON.parse(new TextDecoder().decode(files.get('layers.1/cfg.json')));
    const withCfg = (c: object) =>
      new Map([...files, ['layers.1/cfg.json', new TextEncoder().encode(JSON.stringify(c))]]);
    expect(() => importSae(withCfg({ ...cfg, transcode: true }))).toThrow(
      /layers\.1\/cfg\.json: this is a transcoder/,
    );
    expect(() => importSae(withCfg({ ...cfg, skip_connection: true }))).toThrow(
      /layers\.1\/sae\.safetensors: has a linear skip connection/,
    );
    expect(() => importSae(withCfg({ ...cfg, num_latents: 11 }))).toThrow(
      /tensor 'encoder\.weight' has shape \(10, 6\), expected \[num_latents, d_in\] = \(11, 6\)/,
    );
  });

  itNeeds(NUMPY)('fixtures are reproducible by make_fixtures.py', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sae-fix-'));
    mkdirSync(dir, { recursive: true });
    // The script writes beside itself; run a copy so the checked-in files stay untouched.
    for (const f of ['make_fixtures.py', 'st.py']) writeFileSync(join(dir, f), readFileSync(join(FIX, f)));
    execFileSync('python3', [join(dir, 'make_fixtures.py')], {
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
    });
    for (const f of ['saelens/sae_weights.safetensors', 'sparsify/layers.1/sae.safetensors', 'expected.json'])
      expect(readFileSync(join(dir, f)).equals(readFileSync(join(FIX, f)))).toBe(true);
  });
});
