import { type ReactNode, useState } from 'react';
import {
  type Activation,
  type BPreInit,
  deadTokensRule,
  type InputNorm,
  isBatchCut,
  isDense,
  kAuxRule,
  lrRule,
  RECIPES,
  type ResolvedConfig,
  resolveConfig,
  validateConfig,
} from '../sae/config';
import { formatBytes } from '../store/files';
import { type ConfigForm, isActive, patchConfig, resetConfig, setConfig, useLab } from '../store/lab';
import { estimateMemory, estimateTime, planLimits, proposeBudget, stepFlops } from './estimate';
import { fmtCompact, fmtDuration, fmtInt, fmtNum } from './format';
import { MatryoshkaWidths } from './MatryoshkaWidths';

type NumKey = {
  [K in keyof ConfigForm]: ConfigForm[K] extends number | null ? K : never;
}[keyof ConfigForm];

/** A quick preset that trains in seconds even on a CPU-emulated GPU. */
const QUICK: Partial<ConfigForm> = { nLatents: 256, k: 8, batchSize: 256, tokens: 102_400, metricsEvery: 2 };

function NumberField(props: {
  k: NumKey;
  label: string;
  help: ReactNode;
  nullable?: boolean;
  placeholder?: string;
  step?: string;
  error?: string;
  disabled?: boolean;
}) {
  const value = useLab((s) => s.config[props.k]) as number | null;
  const parse = (t: string): number | null =>
    t.trim() === '' ? (props.nullable ? null : Number.NaN) : Number(t.replace(/_/g, ''));
  const show = (v: number | null) => (v === null ? '' : String(v));
  const [text, setText] = useState(show(value));
  const [synced, setSynced] = useState(value);
  // Follow external changes (presets, reset) in the same render as the change, not in an effect:
  // an effect runs after the browser has painted and handled input, so a preset's value used to
  // land after the user had selected the field's text, moving the caret to the end; what they
  // typed was then appended (2560 typed after Quick test's 102400 gave 1024002560 tokens).
  // Text that already means the new value (the user's own typing) is kept as typed.
  if (!Object.is(value, synced)) {
    setSynced(value);
    if (!Object.is(parse(text), value)) setText(show(value));
  }
  const id = `cfg-${props.k}`;
  return (
    <div className={`field${props.error ? ' invalid' : ''}`}>
      <label htmlFor={id}>{props.label}</label>
      <input
        id={id}
        data-testid={id}
        type="text"
        inputMode="decimal"
        value={text}
        placeholder={props.placeholder}
        disabled={props.disabled}
        aria-invalid={!!props.error}
        onChange={(e) => {
          const t = e.target.value;
          setText(t);
          setConfig(props.k, parse(t) as never);
        }}
      />
      <p className="help">{props.help}</p>
      {props.error && <p className="field-error">{props.error}</p>}
    </div>
  );
}

function Toggle(props: {
  k: 'auxk' | 'tiedInit' | 'gradProjection' | 'clipGrad' | 'ema' | 'multiTopK';
  label: string;
  help: ReactNode;
  disabled?: boolean;
}) {
  const v = useLab((s) => s.config[props.k]);
  const id = `cfg-${props.k}`;
  return (
    <div className="field toggle">
      <label htmlFor={id}>
        <input
          id={id}
          data-testid={id}
          type="checkbox"
          checked={v}
          disabled={props.disabled}
          onChange={(e) => setConfig(props.k, e.target.checked)}
        />
        {props.label}
      </label>
      <p className="help">{props.help}</p>
    </div>
  );
}

function Select<T extends string>(props: {
  k: 'bPreInit' | 'inputNorm' | 'activation';
  label: string;
  help: ReactNode;
  options: [T, string][];
  disabled?: boolean;
}) {
  const v = useLab((s) => s.config[props.k]);
  const id = `cfg-${props.k}`;
  return (
    <div className="field">
      <label htmlFor={id}>{props.label}</label>
      <select
        id={id}
        data-testid={id}
        value={v}
        disabled={props.disabled}
        onChange={(e) => setConfig(props.k, e.target.value as never)}
      >
        {props.options.map(([o, l]) => (
          <option key={o} value={o}>
            {l}
          </option>
        ))}
      </select>
      <p className="help">{props.help}</p>
    </div>
  );
}

/** Maps validateConfig's messages ("k must be …") to the field they name. */
const FIELD_OF: Record<string, keyof ConfigForm> = {
  nLatents: 'nLatents',
  k: 'k',
  batchSize: 'batchSize',
  kAux: 'kAux',
  matryoshkaWidths: 'matryoshkaWidths',
  deadTokens: 'deadTokens',
  tokens: 'tokens',
  lr: 'lr',
  auxCoef: 'auxCoef',
  clipNorm: 'clipNorm',
  emaDecay: 'emaDecay',
  evalFrac: 'evalFrac',
  metricsEvery: 'metricsEvery',
  activation: 'activation',
  batchTopKCap: 'batchTopKCap',
  l1Coef: 'l1Coef',
  l1WarmupFrac: 'l1WarmupFrac',
  jumpBandwidth: 'jumpBandwidth',
  jumpInitThreshold: 'jumpInitThreshold',
  maxBindingMiB: 'maxBindingMiB',
};

/** What each activation is, in one line. */
const ACTIVATION_HELP: Record<Activation, string> = {
  topk: 'TopK (the paper): exactly k latents per token.',
  batchtopk:
    'BatchTopK (Bussmann et al. 2024): the B·k largest activations of the batch; k per token on average.',
  matryoshka:
    'Matryoshka BatchTopK (Bussmann et al. 2025): BatchTopK whose nested prefixes of the dictionary each reconstruct the input (sum of the prefix losses).',
  relu: 'ReLU + L1 baseline: λ·Σ a·‖W_dec,i‖ penalty; L0 follows from λ.',
  prolu: 'ProLU (Taggart 2024): a = m·[m>0]·[m+b>0], L1 penalty, ReLU synthetic gradient.',
  gated: 'Gated (Rajamanoharan et al. 2024a): gate and magnitude paths sharing W_enc; L1 on the gate.',
  jumprelu:
    'JumpReLU (Rajamanoharan et al. 2024b): learned thresholds, L0 penalty through a straight-through estimator.',
};

/** The decoder-norm switch: auto (null) follows the activation. */
function UnitNormDecoder({ auto }: { auto: boolean }) {
  const v = useLab((s) => s.config.unitNormDecoder);
  return (
    <div className="field">
      <label htmlFor="cfg-unitNormDecoder">Unit-norm decoder</label>
      <select
        id="cfg-unitNormDecoder"
        data-testid="cfg-unitNormDecoder"
        value={v === null ? 'auto' : v ? 'on' : 'off'}
        onChange={(e) =>
          setConfig('unitNormDecoder', e.target.value === 'auto' ? null : e.target.value === 'on')
        }
      >
        <option value="auto">auto ({auto ? 'on' : 'off'} for this activation)</option>
        <option value="on">on</option>
        <option value="off">off</option>
      </select>
      <p className="help">
        Renormalize decoder rows after each step (off: the L1 penalty is weighted by the row norms instead,
        and there is no gradient projection).
      </p>
    </div>
  );
}

export function ConfigPanel() {
  const config = useLab((s) => s.config);
  const info = useLab((s) => s.dataset.info);
  const adapter = useLab((s) => s.adapter);
  const measured = useLab((s) => s.measured);
  const locked = useLab((s) => isActive(s.run?.status));
  const d = info?.d ?? 64;

  let problems: string[];
  let resolved: ResolvedConfig | null = null;
  try {
    resolved = resolveConfig({ ...config, d });
    problems = validateConfig(resolved);
  } catch (e) {
    problems = (e as Error).message.replace(/^invalid config: /, '').split('; ');
  }
  const errs: Partial<Record<keyof ConfigForm, string>> = {};
  for (const p of problems) {
    const f = FIELD_OF[p.split(' ')[0]];
    if (f && !errs[f]) errs[f] = p;
  }

  const N = config.nLatents;
  const act = config.activation;
  const dense = isDense(act);
  const penalty = act === 'relu' || act === 'prolu' || act === 'gated' || act === 'jumprelu';
  const jumpAuto = 1e-3 * Math.sqrt(d);
  const capAuto = Math.min(N, 4 * config.k, 512);
  const unitAuto = !['relu', 'prolu', 'gated'].includes(act);
  const lrAuto = Number.isFinite(N) && N > 0 ? lrRule(N) : Number.NaN;
  const kAuxAuto = kAuxRule(d, N);
  const deadAuto = deadTokensRule(config.tokens);
  // The engine's buffer plan on this adapter (WebGPU's default limits until it is known).
  const mem = resolved && !problems.length ? estimateMemory(resolved, adapter) : null;
  const time = mem ? estimateTime({ ...config, d }, measured, adapter) : null;
  // A first click should finish while the user watches: offer a shorter budget, change nothing else.
  const proposal = time && !locked ? proposeBudget({ ...config, d }, time, adapter) : null;
  const limits = planLimits(adapter);
  const adapterCap = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);

  return (
    <section className="card" aria-label="configuration">
      <div className="card-head">
        <h2>Configuration</h2>
        <div className="row wrap">
          <button
            type="button"
            className="ghost"
            disabled={locked}
            onClick={resetConfig}
            title="every field back to its default (README: defaults and where they come from)"
          >
            Defaults
          </button>
          <button
            type="button"
            className="ghost"
            disabled={locked}
            onClick={() => patchConfig(RECIPES.paper)}
            data-testid="preset-paper"
            title="the paper's own choices where the defaults follow other code: per-token input normalization, weight EMA 0.999, gradient clipping at 1"
          >
            Paper recipe
          </button>
          <button
            type="button"
            className="ghost"
            disabled={locked}
            onClick={() => patchConfig(QUICK)}
            data-testid="preset-quick"
            title="N=256, k=8, batch 256, 102,400 tokens, metrics every 2 steps: small enough for a CPU-emulated GPU"
          >
            Quick test
          </button>
        </div>
      </div>
      <p className="muted small">
        Each default is the paper's (Gao et al. 2024), its released code's or another named source's (README).
        d = {d}
        {info ? ' from the dataset' : ' (until a dataset is loaded)'}.
      </p>

      <fieldset disabled={locked}>
        <legend>Activation</legend>
        <div className="grid">
          <Select<Activation>
            k="activation"
            label="Activation"
            options={[
              ['topk', 'TopK (paper)'],
              ['batchtopk', 'BatchTopK'],
              ['matryoshka', 'Matryoshka BatchTopK'],
              ['relu', 'ReLU + L1'],
              ['prolu', 'ProLU'],
              ['gated', 'Gated'],
              ['jumprelu', 'JumpReLU'],
            ]}
            help={ACTIVATION_HELP[act] ?? ''}
          />
          {act === 'topk' && (
            <Toggle
              k="multiTopK"
              label="Multi-TopK"
              help="Add 1/8 of the loss on the top 4k (paper §5.3), so k can be raised at test time; AuxK is off."
            />
          )}
          {act === 'matryoshka' && <MatryoshkaWidths nLatents={N} error={errs.matryoshkaWidths} />}
          {isBatchCut(act) && (
            <NumberField
              k="batchTopKCap"
              label="Candidates per row"
              nullable
              placeholder={`auto: ${capAuto}`}
              error={errs.batchTopKCap}
              help={
                <>
                  Per-row top candidates kept before the batch selection; empty: min(N, 4k, 512) = {capAuto}.
                </>
              }
            />
          )}
          {penalty && (
            <NumberField
              k="l1Coef"
              label={act === 'jumprelu' ? 'L0 coefficient λ' : 'L1 coefficient λ'}
              error={errs.l1Coef}
              help={
                act === 'jumprelu'
                  ? 'Weight of the L0 penalty (in units of the normalized MSE); larger λ, fewer active latents.'
                  : 'Weight of Σ a·‖W_dec,i‖ (in units of the normalized MSE); larger λ, fewer active latents.'
              }
            />
          )}
          {penalty && (
            <NumberField
              k="l1WarmupFrac"
              label="λ warm-up (fraction)"
              error={errs.l1WarmupFrac}
              help="λ ramps linearly from 0 over this fraction of the run (Anthropic's recipe: 0.05)."
            />
          )}
          {act === 'jumprelu' && (
            <NumberField
              k="jumpBandwidth"
              label="STE bandwidth ε"
              nullable
              placeholder={`auto: ${fmtNum(jumpAuto, 3)}`}
              error={errs.jumpBandwidth}
              help={<>Kernel width of the threshold's straight-through gradient; empty: 1e-3·√d.</>}
            />
          )}
          {act === 'jumprelu' && (
            <NumberField
              k="jumpInitThreshold"
              label="Initial threshold"
              nullable
              placeholder={`auto: ${fmtNum(jumpAuto, 3)}`}
              error={errs.jumpInitThreshold}
              help={<>Threshold every latent starts with; empty: 1e-3·√d.</>}
            />
          )}
          <UnitNormDecoder auto={unitAuto} />
        </div>
      </fieldset>

      <fieldset disabled={locked}>
        <legend>Size</legend>
        <div className="grid">
          <NumberField
            k="nLatents"
            label="Latents N"
            error={errs.nLatents}
            help="Dictionary size; the paper sweeps 2¹¹…2²⁴."
          />
          <NumberField
            k="k"
            label="k (active per token)"
            error={errs.k}
            disabled={dense}
            help={
              dense
                ? 'Not used by this activation: its L0 follows from λ.'
                : isBatchCut(act)
                  ? 'BatchTopK keeps B·k activations per batch: k per token on average.'
                  : 'TopK keeps exactly k latents per token; the rest are 0.'
            }
          />
          <NumberField
            k="batchSize"
            label="Batch B"
            error={errs.batchSize}
            help="Tokens per step (paper's code: 4096 where memory allows)."
          />
          <NumberField
            k="tokens"
            label="Token budget"
            error={errs.tokens}
            help={`Tokens to train on; ${info ? `${fmtNum(config.tokens / info.rows / (1 - config.evalFrac), 3)} passes over the training split` : 'the data repeat as needed'}.`}
          />
        </div>
      </fieldset>

      <fieldset disabled={locked}>
        <legend>Optimizer</legend>
        <div className="grid">
          <NumberField
            k="lr"
            label="Learning rate"
            nullable
            placeholder={`auto: ${fmtNum(lrAuto, 3)}`}
            error={errs.lr}
            help={
              <>
                Adam; empty uses the rule <code>2e-4/√(N/2^14) = {fmtNum(lrAuto, 3)}</code>.
              </>
            }
          />
          <Toggle
            k="gradProjection"
            label="Gradient projection"
            help="Remove the decoder-row gradient's component along the row (paper A.1)."
          />
          <Toggle
            k="clipGrad"
            label="Clip gradient norm"
            help="Clip the global gradient norm (the paper's GPT-4 runs: 1; off in the code)."
          />
          <NumberField
            k="clipNorm"
            label="Clip norm"
            error={errs.clipNorm}
            disabled={!config.clipGrad}
            help="Maximum global gradient norm when clipping is on."
          />
          <Toggle
            k="ema"
            label="Weight EMA"
            help="Evaluate with an exponential moving average of the weights (paper: 0.999)."
          />
          <NumberField
            k="emaDecay"
            label="EMA decay"
            error={errs.emaDecay}
            disabled={!config.ema}
            help="Per-step decay of the weight average."
          />
        </div>
      </fieldset>

      <fieldset disabled={locked}>
        <legend>Dead latents (AuxK)</legend>
        <div className="grid">
          <Toggle
            k="auxk"
            label="AuxK loss"
            help="Reconstruct the residual with the top dead latents so they revive (§2.4)."
          />
          <NumberField
            k="kAux"
            label="kAux"
            nullable
            placeholder={`auto: ${kAuxAuto}`}
            error={errs.kAux}
            disabled={!config.auxk}
            help={<>Dead latents used by AuxK; empty: min(512, d/2) = {kAuxAuto}.</>}
          />
          <NumberField
            k="auxCoef"
            label="AuxK coefficient α"
            error={errs.auxCoef}
            disabled={!config.auxk}
            help="Weight of the AuxK loss (paper: 1/32 = 0.03125)."
          />
          <NumberField
            k="deadTokens"
            label="Dead after (tokens)"
            nullable
            placeholder={`auto: ${fmtCompact(deadAuto)}`}
            error={errs.deadTokens}
            help={
              <>
                A latent is dead after this many tokens without firing; empty: min(10M, budget/10) ={' '}
                {fmtInt(deadAuto)}.
              </>
            }
          />
        </div>
      </fieldset>

      <fieldset disabled={locked}>
        <legend>Initialization and data</legend>
        <div className="grid">
          <Toggle
            k="tiedInit"
            label="Tied init"
            help="Start with W_enc = W_decᵀ (paper §2.4; an ablation switch)."
          />
          <Select<BPreInit>
            k="bPreInit"
            label="b_pre init"
            options={[
              ['geomedian', 'geometric median'],
              ['mean', 'mean'],
              ['zero', 'zero'],
            ]}
            help="Pre-encoder bias start (paper: geometric median of a sample)."
          />
          <Select<InputNorm>
            k="inputNorm"
            label="Input normalization"
            options={[
              ['scalar', 'scalar: E‖x‖² = d'],
              ['paper', 'per token: center + unit norm'],
              ['none', 'none'],
            ]}
            help="Stored with the model; nMSE is always reported on raw activations."
          />
          <NumberField
            k="evalFrac"
            label="Held-out fraction"
            error={errs.evalFrac}
            help="Rows never trained on, used for held-out nMSE."
          />
          <NumberField k="seed" label="Seed" help="Same seed and adapter give the same bits." />
          <NumberField
            k="metricsEvery"
            label="Metrics every (steps)"
            error={errs.metricsEvery}
            help="Steps between metric read-backs; the loop never waits on the GPU in between."
          />
        </div>
      </fieldset>

      <fieldset disabled={locked}>
        <legend>Advanced</legend>
        <div className="grid">
          <NumberField
            k="maxBindingMiB"
            label="Max binding (MiB)"
            nullable
            placeholder={`auto: ${formatBytes(adapterCap)}${adapter ? '' : ' (WebGPU default)'}`}
            error={errs.maxBindingMiB}
            help={
              <>
                Cap one GPU binding; forces latent shards. The [N, d] tensors split into latent shards and the
                encoder + TopK walk latent tiles that each fit the cap; empty: the adapter's limit.
              </>
            }
          />
        </div>
      </fieldset>

      {problems.length > 0 && (
        <ul className="problems" data-testid="config-problems">
          {problems.map((p) => (
            <li key={p}>{p}</li>
          ))}
        </ul>
      )}

      {mem && mem.problems.length > 0 && (
        <div className="problems" data-testid="plan-problems" role="alert">
          <strong>
            This configuration does not fit {adapter ? 'this GPU' : "WebGPU's default limits"}; change it to
            start:
          </strong>
          <ul>
            {mem.problems.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        </div>
      )}

      {mem && time && (
        <div className="estimate" data-testid="estimate">
          <div>
            <span className="muted">GPU memory ≈ </span>
            <strong data-testid="estimate-memory">{formatBytes(mem.total)}</strong>
            {(mem.plan.shards.length > 1 || mem.plan.tiles.length > 1) && (
              <span className="muted small" data-testid="estimate-shards">
                {' '}
                · {mem.plan.shards.length} latent shard{mem.plan.shards.length > 1 ? 's' : ''},{' '}
                {mem.plan.tiles.length} tile{mem.plan.tiles.length > 1 ? 's' : ''} of{' '}
                {fmtInt(mem.plan.tileLatents)} latents (binding cap {formatBytes(mem.plan.bindingCap)})
              </span>
            )}
            <details>
              <summary className="small muted">breakdown by buffer group (the engine's plan)</summary>
              <table className="small">
                <tbody>
                  {mem.parts.map((p) => (
                    <tr key={p.name}>
                      <td>{p.name}</td>
                      <td className="num">{formatBytes(p.bytes)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </details>
          </div>
          <div>
            <span className="muted">Step ≈ </span>
            <strong data-testid="estimate-step">{fmtDuration(time.stepSeconds)}</strong>
            <span className="muted">, run ≈ </span>
            <strong>{fmtDuration(time.runSeconds)}</strong>
            <p className="help">
              {fmtCompact(stepFlops(config.batchSize, d, N))}FLOP per step (2·B·d·N·3) at{' '}
              {fmtNum(time.gflops, 3)} GFLOP/s{' '}
              {time.source === 'measured' ? 'measured in the last run' : 'assumed (no run measured yet)'}.
            </p>
            {proposal && (
              <p className="help" data-testid="budget-proposal">
                {proposal.reason[0].toUpperCase() + proposal.reason.slice(1)}.{' '}
                <button
                  type="button"
                  className="ghost"
                  data-testid="budget-proposal-apply"
                  onClick={() => patchConfig({ tokens: proposal.tokens })}
                >
                  Train {fmtInt(proposal.tokens)} tokens (≈ {fmtDuration(proposal.seconds)})
                </button>{' '}
                to watch a run finish; N, k, batch and the recipe stay as they are.
              </p>
            )}
          </div>
        </div>
      )}
    </section>
  );
}
