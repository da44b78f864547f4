/** The evaluation's readout tile and tables: downstream loss, probes, ablation sparsity. */
import type { FullEvalReport } from '../worker/protocol';
import { LatentHistogram } from './EvalCharts';
import { fmtInt, fmtNum, fmtPct } from './format';

export function Tile(props: {
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

export function Downstream({
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

export function Probes({ probes }: { probes: NonNullable<FullEvalReport['probes']> }) {
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

export function Ablation({ ab }: { ab: NonNullable<FullEvalReport['ablation']> }) {
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
