import { isActive, useLab } from '../store/lab';
import { useSeries } from '../store/series';
import {
  configProblems,
  evaluateNow,
  pauseTraining,
  resumeTraining,
  startTraining,
  stopTraining,
} from '../store/worker';
import { fmtCompact, fmtDuration, fmtInt, fmtNum, fmtPct } from './format';

const STATUS_TEXT: Record<string, string> = {
  idle: 'idle',
  preparing: 'preparing…',
  running: 'training',
  paused: 'paused',
  stopping: 'stopping…',
  done: 'done',
  stopped: 'stopped',
  failed: 'failed',
};

export function RunPanel() {
  const run = useLab((s) => s.run);
  const info = useLab((s) => s.dataset.info);
  const datasetLoading = useLab((s) => s.dataset.status === 'loading');
  const adapter = useLab((s) => s.adapter);
  useLab((s) => s.config); // re-render on config edits so the start button reflects validation
  const series = useSeries(250);
  const status = run?.status ?? 'idle';
  const active = isActive(status);
  const problems = configProblems();
  const canStart = !!adapter && !!info && !datasetLoading && !active && problems.length === 0;

  const latest = series.latest;
  const total = run?.config?.tokens ?? 0;
  const done = latest?.tokens ?? 0;
  const frac = total > 0 ? Math.min(1, done / total) : 0;
  const tps = latest?.tokensPerS ?? 0;
  const eta = status === 'running' && tps > 0 ? (total - done) / tps : null;
  const lastEval = series.evals.at(-1);

  let why = '';
  if (!adapter) why = 'waiting for the GPU adapter';
  else if (!info) why = datasetLoading ? 'loading the dataset…' : 'load a dataset first';
  else if (problems.length) why = 'fix the configuration first';

  return (
    <section className="card run" aria-label="training">
      <div className="card-head">
        <h2>Training</h2>
        <span className={`status-pill s-${status}`} data-testid="run-status" data-status={status}>
          {STATUS_TEXT[status] ?? status}
        </span>
      </div>
      <div className="row wrap controls">
        <button type="button" disabled={!canStart} onClick={startTraining} data-testid="start">
          {status === 'done' || status === 'stopped' || status === 'failed'
            ? 'Train again'
            : 'Start training'}
        </button>
        <button
          type="button"
          className="secondary"
          disabled={status !== 'running'}
          onClick={pauseTraining}
          data-testid="pause"
        >
          Pause
        </button>
        <button
          type="button"
          className="secondary"
          disabled={status !== 'paused'}
          onClick={resumeTraining}
          data-testid="resume"
        >
          Resume
        </button>
        <button
          type="button"
          className="danger"
          disabled={!(status === 'running' || status === 'paused' || status === 'preparing')}
          onClick={stopTraining}
          data-testid="stop"
        >
          Stop
        </button>
        <button
          type="button"
          className="ghost"
          disabled={!(status === 'running' || status === 'paused')}
          onClick={evaluateNow}
          title="nMSE on the held-out rows"
        >
          Evaluate now
        </button>
        {why && !active && <span className="muted small">{why}</span>}
      </div>
      {info && !run && (
        <p className="muted small">
          Ready: {info.kind === 'demo' ? 'the demo activations' : info.name} ({fmtInt(info.rows)} × {info.d}).
          One click trains on them.
        </p>
      )}

      <div
        className="progress big"
        role="progressbar"
        aria-label="token progress"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(frac * 100)}
      >
        <div
          className={`bar${status === 'paused' ? ' paused' : ''}`}
          style={{ width: `${(frac * 100).toFixed(1)}%` }}
        />
      </div>
      <div className="readouts">
        <Readout label="tokens" testid="tokens-done" value={done} wide>
          {fmtCompact(done)} / {fmtCompact(total || undefined)} ({fmtPct(frac, 0)})
        </Readout>
        <Readout label="tokens/s" testid="tokens-per-s" value={tps}>
          {fmtCompact(tps)}
        </Readout>
        <Readout label="ETA" testid="eta" value={eta ?? Number.NaN}>
          {status === 'paused' ? 'paused' : fmtDuration(eta)}
        </Readout>
        <Readout label="step" testid="step" value={latest?.step ?? 0}>
          {fmtInt(latest?.step ?? null)}
          {run?.totalSteps ? ` / ${fmtInt(run.totalSteps)}` : ''}
        </Readout>
        <Readout label="nMSE (train)" testid="nmse-latest" value={latest?.nmse ?? Number.NaN}>
          {fmtNum(latest?.nmse, 4)}
        </Readout>
        <Readout label="nMSE (held-out)" testid="nmse-eval" value={lastEval?.nmse ?? Number.NaN}>
          {fmtNum(lastEval?.nmse, 4)}
        </Readout>
        <Readout label="L0" testid="l0-latest" value={latest?.l0 ?? Number.NaN}>
          {fmtNum(latest?.l0, 3)}
        </Readout>
        <Readout label="dead" testid="dead-latest" value={latest?.deadFraction ?? Number.NaN}>
          {fmtPct(latest?.deadFraction)}
        </Readout>
      </div>
      {run?.recovery && (
        <p className="muted small" data-testid="run-recovery">
          {run.recovery}
        </p>
      )}
      {run?.message && status === 'preparing' && (
        <p className="muted small" data-testid="run-message">
          {run.message}
          {run.message.startsWith('autotuning') &&
            ' (once per adapter and shape: later runs of this shape reuse the choice)'}
        </p>
      )}
      {run?.message && (status === 'failed' || status === 'stopped') && (
        <p className={status === 'failed' ? 'bad small' : 'muted small'}>{run.message}</p>
      )}
      {run?.final && (
        <div
          className="final"
          data-testid="final"
          data-nmse={String(run.final.nmse)}
          data-ev={String(run.final.explainedVariance)}
          data-l0={String(run.final.l0)}
          data-never-fired={String(run.final.deadFractionEval)}
          data-rows={String(run.final.rows)}
        >
          <strong>Final (held-out{run.final.weights === 'ema' ? ', EMA weights' : ''}):</strong> nMSE{' '}
          {fmtNum(run.final.nmse, 4)} · explained variance {fmtPct(run.final.explainedVariance)} · L0{' '}
          {fmtNum(run.final.l0, 3)} · never fired {fmtPct(run.final.deadFractionEval)} · dead by rule{' '}
          {fmtPct(run.final.deadFractionRule)} · {fmtCompact(run.final.tokensPerS)} tokens/s
          {run.final.prefixNmse && (
            <span data-testid="prefix-nmse">
              {' '}
              · nMSE of the first m latents alone:{' '}
              {run.final.prefixNmse
                .map((v, h) => `m = ${run.config?.matryoshkaWidths[h] ?? '?'}: ${fmtNum(v, 4)}`)
                .join(', ')}
            </span>
          )}
        </div>
      )}
    </section>
  );
}

function Readout(props: {
  label: string;
  testid: string;
  value: number;
  wide?: boolean;
  children: React.ReactNode;
}) {
  return (
    <div className={`readout${props.wide ? ' wide' : ''}`}>
      <span className="r-label">{props.label}</span>
      <span className="r-value" data-testid={props.testid} data-value={String(props.value)}>
        {props.children}
      </span>
    </div>
  );
}
