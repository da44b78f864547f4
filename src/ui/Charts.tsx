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
import { type SeriesSnapshot, useSeries } from '../store/series';
import type { MetricPoint } from '../worker/protocol';
import { fmtCompact, fmtNum } from './format';

const HEIGHT = 190;
/** 1, 2 or 5 × 10^n at or above v */
function niceTop(v: number): number {
  if (!(v > 0)) return 1;
  const e = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * e >= v) return m * e;
  return 10 * e;
}

const pos = (v: number) => (Number.isFinite(v) && v > 0 ? v : null);

interface Row {
  tokens: number;
  loss: number | null;
  nmse: number | null;
  l0: number;
  dead: number;
  tps: number;
  lr: number;
}

function rows(points: MetricPoint[]): Row[] {
  return points.map((p) => ({
    tokens: p.tokens,
    loss: pos(p.loss),
    nmse: pos(p.nmse),
    l0: p.l0,
    dead: p.deadFraction,
    tps: p.tokensPerS,
    lr: p.lr,
  }));
}

const axisProps = {
  stroke: 'var(--muted)',
  tick: { fill: 'var(--muted)', fontSize: 11 },
  tickLine: false,
} as const;

function XTokens() {
  return (
    <XAxis
      dataKey="tokens"
      type="number"
      domain={['dataMin', 'dataMax']}
      tickFormatter={(v: number) => fmtCompact(v)}
      {...axisProps}
    />
  );
}

const tooltipProps = {
  contentStyle: {
    background: 'var(--card)',
    border: '1px solid var(--border)',
    borderRadius: 6,
    fontSize: 12,
  },
  labelFormatter: (v: unknown) => `${fmtCompact(Number(v))} tokens`,
  formatter: (v: unknown) => fmtNum(Number(v), 4),
  isAnimationActive: false,
} as const;

const LossChart = memo(function LossChart({ data, evals }: { data: Row[]; evals: SeriesSnapshot['evals'] }) {
  const evalRows = evals.filter((e) => e.nmse > 0).map((e) => ({ tokens: e.tokens, heldOut: e.nmse }));
  return (
    <ResponsiveContainer width="100%" height={HEIGHT + 30}>
      <ComposedChart data={data} margin={{ top: 6, right: 12, bottom: 0, left: 0 }}>
        <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" />
        <XTokens />
        <YAxis
          scale="log"
          domain={['auto', 'auto']}
          allowDataOverflow
          width={54}
          tickFormatter={(v: number) => fmtNum(v, 2)}
          {...axisProps}
        />
        <Tooltip {...tooltipProps} />
        <Legend wrapperStyle={{ fontSize: 12 }} />
        <Line
          name="loss"
          dataKey="loss"
          stroke="var(--c2)"
          dot={false}
          isAnimationActive={false}
          strokeWidth={1.5}
          connectNulls
        />
        <Line
          name="nMSE"
          dataKey="nmse"
          stroke="var(--c1)"
          dot={false}
          isAnimationActive={false}
          strokeWidth={2}
          connectNulls
        />
        <Scatter
          name="held-out nMSE"
          data={evalRows}
          dataKey="heldOut"
          fill="var(--c3)"
          isAnimationActive={false}
        />
      </ComposedChart>
    </ResponsiveContainer>
  );
});

const SmallChart = memo(function SmallChart(props: {
  data: Row[];
  k: keyof Row;
  color: string;
  name: string;
  fmt?: (v: number) => string;
  /** lower bound and minimum span of the y axis (so a flat line does not get an odd axis) */
  floor?: number;
  minTop?: number;
}) {
  return (
    <ResponsiveContainer width="100%" height={HEIGHT}>
      <ComposedChart data={props.data} margin={{ top: 6, right: 12, bottom: 0, left: 0 }}>
        <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" />
        <XTokens />
        <YAxis
          width={54}
          domain={
            props.floor === undefined
              ? ['auto', 'auto']
              : [props.floor, (max: number) => niceTop(Math.max(max * 1.1, props.minTop ?? 0))]
          }
          allowDecimals
          tickFormatter={props.fmt ?? ((v: number) => fmtNum(v, 2))}
          {...axisProps}
        />
        <Tooltip {...tooltipProps} />
        <Line
          name={props.name}
          dataKey={props.k}
          stroke={props.color}
          dot={false}
          isAnimationActive={false}
          strokeWidth={1.75}
        />
      </ComposedChart>
    </ResponsiveContainer>
  );
});

export function Charts() {
  const s = useSeries(400);
  const data = rows(s.points);
  const empty = data.length === 0;
  return (
    <section className="card" aria-label="charts">
      <div className="card-head">
        <h2>Live curves</h2>
        <span className="muted small" data-testid="points-count" data-first-step={s.points[0]?.step ?? ''}>
          {s.points.length} points{s.received > s.points.length ? ` (of ${s.received}, decimated)` : ''}
        </span>
      </div>
      {empty ? (
        <div className="chart-empty">Curves appear here once training starts.</div>
      ) : (
        <div className="charts">
          <figure className="chart wide" data-testid="chart-loss">
            <figcaption>
              loss and nMSE <span className="muted">(log scale; dots: held-out nMSE)</span>
            </figcaption>
            <LossChart data={data} evals={s.evals} />
          </figure>
          <figure className="chart" data-testid="chart-l0">
            <figcaption>L0 (active latents per token)</figcaption>
            <SmallChart data={data} k="l0" color="var(--c4)" name="L0" floor={0} minTop={1} />
          </figure>
          <figure className="chart" data-testid="chart-dead">
            <figcaption>dead fraction</figcaption>
            <SmallChart
              data={data}
              k="dead"
              color="var(--c5)"
              name="dead"
              floor={0}
              minTop={0.1}
              fmt={(v) => `${Number((v * 100).toFixed(1))}%`}
            />
          </figure>
          <figure className="chart" data-testid="chart-tps">
            <figcaption>tokens / s</figcaption>
            <SmallChart
              data={data}
              k="tps"
              color="var(--c6)"
              name="tokens/s"
              floor={0}
              minTop={1}
              fmt={fmtCompact}
            />
          </figure>
          <figure className="chart" data-testid="chart-lr">
            <figcaption>learning rate</figcaption>
            <SmallChart
              data={data}
              k="lr"
              color="var(--c2)"
              name="lr"
              floor={0}
              minTop={1e-6}
              fmt={(v) => v.toExponential(1)}
            />
          </figure>
        </div>
      )}
    </section>
  );
}
