import { useRef, useState } from 'react';
import { chooseGpt2Folder, gpt2FilesOf, useExtract } from '../store/extract';
import { ACCEPT, classifyFile, formatBytes, isRaw, rawDtypeOf } from '../store/files';
import { type FileRole, isActive, type PickedFile, useLab } from '../store/lab';
import { filesProblem, openDemo, openFiles } from '../store/worker';
import type { DatasetInfo } from '../worker/protocol';
import { ExtractSection } from './ExtractSection';
import { fmtInt, fmtNum } from './format';

const DEMO_TEXT =
  'real language-model activations: TinyStories stories260K, layer 2 residual, 40,960 tokens × d = 64';

/** Files of a drop: a dropped folder's own files (one level), else the dropped files. */
async function droppedFiles(dt: DataTransfer): Promise<{ files: File[]; folder?: string }> {
  const entries = [...dt.items].map((i) => i.webkitGetAsEntry?.()).filter((e) => !!e);
  const dir =
    entries.length === 1 && entries[0]?.isDirectory ? (entries[0] as FileSystemDirectoryEntry) : null;
  if (!dir) return { files: [...dt.files] };
  // readEntries returns the listing in batches (Chromium: 100 at a time) until an empty one
  const reader = dir.createReader();
  const list: FileSystemEntry[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
    if (!batch.length) break;
    list.push(...batch);
  }
  const files = await Promise.all(
    list
      .filter((e): e is FileSystemFileEntry => e.isFile)
      .map((e) => new Promise<File>((res, rej) => e.file(res, rej))),
  );
  return { files, folder: dir.name };
}

/** A GPT-2 folder (config.json + model.safetensors) goes to the extractor; anything else is a dataset. */
function pickFiles(files: File[], folder?: string) {
  if (!files.length) return;
  const gpt2 = gpt2FilesOf(files);
  if (gpt2) {
    void chooseGpt2Folder(gpt2, folder);
    document.querySelector('[data-testid="extract-section"]')?.setAttribute('open', '');
    return;
  }
  const picked: PickedFile[] = files.map((file) => ({ file, role: classifyFile(file.name) }));
  const raw = picked.find((p) => p.role === 'activations' && isRaw(p.file.name));
  useLab.setState((s) => ({
    picked,
    ...(raw ? { rawDtype: rawDtypeOf(raw.file.name) } : {}),
    tensor: s.tensor,
  }));
  if (!filesProblem()) openFiles();
}

export function DatasetPanel() {
  const picked = useLab((s) => s.picked);
  const dataset = useLab((s) => s.dataset);
  const rawDtype = useLab((s) => s.rawDtype);
  const rawWidth = useLab((s) => s.rawWidth);
  const tensor = useLab((s) => s.tensor);
  const nonFinite = useLab((s) => s.nonFinite);
  const adapterReady = useLab((s) => s.webgpu === 'ok');
  const running = useLab((s) => isActive(s.run?.status));
  const [over, setOver] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const loading = useLab((s) => s.dataset.status === 'loading');
  const extracting = useExtract((s) => s.status === 'running');
  const locked = running || loading || extracting || !adapterReady;
  const problem = picked.length ? filesProblem() : null;
  const hasRaw = picked.some((p) => p.role === 'activations' && isRaw(p.file.name));

  return (
    <section className="card" aria-label="dataset">
      <div className="card-head">
        <h2>Dataset</h2>
        <button type="button" className="ghost" disabled={locked} onClick={openDemo} data-testid="use-demo">
          Use demo dataset
        </button>
      </div>
      {/* biome-ignore lint/a11y/noStaticElementInteractions: the drop zone also has a keyboard-reachable button */}
      <div
        className={`dropzone${over ? ' over' : ''}${locked ? ' locked' : ''}`}
        data-testid="dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          if (!locked) setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          if (locked) return;
          // read the entries now: the DataTransfer is emptied once this handler returns
          const plain = [...e.dataTransfer.files];
          droppedFiles(e.dataTransfer).then(
            (d) => pickFiles(d.files, d.folder),
            () => pickFiles(plain),
          );
        }}
      >
        <p className="drop-title">Drop activation files here</p>
        <p className="muted small">
          .npy · .npz · .safetensors ([tokens, d], f32/f16/bf16/f64) · raw .bin/.f32/.f16 with a width ·
          several files are concatenated. A GPT-2 folder (config.json, model.safetensors, tokenizer) opens the
          extractor below. Optional sidecars: token ids <code>*.tokens.npy</code>, vocabulary{' '}
          <code>tokenizer.json</code> / <code>*.vocab.txt</code>. Files never leave this computer.
        </p>
        <button type="button" disabled={locked} onClick={() => input.current?.click()}>
          Choose files…
        </button>
        <input
          ref={input}
          type="file"
          multiple
          accept={ACCEPT}
          hidden
          data-testid="file-input"
          onChange={(e) => {
            pickFiles([...(e.target.files ?? [])]);
            e.target.value = '';
          }}
        />
      </div>

      <label className="inline small" title="what opening files does with rows holding NaN or Inf">
        rows with NaN/Inf
        <select
          value={nonFinite}
          disabled={locked}
          data-testid="non-finite"
          onChange={(e) => useLab.setState({ nonFinite: e.target.value as 'skip' | 'stop' })}
        >
          <option value="skip">skip them (counted in the card)</option>
          <option value="stop">refuse the file (name the row)</option>
        </select>
      </label>

      <ExtractSection />

      {picked.length > 0 && (
        <div className="picked" data-testid="picked-files">
          <table>
            <tbody>
              {picked.map((p, i) => (
                <tr key={`${p.file.name}:${p.file.size}:${p.file.lastModified}`}>
                  <td className="fname" title={p.file.name}>
                    {p.file.name}
                  </td>
                  <td className="num muted">{formatBytes(p.file.size)}</td>
                  <td>
                    <select
                      aria-label={`role of ${p.file.name}`}
                      value={p.role}
                      onChange={(e) =>
                        useLab.setState((s) => ({
                          picked: s.picked.map((q, j) =>
                            j === i ? { ...q, role: e.target.value as FileRole } : q,
                          ),
                        }))
                      }
                    >
                      <option value="activations">activations</option>
                      <option value="tokens">token ids</option>
                      <option value="vocab">vocabulary</option>
                      <option value="ignore">ignore</option>
                    </select>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="row wrap">
            {hasRaw && (
              <>
                <label className="inline">
                  width d
                  <input
                    type="number"
                    min={1}
                    value={rawWidth}
                    data-testid="raw-width"
                    onChange={(e) => useLab.setState({ rawWidth: e.target.value })}
                  />
                </label>
                <label className="inline">
                  dtype
                  <select
                    value={rawDtype}
                    onChange={(e) => useLab.setState({ rawDtype: e.target.value as 'f32' | 'f16' })}
                  >
                    <option value="f32">float32</option>
                    <option value="f16">float16</option>
                  </select>
                </label>
              </>
            )}
            <label className="inline">
              tensor
              <input
                type="text"
                placeholder="auto"
                value={tensor}
                title="for .npz / .safetensors holding several arrays"
                onChange={(e) => useLab.setState({ tensor: e.target.value })}
              />
            </label>
            <button type="button" disabled={locked || !!problem} onClick={openFiles} data-testid="open-files">
              Open
            </button>
          </div>
          {problem && <p className="muted small">{problem}</p>}
        </div>
      )}

      {dataset.status === 'loading' && (
        <div className="loading" data-testid="dataset-progress">
          <div className="progress">
            <div className="bar" style={{ width: `${Math.round(dataset.fraction * 100)}%` }} />
          </div>
          <span className="muted small">
            {dataset.phase || 'reading'} · {Math.round(dataset.fraction * 100)}%
          </span>
        </div>
      )}

      {dataset.info ? (
        <DatasetCard info={dataset.info} />
      ) : (
        dataset.status !== 'loading' && <p className="muted">No dataset yet. The demo is {DEMO_TEXT}.</p>
      )}
    </section>
  );
}

function DatasetCard({ info }: { info: DatasetInfo }) {
  const s = info.stats;
  const description = info.kind === 'demo' ? DEMO_TEXT : info.description;
  return (
    <div className="dataset-card" data-testid="dataset-card">
      <div className="ds-title">
        <strong data-testid="dataset-name">{info.name}</strong>
        {info.kind === 'demo' && <span className="tag">demo</span>}
        {info.lm && (
          <span className="tag" data-testid="dataset-lm-tag">
            LM activations
          </span>
        )}
      </div>
      <p className="muted small" data-testid="dataset-description">
        {description}
      </p>
      {info.lm && (
        <p className="small" data-testid="dataset-lm" data-source={info.lm.source}>
          model <strong>{info.lm.model}</strong> · layer {info.lm.layer} · {info.lm.siteLabel} ·{' '}
          {fmtInt(info.lm.tokens)} tokens ·{' '}
          {info.lm.source === 'cache'
            ? 'from the cache'
            : `${info.lm.source === 'gpu' ? 'WGSL' : 'CPU'} forward, ${info.lm.seconds.toFixed(1)} s`}
        </p>
      )}
      <dl className="kv cols">
        <dt>shape</dt>
        <dd data-testid="dataset-shape">[{info.shape.join(', ')}]</dd>
        <dt>rows × d</dt>
        <dd>
          {fmtInt(info.rows)} × {info.d}
        </dd>
        <dt>dtype</dt>
        <dd>{info.dtype}</dd>
        <dt>size</dt>
        <dd>{formatBytes(info.byteSize)}</dd>
        <dt>E‖x‖²</dt>
        <dd>{fmtNum(s.meanSqNorm, 4)}</dd>
        <dt>E‖x − x̄‖²</dt>
        <dd>{fmtNum(s.meanSqNormCentered, 4)}</dd>
        <dt>scale (E‖x‖² = d)</dt>
        <dd>{fmtNum(s.scale, 4)}</dd>
        <dt>max |x|</dt>
        <dd>{fmtNum(s.maxAbs, 4)}</dd>
        <dt>non-finite rows</dt>
        <dd className={s.nonFiniteRows ? 'bad' : ''}>
          {fmtInt(s.nonFiniteRows)}
          {s.firstNonFinite?.length ? ` (first: ${s.firstNonFinite.slice(0, 5).join(', ')})` : ''}
        </dd>
        <dt>sidecars</dt>
        <dd>
          {info.hasTokens ? 'token ids' : 'no token ids'} · {info.hasVocab ? 'vocabulary' : 'no vocabulary'}
        </dd>
      </dl>
      {info.files.length > 0 && (
        <p className="small files">
          <span className="muted">files: </span>
          {info.files.join(', ')}
        </p>
      )}
      {info.problems.length > 0 ? (
        <ul className="problems" data-testid="dataset-problems">
          {info.problems.map((p) => (
            <li key={p}>{p}</li>
          ))}
        </ul>
      ) : (
        <p className="ok small">No problems found.</p>
      )}
    </div>
  );
}
