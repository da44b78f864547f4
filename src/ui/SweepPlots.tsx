/**
 * The sweep's live log-log plots (Recharts, log axes): L(N) per k, L(k) per N, the MSE–L0 frontier and
 * tokens-to-convergence vs N, each with its fitted curve over the points, plus the fit readouts
 * (parameters ± stderr, R², or the FitError message while there are too few points). The shared chart
 * pieces are in LogLogChart.tsx, the method comparison's plots in ComparePlots.tsx.
 */
import { predictLN, predictLNk, predictPowerLaw } from '../scaling/laws';
import { type SweepDocument, sampleCurve } from '../scaling/runner';

import { CurveTags, FitReadout, LogLogChart, logDomain, type Series } from './LogLogChart';

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
