import { useRef } from 'react';
import { isActive, useLab } from '../store/lab';
import {
  deleteCheckpoint,
  dismissOffer,
  dismissPersistMessages,
  type ExportDtype,
  exportRunConfig,
  exportSae,
  importSae,
  refreshCheckpoints,
  resumeCheckpoint,
  setExportField,
  usePersist,
} from '../store/persist';
import { fmtInt } from './format';
import './PersistPanel.css';

function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v.toFixed(0) : v.toPrecision(3)} ${units[i]}`;
}

const fmtDate = (ms: number) =>
  new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** Why resuming is not possible now ('' when it is). */
function useResumeBlock(): string {
  const adapter = useLab((s) => s.adapter);
  const ds = useLab((s) => s.dataset);
  const status = useLab((s) => s.run?.status);
  const busy = usePersist((s) => s.busy);
  if (!adapter) return 'waiting for the GPU adapter';
  if (isActive(status)) return 'a run is in progress: stop it first';
  if (ds.status === 'loading') return 'loading the dataset…';
  if (!ds.info) return 'open the dataset the run was trained on first';
  if (busy === 'resume') return 'resuming…';
  return '';
}

/** The offer after a page load: "Resume run X from step S". Shown under the banners. */
export function ResumeOffer() {
  const offer = usePersist((s) => s.offer);
  const run = useLab((s) => s.run);
  const info = useLab((s) => s.dataset.info);
  const block = useResumeBlock();
  if (!offer || run) return null;
  return (
    <div className="banner info resume-offer" role="status" data-testid="resume-offer">
      <div className="banner-body">
        <strong>
          Resume run <code>{offer.runId}</code> from step {fmtInt(offer.step)}?
        </strong>
        <p className="small">
          A checkpoint of this run is saved in this browser. Resuming needs the same dataset it was trained on
          {info ? ` (open now: ${info.name})` : ''}; it continues exactly where it stopped.
          {block && <span className="muted"> — {block}</span>}
        </p>
      </div>
      <div className="row">
        <button
          type="button"
          disabled={!!block}
          onClick={() => resumeCheckpoint(offer.runId)}
          data-testid="resume-offer-button"
        >
          Resume
        </button>
        <button
          type="button"
          className="ghost icon"
          aria-label="Dismiss"
          title="Dismiss"
          onClick={dismissOffer}
        >
          ×
        </button>
      </div>
    </div>
  );
}

function ExportSection() {
  const run = useLab((s) => s.run);
  const imported = usePersist((s) => s.importSummary);
  const busy = usePersist((s) => s.busy);
  const dtype = usePersist((s) => s.dtype);
  const modelName = usePersist((s) => s.modelName);
  const hookName = usePersist((s) => s.hookName);
  const lastExport = usePersist((s) => s.lastExport);
  const st = run?.status;
  const hasModel = st === 'paused' || st === 'done' || st === 'stopped' || !!imported;
  const disabled = !hasModel || (busy !== null && busy !== 'list');
  const why = hasModel ? '' : 'Pause a run, or let it finish, to export it (or import an SAE).';
  return (
    <div className="persist-section">
      <h3>Export</h3>
      <div className="persist-grid">
        <label>
          <span>weights dtype</span>
          <select
            value={dtype}
            onChange={(e) => setExportField('dtype', e.target.value as ExportDtype)}
            data-testid="export-dtype"
          >
            <option value="F32">F32</option>
            <option value="F16">F16</option>
            <option value="BF16">BF16</option>
          </select>
        </label>
        <label>
          <span>model name</span>
          <input
            type="text"
            value={modelName}
            onChange={(e) => setExportField('modelName', e.target.value)}
            data-testid="export-model"
          />
        </label>
        <label>
          <span>hook name</span>
          <input
            type="text"
            value={hookName}
            onChange={(e) => setExportField('hookName', e.target.value)}
            data-testid="export-hook"
          />
        </label>
      </div>
      <div className="row wrap">
        <button
          type="button"
          disabled={disabled}
          onClick={() => exportSae('saelens')}
          data-testid="export-saelens"
          title="cfg.json + sae_weights.safetensors, loadable with sae_lens SAE.load_from_disk"
        >
          {busy === 'saelens' ? 'Exporting…' : 'SAELens zip'}
        </button>
        <button
          type="button"
          className="secondary"
          disabled={disabled}
          onClick={() => exportSae('openai')}
          data-testid="export-openai"
          title="state dict in openai/sparse_autoencoder's layout"
        >
          {busy === 'openai' ? 'Exporting…' : 'openai/sparse_autoencoder zip'}
        </button>
        <button
          type="button"
          className="ghost"
          disabled={disabled}
          onClick={exportRunConfig}
          data-testid="export-run-config"
          title="a sparsify command line and config to train this SAE at scale on a cluster"
        >
          {busy === 'run-config' ? 'Exporting…' : 'Run config for sparsify (cluster)'}
        </button>
      </div>
      {why && <p className="muted small">{why}</p>}
      {lastExport && (
        <p className="muted small" data-testid="last-export">
          Saved <code>{lastExport.fileName}</code> ({fmtBytes(lastExport.size)}).
        </p>
      )}
    </div>
  );
}

function ImportSection() {
  const busy = usePersist((s) => s.busy);
  const summary = usePersist((s) => s.importSummary);
  const active = useLab((s) => isActive(s.run?.status));
  const input = useRef<HTMLInputElement>(null);
  return (
    <div className="persist-section">
      <h3>Import</h3>
      <p className="muted small">
        An SAE from SAELens, openai/sparse_autoencoder or sparsify: a zip, or <code>cfg.json</code> + a{' '}
        <code>.safetensors</code> file. It becomes the model that evaluation and export read.
      </p>
      <div className="row wrap">
        <input
          ref={input}
          type="file"
          multiple
          accept=".zip,.json,.safetensors,.pt"
          disabled={active || busy === 'import'}
          onChange={(e) => {
            importSae(Array.from(e.target.files ?? []));
            e.target.value = '';
          }}
          data-testid="import-input"
        />
        {busy === 'import' && <span className="muted small">reading…</span>}
        {active && <span className="muted small">stop the run to import</span>}
      </div>
      {summary && (
        <p className="ok small" data-testid="import-summary">
          {summary}
        </p>
      )}
    </div>
  );
}

function CheckpointSection() {
  const list = usePersist((s) => s.checkpoints);
  const listed = usePersist((s) => s.listed);
  const quota = usePersist((s) => s.quota);
  const busy = usePersist((s) => s.busy);
  const run = useLab((s) => s.run);
  const block = useResumeBlock();
  const liveRun = run && isActive(run.status) ? run.runId : null;
  const withTokens = list.some((c) => c.tokens !== undefined);
  const sorted = [...list].sort((a, b) => b.modified - a.modified || b.step - a.step);
  return (
    <div className="persist-section">
      <div className="row persist-head">
        <h3>Checkpoints</h3>
        <button
          type="button"
          className="ghost"
          onClick={() => {
            usePersist.setState({ busy: 'list' });
            refreshCheckpoints();
          }}
          data-testid="checkpoints-refresh"
        >
          Refresh
        </button>
      </div>
      <p className="muted small" data-testid="checkpoint-quota">
        Saved in this browser (OPFS) every ~2 minutes and on pause, stop and end; the 3 newest per run are
        kept.
        {quota && (
          <>
            {' '}
            Storage: {fmtBytes(quota.usage)} used of {fmtBytes(quota.quota)} available
            {quota.quota > 0 ? ` (${((100 * quota.usage) / quota.quota).toFixed(1)}%)` : ''}.
          </>
        )}
      </p>
      {!listed ? (
        <p className="muted small">reading…</p>
      ) : sorted.length === 0 ? (
        <p className="muted small" data-testid="checkpoints-empty">
          No checkpoints yet.
        </p>
      ) : (
        <table className="persist-table" data-testid="checkpoint-list">
          <thead>
            <tr>
              <th>run</th>
              <th className="num">step</th>
              {withTokens && <th className="num">tokens</th>}
              <th className="num">size</th>
              <th>saved</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {sorted.map((c) => (
              <tr
                key={`${c.runId}/${c.step}`}
                data-testid="checkpoint-row"
                data-run={c.runId}
                data-step={c.step}
              >
                <td>
                  <code>{c.runId}</code>
                  {c.runId === liveRun && <span className="tag">live</span>}
                </td>
                <td className="num">{fmtInt(c.step)}</td>
                {withTokens && <td className="num">{c.tokens ? fmtInt(c.tokens) : '—'}</td>}
                <td className="num">{fmtBytes(c.size)}</td>
                <td className="small">{fmtDate(c.modified)}</td>
                <td className="actions">
                  <button
                    type="button"
                    className="secondary"
                    disabled={!!block}
                    title={block || `continue ${c.runId} from step ${c.step}`}
                    onClick={() => resumeCheckpoint(c.runId, c.step)}
                    data-testid="checkpoint-resume"
                  >
                    Resume
                  </button>
                  <button
                    type="button"
                    className="ghost danger-text"
                    disabled={c.runId === liveRun || busy === 'delete'}
                    title={c.runId === liveRun ? 'stop the run first' : 'delete this checkpoint'}
                    onClick={() => deleteCheckpoint(c.runId, c.step)}
                    data-testid="checkpoint-delete"
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function PersistPanel() {
  const warning = usePersist((s) => s.warning);
  const error = usePersist((s) => s.error);
  return (
    <section className="card persist" aria-label="runs and export" data-testid="persist-panel">
      <div className="card-head">
        <h2>Runs &amp; export</h2>
      </div>
      {(warning || error) && (
        <div className="banner persist-alert" role="alert" data-testid="persist-alert">
          <div className="banner-body">
            {error && (
              <>
                <strong>That did not work</strong>
                <p className="banner-msg">{error}</p>
              </>
            )}
            {warning && (
              <>
                <strong>Checkpoint storage</strong>
                <p className="banner-msg" data-testid="persist-warning">
                  {warning}
                </p>
                <p className="small">
                  <span className="muted">What to do: </span>
                  if the disk is full, delete old checkpoints below (or free space) — training goes on,
                  unsaved; if a checkpoint was corrupt, resume from the older one listed.
                </p>
              </>
            )}
          </div>
          <button
            type="button"
            className="ghost icon"
            aria-label="Dismiss"
            title="Dismiss"
            onClick={dismissPersistMessages}
          >
            ×
          </button>
        </div>
      )}
      <CheckpointSection />
      <ExportSection />
      <ImportSection />
    </section>
  );
}
