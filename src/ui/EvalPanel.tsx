/**
 * Evaluation view: runs the worker's full evaluation of the current (paused) or last finished run
 * and shows what the learned latents are: reconstruction tiles, the latent density histogram,
 * feature recovery, probes, explanation scores, the downstream loss, and the latent browser.
 */
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
import { setEvalOption, useEval } from '../store/eval';
import { useLab } from '../store/lab';
import { lmDataset, runFullEval } from '../store/worker';
import type { FullEvalReport } from '../worker/protocol';
import { fmtInt, fmtNum, fmtPct } from './format';
import { LatentBrowser } from './LatentBrowser';
import './EvalPanel.css';

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

export function EvalPanel() {
  const run = useLab((s) => s.run);
  const info = useLab((s) => s.dataset.info);
  const ev = useEval();
  const status = run?.status;
  // A paused or finished run, or an imported SAE (the worker says so when there is nothing to evaluate).
  const evaluable = !!info && status !== 'running' && status !== 'preparing' && status !== 'stopping';
  const canRun = evaluable && !ev.busy;
  // demo, or activations extracted in the page from a language model's residual stream
  const demo = !!info && (info.kind === 'demo' || !!info.lm?.spliceable) && lmDataset();
  const lmName = info?.lm
    ? `${info.lm.model} at ${info.lm.family === 'gpt2' ? info.lm.siteLabel : `layer ${info.lm.layer}`}`
    : 'stories260K at layer 2';
  const o = ev.options;
  let why = '';
  if (!info) why = 'load a dataset first';
  else if (!evaluable) why = 'pause the run or let it finish';
  else if (!run) why = 'evaluates the last trained (or imported) SAE';

  return (
    <section className="card eval" aria-label="evaluation" data-testid="eval-panel">
      <div className="card-head">
        <h2>Evaluation</h2>
        <span className="muted small">what the learned latents are, on held-out rows</span>
      </div>
      <div className="grid eval-options">
        <div className="field">
          <label htmlFor="eval-max-rows">Max rows</label>
          <input
            id="eval-max-rows"
            type="number"
            min={256}
            step={1024}
            value={o.maxRows}
            data-testid="eval-max-rows"
            onChange={(e) => setEvalOption('maxRows', Math.max(1, Number(e.target.value) || 0))}
          />
          <p className="help">held-out rows encoded on the GPU</p>
        </div>
        <div className="field">
          <label htmlFor="eval-explain">Latents to explain</label>
          <input
            id="eval-explain"
            type="number"
            min={0}
            value={o.explainLatents}
            data-testid="eval-explain"
            onChange={(e) => setEvalOption('explainLatents', Math.max(0, Number(e.target.value) || 0))}
          />
          <p className="help">N2G token patterns{info && !info.hasTokens ? ' (needs token ids)' : ''}</p>
        </div>
        <div className="field">
          <label htmlFor="eval-labels">Labels (.npy)</label>
          <input
            id="eval-labels"
            type="file"
            accept=".npy"
            data-testid="eval-labels"
            onChange={(e) => setEvalOption('labels', e.target.files?.[0] ?? null)}
          />
          <p className="help">one integer per row → probe losses</p>
        </div>
        <div className="field">
          <label htmlFor="eval-directions">True directions (.npy)</label>
          <input
            id="eval-directions"
            type="file"
            accept=".npy"
            data-testid="eval-directions"
            onChange={(e) => setEvalOption('directions', e.target.files?.[0] ?? null)}
          />
          <p className="help">
            [F, d] → feature recovery{info?.kind === 'synthetic' ? ' (synthetic: built in)' : ''}
          </p>
        </div>
        {demo && (
          <div className="field toggle">
            <label>
              <input
                type="checkbox"
                checked={o.downstream}
                data-testid="eval-downstream"
                onChange={(e) => setEvalOption('downstream', e.target.checked)}
              />
              Downstream loss
            </label>
            <p className="help">splice the SAE into {lmName} (WGSL forward on the GPU)</p>
          </div>
        )}
        {demo && (
          <div className="field toggle">
            <label>
              <input
                type="checkbox"
                checked={o.ablation}
                data-testid="eval-ablation"
                onChange={(e) => setEvalOption('ablation', e.target.checked)}
              />
              Ablation sparsity
            </label>
            <p className="help">
              <input
                type="number"
                min={1}
                value={o.ablationLatents}
                aria-label="latents to ablate"
                data-testid="eval-ablation-latents"
                style={{ width: '5em' }}
                onChange={(e) =>
                  setEvalOption('ablationLatents', Math.max(1, Math.floor(Number(e.target.value) || 1)))
                }
              />{' '}
              latents over{' '}
              <input
                type="number"
                min={16}
                step={128}
                value={o.ablationTokens}
                aria-label="tokens to look for them in"
                data-testid="eval-ablation-tokens"
                style={{ width: '5.5em' }}
                onChange={(e) =>
                  setEvalOption('ablationTokens', Math.max(16, Math.floor(Number(e.target.value) || 16)))
                }
              />{' '}
              held-out tokens: how many logits each latent moves (§4.5)
            </p>
          </div>
        )}
      </div>
      <div className="row wrap controls">
        <button type="button" disabled={!canRun} onClick={runFullEval} data-testid="eval-run">
          {ev.busy ? 'Evaluating…' : 'Evaluate'}
        </button>
        {why && <span className="muted small">{why}</span>}
        {ev.busy && (
          <span className="muted small" data-testid="eval-phase">
            {ev.phase} · {fmtPct(ev.fraction, 0)}
          </span>
        )}
      </div>
      {ev.busy && (
        <div
          className="progress"
          role="progressbar"
          aria-label="evaluation progress"
          aria-valuenow={Math.round(ev.fraction * 100)}
        >
          <div className="bar" style={{ width: `${(ev.fraction * 100).toFixed(1)}%` }} />
        </div>
      )}
      {ev.error && !ev.busy && (
        <p className="bad small" data-testid="eval-error">
          {ev.error}
        </p>
      )}
      {ev.report && (
        <Report r={ev.report} stale={!!run && ev.reportRunId !== null && ev.reportRunId !== run.runId} />
      )}
    </section>
  );
}

function Tile(props: {
  label: string;
  testid: string;
  value: number;
  children: React.ReactNode;
  title?: string;
}) {
  return (
    <div className="readout" title={props.title}>
      <span className="r-label">{props.label}</span>
      <span className="r-value" data-testid={props.testid} data-value={String(props.value)}>
        {props.children}
      </span>
    </div>
  );
}

function Report({ r, stale }: { r: FullEvalReport; stale: boolean }) {
  return (
    <div className="eval-report" data-testid="eval-report">
      {stale && <p className="muted small">This report describes an earlier run.</p>}
      {r.weights === 'ema' && (
        <p className="muted small" data-testid="eval-weights">
          Evaluated with the EMA of the weights (the run kept one), as the export holds.
        </p>
      )}
      <div className="readouts">
        <Tile label="rows" testid="eval-rows" value={r.rows}>
          {fmtInt(r.rows)}
        </Tile>
        <Tile
          label="nMSE"
          testid="eval-nmse"
          value={r.nmse}
          title="Σ‖x̂ − x‖² / Σ‖x − μ‖² on raw activations, μ the dataset mean (the run panel's held-out nMSE)"
        >
          {fmtNum(r.nmse, 4)}
        </Tile>
        <Tile label="explained variance" testid="eval-ev" value={r.explainedVariance}>
          {fmtPct(r.explainedVariance)}
        </Tile>
        {r.prefixNmse?.map((v, h) => (
          <Tile
            key={`prefix-${r.prefixWidths?.[h]}`}
            label={`nMSE, first ${fmtInt(r.prefixWidths?.[h] ?? 0)}`}
            testid={`eval-prefix-nmse-${h}`}
            value={v}
            title="Matryoshka: the reconstruction by this prefix of the dictionary alone"
          >
            {fmtNum(v, 4)}
          </Tile>
        ))}
        <Tile label="L0" testid="eval-l0" value={r.l0}>
          {fmtNum(r.l0, 3)}
        </Tile>
        <Tile label="never fired" testid="eval-dead" value={r.deadFraction} title="on the evaluated rows">
          {fmtPct(r.deadFraction)}
        </Tile>
        <Tile
          label="dead by rule"
          testid="eval-dead-rule"
          value={r.deadFractionRule}
          title="deadTokens rule during training"
        >
          {fmtPct(r.deadFractionRule)}
        </Tile>
      </div>
      <div className="charts eval-charts">
        <DensityChart r={r} />
        {r.recovery && <RecoveryChart rec={r.recovery} />}
        {r.explanations && <ExplanationChart ex={r.explanations} />}
      </div>
      {r.downstream && <Downstream ds={r.downstream} run={r.downstreamRun} />}
      {r.ablation && <Ablation ab={r.ablation} />}
      {r.probes && r.probes.length > 0 && <Probes probes={r.probes} />}
      <LatentBrowser />
    </div>
  );
}

function DensityChart({ r }: { r: FullEvalReport }) {
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
function LatentHistogram({
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

function RecoveryChart({ rec }: { rec: NonNullable<FullEvalReport['recovery']> }) {
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

function ExplanationChart({ ex }: { ex: NonNullable<FullEvalReport['explanations']> }) {
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

function Downstream({
  ds,
  run,
}: {
  ds: NonNullable<FullEvalReport['downstream']>;
  run?: FullEvalReport['downstreamRun'];
}) {
  return (
    <div className="eval-block" data-testid="eval-downstream-report">
      <h3>
        Downstream loss{' '}
        <span className="muted thin small" data-testid="ds-backend" data-backend={run?.backend ?? ''}>
          ({fmtInt(ds.tokens)} held-out tokens, nats/token
          {run ? `; ${run.backend === 'gpu' ? 'WGSL' : 'CPU'} forward, ${run.seconds.toFixed(1)} s` : ''})
        </span>
      </h3>
      <div className="readouts">
        <Tile label="clean" testid="ds-clean" value={ds.cleanLoss}>
          {fmtNum(ds.cleanLoss, 4)}
        </Tile>
        <Tile label="SAE spliced" testid="ds-spliced" value={ds.splicedLoss}>
          {fmtNum(ds.splicedLoss, 4)}
        </Tile>
        <Tile label="zero-ablated" testid="ds-zero" value={ds.zeroLoss}>
          {fmtNum(ds.zeroLoss, 4)}
        </Tile>
        <Tile label="Δ loss" testid="ds-delta" value={ds.deltaLoss}>
          {fmtNum(ds.deltaLoss, 3)}
        </Tile>
        <Tile label="fraction recovered" testid="ds-recovered" value={ds.fractionRecovered}>
          {fmtPct(ds.fractionRecovered)}
        </Tile>
        <Tile label="KL(clean ‖ SAE)" testid="ds-kl" value={ds.kl}>
          {fmtNum(ds.kl, 3)}
        </Tile>
      </div>
    </div>
  );
}

function Probes({ probes }: { probes: NonNullable<FullEvalReport['probes']> }) {
  return (
    <div className="eval-block" data-testid="eval-probes">
      <h3>Probes (best single latent, mean cross-entropy in nats)</h3>
      <table className="tbl">
        <thead>
          <tr>
            <th>task</th>
            <th>best latent</th>
            <th className="num">latent loss</th>
            <th className="num">constant</th>
            <th className="num">raw probe</th>
          </tr>
        </thead>
        <tbody>
          {probes.map((p) => (
            <tr key={p.task}>
              <td>{p.task}</td>
              <td>{p.bestLatent >= 0 ? `#${p.bestLatent}` : '—'}</td>
              <td className="num">{fmtNum(p.loss, 4)}</td>
              <td className="num">{fmtNum(p.constantLoss, 4)}</td>
              <td className="num">{fmtNum(p.rawLoss, 4)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Ablation({ ab }: { ab: NonNullable<FullEvalReport['ablation']> }) {
  const data = ab.histogram.counts.map((c, i) => ({
    x: (ab.histogram.edges[i] + ab.histogram.edges[i + 1]) / 2,
    latents: c,
  }));
  return (
    <div className="eval-block" data-testid="eval-ablation-report">
      <h3>
        Ablation sparsity{' '}
        <span className="muted thin small">
          ({ab.latents} of {ab.activeLatents} active latents, {ab.positionsPerLatent} positions each, over{' '}
          {ab.futureTokens} positions × {fmtInt(ab.vocab)} logits; {ab.backend === 'gpu' ? 'WGSL' : 'CPU'}{' '}
          forward, {ab.forwards} passes, {ab.seconds.toFixed(1)} s)
        </span>
      </h3>
      <p className="muted small">
        Each latent is removed where it fires; the change in the next {ab.futureTokens} positions' logits
        (median per position removed) has an effective number of moved logits (‖Δ‖₁/‖Δ‖₂)². As a fraction of
        all {ab.futureTokens}·{fmtInt(ab.vocab)}: lower is sparser.
      </p>
      <div className="charts eval-charts">
        <figure className="chart" data-testid="chart-ablation">
          <figcaption>
            log₁₀ fraction of logits moved, per latent{' '}
            <span className="muted thin">(mean {fmtNum(ab.meanFraction, 3)})</span>
          </figcaption>
          <LatentHistogram data={data} height={180} what="fraction" fill="var(--c3)" />
        </figure>
        <table className="tbl" data-testid="ablation-quantiles">
          <thead>
            <tr>
              <th>quantile</th>
              <th className="num">fraction</th>
              <th className="num">(L1/L2)²</th>
            </tr>
          </thead>
          <tbody>
            {ab.quantiles.map((q) => (
              <tr key={q.q}>
                <td>{q.q === 0 ? 'min' : q.q === 1 ? 'max' : `${Math.round(q.q * 100)}%`}</td>
                <td
                  className="num"
                  data-testid={`ablation-q${Math.round(q.q * 100)}`}
                  data-value={String(q.fraction)}
                >
                  {fmtNum(q.fraction, 3)}
                </td>
                <td className="num">{fmtNum(q.count, 4)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
