/**
 * "Extract from a language model": runs a bundled or dropped llama2.c model over a text in the
 * worker (WGSL forward when there is a device) and makes the activations the current dataset.
 */
import {
  BUNDLED_MODELS,
  extractProblem,
  type ModelChoice,
  maxLayer,
  setExtractOption,
  useExtract,
} from '../store/extract';
import { isActive, useLab } from '../store/lab';
import { cancelExtract, startExtract } from '../store/worker';
import { fmtInt } from './format';

export function ExtractSection() {
  const ex = useExtract();
  const o = ex.options;
  const adapterReady = useLab((s) => s.webgpu === 'ok');
  const running = useLab((s) => isActive(s.run?.status));
  const loading = useLab((s) => s.dataset.status === 'loading');
  const busy = ex.status === 'running';
  const problem = extractProblem(o);
  const top = maxLayer(o);
  const p = ex.progress;

  return (
    <details className="extract" data-testid="extract-section">
      <summary>Extract from a language model</summary>
      <p className="muted small">
        Runs a llama2.c model over a text on this computer (the WGSL forward pass on your GPU) and trains on
        its activations: one row per token, with token ids and vocabulary for the latent browser. Results are
        cached in the browser; the same settings again open the cache.
      </p>
      <div className="grid extract-grid">
        <label className="inline">
          model
          <select
            value={o.model}
            disabled={busy}
            data-testid="extract-model"
            onChange={(e) => setExtractOption('model', e.target.value as ModelChoice)}
          >
            {Object.entries(BUNDLED_MODELS).map(([k, m]) => (
              <option key={k} value={k}>
                {m.label}
              </option>
            ))}
            <option value="custom">my own llama2.c checkpoint…</option>
          </select>
        </label>
        {o.model === 'custom' && (
          <>
            <FilePick
              label="checkpoint .bin"
              accept=".bin"
              busy={busy}
              testId="extract-checkpoint"
              field="checkpointFile"
            />
            <FilePick
              label="tokenizer .bin"
              accept=".bin"
              busy={busy}
              testId="extract-tokenizer"
              field="tokenizerFile"
            />
          </>
        )}
        <label className="inline">
          text
          <select
            value={o.text}
            disabled={busy}
            data-testid="extract-text"
            onChange={(e) => setExtractOption('text', e.target.value as 'bundled' | 'custom')}
          >
            <option value="bundled">TinyStories (bundled, 197 KB)</option>
            <option value="custom">my own .txt…</option>
          </select>
        </label>
        {o.text === 'custom' && (
          <FilePick
            label=".txt"
            accept=".txt,text/plain"
            busy={busy}
            testId="extract-text-file"
            field="textFile"
          />
        )}
        <label className="inline">
          site
          <select
            value={o.site}
            disabled={busy}
            data-testid="extract-site"
            onChange={(e) => setExtractOption('site', e.target.value as 'resid' | 'mlp')}
          >
            <option value="resid">residual stream</option>
            <option value="mlp">MLP output</option>
          </select>
        </label>
        <label
          className="inline"
          title="resid: 0 = embeddings, l + 1 = after block l; mlp: block l's FFN output"
        >
          layer
          <input
            type="number"
            min={0}
            max={top ?? undefined}
            value={o.layer}
            disabled={busy}
            data-testid="extract-layer"
            onChange={(e) => setExtractOption('layer', Math.floor(Number(e.target.value)))}
          />
        </label>
        <label className="inline">
          tokens
          <input
            type="number"
            min={1}
            step={1000}
            value={o.maxTokens}
            disabled={busy}
            data-testid="extract-tokens"
            onChange={(e) => setExtractOption('maxTokens', Math.floor(Number(e.target.value)))}
          />
        </label>
      </div>
      <div className="row wrap controls">
        <button
          type="button"
          disabled={busy || !!problem || running || loading || !adapterReady}
          onClick={startExtract}
          data-testid="extract-start"
        >
          Extract
        </button>
        {busy && (
          <button type="button" className="ghost" onClick={cancelExtract} data-testid="extract-cancel">
            Cancel
          </button>
        )}
        {problem && !busy && <span className="muted small">{problem}</span>}
        {running && <span className="muted small">stop the run first</span>}
      </div>
      {busy && p && (
        <div className="loading" data-testid="extract-progress" data-fraction={String(p.fraction)}>
          <div className="progress" role="progressbar" aria-valuenow={Math.round(p.fraction * 100)}>
            <div className="bar" style={{ width: `${Math.round(p.fraction * 100)}%` }} />
          </div>
          <span className="muted small" data-testid="extract-phase">
            {p.phase} · {fmtInt(p.tokens)} tokens · {Math.round(p.fraction * 100)}%
          </span>
        </div>
      )}
      {ex.status === 'done' && ex.last && (
        <p className="ok small" data-testid="extract-result" data-source={ex.last.source}>
          {ex.last.source === 'cache'
            ? `Cache hit: opened ${fmtInt(ex.last.tokens)} cached tokens in ${ex.last.seconds.toFixed(2)} s (no forward pass).`
            : `Extracted ${fmtInt(ex.last.tokens)} tokens in ${ex.last.seconds.toFixed(1)} s on the ${ex.last.source === 'gpu' ? 'WGSL (GPU)' : 'CPU'} forward pass; cached for next time.`}
        </p>
      )}
      {(ex.status === 'error' || ex.status === 'cancelled') && ex.error && (
        <p className={`${ex.status === 'error' ? 'bad' : 'muted'} small`} data-testid="extract-error">
          {ex.error}
        </p>
      )}
    </details>
  );
}

/** One file input of the extraction form, writing its file into the option `field`. */
function FilePick(p: {
  label: string;
  accept: string;
  busy: boolean;
  testId: string;
  field: 'checkpointFile' | 'tokenizerFile' | 'textFile';
}) {
  return (
    <label className="inline">
      {p.label}
      <input
        type="file"
        accept={p.accept}
        disabled={p.busy}
        data-testid={p.testId}
        onChange={(e) => setExtractOption(p.field, e.target.files?.[0] ?? null)}
      />
    </label>
  );
}
