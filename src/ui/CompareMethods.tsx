/**
 * The method-comparison mode of the sweep panel: the same runs as `npm run sweep -- --methods …`
 * (src/scaling/compare.ts): a builder (methods, N, each method's sparsity list, tokens), the run
 * queue's progress, the live frontier plots, the ablation table and the exports.
 */
import { type Dispatch, type SetStateAction, useMemo, useState } from 'react';
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
import { ablationToCsv } from '../scaling/runner';
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
import { sweepActive, useSweep } from '../store/sweep';
import { ComparePlots } from './ComparePlots';
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

interface CompareForm {
  methods: Method[];
  N: number;
  kText: string;
  l1Text: string;
  l0Text: string;
  tokens: string;
  evals: string;
  ablate: boolean;
}

/** The comparison a filled-in form describes, the problems that stop it, and its number of runs. */
function compareFromForm(
  f: CompareForm,
  lab: LabContext,
): { spec: CompareSpec; problems: string[]; count: number } {
  const { methods, N, kText, l1Text, l0Text, tokens, evals, ablate } = f;
  const { dataset, config } = lab;
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
  problems.push(...lab.busy);
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
  return { spec, problems, count };
}

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
  const busy = [
    ...(labRun && isActive(labRun.status) ? ['a training run is in progress'] : []),
    ...(sweepBusy ? ['a scaling sweep is in progress'] : []),
  ];
  const { spec, problems, count } = compareFromForm(
    { methods, N, kText, l1Text, l0Text, tokens, evals, ablate },
    { dataset, config, busy },
  );
  const kinds = new Set(methods.map(sparsityKind));
  return (
    <fieldset disabled={active} data-testid="compare-builder">
      <legend>New comparison</legend>
      <MethodPicker methods={methods} setMethods={setMethods} />
      <div className="grid" style={{ marginTop: 8 }}>
        <NSelect N={N} setN={setN} />
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

/** The one N of a comparison. */
function NSelect({ N, setN }: { N: number; setN: (N: number) => void }) {
  return (
    <div className="field">
      <label htmlFor="compare-n">latents N</label>
      <select id="compare-n" value={N} onChange={(e) => setN(Number(e.target.value))} data-testid="compare-n">
        {N_CHOICES.map((n) => (
          <option key={n} value={n}>
            {fmtCompact(n)}
          </option>
        ))}
      </select>
    </div>
  );
}

/** One checkbox per method; the chosen ones stay in METHODS order. */
function MethodPicker({
  methods,
  setMethods,
}: {
  methods: Method[];
  setMethods: Dispatch<SetStateAction<Method[]>>;
}) {
  const toggle = (m: Method) =>
    setMethods((cur) =>
      cur.includes(m) ? cur.filter((x) => x !== m) : METHODS.filter((x) => x === m || cur.includes(x)),
    );
  return (
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

/** The method-comparison mode: builder, progress, and once runs exist their plots, ablations and exports. */
export function CompareSection() {
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
