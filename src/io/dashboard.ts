/**
 * The static dashboard folder: every latent's dashboard (src/eval/dashboard.ts) as files that open
 * from disk with no server and no network:
 *
 *   index.html            the viewer (./dashboard-viewer.ts) inline, with a Content-Security-Policy
 *                         that allows only its own inline script and style (by hash) and scripts
 *                         beside it, and forbids every connection
 *   data/meta.js          SAE_DASH.meta   {title, N, d, k, activation, rows, dataset, model, tokens,
 *                                          blockLatents, blocks}
 *   data/pieces.js        SAE_DASH.pieces [P] every token text used, once
 *   data/list.js          SAE_DASH.list   [N] [id, freq, meanAct, maxAct, f1, explanation]
 *   data/block-B.js       SAE_DASH['block-B'] [≤ blockLatents] latents B·blockLatents… in full
 *
 * A page opened from file:// cannot fetch() JSON, so the data are scripts that set a global; the
 * latents are split in blocks so that a large SAE is many small files, loaded one at a time.
 * One latent in a block: {id, freq, meanAct, maxAct, fired, hist {edges, counts}, top [ctx],
 * bands [{qLo, qHi, lo, hi, count, ctx [ctx]}], logits {up, down: [piece, token, value]} | null,
 * expl {text, precision, recall, f1} | null}, ctx = [row, value, active, [piece], [act | null]].
 * Numbers keep 4 significant digits. The page (zipped, src/worker/dashboards.ts) and the CLI
 * (`npm run eval -- --dashboards DIR`) write the folder with this function.
 */
import type { DashContext, LatentDashboard } from '../eval/dashboard.ts';
import { VIEWER_CSS, VIEWER_JS } from './dashboard-viewer.ts';

export interface DashboardMeta {
  title: string;
  /** latents, width, TopK k, activation of the SAE */
  N: number;
  d: number;
  k: number;
  activation: string;
  /** evaluated rows the dashboards come from */
  rows: number;
  /** dataset name, model name (null: no model loaded, so no logit effects) */
  dataset: string | null;
  model: string | null;
  /** the dataset has token ids (contexts show text) */
  tokens: boolean;
}

/** Latents per block file (a 16k-latent SAE is 64 files). */
const BLOCK_LATENTS = 256;

/** 4 significant digits; NaN and ±Inf as null (JSON has neither). */
const r4 = (v: number): number | null => (Number.isFinite(v) ? Number(v.toPrecision(4)) : null);

/** Token texts, each stored once across the folder. */
class Pieces {
  readonly list: string[] = [];
  private readonly index = new Map<string, number>();
  of(p: string): number {
    let i = this.index.get(p);
    if (i === undefined) {
      i = this.list.length;
      this.list.push(p);
      this.index.set(p, i);
    }
    return i;
  }
}

function packContext(c: DashContext, pieces: Pieces): unknown[] {
  return [
    c.row,
    r4(c.value),
    c.active,
    c.tokens.map((t) => pieces.of(t)),
    c.acts.map((a) => (a === null ? null : r4(a))),
  ];
}

function packLatent(l: LatentDashboard, pieces: Pieces): unknown {
  const fx = (e: { token: number; piece: string; value: number }) => [
    pieces.of(e.piece),
    e.token,
    r4(e.value),
  ];
  return {
    id: l.id,
    freq: r4(l.freq),
    meanAct: r4(l.meanAct),
    maxAct: r4(l.maxAct),
    fired: l.fired,
    hist: { edges: l.histogram.edges.map(r4), counts: l.histogram.counts },
    top: l.top.map((c) => packContext(c, pieces)),
    bands: l.bands.map((b) => ({
      qLo: b.qLo,
      qHi: b.qHi,
      lo: r4(b.lo),
      hi: r4(b.hi),
      count: b.count,
      ctx: b.contexts.map((c) => packContext(c, pieces)),
    })),
    logits: l.logits ? { up: l.logits.up.map(fx), down: l.logits.down.map(fx) } : null,
    expl: l.explanation
      ? {
          text: l.explanation.text,
          precision: r4(l.explanation.precision),
          recall: r4(l.explanation.recall),
          f1: r4(l.explanation.f1),
        }
      : null,
  };
}

/** A data file: a script that sets SAE_DASH[key] (valid JS: JSON is a JS expression). */
function dataScript(key: string, value: unknown): string {
  return `window.SAE_DASH=window.SAE_DASH||{};window.SAE_DASH[${JSON.stringify(key)}]=${JSON.stringify(value)};\n`;
}

async function sha256Base64(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  let bin = '';
  for (const b of digest) bin += String.fromCharCode(b);
  return btoa(bin);
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);

/** index.html: the viewer inline, allowed by hash; data scripts from beside it ('self'); no connections. */
async function indexHtml(title: string): Promise<string> {
  const csp = [
    "default-src 'none'",
    `script-src 'self' 'sha256-${await sha256Base64(VIEWER_JS)}'`,
    `style-src 'sha256-${await sha256Base64(VIEWER_CSS)}'`,
    "img-src 'none'",
    "connect-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${VIEWER_CSS}</style>
</head>
<body>
<div id="app"></div>
<script src="data/meta.js"></script>
<script src="data/pieces.js"></script>
<script src="data/list.js"></script>
<script>${VIEWER_JS}</script>
</body>
</html>
`;
}

/**
 * Writes the folder (paths relative to it → bytes), asking `latent(i)` for each latent in order,
 * one block in memory at a time.
 * @param latent the dashboard of latent i, 0 ≤ i < meta.N
 */
export async function writeDashboardFolder(
  meta: DashboardMeta,
  latent: (i: number) => LatentDashboard,
  opts: { blockLatents?: number; onProgress?: (fraction: number) => void | Promise<void> } = {},
): Promise<Map<string, Uint8Array>> {
  const per = Math.max(1, Math.floor(opts.blockLatents ?? BLOCK_LATENTS));
  const enc = new TextEncoder();
  const files = new Map<string, Uint8Array>();
  const pieces = new Pieces();
  const list: unknown[] = [];
  const blocks = Math.ceil(meta.N / per);
  for (let b = 0; b < blocks; b++) {
    const packed: unknown[] = [];
    for (let i = b * per; i < Math.min(meta.N, (b + 1) * per); i++) {
      const l = latent(i);
      if (l.id !== i) throw new Error(`dashboard of latent ${l.id} given for latent ${i}`);
      packed.push(packLatent(l, pieces));
      list.push([
        i,
        r4(l.freq),
        r4(l.meanAct),
        r4(l.maxAct),
        l.explanation ? r4(l.explanation.f1) : null,
        l.explanation?.text ?? null,
      ]);
    }
    files.set(`data/block-${b}.js`, enc.encode(dataScript(`block-${b}`, packed)));
    await opts.onProgress?.((b + 1) / blocks);
  }
  files.set('data/meta.js', enc.encode(dataScript('meta', { ...meta, blockLatents: per, blocks })));
  files.set('data/pieces.js', enc.encode(dataScript('pieces', pieces.list)));
  files.set('data/list.js', enc.encode(dataScript('list', list)));
  files.set('index.html', enc.encode(await indexHtml(meta.title)));
  return files;
}
