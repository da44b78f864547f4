/**
 * The files of a method comparison beside compare.json: compare.csv, dead.csv and
 * frontier.svg (nMSE against log L0, one line per method, Pareto points filled).
 */
import { METHOD_LABEL, METHODS } from './compare';
import { type CompareDocument, type DeadRow, methodRuns, point } from './compare-document';
import { paretoMask, sortByL0 } from './frontier';
import { budgetTokens } from './runner';
import { escapeXml, logTicks, PALETTE } from './svg';

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
