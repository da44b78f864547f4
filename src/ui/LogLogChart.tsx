/** Shared pieces of the sweep and comparison plots: the log–log chart, fit readouts, axis helpers. */
import { memo } from 'react';
import {
  CartesianGrid,
  ComposedChart,
  Legend,
  Line,
  ResponsiveContainer,
  Scatter,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';
import type { FitResult } from '../scaling/fit';
import { PALETTE } from '../scaling/svg';
import type { FitOutcome } from '../scaling/sweep-result';
import { fmtNum } from './format';

/** Tooltip and vertical axis label shared by the sweep plots. */

export const plotTooltip = {
  isAnimationActive: false,
  formatter: (v: unknown) => fmtNum(Number(v), 4),
  contentStyle: { background: 'var(--card)', border: '1px solid var(--border)', fontSize: 12 },
};
export const xAxisLabel = (value: string) => ({
  value,
  position: 'insideBottom' as const,
  offset: -8,
  fill: 'var(--muted)',
  fontSize: 11,
});
export const yAxisLabel = (value: string) => ({
  value,
  angle: -90,
  position: 'insideLeft' as const,
  fill: 'var(--muted)',
  fontSize: 11,
});

interface XY {
  x: number;
  y: number;
}
export interface Series {
  /** stable key, also the testid suffix, e.g. "LN-k8" */
  id: string;
  /** palette index (default: the series' position); dotted curve when `dotted` */
  color?: number;
  dotted?: boolean;
  name: string;
  points: XY[];
  curve: XY[] | null;
}

export const axisProps = {
  stroke: 'var(--muted)',
  tick: { fill: 'var(--muted)', fontSize: 11 },
  tickLine: false,
} as const;

export function logDomain(values: number[], pad = 1.25): [number, number] {
  const v = values.filter((x) => Number.isFinite(x) && x > 0);
  if (!v.length) return [1, 10];
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  return lo === hi ? [lo / 2, hi * 2] : [lo / pad, hi * pad];
}

/** Ticks on a log axis: powers of two (N, k axes) or 1-2-5 × 10^n, inside [lo, hi]. */
export function logTicks([lo, hi]: [number, number], kind: 'pow2' | '125'): number[] {
  const out: number[] = [];
  if (kind === 'pow2') {
    for (let e = Math.ceil(Math.log2(lo)); 2 ** e <= hi; e++) out.push(2 ** e);
  } else {
    for (let e = Math.floor(Math.log10(lo)); 10 ** e <= hi; e++) {
      for (const m of [1, 2, 5]) if (m * 10 ** e >= lo && m * 10 ** e <= hi) out.push(m * 10 ** e);
    }
    if (out.length < 3) {
      out.length = 0;
      for (let e = Math.floor(Math.log10(lo)); 10 ** e <= hi; e++) {
        for (let m = 1; m < 10; m++) if (m * 10 ** e >= lo && m * 10 ** e <= hi) out.push(m * 10 ** e);
      }
    }
  }
  return out;
}

export const LogLogChart = memo(function LogLogChart(props: {
  series: Series[];
  xLabel: string;
  yLabel: string;
  xTicks: 'pow2' | '125';
}) {
  const xs = props.series.flatMap((s) => s.points.map((p) => p.x));
  const ys = props.series.flatMap((s) => [...s.points, ...(s.curve ?? [])].map((p) => p.y));
  const xd = logDomain(xs);
  const yd = logDomain(ys, 1.1);
  return (
    <ResponsiveContainer width="100%" height={230}>
      <ComposedChart margin={{ top: 6, right: 12, bottom: 14, left: 0 }}>
        <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" />
        <XAxis
          dataKey="x"
          type="number"
          scale="log"
          domain={xd}
          allowDataOverflow
          tickFormatter={(v: number) => fmtNum(v, 3)}
          label={xAxisLabel(props.xLabel)}
          {...axisProps}
        />
        <YAxis
          dataKey="y"
          type="number"
          scale="log"
          domain={yd}
          ticks={logTicks(yd, '125')}
          allowDataOverflow
          width={58}
          tickFormatter={(v: number) => fmtNum(v, 2)}
          label={yAxisLabel(props.yLabel)}
          {...axisProps}
        />
        <Tooltip {...plotTooltip} />
        <Legend verticalAlign="top" wrapperStyle={{ fontSize: 12 }} />
        {props.series.map((s, i) =>
          s.points.length === 0 ? null : (
            <Scatter
              key={`p-${s.id}`}
              name={s.name}
              data={s.points}
              fill={PALETTE[(s.color ?? i) % PALETTE.length]}
              isAnimationActive={false}
            />
          ),
        )}
        {props.series.map((s, i) =>
          s.curve ? (
            <Line
              key={`c-${s.id}`}
              name={`${s.name} fit`}
              data={s.curve}
              dataKey="y"
              stroke={PALETTE[(s.color ?? i) % PALETTE.length]}
              strokeWidth={s.dotted ? 1 : 1.5}
              strokeDasharray={s.dotted ? '1 3' : '5 3'}
              dot={false}
              legendType="none"
              isAnimationActive={false}
            />
          ) : null,
        )}
      </ComposedChart>
    </ResponsiveContainer>
  );
});

export function FitReadout<P extends string>(props: {
  id: string;
  label: string;
  outcome: FitOutcome<P> | undefined;
}) {
  const o = props.outcome;
  if (!o) return null;
  return (
    <li data-testid={`fit-${props.id}`} data-ok={o.ok ? 'true' : 'false'} className="small">
      <strong>{props.label}</strong>{' '}
      {o.ok ? <FitParams fit={o.fit} id={props.id} /> : <span className="muted">{o.error}</span>}
    </li>
  );
}

function FitParams<P extends string>({ fit, id }: { fit: FitResult<P>; id: string }) {
  return (
    <span>
      {fit.paramNames.map((p) => (
        <span key={p} data-testid={`fit-${id}-${p}`} data-value={fit.params[p]} style={{ marginRight: 10 }}>
          {p} = {fmtNum(fit.params[p], 4)} ± {fmtNum(fit.stderr[p], 2)}
        </span>
      ))}
      <span data-testid={`fit-${id}-r2`} data-value={fit.r2}>
        R² = {fmtNum(fit.r2, 4)}
      </span>
    </span>
  );
}

/** Drawn fitted curves, one tagged element each (what the e2e test looks for). */
export function CurveTags({ series }: { series: Series[] }) {
  const drawn = series.filter((s) => s.curve);
  if (!drawn.length) return <p className="muted small">no fitted curve yet</p>;
  return (
    <p className="muted small">
      fitted:{' '}
      {drawn.map((s) => (
        <span
          key={s.id}
          data-testid={`curve-${s.id}`}
          data-points={s.curve?.length}
          style={{ marginRight: 8 }}
        >
          {s.name}
        </span>
      ))}
    </p>
  );
}
