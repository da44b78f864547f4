/**
 * compare.json of a method comparison (compare.ts): the finished records sorted into frontier
 * runs with their Pareto flags, each method's frontier, the dead fraction per method, the
 * equal-L0 comparisons and the ablation table; and reading a stored one back to resume.
 */
import type { SaeConfig } from '../sae/config';
import {
  ablationK,
  COMPARE_ABLATIONS,
  type CompareDef,
  type CompareRunConfig,
  type CompareRunRecord,
  compareTrainConfig,
  expandCompare,
  type Method,
} from './compare';
import { compareAtEqualL0, type EqualL0Comparison, type FrontierPoint, paretoFront } from './frontier';
import type { AblationRow } from './runner';

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

export const point = (r: CompareRunRecord): FrontierPoint => ({
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

/** One line per equal-L0 comparison (TopK vs ReLU first), for the terminal. */
export function comparisonLines(doc: CompareDocument): string[] {
  const lines: string[] = [];
  if (doc.topk_vs_relu) lines.push(`TopK vs ReLU+L1: ${doc.topk_vs_relu.summary}`);
  else if (doc.def.methods.includes('topk') && doc.def.methods.includes('relu'))
    lines.push('TopK vs ReLU+L1 at equal L0: one of the two has no finished run');
  for (const c of doc.vs_topk) if (c.a !== 'relu') lines.push(c.summary);
  return lines;
}
