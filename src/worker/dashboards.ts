/**
 * Latent dashboards from the last full evaluation (./evaluate.ts): one latent for the page's latent
 * browser ('latent'), or every latent written as the static dashboard folder ('export-dashboards',
 * src/io/dashboard.ts), which the page downloads as a zip and `npm run eval -- --dashboards DIR`
 * unpacks. Both build each latent with the same {@link latentDashboard}.
 */
import {
  type DashContext,
  decoderNeighbours,
  explainLatent,
  type FinalNorm,
  type LatentDashboard,
  type LogitLens,
  logitEffects,
  logitLens,
  quantileBands,
  valueAt,
  valueHistogram,
} from '../eval/index';
import { type DashboardMeta, writeDashboardFolder } from '../io/dashboard';
import { zipExport } from '../io/zip';
import type { LlamaCheckpoint } from '../lm/checkpoint';
import type { Gpt2Checkpoint } from '../lm/gpt2/types';
import { datasetModel } from './dataset-lm';
import { explainSource } from './eval-extras';
import { type EvalState, lastEvaluation } from './evaluate';
import type { LatentDetail } from './protocol';

/** Tokens shown before and after a context's anchor token. */
const BEFORE = 12;
const AFTER = 4;
/** Quantile bands and contexts drawn per band. */
const BANDS = 4;
const PER_BAND = 4;
/** Tokens listed per logit direction. */
const LOGIT_TOKENS = 10;

interface Lens {
  lens: LogitLens;
  model: string;
  piece: (t: number) => string;
}

/** The logit lens of each evaluation, built once (the model may be fetched: the demo's). */
const lenses = new WeakMap<EvalState, Promise<Lens | null>>();

function noEvaluation(): Error {
  return new Error(
    'no evaluation yet: run Evaluate first (the latent dashboards read the last full evaluation)',
  );
}

/** The dataset's language model as a logit lens; null for a dataset of files (no model loaded). */
function lensOf(s: EvalState): Promise<Lens | null> {
  let p = lenses.get(s);
  if (!p) {
    p = (async () => {
      const lm = s.dataset ? await datasetModel(s.dataset) : null;
      if (!lm) return null;
      const { norm, U, V, d } = finalPath(lm.ckpt);
      // an SAE of another width cannot have come from this model's residual stream
      if (d !== s.d) return null;
      const pieces = lm.tok.pieces;
      const piece = (t: number) => s.contexts?.piece(t) ?? pieces[t] ?? `<${t}>`;
      return { lens: logitLens(norm, U, V, d), model: lm.name, piece };
    })();
    lenses.set(s, p);
  }
  return p;
}

/** The final norm and unembedding [V, d] of a llama2.c or GPT-2 checkpoint. */
function finalPath(ckpt: LlamaCheckpoint | Gpt2Checkpoint): {
  norm: FinalNorm;
  U: Float32Array;
  V: number;
  d: number;
} {
  if ('lnFG' in ckpt.weights) {
    const c = ckpt as Gpt2Checkpoint;
    return {
      norm: { kind: 'layernorm', weight: c.weights.lnFG },
      U: c.weights.wte,
      V: c.config.vocabSize,
      d: c.config.nEmbd,
    };
  }
  const c = ckpt as LlamaCheckpoint;
  return {
    norm: { kind: 'rms', weight: c.weights.rmsFinal },
    U: c.weights.wcls,
    V: c.config.vocabSize,
    d: c.config.dim,
  };
}

/** A context of `latent` anchored at evaluated row `row`, every token with the latent's value on it. */
function contextOf(s: EvalState, latent: number, row: number, value: number): DashContext {
  const c = s.contexts?.display(row, BEFORE, AFTER);
  if (!c) return { row: s.rowIds[row], value, tokens: [], acts: [], active: -1 };
  return {
    row: s.rowIds[row],
    value,
    tokens: c.tokens,
    acts: Array.from(c.rows, (r) => (r < 0 ? null : valueAt(s.csc, latent, r))),
    active: c.active,
  };
}

/** One latent's dashboard (shapes in src/eval/dashboard.ts). */
function latentDashboard(s: EvalState, latent: number, lens: Lens | null): LatentDashboard {
  const th = s.trainer.cfg.fireThreshold;
  const p0 = s.csc.start[latent];
  const p1 = s.csc.start[latent + 1];
  const vals = s.csc.val.subarray(p0, p1);
  const h = valueHistogram(vals, { bins: 24, threshold: th });
  const top = s.acc.topRows(latent);
  const rows: number[] = [];
  const values: number[] = [];
  for (let p = p0; p < p1; p++)
    if (s.csc.val[p] > th) {
      rows.push(s.csc.row[p]);
      values.push(s.csc.val[p]);
    }
  const bands = quantileBands(rows, values, {
    bands: BANDS,
    perBand: PER_BAND,
    seed: s.trainer.cfg.seed,
    latent,
    exclude: new Set(top.row),
  });
  let expl = s.explained.get(latent);
  if (expl === undefined && s.contexts) {
    expl = explainLatent(latent, explainSource(s.csc, s.contexts, s.vocab));
    s.explained.set(latent, expl);
  }
  const dir = s.W_dec.subarray(latent * s.d, (latent + 1) * s.d);
  return {
    id: latent,
    freq: s.freq[latent],
    meanAct: s.meanAct[latent],
    maxAct: h.edges[h.edges.length - 1],
    fired: h.fired,
    histogram: { edges: Array.from(h.edges), counts: Array.from(h.counts) },
    top: Array.from(top.row, (r, j) => contextOf(s, latent, r, top.val[j])),
    bands: bands.map((b) => ({
      qLo: b.qLo,
      qHi: b.qHi,
      lo: b.lo,
      hi: b.hi,
      count: b.count,
      contexts: b.picks.map((q) => contextOf(s, latent, q.row, q.value)),
    })),
    logits: lens ? logitEffects(lens.lens, dir, LOGIT_TOKENS, lens.piece) : null,
    ...(expl
      ? { explanation: { text: expl.text, precision: expl.precision, recall: expl.recall, f1: expl.f1 } }
      : {}),
  };
}

/** One latent of the last evaluation, for the latent browser (its dashboard and nearest latents). */
export async function latentDetail(latent: number): Promise<LatentDetail> {
  const s = lastEvaluation();
  if (!s) throw noEvaluation();
  if (!(Number.isInteger(latent) && latent >= 0 && latent < s.N))
    throw new Error(`latent ${latent} is outside 0..${s.N - 1}`);
  const lens = await lensOf(s).catch(() => null);
  const nb = decoderNeighbours(s.W_dec, s.N, s.d, latent, 8);
  return {
    ...latentDashboard(s, latent, lens),
    neighbours: Array.from(nb.latent, (l, j) => ({ latent: l, cos: nb.cos[j] })),
  };
}

/**
 * Every latent's dashboard as the static folder (src/io/dashboard.ts), zipped under one folder
 * `<name>/`. Latents without an explanation yet are explained here (N2G, when token ids exist).
 */
export async function exportDashboards(
  title: string,
  onProgress: (fraction: number) => void,
): Promise<{ fileName: string; bytes: Uint8Array; latents: number; files: number }> {
  const s = lastEvaluation();
  if (!s) throw noEvaluation();
  // a model that cannot be loaded leaves the logit effects out (meta.model says none was loaded)
  const lens = await lensOf(s).catch(() => null);
  const cfg = s.trainer.cfg;
  const meta: DashboardMeta = {
    title,
    N: s.N,
    d: s.d,
    k: cfg.k,
    activation: cfg.activation,
    rows: s.codes.rows,
    dataset: s.dataset?.info.name ?? null,
    model: lens?.model ?? null,
    tokens: s.contexts !== null,
  };
  const files = await writeDashboardFolder(meta, (i) => latentDashboard(s, i, lens), {
    onProgress: async (f) => {
      onProgress(f);
      await new Promise<void>((r) => setTimeout(r, 0));
    },
  });
  const name = 'sae-dashboards';
  const zipped = new Map<string, Uint8Array>();
  for (const [path, bytes] of files) zipped.set(`${name}/${path}`, bytes);
  return { fileName: `${name}.zip`, bytes: zipExport(zipped), latents: s.N, files: files.size };
}
