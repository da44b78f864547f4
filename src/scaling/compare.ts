/**
 * Method comparison (issue "Baselines, variants and ablations in the same engine"), shared by the
 * CLI (`npm run sweep -- --methods …`, cli/sweep.ts) and the page (src/store/compare.ts): one N,
 * one token budget, and per method its own sparsity axis — k for the TopK family (topk,
 * batchtopk, multitopk), λ (L1 coefficient) for relu/prolu/gated, λ (L0 coefficient) for
 * jumprelu. Each run reports held-out nMSE, L0, dead fraction and tokens/s; the document holds
 * every run with its config, each method's MSE–L0 frontier (Pareto set), the dead fraction per
 * method, the TopK-vs-ReLU comparison at equal L0 and the ablation table (TopK at the middle k,
 * each switch off once). No DOM, no node APIs.
 */
import { type Activation, DEFAULTS, isDense, type SaeConfig } from '../sae/config';
import {
  compareAtEqualL0,
  type EqualL0Comparison,
  type FrontierPoint,
  paretoFront,
  paretoMask,
  sortByL0,
} from './frontier';
import {
  ABLATIONS,
  type AblationRow,
  type AblationVariant,
  ablationToCsv,
  budgetTokens,
  type SweepRunRecord,
} from './runner';
import { escapeXml, logTicks, PALETTE } from './svg';
import { lrForN, type SweepRunConfig, type TokenBudget } from './sweep';

/** The methods a comparison can include ('multitopk' is topk with the Multi-TopK loss). */
export type Method = 'topk' | 'batchtopk' | 'multitopk' | 'relu' | 'prolu' | 'gated' | 'jumprelu';
export const METHODS: readonly Method[] = [
  'topk',
  'batchtopk',
  'multitopk',
  'relu',
  'prolu',
  'gated',
  'jumprelu',
];
export const METHOD_LABEL: Record<Method, string> = {
  topk: 'TopK',
  batchtopk: 'BatchTopK',
  multitopk: 'Multi-TopK',
  relu: 'ReLU+L1',
  prolu: 'ProLU',
  gated: 'Gated',
  jumprelu: 'JumpReLU',
};

/** Which axis a method's sparsity is swept on. */
export type SparsityKind = 'k' | 'l1' | 'l0';
export function sparsityKind(m: Method): SparsityKind {
  if (m === 'topk' || m === 'batchtopk' || m === 'multitopk') return 'k';
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
function ablationK(def: CompareDef): number | null {
  const ks = uniqSorted(def.k).filter((k) => k < def.N);
  if (def.ablateK !== undefined) return ks.includes(def.ablateK) ? def.ablateK : null;
  return ks.length ? ks[Math.floor((ks.length - 1) / 2)] : null;
}

/** The paper's switches off once each (ABLATIONS) plus b_pre initialized to the mean. */
const COMPARE_ABLATIONS: readonly AblationVariant[] = [
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

/** Stable identity of a run's settings: a stored record is reused only when this matches. */
function runSignature(run: CompareRunConfig, base: Partial<SaeConfig> = {}): string {
  const c = compareTrainConfig(run, base) as Record<string, unknown>;
  return JSON.stringify(
    Object.keys(c)
      .sort()
      .map((k) => [k, c[k] ?? null]),
  );
}

interface MethodFrontier {
  method: Method;
  /** the Pareto set, sorted by L0 */
  pareto: { id: string; l0: number; nmse: number }[];
}

export interface DeadRow {
  method: Method;
  runs: number;
  mean: number;
  min: number;
  max: number;
}

export interface CompareDocument {
  version: 1;
  kind: 'method-comparison';
  def: CompareDef;
  /** finished frontier runs (failed ones in `failed`), each with its config */
  runs: CompareRunRecord[];
  failed?: CompareRunRecord[];
  frontiers: MethodFrontier[];
  dead: DeadRow[];
  /** nMSE_relu / nMSE_topk at equal L0 (null unless both methods have finished runs) */
  topk_vs_relu: EqualL0Comparison | null;
  /** every other method against TopK at equal L0 */
  vs_topk: EqualL0Comparison[];
  ablation?: AblationRow[];
  /** finished ablation runs (the variants; the full recipe is the TopK frontier run) */
  ablation_runs?: CompareRunRecord[];
  meta?: Record<string, unknown>;
}

const ok = (r: CompareRunRecord) =>
  r.stop_reason !== 'failed' && Number.isFinite(r.final.nmse) && Number.isFinite(r.final.l0);

const point = (r: CompareRunRecord): FrontierPoint => ({
  l0: r.final.l0,
  nmse: r.final.nmse,
  id: r.config.id,
});

/** The frontier runs of one method (finished, usable). */
export function methodRuns(runs: readonly CompareRunRecord[], m: Method): CompareRunRecord[] {
  return runs.filter((r) => r.config.method === m && r.config.variant === 'method' && ok(r));
}

/** Dead fraction per method over its finished frontier runs. */
function deadTable(runs: readonly CompareRunRecord[], methods: readonly Method[]): DeadRow[] {
  const rows: DeadRow[] = [];
  for (const m of methods) {
    const rs = methodRuns(runs, m);
    if (!rs.length) continue;
    const d = rs.map((r) => r.final.dead_fraction);
    rows.push({
      method: m,
      runs: rs.length,
      mean: d.reduce((s, x) => s + x, 0) / d.length,
      min: Math.min(...d),
      max: Math.max(...d),
    });
  }
  return rows;
}

/** Ablation rows: the full recipe (TopK at the ablation k) then each variant that finished. */
function compareAblationRows(def: CompareDef, all: readonly CompareRunRecord[]): AblationRow[] {
  if (!def.ablate) return [];
  const k = ablationK(def);
  if (k === null) return [];
  const rows: AblationRow[] = [];
  for (const v of COMPARE_ABLATIONS) {
    const r = all.find(
      (x) =>
        x.config.method === 'topk' &&
        x.config.sparsity === k &&
        x.config.variant === (v.id === 'full' ? 'method' : v.id) &&
        ok(x),
    );
    if (r)
      rows.push({
        id: v.id,
        label: v.label,
        N: r.config.N,
        k,
        nmse: r.final.nmse,
        l0: r.final.l0,
        dead_fraction: r.final.dead_fraction,
        tokens: r.final.tokens,
      });
  }
  return rows;
}

/**
 * compare.json from the finished records (frontier and ablation runs mixed, any order): frontier
 * runs in queue order with their Pareto flag, frontiers, dead table, equal-L0 comparisons,
 * ablation table.
 */
export function compareDocument(
  def: CompareDef,
  records: readonly CompareRunRecord[],
  meta?: Record<string, unknown>,
): CompareDocument {
  const order = new Map(expandCompare(def).map((r, i) => [r.id, i]));
  const sorted = [...records].sort(
    (a, b) => (order.get(a.config.id) ?? 1e9) - (order.get(b.config.id) ?? 1e9),
  );
  const frontierRuns = sorted.filter((r) => r.config.variant === 'method');
  const good = frontierRuns.filter(ok);
  const failed = sorted.filter((r) => !ok(r));
  const methods = [...new Set(def.methods)];
  const frontiers: MethodFrontier[] = [];
  const onFront = new Set<string>();
  for (const m of methods) {
    const rs = methodRuns(good, m);
    if (!rs.length) continue;
    const front = paretoFront(rs.map(point));
    for (const p of front) onFront.add(p.id as string);
    frontiers.push({ method: m, pareto: front.map((p) => ({ id: p.id as string, l0: p.l0, nmse: p.nmse })) });
  }
  const runs = good.map((r) => ({ ...r, pareto: onFront.has(r.config.id) }));
  const pts = (m: Method) => methodRuns(good, m).map(point);
  const has = (m: Method) => methodRuns(good, m).length > 0;
  const vs_topk = has('topk')
    ? methods
        .filter((m) => m !== 'topk' && has(m))
        .map((m) => compareAtEqualL0(pts(m), pts('topk'), { a: m, b: 'topk' }))
    : [];
  const ablation = compareAblationRows(def, sorted);
  const ablationRuns = sorted.filter((r) => r.config.variant !== 'method' && ok(r));
  return {
    version: 1,
    kind: 'method-comparison',
    def,
    runs,
    ...(failed.length ? { failed } : {}),
    frontiers,
    dead: deadTable(good, methods),
    topk_vs_relu: vs_topk.find((c) => c.a === 'relu') ?? null,
    vs_topk,
    ...(ablation.length ? { ablation, ablation_runs: ablationRuns } : {}),
    ...(meta ? { meta } : {}),
  };
}

/**
 * Reads a compare.json back (for resuming): the records whose settings are unchanged. Returns []
 * for anything that is not a comparison document.
 */
export function reusableRecords(
  value: unknown,
  runs: readonly CompareRunConfig[],
  base: Partial<SaeConfig> = {},
  storedBase?: Partial<SaeConfig>,
): CompareRunRecord[] {
  if (!value || typeof value !== 'object') return [];
  const doc = value as Partial<CompareDocument>;
  if (doc.kind !== 'method-comparison' || doc.version !== 1 || !Array.isArray(doc.runs)) return [];
  const prevBase = storedBase ?? ((doc.meta?.base_config ?? {}) as Partial<SaeConfig>);
  const want = new Map(runs.map((r) => [r.id, runSignature(r, base)]));
  const out: CompareRunRecord[] = [];
  for (const r of [...doc.runs, ...(doc.ablation_runs ?? [])]) {
    if (!r?.config?.id || !r.final || r.stop_reason === 'failed') continue;
    const sig = want.get(r.config.id);
    if (sig !== undefined && sig === runSignature(r.config, prevBase)) {
      const { pareto: _p, ...rest } = r;
      out.push(rest);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// CSV

const csvField = (v: string | number | boolean | null | undefined) => {
  if (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v))) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

const COMPARE_CSV_COLUMNS = [
  'id',
  'method',
  'variant',
  'sparsity_kind',
  'sparsity',
  'N',
  'lr',
  'seed',
  'max_tokens',
  'nmse',
  'l0',
  'dead_fraction',
  'tokens_per_s',
  'tokens',
  'pareto',
  'stop_reason',
  'error',
] as const;

/** compare.csv: every run (frontier, ablation variants, failed), one line each. */
export function compareCsv(doc: CompareDocument): string {
  const lines = [COMPARE_CSV_COLUMNS.join(',')];
  for (const r of [...doc.runs, ...(doc.ablation_runs ?? []), ...(doc.failed ?? [])]) {
    const c = r.config;
    lines.push(
      [
        c.id,
        c.method,
        c.variant,
        c.sparsity_kind,
        c.sparsity,
        c.N,
        c.lr,
        c.seed,
        budgetTokens(c.budget),
        r.final.nmse,
        r.final.l0,
        r.final.dead_fraction,
        r.tokens_per_s,
        r.final.tokens,
        r.pareto ?? false,
        r.stop_reason,
        r.error ?? '',
      ]
        .map(csvField)
        .join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** dead.csv: dead fraction per method. */
export function deadCsv(rows: readonly DeadRow[]): string {
  return `${['method,runs,mean,min,max', ...rows.map((r) => [r.method, r.runs, r.mean, r.min, r.max].map(csvField).join(','))].join('\n')}\n`;
}

export { ablationToCsv };

// ---------------------------------------------------------------------------
// SVG: MSE–L0 frontier per method (log L0 on x, linear nMSE on y)

/** Linear ticks ("nice" 1-2-5 steps) over [lo, hi]. */
function linearTicks(lo: number, hi: number, target = 6): number[] {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12 * span; v += step)
    out.push(Number(v.toPrecision(12)));
  return out;
}

const px = (v: number) => String(Math.round(v * 100) / 100);

/**
 * frontier.svg: one colour per method; every run a point (hollow when dominated), a line through
 * the method's runs sorted by L0, the Pareto points filled and ringed. x: L0 (log), y: nMSE.
 */
export function compareFrontierSvg(
  doc: CompareDocument,
  opts: { width?: number; height?: number } = {},
): string {
  const width = opts.width ?? 680;
  const height = opts.height ?? 440;
  const M = { left: 64, right: 150, top: 36, bottom: 52 };
  const x0 = M.left;
  const x1 = width - M.right;
  const y0 = M.top;
  const y1 = height - M.bottom;
  const methods = doc.def.methods.filter((m) => methodRuns(doc.runs, m).length > 0);
  const all = doc.runs.filter((r) => r.final.l0 > 0 && Number.isFinite(r.final.nmse));
  const l0s = all.map((r) => Math.log10(r.final.l0));
  const ys = all.map((r) => r.final.nmse);
  let [xlo, xhi] = l0s.length ? [Math.min(...l0s), Math.max(...l0s)] : [0, 1];
  if (xhi - xlo < 1e-9) [xlo, xhi] = [xlo - 0.5, xhi + 0.5];
  else [xlo, xhi] = [xlo - 0.05 * (xhi - xlo), xhi + 0.05 * (xhi - xlo)];
  let [ylo, yhi] = ys.length ? [Math.min(0, ...ys), Math.max(...ys)] : [0, 1];
  if (yhi - ylo < 1e-12) yhi = ylo + 1;
  yhi += 0.05 * (yhi - ylo);
  const sx = (l0: number) => x0 + ((Math.log10(l0) - xlo) / (xhi - xlo)) * (x1 - x0);
  const sy = (y: number) => y1 - ((y - ylo) / (yhi - ylo)) * (y1 - y0);
  const o: string[] = [];
  o.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    '<title>MSE–L0 frontier per method</title>',
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
  );
  for (const t of logTicks(xlo, xhi)) {
    const x = px(x0 + ((t.at - xlo) / (xhi - xlo)) * (x1 - x0));
    if (t.label !== null) o.push(`<line x1="${x}" y1="${y0}" x2="${x}" y2="${y1}" stroke="#e5e5e5"/>`);
    o.push(`<line x1="${x}" y1="${y1}" x2="${x}" y2="${y1 + (t.label ? 6 : 3)}" stroke="#333"/>`);
    if (t.label) o.push(`<text x="${x}" y="${y1 + 20}" text-anchor="middle">${t.label}</text>`);
  }
  for (const v of linearTicks(ylo, yhi)) {
    const y = px(sy(v));
    o.push(
      `<line x1="${x0}" y1="${y}" x2="${x1}" y2="${y}" stroke="#e5e5e5"/>`,
      `<text x="${x0 - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(String(v))}</text>`,
    );
  }
  o.push(
    `<rect x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" fill="none" stroke="#333"/>`,
    `<text x="${px((x0 + x1) / 2)}" y="${height - 12}" text-anchor="middle">L0 (active latents per token, log scale)</text>`,
    `<text x="16" y="${px((y0 + y1) / 2)}" text-anchor="middle" transform="rotate(-90 16 ${px((y0 + y1) / 2)})">held-out nMSE</text>`,
    `<text x="${px((x0 + x1) / 2)}" y="22" text-anchor="middle" font-size="14" font-weight="600">MSE–L0 frontier, N=${doc.def.N}</text>`,
  );
  methods.forEach((m, i) => {
    const color = PALETTE[METHODS.indexOf(m) % PALETTE.length];
    const rs = sortByL0(methodRuns(doc.runs, m).map(point));
    const mask = paretoMask(rs);
    const d = rs.map((p, j) => `${j ? 'L' : 'M'}${px(sx(p.l0))} ${px(sy(p.nmse))}`).join(' ');
    o.push(`<g class="method" data-method="${m}">`);
    if (rs.length > 1) o.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`);
    rs.forEach((p, j) => {
      const cx = px(sx(p.l0));
      const cy = px(sy(p.nmse));
      o.push(
        mask[j]
          ? `<circle class="pareto" cx="${cx}" cy="${cy}" r="4" fill="${color}" stroke="#222" stroke-width="1"><title>${escapeXml(`${p.id}: L0 ${p.l0.toPrecision(3)}, nMSE ${p.nmse.toPrecision(3)} (Pareto)`)}</title></circle>`
          : `<circle cx="${cx}" cy="${cy}" r="3.5" fill="#fff" stroke="${color}" stroke-width="1.5"><title>${escapeXml(`${p.id}: L0 ${p.l0.toPrecision(3)}, nMSE ${p.nmse.toPrecision(3)}`)}</title></circle>`,
      );
    });
    o.push('</g>');
    const ly = y0 + 10 + 18 * i;
    o.push(
      `<line x1="${x1 + 12}" y1="${ly}" x2="${x1 + 36}" y2="${ly}" stroke="${color}" stroke-width="1.5"/>`,
      `<circle cx="${x1 + 24}" cy="${ly}" r="4" fill="${color}" stroke="#222"/>`,
      `<text x="${x1 + 42}" y="${ly}" dominant-baseline="middle">${escapeXml(METHOD_LABEL[m])}</text>`,
    );
  });
  const ly = y0 + 18 + 18 * methods.length;
  o.push(
    `<text x="${x1 + 12}" y="${ly}" font-size="10" fill="#555">filled: Pareto set</text>`,
    `<text x="${x1 + 12}" y="${ly + 14}" font-size="10" fill="#555">hollow: dominated</text>`,
    '</svg>',
  );
  return `${o.join('\n')}\n`;
}

/** One line per equal-L0 comparison (TopK vs ReLU first), for the terminal. */
export function comparisonLines(doc: CompareDocument): string[] {
  const lines: string[] = [];
  if (doc.topk_vs_relu) lines.push(`TopK vs ReLU+L1: ${doc.topk_vs_relu.summary}`);
  else if (doc.def.methods.includes('topk') && doc.def.methods.includes('relu'))
    lines.push('TopK vs ReLU+L1 at equal L0: one of the two has no finished run');
  for (const c of doc.vs_topk) if (c.a !== 'relu') lines.push(c.summary);
  return lines;
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
