import { describe, expect, it } from 'vitest';
import { parseFlags, UsageError } from '../../../cli/args';
import { comparePlanFromFlags } from '../../../cli/compare';
import { SWEEP_FLAGS } from '../../../cli/sweep';
import { configFromFlags, TRAIN_FLAGS } from '../../../cli/train-flags';
import { resolveConfig } from '../../../src/sae/config';
import {
  type CompareDef,
  type CompareRunConfig,
  type CompareRunRecord,
  compareRecord,
  compareTrainConfig,
  DEFAULT_L1_LIST,
  expandCompare,
  failedCompareRecord,
} from '../../../src/scaling/compare';
import { compareDocument, comparisonLines, reusableRecords } from '../../../src/scaling/compare-document';
import { compareCsv, compareFrontierSvg, deadCsv } from '../../../src/scaling/compare-files';
import { RunTracker } from '../../../src/scaling/runner';
import { lrForN } from '../../../src/scaling/sweep';

const flags = (s: string, spec = SWEEP_FLAGS) => parseFlags(s.split(/\s+/).filter(Boolean), spec);
const plan = (s: string) => comparePlanFromFlags(flags(s));

const def: CompareDef = {
  methods: ['topk', 'relu', 'jumprelu', 'multitopk'],
  N: 256,
  k: [32, 8, 16, 512],
  l1: [1e-2, 1e-3],
  l0Coef: [3e-3],
  tokens: 4096,
  seed: 2,
  lr: null,
  ablate: true,
};

/** A finished record with the given final metrics. */
function rec(run: CompareRunConfig, nmse: number, l0: number, dead = 0.1): CompareRunRecord {
  const t = new RunTracker(run);
  return compareRecord(run, t.finish({ tokens: 4096, nmse, l0, deadFractionRule: dead }, 1.5), 1234);
}

describe('expandCompare / compareTrainConfig', () => {
  const runs = expandCompare(def);
  it('one run per method and sparsity value (k < N), then the ablation variants at the middle k', () => {
    expect(runs.map((r) => r.id)).toEqual([
      'topk_k8',
      'topk_k16',
      'topk_k32',
      'relu_l1=0.001',
      'relu_l1=0.01',
      'jumprelu_l0=0.003',
      'multitopk_k8',
      'multitopk_k16',
      'multitopk_k32',
      'topk_k16:no-tied-init',
      'topk_k16:no-auxk',
      'topk_k16:b-pre-zero',
      'topk_k16:b-pre-mean',
      'topk_k16:no-grad-projection',
    ]);
    expect(runs.every((r) => r.N === 256 && r.lr === lrForN(256) && r.seed === 2)).toBe(true);
  });
  it('maps each method onto the config contract, and every config resolves', () => {
    const base = { batchSize: 128, kAux: 16 };
    const by = (id: string) => compareTrainConfig(runs.find((r) => r.id === id) as CompareRunConfig, base);
    expect(by('topk_k8')).toMatchObject({
      activation: 'topk',
      multiTopK: false,
      k: 8,
      nLatents: 256,
      batchSize: 128,
      tokens: 4096,
    });
    expect(by('multitopk_k16')).toMatchObject({ activation: 'topk', multiTopK: true, k: 16 });
    expect(by('relu_l1=0.01')).toMatchObject({ activation: 'relu', l1Coef: 0.01 });
    expect(by('relu_l1=0.01').kAux).toBeUndefined();
    expect(by('jumprelu_l0=0.003')).toMatchObject({ activation: 'jumprelu', l1Coef: 0.003 });
    expect(by('topk_k16:no-auxk')).toMatchObject({ activation: 'topk', k: 16, auxk: false });
    expect(by('topk_k16:b-pre-mean')).toMatchObject({ bPreInit: 'mean' });
    for (const r of runs)
      expect(() => resolveConfig({ ...compareTrainConfig(r, base), d: 64 })).not.toThrow();
    // the page's base leaves fields undefined; they must not override the defaults
    const pageBase = { batchSize: 128, l1Coef: undefined, k: undefined, activation: undefined };
    for (const r of runs) {
      const c = compareTrainConfig(r, pageBase);
      expect(Object.values(c).some((v) => v === undefined)).toBe(false);
      expect(() => resolveConfig({ ...c, d: 64 })).not.toThrow();
    }
  });
  it('rejects what cannot run', () => {
    expect(() => expandCompare({ ...def, methods: [] })).toThrow(/at least one method/);
    expect(() => expandCompare({ ...def, N: 300 })).toThrow(/power of two/);
    expect(() => expandCompare({ ...def, k: [512] })).toThrow(/every k is ≥ N/);
    expect(() => expandCompare({ ...def, l1: [-1] })).toThrow(/≥ 0/);
  });
});

describe('compareDocument', () => {
  const runs = expandCompare(def);
  const byId = (id: string) => runs.find((r) => r.id === id) as CompareRunConfig;
  const records = [
    rec(byId('topk_k8'), 0.3, 8, 0.05),
    rec(byId('topk_k16'), 0.2, 16, 0.1),
    rec(byId('topk_k32'), 0.25, 32, 0.15), // dominated by k16
    rec(byId('relu_l1=0.001'), 0.3, 40, 0.4),
    rec(byId('relu_l1=0.01'), 0.6, 10, 0.6),
    failedCompareRecord(byId('jumprelu_l0=0.003'), 'activation jumprelu is not implemented yet'),
    rec(byId('topk_k16:no-auxk'), 0.22, 16, 0.3),
  ];
  const doc = compareDocument(def, records, { dataset: 'demo' });
  it('frontier runs with Pareto flags, failures apart, dead table, ablation rows', () => {
    expect(doc.kind).toBe('method-comparison');
    expect(doc.runs.map((r) => [r.config.id, r.pareto])).toEqual([
      ['topk_k8', true],
      ['topk_k16', true],
      ['topk_k32', false],
      ['relu_l1=0.001', true],
      ['relu_l1=0.01', true],
    ]);
    expect(doc.failed?.map((r) => r.error)).toEqual(['activation jumprelu is not implemented yet']);
    expect(doc.frontiers.map((f) => [f.method, f.pareto.map((p) => p.id)])).toEqual([
      ['topk', ['topk_k8', 'topk_k16']],
      ['relu', ['relu_l1=0.01', 'relu_l1=0.001']],
    ]);
    expect(doc.dead.map((d) => [d.method, d.runs, Number(d.mean.toFixed(6)), d.min, d.max])).toEqual([
      ['topk', 3, 0.1, 0.05, 0.15],
      ['relu', 2, 0.5, 0.4, 0.6],
    ]);
    expect(doc.ablation?.map((a) => [a.id, a.nmse, a.dead_fraction])).toEqual([
      ['full', 0.2, 0.1],
      ['no-auxk', 0.22, 0.3],
    ]);
    expect(doc.ablation_runs?.map((r) => r.config.id)).toEqual(['topk_k16:no-auxk']);
  });
  it('TopK vs ReLU at equal L0 on the Pareto frontiers', () => {
    // relu frontier: (10, 0.6), (40, 0.3); topk frontier: (8, 0.3), (16, 0.2) → overlap [10, 16]
    const c = doc.topk_vs_relu;
    expect(c?.overlap).toEqual([10, 16]);
    const topkAt10 = 0.3 + (Math.log(10 / 8) / Math.log(2)) * (0.2 - 0.3);
    expect(c?.points[0].ratio).toBeCloseTo(0.6 / topkAt10, 12);
    expect(comparisonLines(doc)[0]).toMatch(/^TopK vs ReLU\+L1: relu vs topk at equal L0 \(10–16\)/);
    const none = compareDocument(def, [records[0], rec(byId('relu_l1=0.01'), 0.6, 100)]);
    expect(none.topk_vs_relu?.overlap).toBeNull();
    expect(comparisonLines(none)[0]).toMatch(/no overlap/);
  });
  it('CSV, dead table and SVG', () => {
    const csv = compareCsv(doc).trim().split('\n');
    expect(csv[0]).toBe(
      'id,method,variant,sparsity_kind,sparsity,N,lr,seed,max_tokens,nmse,l0,dead_fraction,tokens_per_s,tokens,pareto,stop_reason,error',
    );
    expect(csv).toHaveLength(1 + 7);
    expect(csv[1]).toMatch(/^topk_k8,topk,method,k,8,256,/);
    expect(csv.find((l) => l.startsWith('jumprelu'))).toMatch(
      /,failed,activation jumprelu is not implemented yet$/,
    );
    expect(deadCsv(doc.dead).split('\n')[0]).toBe('method,runs,mean,min,max');
    const svg = compareFrontierSvg(doc);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<g class="method"/g)).toHaveLength(2);
    expect(svg.match(/class="pareto"/g)).toHaveLength(4);
    expect(svg).toContain('ReLU+L1');
    expect(svg).toContain('log scale');
  });
  it('resume: records whose settings are unchanged are reused, failed or changed ones are not', () => {
    const json = JSON.parse(JSON.stringify(doc));
    const base = { batchSize: 128 };
    const docB = JSON.parse(JSON.stringify(compareDocument(def, records, { base_config: base })));
    const kept = reusableRecords(docB, runs, base);
    expect(kept.map((r) => r.config.id).sort()).toEqual(
      ['relu_l1=0.001', 'relu_l1=0.01', 'topk_k16', 'topk_k16:no-auxk', 'topk_k32', 'topk_k8'].sort(),
    );
    // a different base config (batch size) invalidates every stored run
    expect(reusableRecords(docB, runs, { batchSize: 256 })).toEqual([]);
    // a different token budget too
    expect(reusableRecords(json, expandCompare({ ...def, tokens: 8192 }), {})).toEqual([]);
    expect(reusableRecords({ version: 1, runs: [] }, runs)).toEqual([]);
  });
});

describe('CLI: variant flags and --methods', () => {
  it('every new config field has a flag', () => {
    const f = flags(
      '--activation jumprelu --l1-coef 0.01 --l1-warmup-frac 0.1 --jump-bandwidth 0.002 --jump-init-threshold 0.05 --unit-norm-decoder off --batch-topk-cap 64 --beta1 0.8 --beta2 0.99 --eps 1e-8 --fire-threshold 0.01 --no-tied-init --no-auxk --b-pre-init mean --no-grad-projection',
      TRAIN_FLAGS,
    );
    expect(configFromFlags(f)).toEqual({
      activation: 'jumprelu',
      l1Coef: 0.01,
      l1WarmupFrac: 0.1,
      jumpBandwidth: 0.002,
      jumpInitThreshold: 0.05,
      unitNormDecoder: false,
      batchTopKCap: 64,
      beta1: 0.8,
      beta2: 0.99,
      eps: 1e-8,
      fireThreshold: 0.01,
      tiedInit: false,
      auxk: false,
      bPreInit: 'mean',
      gradProjection: false,
    });
    expect(configFromFlags(flags('--activation multitopk', TRAIN_FLAGS))).toEqual({
      activation: 'topk',
      multiTopK: true,
    });
    expect(
      configFromFlags(flags('--activation matryoshka --group-sizes 64,192,768,3072', TRAIN_FLAGS)),
    ).toEqual({ activation: 'matryoshka', matryoshkaWidths: [64, 256, 1024, 4096] });
    expect(
      configFromFlags(flags('--activation matryoshka --matryoshka-widths 64,256,4096', TRAIN_FLAGS)),
    ).toEqual({ activation: 'matryoshka', matryoshkaWidths: [64, 256, 4096] });
    expect(configFromFlags(flags('--multi-topk --unit-norm-decoder on', TRAIN_FLAGS))).toEqual({
      multiTopK: true,
      unitNormDecoder: true,
    });
  });
  it('bad values are one-line usage errors', () => {
    const bad = (s: string, re: RegExp) => {
      expect(() => configFromFlags(flags(s, TRAIN_FLAGS))).toThrow(UsageError);
      expect(() => configFromFlags(flags(s, TRAIN_FLAGS))).toThrow(re);
    };
    bad(
      '--activation softmax',
      /--activation must be topk\|batchtopk\|matryoshka\|relu\|prolu\|gated\|jumprelu\|multitopk, got 'softmax'/,
    );
    bad('--unit-norm-decoder maybe', /--unit-norm-decoder must be on\|off/);
    bad('--activation relu --multi-topk', /--multi-topk needs --activation topk/);
    bad('--group-sizes 8,56', /--group-sizes needs --activation matryoshka, got 'topk'/);
    bad(
      '--activation matryoshka --group-sizes 8,56 --matryoshka-widths 8,64',
      /--matryoshka-widths or --group-sizes, not both/,
    );
    bad('--l1-coef -1', /--l1-coef must be in \[0, ∞\)/);
    bad('--l1-warmup-frac 2', /--l1-warmup-frac must be in \[0, 1\]/);
    bad('--jump-bandwidth 0', /--jump-bandwidth must be positive/);
  });
  it('--methods builds the comparison; defaults for omitted lists; train flags into the base', () => {
    const p = plan(
      '--data demo --methods topk,relu,gated --n-latents 64 --k 4,8 --tokens 4k --batch 256 --ablate',
    );
    expect(p.def.methods).toEqual(['topk', 'relu', 'gated']);
    expect(p.def.l1).toEqual(DEFAULT_L1_LIST);
    expect(p.base).toEqual({ batchSize: 256 });
    expect(p.runs.filter((r) => r.variant === 'method')).toHaveLength(2 + 2 * DEFAULT_L1_LIST.length);
    expect(p.runs.filter((r) => r.variant !== 'method').map((r) => r.id)[0]).toBe('topk_k4:no-tied-init');
    const q = plan(
      '--methods jumprelu --n-latents 64 --l0-coef 1e-3,1e-2 --tokens 4k --activation relu --l1-coef 5',
    );
    expect(q.runs.map((r) => r.id)).toEqual(['jumprelu_l0=0.001', 'jumprelu_l0=0.01']);
    expect(q.base).toEqual({});
  });
  it('--methods usage errors', () => {
    const bad = (s: string, re: RegExp) => {
      expect(() => plan(s)).toThrow(UsageError);
      expect(() => plan(s)).toThrow(re);
    };
    bad('--methods topk,softmax --n-latents 64 --tokens 1k', /unknown method 'softmax'/);
    bad('--methods topk --n-latents 64,128 --tokens 1k', /compares at one N/);
    bad('--methods topk --n-latents 64', /--tokens is required/);
    bad('--methods topk --n-latents 64 --tokens 1k --until-converged', /not supported with --methods/);
    bad('--methods topk --n-latents 96 --tokens 1k', /power of two/);
    bad(
      '--methods topk --n-latents 64 --k 4,8 --tokens 1k --ablate --ablate-at 16',
      /k=16 is not one of --k/,
    );
    bad('--methods topk --tokens 1k', /--n-latents is required/);
  });
});
