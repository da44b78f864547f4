/**
 * Standalone SVG for log-log sweep plots (e.g. nMSE vs N, one series per k,
 * with the fitted law drawn through the points). A plain string, so the CLI
 * can write it to a file without a browser or DOM.
 */

interface XY {
  x: number;
  y: number;
}

export interface PlotSeries {
  /** Legend label (escaped on output). */
  name: string;
  /** Measured points; non-positive or non-finite ones cannot be placed on log axes and are omitted. */
  points: readonly XY[];
  /**
   * Fitted curve: a function y(x), sampled log-uniformly across the whole x
   * axis, or explicit points joined in x order.
   */
  curve?: ((x: number) => number) | readonly XY[];
  /** CSS colour; defaults to the palette entry for the series' index. */
  color?: string;
}

export interface LogLogPlot {
  title?: string;
  xLabel: string;
  yLabel: string;
  series: readonly PlotSeries[];
  /** Pixels; default 640 × 420. */
  width?: number;
  height?: number;
  /** Prefix for element ids (the clip path), so several plots can share one HTML page. Default "sae-plot". */
  idPrefix?: string;
}

/** Tableau 10: distinct, colour-blind-friendlier than pure hues. */
export const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];

const MARGIN = { left: 72, right: 16, top: 36, bottom: 52 };
const CURVE_SAMPLES = 200;

/** Escape text for XML character data and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!,
  );
}

const isPlaceable = (p: XY) => p.x > 0 && p.y > 0 && Number.isFinite(p.x) && Number.isFinite(p.y);

/** Pixel coordinate with two decimals, as a string. */
const px = (v: number) => String(Math.round(v * 100) / 100);

/** [lo, hi] in log10 units, padded by 5% of the span (±0.5 decade if all values are equal). */
function logRange(values: readonly number[]): [number, number] {
  if (values.length === 0) return [0, 1];
  const logs = values.map(Math.log10);
  const lo = Math.min(...logs);
  const hi = Math.max(...logs);
  if (hi - lo < 1e-9) return [lo - 0.5, hi + 0.5];
  const pad = 0.05 * (hi - lo);
  return [lo - pad, hi + pad];
}

interface Tick {
  /** log10 of the value. */
  at: number;
  /** Label markup, or null for an unlabelled minor tick. */
  label: string | null;
}

/**
 * Ticks for a log axis spanning [lo, hi] (log10 units). Decades when at
 * least two fit (labelled 10^e, thinned to about ten labels, with unlabelled
 * minor ticks at 2…9); otherwise 1-2-5 or 1…9 multiples so that a range
 * narrower than a decade still gets labels.
 */
export function logTicks(lo: number, hi: number): Tick[] {
  const inRange = (v: number) => v >= lo - 1e-9 && v <= hi + 1e-9;
  const eFirst = Math.floor(lo);
  const eLast = Math.ceil(hi);
  const decades: number[] = [];
  // `+ 0` turns Math.ceil's −0 into 0.
  for (let e = Math.ceil(lo - 1e-9) + 0; e <= Math.floor(hi + 1e-9); e++) decades.push(e);
  if (decades.length >= 2) {
    const step = Math.ceil(decades.length / 10);
    const ticks: Tick[] = decades.map((e, i) => ({ at: e, label: i % step === 0 ? decadeLabel(e) : null }));
    if (decades.length <= 6) {
      for (let e = eFirst; e <= eLast; e++) {
        for (let m = 2; m <= 9; m++) {
          const at = e + Math.log10(m);
          if (inRange(at)) ticks.push({ at, label: null });
        }
      }
    }
    return ticks;
  }
  for (const mantissas of [
    [1, 2, 5],
    [1, 2, 3, 4, 5, 6, 7, 8, 9],
  ]) {
    const ticks: Tick[] = [];
    for (let e = eFirst; e <= eLast; e++) {
      for (const m of mantissas) {
        const at = e + Math.log10(m);
        // Plain numbers throughout: "0.05 0.1 0.2" reads better than mixing in 10^e.
        if (inRange(at)) ticks.push({ at, label: escapeXml(formatNumber(m * 10 ** e)) });
      }
    }
    if (ticks.length >= 2) return ticks;
  }
  // Under a factor of ~1.1: label both ends.
  return [
    { at: lo, label: escapeXml(formatNumber(10 ** lo)) },
    { at: hi, label: escapeXml(formatNumber(10 ** hi)) },
  ];
}

/** "10" with a superscript exponent. */
function decadeLabel(e: number): string {
  return `10<tspan dy="-0.6em" font-size="0.75em">${e < 0 ? '−' : ''}${Math.abs(e)}</tspan>`;
}

/** Short number for tick labels: 3 significant digits, exponent form outside [1e-3, 1e5). */
function formatNumber(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e5) return String(Number(v.toPrecision(3)));
  return v.toExponential(2).replace(/\.?0+e/, 'e');
}

/**
 * Render a log-log scatter plot with optional fitted curves as an SVG
 * document string (with xmlns, viewBox 0 0 width height).
 */
export function renderLogLogSvg(plot: LogLogPlot): string {
  const width = plot.width ?? 640;
  const height = plot.height ?? 420;
  const id = escapeXml(plot.idPrefix ?? 'sae-plot');
  const x0 = MARGIN.left;
  const x1 = width - MARGIN.right;
  const y0 = MARGIN.top;
  const y1 = height - MARGIN.bottom;

  // Axis ranges from the points; explicit curve points extend them too.
  let omitted = 0;
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of plot.series) {
    for (const p of s.points) {
      if (isPlaceable(p)) {
        xs.push(p.x);
        ys.push(p.y);
      } else omitted++;
    }
    if (Array.isArray(s.curve)) {
      for (const p of s.curve as readonly XY[]) {
        if (isPlaceable(p)) {
          xs.push(p.x);
          ys.push(p.y);
        }
      }
    }
  }
  const [xlo, xhi] = logRange(xs);
  // Function curves add their values over the x range, so a fit that levels
  // off (towards L_irr) below the lowest point stays visible; values more
  // than a decade beyond the data are left out (they would squash the plot).
  const yData = logRange(ys);
  for (const s of plot.series) {
    if (typeof s.curve !== 'function') continue;
    for (const x of sampleLog(xlo, xhi, 50)) {
      const y = s.curve(x);
      if (y > 0 && Number.isFinite(y) && Math.abs(Math.log10(y) - clampTo(Math.log10(y), yData)) < 1)
        ys.push(y);
    }
  }
  const [ylo, yhi] = logRange(ys);
  const sx = (x: number) => x0 + ((Math.log10(x) - xlo) / (xhi - xlo)) * (x1 - x0);
  const sy = (y: number) => y1 - ((Math.log10(y) - ylo) / (yhi - ylo)) * (y1 - y0);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="system-ui, sans-serif" font-size="12">`,
  );
  if (plot.title) out.push(`<title>${escapeXml(plot.title)}</title>`);
  if (omitted > 0)
    out.push(`<desc>${omitted} point(s) with non-positive or non-finite values omitted</desc>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<defs><clipPath id="${id}-clip"><rect x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}"/></clipPath></defs>`,
  );

  // Grid and ticks.
  for (const t of logTicks(xlo, xhi)) {
    const x = px(x0 + ((t.at - xlo) / (xhi - xlo)) * (x1 - x0));
    if (t.label !== null) out.push(`<line x1="${x}" y1="${y0}" x2="${x}" y2="${y1}" stroke="#e5e5e5"/>`);
    out.push(`<line x1="${x}" y1="${y1}" x2="${x}" y2="${y1 + (t.label ? 6 : 3)}" stroke="#333"/>`);
    if (t.label) out.push(`<text x="${x}" y="${y1 + 20}" text-anchor="middle">${t.label}</text>`);
  }
  for (const t of logTicks(ylo, yhi)) {
    const y = px(y1 - ((t.at - ylo) / (yhi - ylo)) * (y1 - y0));
    if (t.label !== null) out.push(`<line x1="${x0}" y1="${y}" x2="${x1}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<line x1="${x0 - (t.label ? 6 : 3)}" y1="${y}" x2="${x0}" y2="${y}" stroke="#333"/>`);
    if (t.label)
      out.push(`<text x="${x0 - 9}" y="${y}" text-anchor="end" dominant-baseline="middle">${t.label}</text>`);
  }
  out.push(
    `<rect x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" fill="none" stroke="#333"/>`,
    `<text x="${px((x0 + x1) / 2)}" y="${height - 12}" text-anchor="middle">${escapeXml(plot.xLabel)}</text>`,
    `<text x="16" y="${px((y0 + y1) / 2)}" text-anchor="middle" transform="rotate(-90 16 ${px((y0 + y1) / 2)})">` +
      `${escapeXml(plot.yLabel)}</text>`,
  );
  if (plot.title) {
    out.push(
      `<text x="${px(width / 2)}" y="22" text-anchor="middle" font-size="14" font-weight="600">${escapeXml(plot.title)}</text>`,
    );
  }

  // Curves under points, both clipped to the plot area.
  plot.series.forEach((s, i) => {
    const color = escapeXml(s.color ?? PALETTE[i % PALETTE.length]);
    if (s.curve) {
      const pts =
        typeof s.curve === 'function'
          ? sampleLog(xlo, xhi, CURVE_SAMPLES).map((x) => ({ x, y: (s.curve as (x: number) => number)(x) }))
          : [...s.curve].sort((a, b) => a.x - b.x);
      const d = pathData(pts, sx, sy);
      if (d) {
        out.push(
          `<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5" clip-path="url(#${id}-clip)"/>`,
        );
      }
    }
    const circles = s.points
      .filter(isPlaceable)
      .map((p) => `<circle cx="${px(sx(p.x))}" cy="${px(sy(p.y))}" r="3.5" fill="${color}"/>`);
    if (circles.length) out.push(`<g clip-path="url(#${id}-clip)">${circles.join('')}</g>`);
  });

  // Legend: top-right inside the plot area.
  if (plot.series.length > 0) {
    const rowH = 18;
    const longest = Math.max(...plot.series.map((s) => s.name.length));
    const boxW = Math.min(x1 - x0 - 8, 44 + 7 * longest);
    const lx = x1 - boxW - 8;
    const ly = y0 + 8;
    out.push(
      `<g class="legend"><rect x="${px(lx)}" y="${ly}" width="${px(boxW)}" height="${plot.series.length * rowH + 8}" ` +
        `fill="#ffffff" fill-opacity="0.85" stroke="#ccc"/>`,
    );
    plot.series.forEach((s, i) => {
      const color = escapeXml(s.color ?? PALETTE[i % PALETTE.length]);
      const cy = ly + 4 + rowH * i + rowH / 2;
      if (s.curve)
        out.push(
          `<line x1="${px(lx + 6)}" y1="${cy}" x2="${px(lx + 30)}" y2="${cy}" stroke="${color}" stroke-width="1.5"/>`,
        );
      out.push(
        `<circle cx="${px(lx + 18)}" cy="${cy}" r="3.5" fill="${color}"/>`,
        `<text x="${px(lx + 38)}" y="${cy}" dominant-baseline="middle">${escapeXml(s.name)}</text>`,
      );
    });
    out.push('</g>');
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function clampTo(v: number, [lo, hi]: [number, number]): number {
  return Math.min(hi, Math.max(lo, v));
}

/** `count` x values log-uniform over [10^lo, 10^hi]. */
function sampleLog(lo: number, hi: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => 10 ** (lo + ((hi - lo) * i) / (count - 1)));
}

/**
 * SVG path data through the placeable points, starting a new subpath after
 * any gap (a non-positive or non-finite value) instead of drawing across it.
 */
function pathData(pts: readonly XY[], sx: (x: number) => number, sy: (y: number) => number): string {
  const parts: string[] = [];
  let pen = false;
  for (const p of pts) {
    if (!isPlaceable(p)) {
      pen = false;
      continue;
    }
    parts.push(`${pen ? 'L' : 'M'}${px(sx(p.x))} ${px(sy(p.y))}`);
    pen = true;
  }
  // A lone "M" draws nothing; drop paths with no segment.
  return parts.some((s) => s.startsWith('L')) ? parts.join(' ') : '';
}
