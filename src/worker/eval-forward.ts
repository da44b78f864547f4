/**
 * The GPU part of a full evaluation: the evaluation rows through the trained SAE's forward pass,
 * exactly as the trainer's own evaluation reads them (Trainer.evalBatches: the same rows, batches
 * and forward; the EMA weights when the run keeps them, swapped in on the GPU), streamed into
 * src/eval's EvalAccumulator, whose nMSE, EV, L0 and never-fired count are src/sae/metrics.ts's, so
 * the run panel, metrics.json, the evaluation panel and eval.json agree exactly for one SAE.
 */
import { Batcher } from '../data/stream';
import { concatCodes, EvalAccumulator, type SparseCodes } from '../eval/index';
import type { ParamsF32 } from '../sae/step-buffers';
import type { Trainer } from '../sae/trainer';
import type { FullEvalReport } from './protocol';

/** Progress of an evaluation: fraction in [0, 1] and the phase shown beside it. */
export type Progress = (fraction: number, phase: string) => void;

/** What the forward pass over the evaluation rows gives the rest of the evaluation. */
export interface EvalForward {
  /** the report's metrics, density and per-latent statistics; the CPU extras add to it */
  report: FullEvalReport;
  acc: EvalAccumulator;
  rep: ReturnType<EvalAccumulator['report']>;
  /** [rows, k] codes of every evaluated row */
  codes: SparseCodes;
  /** [rows] dataset row of each evaluated row */
  rowIds: Float64Array;
  /** [rows, d] the raw rows, kept only when asked (probes on raw activations) and ≤ 32 Mi values */
  raw: Float32Array | undefined;
  /** the parameters evaluated (the EMA weights with cfg.ema), on the CPU */
  params: ParamsF32;
}

/** Rows of each latent's top-activation list: more for small dictionaries, 4..20. */
function topMFor(N: number): number {
  return Math.max(4, Math.min(20, Math.floor((1 << 22) / N)));
}

/**
 * The forward pass over at most maxRows evaluation rows and the held-out metrics of the weights
 * evaluations report on; progress runs 0 … 0.55. `keepRaw`: keep the raw rows (if ≤ 32 Mi values).
 */
export async function forwardEvaluation(
  trainer: Trainer,
  maxRows: number,
  keepRaw: boolean,
  onProgress: Progress,
): Promise<EvalForward> {
  const { cfg, sae, source } = trainer;
  const { d, nLatents: N } = cfg;
  const acc = new EvalAccumulator({
    N,
    d,
    mean: trainer.stats.mean,
    topM: topMFor(N),
    fireThreshold: cfg.fireThreshold,
    innerLevels: cfg.matryoshkaWidths.length - 1,
  });
  const codeParts: SparseCodes[] = [];
  const idParts: Float64Array[] = [];
  const wantRaw = keepRaw && maxRows * d <= 32 << 20;
  const rawParts: Float32Array[] = [];
  const split = new Batcher(source, { heldOutFraction: cfg.evalFrac, nonFinite: 'skip', shuffleRows: 1 });
  const total = Math.min(maxRows, split.split.heldOutRows > 0 ? split.split.heldOutRows : source.rows);
  // Parameters on the CPU (decoder geometry, downstream): the weights evaluated.
  const { weights, params } = await trainer.withEvalWeights(async (weights) => {
    let done = 0;
    for await (const b of trainer.evalBatches(maxRows)) {
      acc.add(b.x, b.codes, b.xHat, b.rowL0, b.xInner);
      codeParts.push(b.codes);
      idParts.push(b.rowIds.slice());
      if (wantRaw) rawParts.push(b.x.slice());
      done += b.codes.rows;
      onProgress(0.55 * Math.min(1, done / Math.max(1, total)), 'evaluating');
    }
    return { weights, params: await sae.readParams() };
  });
  const codes = concatCodes(codeParts);
  const rowIds = concat(idParts, Float64Array);
  const rep = acc.report(40);
  const since = await sae.readU32('tokensSince', N);
  let deadRule = 0;
  for (let i = 0; i < N; i++) if (since[i] > cfg.deadTokens) deadRule++;

  const report: FullEvalReport = {
    weights,
    rows: rep.rows,
    nmse: rep.nmse,
    explainedVariance: rep.explainedVariance,
    ...(rep.prefixNmse
      ? { prefixNmse: rep.prefixNmse, prefixWidths: cfg.matryoshkaWidths.slice(0, -1) }
      : {}),
    l0: rep.l0,
    deadFraction: rep.deadFraction,
    deadFractionRule: deadRule / N,
    density: {
      edges: Array.from(rep.density.edges),
      counts: Array.from(rep.density.counts),
      neverFired: rep.density.neverFired,
    },
    latents: Array.from({ length: N }, (_, i) => ({
      id: i,
      freq: rep.firingFrequency[i],
      meanAct: rep.meanActWhenActive[i],
      maxAct: rep.maxAct[i],
    })),
  };
  const raw = wantRaw ? concat(rawParts, Float32Array) : undefined;
  return { report, acc, rep, codes, rowIds, raw, params };
}

/** The parts one after another, in one array of their type. */
function concat<A extends Float32Array | Float64Array>(parts: A[], Ctor: new (n: number) => A): A {
  const out = new Ctor(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
