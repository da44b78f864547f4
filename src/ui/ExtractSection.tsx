/**
 * "Extract from a language model": runs a bundled or dropped llama2.c model, or a Hugging Face GPT-2
 * folder, over a text in the worker (WGSL forward when there is a device) and makes the activations
 * the current dataset.
 */
import {
  BUNDLED_MODELS,
  chooseGpt2Folder,
  extractProblem,
  GPT2_SITES,
  type Gpt2SiteChoice,
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
        Runs a llama2.c model or GPT-2 (a Hugging Face folder) over a text on this computer (the WGSL forward
        pass on your GPU) and trains on its activations: one row per token, with token ids and vocabulary for
        the latent browser. The rows stream to a file in the browser's private storage as they are computed
        (never held whole in memory) and open from there; the same settings again open that file.
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
            <option value="gpt2">a GPT-2 folder (Hugging Face)…</option>
          </select>
        </label>
        {o.model === 'gpt2' && (
          <label
            className="inline"
            title="config.json, model.safetensors, vocab.json + merges.txt or tokenizer.json"
          >
            GPT-2 folder
            <input
              type="file"
              multiple
              disabled={busy}
              data-testid="extract-gpt2-folder"
              // a folder picker (Chromium, Firefox, Safari); React has no typed prop for it
              {...{ webkitdirectory: '' }}
              onChange={(e) => {
                const files = [...(e.target.files ?? [])];
                if (files.length) void chooseGpt2Folder(files);
              }}
            />
            {o.gpt2 && (
              <span className="muted small" data-testid="extract-gpt2-name">
                {o.gpt2.name}
                {o.gpt2.nLayer !== null ? ` · ${o.gpt2.nLayer} layers` : ''}
              </span>
            )}
          </label>
        )}
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
        {o.model === 'gpt2' ? (
          <>
            <label
              className="inline"
              title="TransformerLens hook names (openai's: resid_post_mlp = resid_post, …)"
            >
              site
              <select
                value={o.gpt2Site}
                disabled={busy}
                data-testid="extract-gpt2-site"
                onChange={(e) => setExtractOption('gpt2Site', e.target.value as Gpt2SiteChoice)}
              >
                {GPT2_SITES.map((k) => (
                  <option key={k} value={k}>
                    blocks.{o.layer}.hook_{k}
                  </option>
                ))}
              </select>
            </label>
            <label className="inline" title="tokens per window, <|endoftext|> first (the paper: 64)">
              context
              <input
                type="number"
                min={2}
                max={o.gpt2?.nPositions ?? undefined}
                value={o.context}
                disabled={busy}
                data-testid="extract-context"
                onChange={(e) => setExtractOption('context', Math.floor(Number(e.target.value)))}
              />
            </label>
            <label
              className="inline"
              title="position 0 (<|endoftext|>) attends only to itself: the same large-norm vector in every window"
            >
              <input
                type="checkbox"
                checked={o.keepBos}
                disabled={busy}
                data-testid="extract-keep-bos"
                onChange={(e) => setExtractOption('keepBos', e.target.checked)}
              />
              keep position 0
            </label>
          </>
        ) : (
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
        )}
        <label
          className="inline"
          title={
            o.model === 'gpt2'
              ? 'the block of the site (0..n_layer − 1)'
              : "resid: 0 = embeddings, l + 1 = after block l; mlp: block l's FFN output"
          }
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
        <label className="inline" title="float16 halves the file; the dataset reader reads both">
          stored as
          <select
            value={o.dtype}
            disabled={busy}
            data-testid="extract-dtype"
            onChange={(e) => setExtractOption('dtype', e.target.value as 'f32' | 'f16')}
          >
            <option value="f32">float32</option>
            <option value="f16">float16</option>
          </select>
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
