/**
 * Evaluation view: runs the worker's full evaluation of the current (paused) or last finished run
 * and shows what the learned latents are: reconstruction tiles, the latent density histogram,
 * feature recovery, probes, explanation scores, the downstream loss, and the latent browser.
 * The options form is EvalOptions.tsx, the charts EvalCharts.tsx, the tables EvalTables.tsx.
 */

import { useEval } from '../store/eval';
import { useLab } from '../store/lab';
import { lmDataset, runFullEval } from '../store/worker';
import type { FullEvalReport } from '../worker/protocol';
import { DensityChart, ExplanationChart, RecoveryChart } from './EvalCharts';
import { EvalOptions } from './EvalOptions';
import { Ablation, Downstream, Probes, Tile } from './EvalTables';
import { fmtInt, fmtNum, fmtPct } from './format';
import { LatentBrowser } from './LatentBrowser';
import './EvalPanel.css';

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
      <EvalOptions demo={!!demo} lmName={lmName} />
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
