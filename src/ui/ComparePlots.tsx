/** The method comparison's plots: frontiers (nMSE vs L0), dead fractions, the ablation table. */
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
import { PALETTE } from '../scaling/svg';
import { fmtNum } from './format';

/** Tooltip and vertical axis label shared by the sweep plots. */
import { axisProps, logDomain, logTicks, plotTooltip, xAxisLabel, yAxisLabel } from './LogLogChart';

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
              label={xAxisLabel('L0')}
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
