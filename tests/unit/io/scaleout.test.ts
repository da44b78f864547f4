/**
 * The run configs handed to the cluster trainers (src/io/scaleout.ts) use only options those
 * tools define: every option each generated file uses, for every activation, is listed here and
 * checked against the names recorded from their source (src/io/trainer-options.ts). With python3
 * the SAELens script's keyword arguments are also read by Python's own parser and compared.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportRunConfig, type RunDataset } from '../../../src/io/scaleout.ts';
import { SAELENS_OPTIONS, SPARSIFY_OPTIONS } from '../../../src/io/trainer-options.ts';
import { ACTIVATIONS, type SaeConfig } from '../../../src/sae/config.ts';
import { itNeeds, NUMPY } from '../prereq.ts';

const base = {
  d: 768,
  nLatents: 32768,
  k: 32,
  batchSize: 4096,
  tokens: 1e9,
  auxk: true,
  inputNorm: 'scalar' as const,
};
const ds: RunDataset = {
  model: 'EleutherAI/pythia-160m',
  dataset: 'EleutherAI/fineweb-edu-dedup-10b',
  hookpoint: 'layers.6',
  layer: 6,
  ctxLen: 2048,
};

/** The `python -m sparsify` line of the script: its positional arguments and flag names (dashes removed). */
function sparsifyCall(sh: string): { positional: string[]; flags: string[] } {
  const line = sh.replace(/\\\n/g, ' ').match(/^python -m sparsify (.*)$/m);
  if (!line) throw new Error('no python -m sparsify line');
  // The generator quotes with '...' only; no value here holds a space.
  const words = line[1].trim().split(/\s+/);
  const positional: string[] = [];
  const flags: string[] = [];
  let i = 0;
  for (; i < words.length && !words[i].startsWith('-'); i++) positional.push(words[i]);
  for (; i < words.length; i++)
    if (/^--?[a-z_]+$/.test(words[i])) flags.push(words[i].replace(/^--?/, ''));
    else if (words[i].startsWith('-') && !/^-\d/.test(words[i])) throw new Error(`odd word ${words[i]}`);
  return { positional, flags };
}

/**
 * Keyword names per call of the SAELens script, read line by line as the generator writes them
 * (one `name=value,` a line; a nested call opens with `name=Class(` and closes with `),`).
 */
function pythonCalls(py: string): Map<string, string[]> {
  const calls = new Map<string, string[]>();
  const stack: string[] = [];
  for (const line of py.split('\n')) {
    let m = line.match(/^cfg = (\w+)\($/);
    if (m) {
      stack.push(m[1]);
      calls.set(m[1], []);
      continue;
    }
    if (stack.length === 0) continue;
    m = line.match(/^\s+(\w+)=(\w+)\($/);
    if (m) {
      calls.get(stack[stack.length - 1])!.push(m[1]);
      stack.push(m[2]);
      calls.set(m[2], []);
      continue;
    }
    if (/^\s*\),?$/.test(line)) {
      stack.pop();
      continue;
    }
    m = line.match(/^\s+(\w+)=.*,$/);
    if (!m) throw new Error(`unexpected line in the config: ${line}`);
    calls.get(stack[stack.length - 1])!.push(m[1]);
  }
  expect(stack).toEqual([]);
  return calls;
}

/** Every config the generator can write: each activation, and TopK with Multi-TopK. */
const VARIANTS: [string, Partial<SaeConfig>][] = [
  ...ACTIVATIONS.map((a): [string, Partial<SaeConfig>] => [a, { activation: a }]),
  ['topk + multiTopK', { activation: 'topk', multiTopK: true }],
];

const EXPECTED_ARCH: Record<string, keyof typeof SAELENS_OPTIONS.architectures> = {
  topk: 'topk',
  'topk + multiTopK': 'topk',
  batchtopk: 'batchtopk',
  matryoshka: 'matryoshka_batchtopk',
  relu: 'standard',
  prolu: 'standard',
  gated: 'gated',
  jumprelu: 'jumprelu',
};

const unknown = (used: readonly string[], known: readonly string[]) => used.filter((o) => !known.includes(o));

describe('scale-out configs use only the options the trainers define', () => {
  it('covers every activation SAE Lab has', () => {
    expect(ACTIVATIONS.every((a) => VARIANTS.some(([, v]) => v.activation === a))).toBe(true);
    expect(Object.keys(EXPECTED_ARCH).sort()).toEqual(VARIANTS.map(([n]) => n).sort());
  });

  for (const [name, variant] of VARIANTS) {
    const out = exportRunConfig({ ...base, ...variant }, ds);

    it(`${name}: sparsify_train.sh flags are sparsify ${SPARSIFY_OPTIONS.version} RunConfig fields`, () => {
      const { positional, flags } = sparsifyCall(out.get('sparsify_train.sh')!);
      expect(positional).toEqual([ds.model, ds.dataset]);
      const known = [...SPARSIFY_OPTIONS.sae, ...SPARSIFY_OPTIONS.train, ...SPARSIFY_OPTIONS.run].filter(
        (o) => !(SPARSIFY_OPTIONS.positional as readonly string[]).includes(o),
      );
      expect(flags.length).toBeGreaterThan(10);
      expect(unknown(flags, known)).toEqual([]);
      expect(new Set(flags).size).toBe(flags.length);
    });

    it(`${name}: sparsify_config.json keys are RunConfig fields, sae's SparseCoderConfig fields`, () => {
      const js = JSON.parse(out.get('sparsify_config.json')!) as Record<string, unknown>;
      const top = Object.keys(js);
      expect(unknown(top, [...SPARSIFY_OPTIONS.train, ...SPARSIFY_OPTIONS.run, 'sae'])).toEqual([]);
      expect(unknown(Object.keys(js.sae as object), SPARSIFY_OPTIONS.sae)).toEqual([]);
      expect(js.sae).toMatchObject({ activation: 'topk', num_latents: 32768, k: 32 });
    });

    it(`${name}: saelens_train.py keywords are SAELens ${SAELENS_OPTIONS.version} config fields`, () => {
      const py = out.get('saelens_train.py')!;
      const arch = SAELENS_OPTIONS.architectures[EXPECTED_ARCH[name]];
      const { runner, training, logger } = SAELENS_OPTIONS.classes;
      expect(py).toContain(`from sae_lens import ${runner}, ${training}, ${logger}, ${arch.config}\n`);
      expect(py).toContain(`sae = ${training}(cfg).run()`);
      const calls = pythonCalls(py);
      expect([...calls.keys()]).toEqual([runner, arch.config, logger]);
      expect(unknown(calls.get(runner)!, SAELENS_OPTIONS.runner)).toEqual([]);
      expect(unknown(calls.get(logger)!, SAELENS_OPTIONS.logger)).toEqual([]);
      expect(unknown(calls.get(arch.config)!, [...SAELENS_OPTIONS.saeBase, ...arch.options])).toEqual([]);
      expect(calls.get(runner)).toEqual(expect.arrayContaining(['sae', 'logger', 'training_tokens']));
    });
  }

  itNeeds(NUMPY)('Python parses each SAELens script to the same calls and keywords', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sae-scaleout-'));
    const files = VARIANTS.map(([name, v], i) => {
      const f = join(dir, `${i}.py`);
      const py = exportRunConfig({ ...base, ...v }, ds).get('saelens_train.py')!;
      writeFileSync(f, py);
      return { name, f, mine: Object.fromEntries(pythonCalls(py)) };
    });
    const code = `
import ast, json, sys
out = []
for path in sys.argv[1:]:
    calls = {}
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.keywords:
            calls[node.func.id] = [k.arg for k in node.keywords]
    out.append(calls)
print(json.dumps(out))`;
    const theirs = JSON.parse(
      execFileSync('python3', ['-c', code, ...files.map((x) => x.f)], { encoding: 'utf8' }),
    ) as Record<string, string[]>[];
    files.forEach((x, i) => {
      expect(theirs[i], x.name).toEqual(x.mine);
    });
  });
});

describe('scale-out values', () => {
  const out = exportRunConfig(base, ds);

  it('writes a sparsify CLI call, its JSON, and a SAELens 6 script with the mapping', () => {
    expect([...out.keys()]).toEqual(['sparsify_train.sh', 'sparsify_config.json', 'saelens_train.py']);
    const sh = out.get('sparsify_train.sh')!;
    expect(sh).toContain('python -m sparsify EleutherAI/pythia-160m EleutherAI/fineweb-edu-dedup-10b');
    for (const f of [
      '--num_latents 32768',
      '-k 32',
      '--batch_size 2',
      '--ctx_len 2048',
      '--max_examples 488282',
      '--auxk_alpha 0.03125',
      '--dead_feature_threshold 10000000',
      '--hookpoints layers.6',
      '--optimizer adam',
      `--lr ${2e-4 / Math.sqrt(2)}`,
    ])
      expect(sh).toContain(f);
    expect(sh).toMatch(/# Field mapping/);
    expect(sh).toMatch(/NOTE: inputNorm 'scalar' has no sparsify equivalent/);
    const js = JSON.parse(out.get('sparsify_config.json')!);
    expect(js.sae).toMatchObject({ num_latents: 32768, k: 32, expansion_factor: 43 });
    expect(js).toMatchObject({ batch_size: 2, dead_feature_threshold: 1e7, hookpoints: ['layers.6'] });
    const py = out.get('saelens_train.py')!;
    expect(py).toContain('sae=TopKTrainingSAEConfig(');
    for (const s of [
      'd_in=768,',
      'd_sae=32768,',
      'k=32,',
      'normalize_activations="expected_average_only_in",',
      'aux_loss_coefficient=1,',
      'decoder_init_norm=1,',
      'hook_name="blocks.6.hook_resid_post",',
      'train_batch_size_tokens=4096,',
      'dead_feature_window=2442,',
      'logger=LoggingConfig(',
      'log_to_wandb=False,',
    ])
      expect(py).toContain(s);
    expect(py).toMatch(/NOTE: auxCoef 0.03125 weighs an AuxK loss divided by the residual's variance/);
  });

  it('the generated shell and python parse', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sae-io-'));
    writeFileSync(join(dir, 'a.sh'), out.get('sparsify_train.sh')!);
    execFileSync('bash', ['-n', join(dir, 'a.sh')]);
  });

  it('carries the activation: Multi-TopK to sparsify, each architecture to SAELens, with notes', () => {
    const small = { model: 'm', dataset: 'd', layer: 3 };
    const multi = exportRunConfig({ ...base, multiTopK: true }, small);
    expect(multi.get('sparsify_train.sh')).toContain('--multi_topk true');
    expect(JSON.parse(multi.get('sparsify_config.json')!).sae.multi_topk).toBe(true);
    expect(multi.get('saelens_train.py')).toMatch(/NOTE: multiTopK: SAELens has no Multi-TopK/);
    expect(multi.get('saelens_train.py')).toContain('aux_loss_coefficient=0,');

    const relu = exportRunConfig({ ...base, activation: 'relu', l1Coef: 0.2, tokens: 4096 * 1000 }, small);
    const rpy = relu.get('saelens_train.py')!;
    expect(rpy).toContain('sae=StandardTrainingSAEConfig(');
    expect(rpy).toContain('l1_coefficient=0.2,');
    expect(rpy).toContain('l1_warm_up_steps=50,');
    expect(rpy).not.toMatch(/^\s+k=/m);
    expect(relu.get('sparsify_train.sh')).toMatch(/NOTE: activation 'relu': sparsify trains TopK SAEs only/);

    const jump = exportRunConfig(
      { ...base, activation: 'jumprelu', l1Coef: 0.01, jumpInitThreshold: 0.5 },
      small,
    );
    const jpy = jump.get('saelens_train.py')!;
    expect(jpy).toContain('sae=JumpReLUTrainingSAEConfig(');
    expect(jpy).toContain('jumprelu_init_threshold=0.5,');
    expect(jpy).toContain('l0_coefficient=0.01,');
    expect(jpy).not.toMatch(/^\s+l1_coefficient=/m);
    expect(exportRunConfig({ ...base, activation: 'gated' }, small).get('saelens_train.py')).toContain(
      'sae=GatedTrainingSAEConfig(',
    );
    expect(exportRunConfig({ ...base, activation: 'prolu' }, small).get('saelens_train.py')).toMatch(
      /NOTE: activation 'prolu'.*no ProLU/,
    );

    const bt = exportRunConfig({ ...base, activation: 'batchtopk', batchTopKThresholdBeta: 0.999 }, small);
    expect(bt.get('saelens_train.py')).toContain('sae=BatchTopKTrainingSAEConfig(');
    expect(bt.get('saelens_train.py')).toContain('topk_threshold_lr=0.001,');
    expect(bt.get('sparsify_train.sh')).toMatch(/NOTE: batchtopk: sparsify has no BatchTopK/);
  });

  it('matryoshka: SAELens matryoshka_batchtopk with the nested widths; sparsify says it has none', () => {
    const widths = [512, 2048, 8192, 32768];
    const m = exportRunConfig({ ...base, activation: 'matryoshka', matryoshkaWidths: widths }, ds);
    const py = m.get('saelens_train.py')!;
    expect(py).toContain('sae=MatryoshkaBatchTopKTrainingSAEConfig(');
    expect(py).toContain(`matryoshka_widths=[${widths.join(', ')}],`);
    expect(py).toContain('k=32,');
    const sh = m.get('sparsify_train.sh')!;
    expect(sh).toMatch(/NOTE: matryoshka: sparsify has no Matryoshka SAE \(nor BatchTopK\)/);
    expect(sh).toContain('matryoshka_widths [512, 2048, 8192, 32768]');
    // The default widths (N/64, N/16, N/4, N) are written out, not left to SAELens (which has none).
    expect(exportRunConfig({ ...base, activation: 'matryoshka' }, ds).get('saelens_train.py')).toContain(
      'matryoshka_widths=[512, 2048, 8192, 32768],',
    );
  });
});
