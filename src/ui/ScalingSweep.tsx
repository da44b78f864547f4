/**
 * The scaling-sweep mode of the sweep panel: a builder (N as powers of two, k values, a token budget
 * or "until converged"), the queue run one after another in the worker with progress for the whole
 * sweep, resume after a reload, the live log-log plots with their fits, the ablation table, and
 * exports (JSON, CSV, SVG) as Blob links.
 */
import { type Dispatch, type SetStateAction, useEffect, useMemo, useState } from 'react';
import { lrRule } from '../sae/config';
import { ablationToCsv, sweepCsv, sweepSvgs } from '../scaling/runner';
import { compareActive, useCompare } from '../store/compare';
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
import {
  AblationRows,
  CheckField,
  ExportLinks,
  type LabContext,
  N_CHOICES,
  ProblemList,
  parseList,
  QueueProgress,
  TextField,
  useBlobUrl,
} from './SweepParts';
import { SweepPlots } from './SweepPlots';

interface SweepForm {
  Ns: number[];
  kText: string;
  mode: 'tokens' | 'converged';
  tokens: string;
  tol: string;
  maxTokens: string;
  evals: string;
  ablate: boolean;
}

/** The sweep a filled-in form describes (null while any problem stands) and its number of runs. */
function sweepFromForm(
  f: SweepForm,
  lab: LabContext,
): { def: SweepDef | null; problems: string[]; count: number } {
  const { Ns, kText, mode, tokens, tol, maxTokens, evals, ablate } = f;
  const { dataset, config } = lab;
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
  problems.push(...lab.busy);

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
  return { def, problems, count };
}

function ScalingBuilder() {
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
  const busy = [
    ...(labRun && isActive(labRun.status) ? ['a training run is in progress'] : []),
    ...(compareBusy ? ['a method comparison is in progress'] : []),
  ];
  const { def, problems, count } = sweepFromForm(
    { Ns, kText, mode, tokens, tol, maxTokens, evals, ablate },
    { dataset, config, busy },
  );

  return (
    <fieldset disabled={active} data-testid="sweep-builder">
      <legend>New sweep</legend>
      <NPicker Ns={Ns} setNs={setNs} />
      <div className="grid" style={{ marginTop: 8 }}>
        <TextField id="sweep-k" label="k values" value={kText} onChange={setKText} testId="sweep-k" />
        <BudgetFields
          mode={mode}
          setMode={setMode}
          tokens={tokens}
          setTokens={setTokens}
          maxTokens={maxTokens}
          setMaxTokens={setMaxTokens}
        />
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
      <LrRuleLine Ns={Ns} batchSize={config.batchSize} />
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

/** The budget kind and its size: tokens per run, or the cap of an until-converged run. */
function BudgetFields(p: {
  mode: 'tokens' | 'converged';
  setMode: (mode: 'tokens' | 'converged') => void;
  tokens: string;
  setTokens: (tokens: string) => void;
  maxTokens: string;
  setMaxTokens: (maxTokens: string) => void;
}) {
  const { mode, setMode, tokens, setTokens, maxTokens, setMaxTokens } = p;
  return (
    <>
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
    </>
  );
}

/** The N buttons: powers of two, each toggles its N in or out of the grid. */
function NPicker({ Ns, setNs }: { Ns: number[]; setNs: Dispatch<SetStateAction<number[]>> }) {
  const toggleN = (N: number) =>
    setNs((cur) => (cur.includes(N) ? cur.filter((x) => x !== N) : [...cur, N].sort((a, b) => a - b)));

  return (
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
  );
}

/** The lr each chosen N gets from the rule. */
function LrRuleLine({ Ns, batchSize }: { Ns: number[]; batchSize: number }) {
  return (
    <p className="small" data-testid="sweep-lr-rule">
      lr rule lr(N) = 2e-4 / √(N / 2¹⁴):{' '}
      {Ns.map((N) => (
        <span key={N} style={{ marginRight: 8 }}>
          N={fmtCompact(N)} → {lrRule(N).toExponential(2)}
        </span>
      ))}
      <span className="muted">
        · batch {batchSize} and the other settings come from the configuration panel
      </span>
    </p>
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

/** The scaling-sweep mode: builder, progress, and once runs exist their plots, ablations and exports. */
export function ScalingSection() {
  const doc = useSweep((s) => s.doc);
  return (
    <>
      <p className="muted small">N × k grid, one run after another; fits update as runs finish</p>
      <ScalingBuilder />
      <Progress />
      {doc && (doc.runs.length > 0 || (doc.failed?.length ?? 0) > 0) && (
        <>
          <SweepPlots doc={doc} />
          <AblationTable />
          <Exports />
        </>
      )}
    </>
  );
}
