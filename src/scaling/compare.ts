/**
 * Method comparison (issue "Baselines, variants and ablations in the same engine"), shared by the
 * CLI (`npm run sweep -- --methods …`, cli/sweep.ts) and the page (src/store/compare.ts): one N,
 * one token budget, and per method its own sparsity axis — k for the TopK family (topk,
 * batchtopk, matryoshka, multitopk), λ (L1 coefficient) for relu/prolu/gated, λ (L0 coefficient) for
 * jumprelu. Each run reports held-out nMSE, L0, dead fraction and tokens/s; the document holds
 * every run with its config, each method's MSE–L0 frontier (Pareto set), the dead fraction per
 * method, the TopK-vs-ReLU comparison at equal L0 and the ablation table (TopK at the middle k,
 * each switch off once). No DOM, no node APIs.
 *
 * This file: the methods, the definition and its runs (expansion, configs, records);
 * compare-document.ts builds compare.json from the records, compare-files.ts its CSV and SVG.
 */
import { type Activation, DEFAULTS, isDense, type SaeConfig } from '../sae/config';
import { ABLATIONS, type AblationVariant, budgetTokens, type SweepRunRecord } from './runner';
import { lrForN, type SweepRunConfig, type TokenBudget } from './sweep';

/** The methods a comparison can include ('multitopk' is topk with the Multi-TopK loss). */
export type Method =
  | 'topk'
  | 'batchtopk'
  | 'matryoshka'
  | 'multitopk'
  | 'relu'
  | 'prolu'
  | 'gated'
  | 'jumprelu';
export const METHODS: readonly Method[] = [
  'topk',
  'batchtopk',
  'matryoshka',
  'multitopk',
  'relu',
  'prolu',
  'gated',
  'jumprelu',
];
export const METHOD_LABEL: Record<Method, string> = {
  topk: 'TopK',
  batchtopk: 'BatchTopK',
  matryoshka: 'Matryoshka',
  multitopk: 'Multi-TopK',
  relu: 'ReLU+L1',
  prolu: 'ProLU',
  gated: 'Gated',
  jumprelu: 'JumpReLU',
};

/** Which axis a method's sparsity is swept on. */
export type SparsityKind = 'k' | 'l1' | 'l0';
export function sparsityKind(m: Method): SparsityKind {
  if (m === 'topk' || m === 'batchtopk' || m === 'matryoshka' || m === 'multitopk') return 'k';
  return m === 'jumprelu' ? 'l0' : 'l1';
}

export function isMethod(s: string): s is Method {
  return (METHODS as readonly string[]).includes(s);
}

/**
 * Default grids when a list is not given (λ in units of the normalized MSE; log-spaced). Calibrated on
 * the demo (stories260K layer 2, N=256, 60k tokens): ReLU λ = 0.01 → L0 ≈ 130, 0.1 → 55, 1 → 2.
 */
export const DEFAULT_K_LIST = [4, 8, 16, 32];
export const DEFAULT_L1_LIST = [0.03, 0.1, 0.3, 1];
export const DEFAULT_L0_COEF_LIST = [1e-3, 3e-3, 1e-2, 3e-2];

/** The config switches that select a method. */
function methodPatch(m: Method): Partial<SaeConfig> {
  const activation: Activation = m === 'multitopk' ? 'topk' : m;
  return { activation, multiTopK: m === 'multitopk' };
}

/** What to compare. */
export interface CompareDef {
  methods: Method[];
  /** latent count, one for every run (a power of two) */
  N: number;
  /** k values of the TopK family */
  k: number[];
  /** λ values (L1) of relu / prolu / gated */
  l1: number[];
  /** λ values (L0) of jumprelu */
  l0Coef: number[];
  /** token budget of every run */
  tokens: number;
  seed: number;
  /** lr for every run; null: the N rule lr(N) = baseLr/sqrt(N/2^14) */
  lr: number | null;
  baseLr?: number;
  /** also run the ablations: TopK at `ablateK` (default: the middle k) with each switch off once */
  ablate: boolean;
  ablateK?: number;
}

/** One run of a comparison. */
export interface CompareRunConfig extends SweepRunConfig {
  method: Method;
  sparsity_kind: SparsityKind;
  /** k, or λ */
  sparsity: number;
  /** 'method' for a frontier run, else the ablation variant id */
  variant: string;
}

const fmtLambda = (x: number) => String(Number(x.toPrecision(6)));

/** Id of a frontier run: topk_k16, relu_l1=0.001, jumprelu_l0=0.01. */
function compareRunId(m: Method, s: number): string {
  const kind = sparsityKind(m);
  return kind === 'k' ? `${m}_k${s}` : `${m}_${kind}=${fmtLambda(s)}`;
}

/** Throws RangeError (message for people) when the definition cannot run. */
function validateCompareDef(def: CompareDef): void {
  if (!def.methods.length) throw new RangeError('pick at least one method');
  for (const m of def.methods) if (!isMethod(m)) throw new RangeError(`unknown method '${m}'`);
  if (!(Number.isInteger(def.N) && def.N >= 1 && (def.N & (def.N - 1)) === 0))
    throw new RangeError(`N must be a power of two, got ${def.N}`);
  if (!(def.tokens > 0) || !Number.isFinite(def.tokens))
    throw new RangeError(`tokens must be positive, got ${def.tokens}`);
  const needs = new Set(def.methods.map(sparsityKind));
  if (needs.has('k')) {
    if (!def.k.length) throw new RangeError('the TopK family needs at least one k');
    for (const k of def.k)
      if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
    if (!def.k.some((k) => k < def.N)) throw new RangeError(`every k is ≥ N = ${def.N}`);
  }
  for (const [kind, list, name] of [
    ['l1', def.l1, 'λ (L1)'],
    ['l0', def.l0Coef, 'λ (L0)'],
  ] as const) {
    if (!needs.has(kind)) continue;
    if (!list.length) throw new RangeError(`${name} needs at least one value`);
    for (const x of list)
      if (!(x >= 0) || !Number.isFinite(x)) throw new RangeError(`${name} values must be ≥ 0, got ${x}`);
  }
  if (def.lr !== null && !(def.lr > 0 && def.lr < 1)) throw new RangeError(`lr must be in (0, 1)`);
}

const uniqSorted = (xs: readonly number[]) => [...new Set(xs)].sort((a, b) => a - b);

/** The k of the ablation runs: ablateK, else the middle k (< N) of the list. */
export function ablationK(def: CompareDef): number | null {
  const ks = uniqSorted(def.k).filter((k) => k < def.N);
  if (def.ablateK !== undefined) return ks.includes(def.ablateK) ? def.ablateK : null;
  return ks.length ? ks[Math.floor((ks.length - 1) / 2)] : null;
}

/** The paper's switches off once each (ABLATIONS) plus b_pre initialized to the mean. */
export const COMPARE_ABLATIONS: readonly AblationVariant[] = [
  ...ABLATIONS.slice(0, 4),
  { id: 'b-pre-mean', label: 'b_pre = mean', patch: { bPreInit: 'mean' } },
  ...ABLATIONS.slice(4),
];

/**
 * Every run of a comparison in queue order: methods in the given order, each over its sparsity
 * list ascending (k ≥ N skipped), then the ablation variants (the full recipe is the TopK run at
 * the ablation k, run once as part of the frontier, or added when TopK is not compared).
 */
export function expandCompare(def: CompareDef): CompareRunConfig[] {
  validateCompareDef(def);
  const lr = def.lr ?? lrForN(def.N, def.baseLr);
  const budget: TokenBudget = { kind: 'tokens', tokens: def.tokens };
  const runs: CompareRunConfig[] = [];
  const make = (m: Method, s: number, variant = 'method'): CompareRunConfig => {
    const kind = sparsityKind(m);
    const id = compareRunId(m, s);
    return {
      id: variant === 'method' ? id : `${id}:${variant}`,
      N: def.N,
      // threshold methods do not use k; keep a valid one for the config
      k: kind === 'k' ? s : Math.min(DEFAULTS.k, def.N),
      lr,
      seed: def.seed,
      budget: { ...budget },
      method: m,
      sparsity_kind: kind,
      sparsity: s,
      variant,
    };
  };
  for (const m of [...new Set(def.methods)]) {
    const kind = sparsityKind(m);
    const list =
      kind === 'k'
        ? uniqSorted(def.k).filter((k) => k < def.N)
        : uniqSorted(kind === 'l1' ? def.l1 : def.l0Coef);
    for (const s of list) runs.push(make(m, s));
  }
  if (def.ablate) {
    const k = ablationK(def);
    if (k !== null) {
      if (!runs.some((r) => r.method === 'topk' && r.sparsity === k)) runs.push(make('topk', k));
      for (const v of COMPARE_ABLATIONS.slice(1)) runs.push(make('topk', k, v.id));
    }
  }
  return runs;
}

/** The SaeConfig of one comparison run: shared base, the method's switches, N, k/λ, lr, seed, tokens. */
export function compareTrainConfig(run: CompareRunConfig, base: Partial<SaeConfig> = {}): Partial<SaeConfig> {
  const variant = COMPARE_ABLATIONS.find((v) => v.id === run.variant);
  // undefined entries (fields the page's form leaves to the run) must not hide the defaults
  const defined = Object.fromEntries(Object.entries(base).filter(([, v]) => v !== undefined));
  const c: Partial<SaeConfig> = {
    ...defined,
    ...methodPatch(run.method),
    nLatents: run.N,
    k: run.k,
    lr: run.lr,
    seed: run.seed,
    tokens: budgetTokens(run.budget),
    ...(run.sparsity_kind !== 'k' ? { l1Coef: run.sparsity } : {}),
    ...(variant?.patch ?? {}),
  };
  // Dense methods have no AuxK (resolveConfig turns it off); leave the base's kAux out of the way.
  if (isDense(c.activation ?? 'topk')) delete c.kAux;
  return c;
}

/** A finished comparison run. */
export interface CompareRunRecord extends SweepRunRecord {
  config: CompareRunConfig;
  /** training throughput of the run (tokens/s) */
  tokens_per_s: number;
  /** whether the run is on its method's Pareto set (set by compareDocument) */
  pareto?: boolean;
}

/** A comparison record from RunTracker.finish's record and the run's throughput. */
export function compareRecord(
  run: CompareRunConfig,
  rec: SweepRunRecord,
  tokensPerS: number,
): CompareRunRecord {
  return { ...rec, config: run, tokens_per_s: tokensPerS };
}

/** The record of a run the worker refused or that crashed before finishing. */
export function failedCompareRecord(run: CompareRunConfig, error: string, wallS = 0): CompareRunRecord {
  return {
    config: run,
    final: {
      nmse: Number.NaN,
      l0: Number.NaN,
      dead_fraction: Number.NaN,
      tokens: 0,
      tokens_to_convergence: null,
    },
    curve: [],
    stop_reason: 'failed',
    censored: false,
    wall_s: wallS,
    error,
    tokens_per_s: 0,
  };
}
