/**
 * The sweep's live log-log plots (Recharts, log axes): L(N) per k, L(k) per N, the MSE–L0 frontier and
 * tokens-to-convergence vs N, each with its fitted curve over the points, plus the fit readouts
 * (parameters ± stderr, R², or the FitError message while there are too few points).
 */
import { memo } from 'react';
import {
  Bar,
  BarChart,
  CartesianGrid,
  Cell,
  ComposedChart,
  Legend,
  Line,
  ResponsiveContainer,
  Scatter,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';
import { METHOD_LABEL, METHODS, type Method } from '../scaling/compare';
import { type CompareDocument, methodRuns } from '../scaling/compare-document';
import type { FitResult } from '../scaling/fit';
import { predictLN, predictLNk, predictPowerLaw } from '../scaling/laws';
import { type SweepDocument, sampleCurve } from '../scaling/runner';
import { PALETTE } from '../scaling/svg';
import type { FitOutcome } from '../scaling/sweep-result';
import { fmtNum } from './format';

/** Tooltip and vertical axis label shared by the sweep plots. */
const plotTooltip = {
  isAnimationActive: false,
  formatter: (v: unknown) => fmtNum(Number(v), 4),
  contentStyle: { background: 'var(--card)', border: '1px solid var(--border)', fontSize: 12 },
};
const yAxisLabel = (value: string) => ({
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
interface Series {
  /** stable key, also the testid suffix, e.g. "LN-k8" */
  id: string;
  /** palette index (default: the series' position); dotted curve when `dotted` */
  color?: number;
  dotted?: boolean;
  name: string;
  points: XY[];
  curve: XY[] | null;
}

const axisProps = {
  stroke: 'var(--muted)',
  tick: { fill: 'var(--muted)', fontSize: 11 },
  tickLine: false,
} as const;

function logDomain(values: number[], pad = 1.25): [number, number] {
  const v = values.filter((x) => Number.isFinite(x) && x > 0);
  if (!v.length) return [1, 10];
  const lo = Math.min(...v);
  const hi = Math.max(...v);
  return lo === hi ? [lo / 2, hi * 2] : [lo / pad, hi * pad];
}

/** Ticks on a log axis: powers of two (N, k axes) or 1-2-5 × 10^n, inside [lo, hi]. */
function logTicks([lo, hi]: [number, number], kind: 'pow2' | '125'): number[] {
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

const LogLogChart = memo(function LogLogChart(props: {
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
          label={{
            value: props.xLabel,
            position: 'insideBottom',
            offset: -8,
            fill: 'var(--muted)',
            fontSize: 11,
          }}
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

function FitReadout<P extends string>(props: {
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
function CurveTags({ series }: { series: Series[] }) {
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

export function SweepPlots({ doc }: { doc: SweepDocument }) {
  const runs = doc.runs;
  const ks = [...new Set(runs.map((r) => r.config.k))].sort((a, b) => a - b);
  const Ns = [...new Set(runs.map((r) => r.config.N))].sort((a, b) => a - b);
  const [nLo, nHi] = logDomain(Ns, 1.15);
  const [kLo, kHi] = logDomain(ks, 1.15);
  // Recharts does not always redraw log axes when series come and go: remount when a run lands.
  const v = runs.map((r) => r.config.id).join(',');

  const lnSeries: Series[] = ks.map((k) => {
    const o = doc.fits.LN.find((f) => f.k === k)?.outcome;
    return {
      id: `LN-k${k}`,
      name: `k=${k}`,
      points: runs.filter((r) => r.config.k === k).map((r) => ({ x: r.config.N, y: r.final.nmse })),
      curve: o?.ok ? sampleCurve((N) => predictLN(o.fit.params, N), nLo, nHi) : null,
    };
  });
  // When the joint law fits, draw it too (one curve per k, dotted) in the L(N) plot's readout.
  const lnk = doc.fits.LNk;
  const lnkSeries: Series[] = lnk.ok
    ? ks.map((k, i) => ({
        id: `LNk-k${k}`,
        color: i,
        dotted: true,
        name: `joint k=${k}`,
        points: [],
        curve: sampleCurve((N) => predictLNk(lnk.fit.params, N, k), nLo, nHi),
      }))
    : [];
  const lkSeries: Series[] = Ns.map((N) => {
    const o = doc.fits.Lk.find((f) => f.N === N)?.outcome;
    return {
      id: `Lk-N${N}`,
      name: `N=${N}`,
      points: runs.filter((r) => r.config.N === N).map((r) => ({ x: r.config.k, y: r.final.nmse })),
      curve: o?.ok ? sampleCurve((k) => predictPowerLaw(o.fit.params, k), kLo, kHi) : null,
    };
  });
  const frontier: Series[] = Ns.map((N) => {
    const pts = runs
      .filter((r) => r.config.N === N)
      .map((r) => ({ x: r.final.l0, y: r.final.nmse }))
      .sort((a, b) => a.x - b.x);
    return { id: `frontier-N${N}`, name: `N=${N}`, points: pts, curve: pts.length > 1 ? pts : null };
  });
  const tSeries: Series[] = ks.map((k) => {
    const o = doc.fits.T.find((f) => f.k === k)?.outcome;
    return {
      id: `T-k${k}`,
      name: `k=${k}`,
      points: runs
        .filter((r) => r.config.k === k && r.final.tokens_to_convergence !== null)
        .map((r) => ({ x: r.config.N, y: r.final.tokens_to_convergence as number })),
      curve: o?.ok ? sampleCurve((N) => predictPowerLaw(o.fit.params, N), nLo, nHi) : null,
    };
  });

  return (
    <div className="charts" data-testid="sweep-plots">
      <figure className="chart" data-testid="sweep-chart-LN">
        <figcaption>
          nMSE vs N, per k <span className="muted">L(N) = e^α N^β + L_irr (dashed); joint L(N,k) dotted</span>
        </figcaption>
        <LogLogChart
          key={v}
          series={[...lnSeries, ...lnkSeries]}
          xLabel="latents N"
          yLabel="nMSE"
          xTicks="pow2"
        />
        <CurveTags series={[...lnSeries, ...lnkSeries]} />
        <ul className="fits">
          {doc.fits.LN.map((f) => (
            <FitReadout key={f.k} id={`LN-k${f.k}`} label={`k=${f.k}:`} outcome={f.outcome} />
          ))}
          <FitReadout id="LNk" label="joint L(N,k):" outcome={doc.fits.LNk} />
        </ul>
      </figure>
      <figure className="chart" data-testid="sweep-chart-Lk">
        <figcaption>
          nMSE vs k, per N <span className="muted">L(k) = c k^β</span>
        </figcaption>
        <LogLogChart key={v} series={lkSeries} xLabel="k" yLabel="nMSE" xTicks="pow2" />
        <CurveTags series={lkSeries} />
        <ul className="fits">
          {doc.fits.Lk.map((f) => (
            <FitReadout key={f.N} id={`Lk-N${f.N}`} label={`N=${f.N}:`} outcome={f.outcome} />
          ))}
        </ul>
      </figure>
      <figure className="chart" data-testid="sweep-chart-frontier">
        <figcaption>
          MSE–L0 frontier <span className="muted">(held-out nMSE vs measured L0, per N)</span>
        </figcaption>
        <LogLogChart key={v} series={frontier} xLabel="L0" yLabel="nMSE" xTicks="125" />
      </figure>
      <figure className="chart" data-testid="sweep-chart-T">
        <figcaption>
          tokens to convergence vs N <span className="muted">T = c N^β (paper: β ≈ 0.6–0.65)</span>
        </figcaption>
        <LogLogChart key={v} series={tSeries} xLabel="latents N" yLabel="tokens" xTicks="pow2" />
        <CurveTags series={tSeries} />
        <ul className="fits">
          {doc.fits.T.map((f) => (
            <FitReadout key={f.k} id={`T-k${f.k}`} label={`k=${f.k}:`} outcome={f.outcome} />
          ))}
        </ul>
      </figure>
    </div>
  );
}

// ---------------------------------------------------------------------------
// Method comparison: MSE–L0 frontier per method (log L0, linear nMSE), dead fraction per method,
// TopK vs ReLU at equal L0.

export const ComparePlots = memo(function ComparePlots({ doc }: { doc: CompareDocument }) {
  const methods = doc.def.methods.filter((m) => methodRuns(doc.runs, m).length > 0);
  const all = doc.runs.map((r) => r.final.l0).filter((x) => x > 0);
  const xd = logDomain(all, 1.2);
  const ys = doc.runs.map((r) => r.final.nmse).filter(Number.isFinite);
  const yd: [number, number] = [0, ys.length ? Math.max(...ys) * 1.08 : 1];
  const key = doc.runs.map((r) => r.config.id).join(',');
  const color = (m: Method) => PALETTE[METHODS.indexOf(m) % PALETTE.length];
  return (
    <div className="charts" data-testid="compare-plots">
      <figure className="chart" data-testid="compare-chart-frontier">
        <figcaption>
          MSE–L0 frontier, N={doc.def.N}{' '}
          <span className="muted">(held-out nMSE vs L0, log x; filled: Pareto set)</span>
        </figcaption>
        <ResponsiveContainer width="100%" height={260}>
          <ComposedChart key={key} margin={{ top: 6, right: 12, bottom: 14, left: 0 }}>
            <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" />
            <XAxis
              dataKey="x"
              type="number"
              scale="log"
              domain={xd}
              ticks={logTicks(xd, '125')}
              allowDataOverflow
              tickFormatter={(v: number) => fmtNum(v, 3)}
              label={{
                value: 'L0',
                position: 'insideBottom',
                offset: -8,
                fill: 'var(--muted)',
                fontSize: 11,
              }}
              {...axisProps}
            />
            <YAxis
              dataKey="y"
              type="number"
              domain={yd}
              allowDataOverflow
              width={58}
              tickFormatter={(v: number) => fmtNum(v, 2)}
              label={yAxisLabel('nMSE')}
              {...axisProps}
            />
            <Tooltip {...plotTooltip} />
            <Legend verticalAlign="top" wrapperStyle={{ fontSize: 12 }} />
            {methods.map((m) => {
              const pts = methodRuns(doc.runs, m)
                .map((r) => ({ x: r.final.l0, y: r.final.nmse, pareto: r.pareto === true, id: r.config.id }))
                .filter((p) => p.x > 0)
                .sort((a, b) => a.x - b.x);
              return [
                <Line
                  key={`l-${m}`}
                  name={METHOD_LABEL[m]}
                  data={pts}
                  dataKey="y"
                  stroke={color(m)}
                  strokeWidth={1.5}
                  dot={false}
                  isAnimationActive={false}
                  legendType="none"
                />,
                <Scatter
                  key={`p-${m}`}
                  name={METHOD_LABEL[m]}
                  data={pts.filter((p) => p.pareto)}
                  fill={color(m)}
                  isAnimationActive={false}
                />,
                <Scatter
                  key={`d-${m}`}
                  name={`${METHOD_LABEL[m]} (dominated)`}
                  data={pts.filter((p) => !p.pareto)}
                  fill="var(--card)"
                  stroke={color(m)}
                  legendType="none"
                  isAnimationActive={false}
                />,
              ];
            })}
          </ComposedChart>
        </ResponsiveContainer>
        <p className="muted small">
          {methods.map((m) => (
            <span
              key={m}
              data-testid={`compare-frontier-${m}`}
              data-points={methodRuns(doc.runs, m).length}
              data-pareto={doc.frontiers.find((f) => f.method === m)?.pareto.length ?? 0}
              style={{ marginRight: 10, color: color(m) }}
            >
              {METHOD_LABEL[m]}: {methodRuns(doc.runs, m).length} runs
            </span>
          ))}
        </p>
        <ul className="fits small" data-testid="compare-equal-l0">
          {doc.topk_vs_relu ? (
            <li data-testid="compare-topk-vs-relu" data-overlap={doc.topk_vs_relu.overlap ? 'true' : 'false'}>
              <strong>TopK vs ReLU+L1 at equal L0:</strong>{' '}
              {doc.topk_vs_relu.overlap
                ? `nMSE_relu / nMSE_topk = ${doc.topk_vs_relu.points.map((p) => `${fmtNum(p.ratio, 3)} at L0 ${fmtNum(p.l0, 3)}`).join(', ')}${doc.topk_vs_relu.geomeanRatio !== null ? ` (geometric mean ${fmtNum(doc.topk_vs_relu.geomeanRatio, 3)})` : ''}`
                : doc.topk_vs_relu.summary}
            </li>
          ) : null}
          {doc.vs_topk
            .filter((c) => c.a !== 'relu')
            .map((c) => (
              <li key={c.a} data-testid={`compare-vs-topk-${c.a}`}>
                {c.summary}
              </li>
            ))}
        </ul>
      </figure>
      <figure className="chart" data-testid="compare-dead">
        <figcaption>Dead fraction per method</figcaption>
        <table className="small" data-testid="compare-dead-table">
          <thead>
            <tr>
              <th>method</th>
              <th>runs</th>
              <th>mean</th>
              <th>min</th>
              <th>max</th>
            </tr>
          </thead>
          <tbody>
            {doc.dead.map((d) => (
              <tr key={d.method} data-testid={`compare-dead-${d.method}`} data-mean={d.mean}>
                <td style={{ color: color(d.method) }}>{METHOD_LABEL[d.method]}</td>
                <td>{d.runs}</td>
                <td>{fmtNum(d.mean * 100, 3)}%</td>
                <td>{fmtNum(d.min * 100, 3)}%</td>
                <td>{fmtNum(d.max * 100, 3)}%</td>
              </tr>
            ))}
          </tbody>
        </table>
        <ResponsiveContainer width="100%" height={160}>
          <BarChart
            data={doc.dead.map((d) => ({ name: METHOD_LABEL[d.method], dead: d.mean, method: d.method }))}
          >
            <CartesianGrid stroke="var(--grid)" strokeDasharray="3 3" />
            <XAxis dataKey="name" {...axisProps} />
            <YAxis
              domain={[0, 1]}
              width={40}
              tickFormatter={(v: number) => `${Math.round(v * 100)}%`}
              {...axisProps}
            />
            <Bar dataKey="dead" isAnimationActive={false}>
              {doc.dead.map((d) => (
                <Cell key={d.method} fill={color(d.method)} />
              ))}
            </Bar>
          </BarChart>
        </ResponsiveContainer>
      </figure>
    </div>
  );
});
