/** The evaluation's charts (Recharts): latent density, a latent histogram, recovery, explanation scores. */
import {
  Bar,
  BarChart,
  CartesianGrid,
  Line,
  LineChart,
  ReferenceLine,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';
import type { FullEvalReport } from '../worker/protocol';
import { fmtInt, fmtNum, fmtPct } from './format';

const axisProps = {
  stroke: 'var(--muted)',
  tick: { fill: 'var(--muted)', fontSize: 11 },
  tickLine: false,
} as const;

const tooltipStyle = {
  contentStyle: {
    background: 'var(--card)',
    border: '1px solid var(--border)',
    borderRadius: 6,
    fontSize: 12,
  },
  isAnimationActive: false,
} as const;

export function DensityChart({ r }: { r: FullEvalReport }) {
  const { edges, counts, neverFired } = r.density;
  const data = counts.map((c, i) => ({ x: (edges[i] + edges[i + 1]) / 2, latents: c }));
  return (
    <figure className="chart" data-testid="chart-density">
      <figcaption>
        Latent density: log₁₀ firing frequency{' '}
        <span className="muted thin">
          ({fmtInt(r.latents.length - neverFired)} fired · {fmtInt(neverFired)} never)
        </span>
      </figcaption>
      <LatentHistogram data={data} height={200} what="freq" fill="var(--c1)" />
    </figure>
  );
}

/** Histogram of latents over a log₁₀ quantity: data rows {x: bin centre, latents: count}. */
export function LatentHistogram({
  data,
  height,
  what,
  fill,
}: {
  data: { x: number; latents: number }[];
  height: number;
  what: string;
  fill: string;
}) {
  return (
    <ResponsiveContainer width="100%" height={height}>
      <BarChart data={data} margin={{ top: 6, right: 12, bottom: 0, left: 0 }} barCategoryGap={1}>
        <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" vertical={false} />
        <XAxis dataKey="x" tickFormatter={(v: number) => v.toFixed(1)} {...axisProps} />
        <YAxis width={40} allowDecimals={false} {...axisProps} />
        <Tooltip
          {...tooltipStyle}
          labelFormatter={(v: unknown) => `log₁₀ ${what} ≈ ${Number(v).toFixed(2)}`}
          formatter={(v: unknown) => [fmtInt(Number(v)), 'latents']}
        />
        <Bar dataKey="latents" fill={fill} isAnimationActive={false} />
      </BarChart>
    </ResponsiveContainer>
  );
}

export function RecoveryChart({ rec }: { rec: NonNullable<FullEvalReport['recovery']> }) {
  const data = rec.sorted.map((c, i) => ({ rank: i / Math.max(1, rec.sorted.length - 1), cos: c }));
  return (
    <figure className="chart" data-testid="chart-recovery">
      <figcaption>
        Feature recovery: mean max cos {fmtNum(rec.meanMaxCos, 3)} · {fmtPct(rec.fractionRecovered)} ≥{' '}
        {rec.threshold} <span className="muted thin">(chance {fmtNum(rec.chance, 3)})</span>
      </figcaption>
      <ResponsiveContainer width="100%" height={200}>
        <LineChart data={data} margin={{ top: 6, right: 12, bottom: 0, left: 0 }}>
          <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" />
          <XAxis
            dataKey="rank"
            type="number"
            domain={[0, 1]}
            tickFormatter={(v: number) => fmtPct(v, 0)}
            {...axisProps}
          />
          <YAxis width={40} domain={[0, 1]} {...axisProps} />
          <Tooltip
            {...tooltipStyle}
            formatter={(v: unknown) => fmtNum(Number(v), 3)}
            labelFormatter={() => 'best-match cosine'}
          />
          <ReferenceLine y={rec.threshold} stroke="var(--c3)" strokeDasharray="4 3" />
          {Number.isFinite(rec.chance) && (
            <ReferenceLine y={rec.chance} stroke="var(--muted)" strokeDasharray="2 3" />
          )}
          <Line dataKey="cos" stroke="var(--c4)" dot={false} isAnimationActive={false} strokeWidth={2} />
        </LineChart>
      </ResponsiveContainer>
    </figure>
  );
}

export function ExplanationChart({ ex }: { ex: NonNullable<FullEvalReport['explanations']> }) {
  const data = ex.histogram.map((c, i) => ({ x: `${(i / 10).toFixed(1)}`, latents: c }));
  return (
    <figure className="chart" data-testid="chart-explanations">
      <figcaption>
        Explanation F1 ({ex.count} latents): mean F1 {fmtNum(ex.meanF1, 3)} · precision{' '}
        {fmtNum(ex.meanPrecision, 3)} · recall {fmtNum(ex.meanRecall, 3)}
      </figcaption>
      <ResponsiveContainer width="100%" height={200}>
        <BarChart data={data} margin={{ top: 6, right: 12, bottom: 0, left: 0 }} barCategoryGap={2}>
          <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="x" {...axisProps} />
          <YAxis width={40} allowDecimals={false} {...axisProps} />
          <Tooltip {...tooltipStyle} labelFormatter={(v: unknown) => `F1 ≥ ${v}`} />
          <Bar dataKey="latents" fill="var(--c6)" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </figure>
  );
}
