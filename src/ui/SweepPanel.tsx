/**
 * Sweeps: a builder (N as powers of two, k values, a token budget or "until converged"), the queue run
 * one after another in the worker with progress for the whole sweep, resume after a reload, the live
 * log-log plots with their fits, the ablation table, and exports (JSON, CSV, SVG) as Blob links.
 */
import { useEffect, useMemo, useState } from 'react';
import { lrRule } from '../sae/config';
import {
  DEFAULT_L0_COEF_LIST,
  DEFAULT_L1_LIST,
  expandCompare,
  METHOD_LABEL,
  METHODS,
  type Method,
  sparsityKind,
} from '../scaling/compare';
import type { CompareDocument } from '../scaling/compare-document';
import { compareCsv, compareFrontierSvg, deadCsv } from '../scaling/compare-files';
import { type AblationRow, ablationToCsv, sweepCsv, sweepSvgs } from '../scaling/runner';
import {
  type CompareSpec,
  compareActive,
  discardCompare,
  pendingRuns,
  resumeCompare,
  startCompare,
  stopCompare,
  useCompare,
} from '../store/compare';
import { isActive, useLab } from '../store/lab';
import {
  discardSweep,
  jobsFor,
  pendingJobs,
  resumeSweep,
  type SweepDef,
  startSweep,
  stopSweep,
  sweepActive,
  useSweep,
} from '../store/sweep';
import { fmtCompact, fmtNum, fmtPct } from './format';
import { CheckField, ExportLinks, ProblemList, QueueProgress, TextField } from './SweepParts';
import { ComparePlots, SweepPlots } from './SweepPlots';

const N_CHOICES = [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

function parseList(s: string): number[] {
  return s
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((p) => Number(p.replace(/k$/i, 'e3').replace(/m$/i, 'e6')));
}

function Builder() {
  const dataset = useLab((s) => s.dataset.info);
  const config = useLab((s) => s.config);
  const labRun = useLab((s) => s.run);
  const active = useSweep((s) => sweepActive(s));
  const compareBusy = useCompare((s) => compareActive(s));
  const [Ns, setNs] = useState<number[]>([256, 512, 1024, 2048]);
  const [kText, setKText] = useState('8,16,32');
  const [mode, setMode] = useState<'tokens' | 'converged'>('tokens');
  const [tokens, setTokens] = useState('1M');
  const [tol, setTol] = useState('0.01');
  const [maxTokens, setMaxTokens] = useState('10M');
  const [evals, setEvals] = useState('16');
  const [ablate, setAblate] = useState(false);

  const ks = parseList(kText);
  const tokensN = parseList(tokens)[0];
  const maxN = parseList(maxTokens)[0];
  const tolN = Number(tol);
  const evalsN = Number(evals);
  const problems: string[] = [];
  if (!Ns.length) problems.push('pick at least one N');
  if (!ks.length || ks.some((k) => !Number.isInteger(k) || k < 1))
    problems.push('k: positive integers, comma-separated');
  if (mode === 'tokens' && !(tokensN > 0)) problems.push('token budget must be positive');
  if (mode === 'converged' && !(maxN > 0)) problems.push('the cap must be positive');
  if (!(tolN > 0 && tolN < 1)) problems.push('tolerance must be in (0, 1)');
  if (!(Number.isInteger(evalsN) && evalsN >= 2)) problems.push('evaluations per run: an integer ≥ 2');
  if (!dataset) problems.push('load a dataset first');
  if (labRun && isActive(labRun.status)) problems.push('a training run is in progress');
  if (compareBusy) problems.push('a method comparison is in progress');

  const def: SweepDef | null = problems.length
    ? null
    : {
        grid: {
          N: Ns,
          k: ks,
          budget:
            mode === 'tokens'
              ? { kind: 'tokens', tokens: tokensN }
              : { kind: 'converged', tol: tolN, maxTokens: maxN },
          seed: config.seed,
        },
        base: {
          ...config,
          nLatents: undefined,
          k: undefined,
          lr: undefined,
          seed: undefined,
          tokens: undefined,
        },
        fixedLr: null,
        tol: tolN,
        evalsPerRun: evalsN,
        ablate,
        dataset: dataset?.name ?? '',
        createdAt: Date.now(),
      };
  let count = 0;
  try {
    count = def ? jobsFor(def).length : 0;
  } catch (e) {
    problems.push((e as Error).message);
  }
  const toggleN = (N: number) =>
    setNs((cur) => (cur.includes(N) ? cur.filter((x) => x !== N) : [...cur, N].sort((a, b) => a - b)));

  return (
    <fieldset disabled={active} data-testid="sweep-builder">
      <legend>New sweep</legend>
      <div className="field">
        <span className="small" style={{ fontWeight: 550 }}>
          latents N (powers of two)
        </span>
        <div className="row wrap" style={{ gap: 4 }}>
          {N_CHOICES.map((N) => (
            <button
              key={N}
              type="button"
              className={Ns.includes(N) ? '' : 'ghost'}
              aria-pressed={Ns.includes(N)}
              data-testid={`sweep-n-${N}`}
              onClick={() => toggleN(N)}
            >
              {fmtCompact(N)}
            </button>
          ))}
        </div>
      </div>
      <div className="grid" style={{ marginTop: 8 }}>
        <TextField id="sweep-k" label="k values" value={kText} onChange={setKText} testId="sweep-k" />
        <div className="field">
          <label htmlFor="sweep-mode">budget</label>
          <select
            id="sweep-mode"
            value={mode}
            onChange={(e) => setMode(e.target.value as 'tokens' | 'converged')}
            data-testid="sweep-mode"
          >
            <option value="tokens">fixed tokens</option>
            <option value="converged">until converged</option>
          </select>
        </div>
        {mode === 'tokens' ? (
          <TextField
            id="sweep-tokens"
            label="tokens per run"
            value={tokens}
            onChange={setTokens}
            testId="sweep-tokens"
          />
        ) : (
          <TextField
            id="sweep-max"
            label="cap (tokens)"
            value={maxTokens}
            onChange={setMaxTokens}
            testId="sweep-max-tokens"
          />
        )}
        <TextField id="sweep-tol" label="tolerance" value={tol} onChange={setTol} testId="sweep-tol">
          <p className="help">converged: held-out nMSE improves &lt; tol over a doubling of tokens</p>
        </TextField>
        <TextField
          id="sweep-evals"
          label="evaluations per run"
          value={evals}
          onChange={setEvals}
          testId="sweep-evals"
        />
        <CheckField
          checked={ablate}
          onChange={setAblate}
          testId="sweep-ablate"
          label="ablations at the largest N"
          help="full recipe, then tied init, AuxK, b_pre init, gradient projection off once each"
        />
      </div>
      <p className="small" data-testid="sweep-lr-rule">
        lr rule lr(N) = 2e-4 / √(N / 2¹⁴):{' '}
        {Ns.map((N) => (
          <span key={N} style={{ marginRight: 8 }}>
            N={fmtCompact(N)} → {lrRule(N).toExponential(2)}
          </span>
        ))}
        <span className="muted">
          · batch {config.batchSize} and the other settings come from the configuration panel
        </span>
      </p>
      <ProblemList problems={problems} testId="sweep-problems" />
      <button
        type="button"
        disabled={!def || count === 0}
        onClick={() => def && startSweep(def)}
        data-testid="sweep-start"
      >
        Start sweep ({count} runs)
      </button>
    </fieldset>
  );
}

function Progress() {
  const s = useSweep();
  const dataset = useLab((st) => st.dataset.info);
  if (!s.def) return null;
  const cur = s.current;
  const curJob = cur ? s.jobs.find((j) => j.key === cur.key) : null;
  return (
    <QueueProgress
      testId="sweep"
      noun="sweep"
      state={s}
      total={s.jobs.length}
      pending={pendingJobs(s).length}
      actions={{ active: sweepActive(s), resume: resumeSweep, stop: stopSweep, discard: discardSweep }}
      resumeLabel="Resume sweep"
      stopLabel="Stop sweep"
      countTestId="sweep-count"
      resumeNotice={
        dataset && s.def.dataset && dataset.name !== s.def.dataset ? (
          <p className="field-error">
            this sweep was started on {s.def.dataset}; the loaded dataset is {dataset.name}
          </p>
        ) : null
      }
      currentRun={curJob && `${curJob.label} · lr ${curJob.run.lr.toExponential(2)}`}
      currentTail={cur && ` · held-out nMSE ${fmtNum(cur.nmse, 4)}`}
      queueLabel="queue"
      itemTestId="sweep-job-"
      currentKey={cur?.key}
      items={s.jobs.map((j) => {
        const r = s.done[j.key];
        return {
          key: j.key,
          label: j.label,
          result: r
            ? {
                state: 'done',
                text: `nMSE ${fmtNum(r.final.nmse, 4)}, L0 ${fmtNum(r.final.l0, 3)}, dead ${fmtPct(r.final.dead_fraction)}, ${fmtCompact(r.final.tokens)} tok${r.final.tokens_to_convergence ? `, converged ~${fmtCompact(r.final.tokens_to_convergence)}` : ''}${r.error ? ` — failed: ${r.error}` : ''}`,
              }
            : null,
        };
      })}
    />
  );
}

function useBlobUrl(content: string | null, type: string): string | null {
  const url = useMemo(
    () => (content === null ? null : URL.createObjectURL(new Blob([content], { type }))),
    [content, type],
  );
  useEffect(() => () => (url ? URL.revokeObjectURL(url) : undefined), [url]);
  return url;
}

function Exports() {
  const doc = useSweep((s) => s.doc);
  const json = useMemo(() => (doc ? JSON.stringify(doc, null, 2) : null), [doc]);
  const csv = useMemo(() => (doc ? sweepCsv(doc) : null), [doc]);
  const abl = useMemo(() => (doc?.ablation?.length ? ablationToCsv(doc.ablation) : null), [doc]);
  const svgs = useMemo(() => (doc ? sweepSvgs(doc) : []), [doc]);
  const jsonUrl = useBlobUrl(json, 'application/json');
  const csvUrl = useBlobUrl(csv, 'text/csv');
  const ablUrl = useBlobUrl(abl, 'text/csv');
  const svgUrls = useMemo(
    () => svgs.map((s) => ({ ...s, url: URL.createObjectURL(new Blob([s.svg], { type: 'image/svg+xml' })) })),
    [svgs],
  );
  useEffect(
    () => () => {
      for (const s of svgUrls) URL.revokeObjectURL(s.url);
    },
    [svgUrls],
  );
  if (!doc) return null;
  return (
    <ExportLinks
      testId="sweep-exports"
      links={[
        { url: jsonUrl, file: 'sweep.json', testId: 'export-sweep-json' },
        { url: csvUrl, file: 'sweep.csv', testId: 'export-sweep-csv' },
        { url: ablUrl, file: 'ablation.csv', testId: 'export-ablation-csv' },
        ...svgUrls.map((s) => ({ url: s.url, file: s.file, testId: `export-${s.file}` })),
      ]}
    />
  );
}

function AblationTable() {
  const rows = useSweep((s) => s.doc?.ablation);
  return <AblationRows rows={rows} prefix="ablation" />;
}

function AblationRows({ rows, prefix }: { rows: AblationRow[] | undefined; prefix: string }) {
  if (!rows?.length) return null;
  const full = rows.find((r) => r.id === 'full');
  return (
    <table className="small" data-testid={`${prefix}-table`}>
      <caption style={{ textAlign: 'left' }}>
        Ablations at N={rows[0].N}, k={rows[0].k}
      </caption>
      <thead>
        <tr>
          <th>variant</th>
          <th>nMSE</th>
          <th>vs full</th>
          <th>dead</th>
          <th>L0</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.id} data-testid={`${prefix}-${r.id}`} data-nmse={r.nmse}>
            <td>{r.label}</td>
            <td>{fmtNum(r.nmse, 4)}</td>
            <td>{full ? `${r.nmse >= full.nmse ? '+' : ''}${fmtPct(r.nmse / full.nmse - 1)}` : '—'}</td>
            <td>{fmtPct(r.dead_fraction)}</td>
            <td>{fmtNum(r.l0, 3)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function SweepPanel() {
  const doc = useSweep((s) => s.doc);
  const hasSweep = useSweep((s) => s.def !== null);
  const hasCompare = useCompare((s) => s.spec !== null);
  const [mode, setMode] = useState<'scaling' | 'compare'>(hasCompare && !hasSweep ? 'compare' : 'scaling');
  return (
    <section className="card" aria-label="sweeps" data-testid="sweeps">
      <div className="card-head">
        <h2>{mode === 'scaling' ? 'Scaling-law sweeps' : 'Compare methods'}</h2>
        <div className="row" role="tablist">
          <button
            type="button"
            role="tab"
            aria-selected={mode === 'scaling'}
            className={mode === 'scaling' ? '' : 'ghost'}
            onClick={() => setMode('scaling')}
            data-testid="sweep-mode-scaling"
          >
            Scaling sweep
          </button>
          <button
            type="button"
            role="tab"
            aria-selected={mode === 'compare'}
            className={mode === 'compare' ? '' : 'ghost'}
            onClick={() => setMode('compare')}
            data-testid="sweep-mode-compare"
          >
            Compare methods
          </button>
        </div>
      </div>
      {mode === 'scaling' ? (
        <>
          <p className="muted small">N × k grid, one run after another; fits update as runs finish</p>
          <Builder />
          <Progress />
          {doc && (doc.runs.length > 0 || (doc.failed?.length ?? 0) > 0) && (
            <>
              <SweepPlots doc={doc} />
              <AblationTable />
              <Exports />
            </>
          )}
        </>
      ) : (
        <CompareSection />
      )}
    </section>
  );
}

// ---------------------------------------------------------------------------
// Compare methods: the same runs as `npm run sweep -- --methods …` (src/scaling/compare.ts)

function CompareBuilder() {
  const dataset = useLab((s) => s.dataset.info);
  const config = useLab((s) => s.config);
  const labRun = useLab((s) => s.run);
  const active = useCompare((s) => compareActive(s));
  const sweepBusy = useSweep((s) => sweepActive(s));
  const [methods, setMethods] = useState<Method[]>(['topk', 'relu']);
  const [N, setN] = useState(1024);
  const [kText, setKText] = useState('8,16,32,64');
  const [l1Text, setL1Text] = useState(DEFAULT_L1_LIST.join(','));
  const [l0Text, setL0Text] = useState(DEFAULT_L0_COEF_LIST.join(','));
  const [tokens, setTokens] = useState('1M');
  const [evals, setEvals] = useState('8');
  const [ablate, setAblate] = useState(false);
  const ks = parseList(kText);
  const l1 = parseList(l1Text);
  const l0 = parseList(l0Text);
  const tokensN = parseList(tokens)[0];
  const evalsN = Number(evals);
  const problems: string[] = [];
  if (!(tokensN > 0)) problems.push('token budget must be positive');
  if (!(Number.isInteger(evalsN) && evalsN >= 2)) problems.push('evaluations per run: an integer ≥ 2');
  if (
    ks.some((k) => !Number.isFinite(k)) ||
    l1.some((x) => !Number.isFinite(x)) ||
    l0.some((x) => !Number.isFinite(x))
  )
    problems.push('lists: numbers separated by commas');
  if (!dataset) problems.push('load a dataset first');
  if (labRun && isActive(labRun.status)) problems.push('a training run is in progress');
  if (sweepBusy) problems.push('a scaling sweep is in progress');
  const spec: CompareSpec = {
    def: {
      methods,
      N,
      k: ks,
      l1,
      l0Coef: l0,
      tokens: tokensN,
      seed: config.seed,
      lr: null,
      ablate,
    },
    base: {
      ...config,
      nLatents: undefined,
      k: undefined,
      lr: undefined,
      seed: undefined,
      tokens: undefined,
      activation: undefined,
      multiTopK: undefined,
      l1Coef: undefined,
    },
    evalsPerRun: evalsN,
    dataset: dataset?.name ?? '',
    createdAt: Date.now(),
  };
  let count = 0;
  try {
    count = expandCompare(spec.def).length;
  } catch (e) {
    problems.push((e as Error).message);
  }
  const kinds = new Set(methods.map(sparsityKind));
  const toggle = (m: Method) =>
    setMethods((cur) =>
      cur.includes(m) ? cur.filter((x) => x !== m) : METHODS.filter((x) => x === m || cur.includes(x)),
    );
  return (
    <fieldset disabled={active} data-testid="compare-builder">
      <legend>New comparison</legend>
      <div className="field">
        <span className="small" style={{ fontWeight: 550 }}>
          methods
        </span>
        <div className="row wrap" style={{ gap: 10 }}>
          {METHODS.map((m) => (
            <label key={m} className="small">
              <input
                type="checkbox"
                checked={methods.includes(m)}
                onChange={() => toggle(m)}
                data-testid={`compare-method-${m}`}
              />{' '}
              {METHOD_LABEL[m]}
            </label>
          ))}
        </div>
      </div>
      <div className="grid" style={{ marginTop: 8 }}>
        <div className="field">
          <label htmlFor="compare-n">latents N</label>
          <select
            id="compare-n"
            value={N}
            onChange={(e) => setN(Number(e.target.value))}
            data-testid="compare-n"
          >
            {N_CHOICES.map((n) => (
              <option key={n} value={n}>
                {fmtCompact(n)}
              </option>
            ))}
          </select>
        </div>
        {(
          [
            ['k', 'k values (TopK family)', kText, setKText],
            ['l1', 'λ values (L1: ReLU, ProLU, Gated)', l1Text, setL1Text],
            ['l0', 'λ values (L0: JumpReLU)', l0Text, setL0Text],
          ] as const
        ).map(([kind, label, value, set]) => (
          <TextField
            key={kind}
            id={`compare-${kind}`}
            label={label}
            value={value}
            disabled={!kinds.has(kind)}
            onChange={set}
            testId={`compare-${kind}`}
          />
        ))}
        <TextField
          id="compare-tokens"
          label="tokens per run"
          value={tokens}
          onChange={setTokens}
          testId="compare-tokens"
        />
        <TextField
          id="compare-evals"
          label="evaluations per run"
          value={evals}
          onChange={setEvals}
          testId="compare-evals"
        />
        <CheckField
          checked={ablate}
          onChange={setAblate}
          testId="compare-ablate"
          label="ablations (TopK, middle k)"
          help="tied init, AuxK, b_pre = 0, b_pre = mean, gradient projection off once each"
        />
      </div>
      <p className="small muted">
        lr {lrRule(N).toExponential(2)} (rule 2e-4/√(N/2¹⁴)) for every run; batch {config.batchSize} and the
        other settings come from the configuration panel
      </p>
      <ProblemList problems={problems} testId="compare-problems" />
      <button
        type="button"
        disabled={problems.length > 0 || count === 0}
        onClick={() => startCompare(spec)}
        data-testid="compare-start"
      >
        Start comparison ({count} runs)
      </button>
    </fieldset>
  );
}

function CompareProgress() {
  const s = useCompare();
  if (!s.spec) return null;
  const cur = s.current;
  const curRun = cur ? s.runs.find((r) => r.id === cur.id) : null;
  return (
    <QueueProgress
      testId="compare"
      noun="comparison"
      state={s}
      total={s.runs.length}
      pending={pendingRuns(s).length}
      actions={{
        active: compareActive(s),
        resume: resumeCompare,
        stop: stopCompare,
        discard: discardCompare,
      }}
      resumeLabel="Resume"
      stopLabel="Stop"
      currentRun={
        curRun &&
        `${METHOD_LABEL[curRun.method]} ${curRun.sparsity_kind === 'k' ? 'k' : 'λ'}=${curRun.sparsity}${curRun.variant !== 'method' ? ` (${curRun.variant})` : ''}`
      }
      queueLabel="runs"
      itemTestId="compare-run-"
      currentKey={cur?.id}
      items={s.runs.map((r) => {
        const d = s.done[r.id];
        return {
          key: r.id,
          label: r.id,
          result: d
            ? {
                state: d.stop_reason === 'failed' ? 'failed' : 'done',
                text:
                  d.stop_reason === 'failed' && !Number.isFinite(d.final.nmse ?? Number.NaN)
                    ? `failed — ${d.error}`
                    : `nMSE ${fmtNum(d.final.nmse, 4)}, L0 ${fmtNum(d.final.l0, 3)}, dead ${fmtPct(d.final.dead_fraction)}, ${fmtCompact(d.tokens_per_s)} tok/s${d.error ? ` — failed: ${d.error}` : ''}`,
              }
            : null,
        };
      })}
    />
  );
}

function CompareExports({ doc }: { doc: CompareDocument }) {
  const json = useMemo(() => JSON.stringify(doc, null, 2), [doc]);
  const csv = useMemo(() => compareCsv(doc), [doc]);
  const dead = useMemo(() => deadCsv(doc.dead), [doc]);
  const abl = useMemo(() => (doc.ablation?.length ? ablationToCsv(doc.ablation) : null), [doc]);
  const svg = useMemo(() => compareFrontierSvg(doc), [doc]);
  const jsonUrl = useBlobUrl(json, 'application/json');
  const csvUrl = useBlobUrl(csv, 'text/csv');
  const deadUrl = useBlobUrl(dead, 'text/csv');
  const ablUrl = useBlobUrl(abl, 'text/csv');
  const svgUrl = useBlobUrl(svg, 'image/svg+xml');
  return (
    <ExportLinks
      testId="compare-exports"
      links={[
        { url: jsonUrl, file: 'compare.json', testId: 'export-compare-json' },
        { url: csvUrl, file: 'compare.csv', testId: 'export-compare-csv' },
        { url: deadUrl, file: 'dead.csv', testId: 'export-compare-dead-csv' },
        { url: ablUrl, file: 'ablation.csv', testId: 'export-compare-ablation-csv' },
        { url: svgUrl, file: 'frontier.svg', testId: 'export-compare-svg' },
      ]}
    />
  );
}

function CompareSection() {
  const doc = useCompare((s) => s.doc);
  return (
    <>
      <p className="muted small">
        One N, one token budget; each method over its own sparsity axis (k for the TopK family, λ for the
        penalty methods); the same runs as <code>npm run sweep -- --methods …</code>
      </p>
      <CompareBuilder />
      <CompareProgress />
      {doc && (doc.runs.length > 0 || (doc.failed?.length ?? 0) > 0) && (
        <>
          <ComparePlots doc={doc} />
          <AblationRows rows={doc.ablation} prefix="compare-ablation" />
          <CompareExports doc={doc} />
        </>
      )}
    </>
  );
}
