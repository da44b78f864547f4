/**
 * The configuration panel's fieldsets, one component each (activation, size, optimizer, dead
 * latents, initialization and data, advanced): the fields of ./ConfigFields.tsx with their labels,
 * help lines and the automatic values an empty field takes (src/sae/config.ts rules).
 */
import type { ReactNode } from 'react';
import { largestBinding } from '../gpu/limits';
import {
  type Activation,
  type BPreInit,
  deadTokensRule,
  type InputNorm,
  isBatchCut,
  isDense,
  kAuxRule,
  lrRule,
} from '../sae/config';
import { formatBytes } from '../store/files';
import { type ConfigForm, useLab } from '../store/lab';
import { NumberField, Select, Toggle, UnitNormDecoder } from './ConfigFields';
import { planLimits } from './estimate';
import { fmtCompact, fmtInt, fmtNum } from './format';
import { MatryoshkaWidths } from './MatryoshkaWidths';

/** Each field's first validation message, by field. */
export type FieldErrors = Partial<Record<keyof ConfigForm, string>>;

/** What every fieldset gets: the field errors, and whether a run locks the form. */
interface SectionProps {
  errs: FieldErrors;
  locked: boolean;
}

function Fieldset({ legend, locked, children }: { legend: string; locked: boolean; children: ReactNode }) {
  return (
    <fieldset disabled={locked}>
      <legend>{legend}</legend>
      <div className="grid">{children}</div>
    </fieldset>
  );
}

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

/** The activation and its own settings (shown only for the activations that use them). */
export function ActivationSection({ errs, locked, d }: SectionProps & { d: number }) {
  const config = useLab((s) => s.config);
  const N = config.nLatents;
  const act = config.activation;
  const capAuto = Math.min(N, 4 * config.k, 512);
  const unitAuto = !['relu', 'prolu', 'gated'].includes(act);
  return (
    <Fieldset legend="Activation" locked={locked}>
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
            <>Per-row top candidates kept before the batch selection; empty: min(N, 4k, 512) = {capAuto}.</>
          }
        />
      )}
      <PenaltyFields errs={errs} act={act} d={d} />
      <UnitNormDecoder auto={unitAuto} />
    </Fieldset>
  );
}

/** The penalty family's λ and its warm-up; JumpReLU's bandwidth and initial threshold. */
function PenaltyFields({ errs, act, d }: { errs: FieldErrors; act: Activation; d: number }) {
  const penalty = act === 'relu' || act === 'prolu' || act === 'gated' || act === 'jumprelu';
  const jumpAuto = 1e-3 * Math.sqrt(d);
  return (
    <>
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
    </>
  );
}

/** Dictionary size, k, batch and token budget. */
export function SizeSection({ errs, locked }: SectionProps) {
  const config = useLab((s) => s.config);
  const info = useLab((s) => s.dataset.info);
  const act = config.activation;
  const dense = isDense(act);
  return (
    <Fieldset legend="Size" locked={locked}>
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
    </Fieldset>
  );
}

/** Learning rate, gradient projection and clipping, weight EMA. */
export function OptimizerSection({ errs, locked }: SectionProps) {
  const config = useLab((s) => s.config);
  const N = config.nLatents;
  const lrAuto = Number.isFinite(N) && N > 0 ? lrRule(N) : Number.NaN;
  return (
    <Fieldset legend="Optimizer" locked={locked}>
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
    </Fieldset>
  );
}

/** AuxK and the dead-latent rule. */
export function AuxkSection({ errs, locked, d }: SectionProps & { d: number }) {
  const config = useLab((s) => s.config);
  const kAuxAuto = kAuxRule(d, config.nLatents);
  const deadAuto = deadTokensRule(config.tokens);
  return (
    <Fieldset legend="Dead latents (AuxK)" locked={locked}>
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
    </Fieldset>
  );
}

/** Initialization, input normalization, held-out split, seed, metrics interval. */
export function InitDataSection({ errs, locked }: SectionProps) {
  return (
    <Fieldset legend="Initialization and data" locked={locked}>
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
    </Fieldset>
  );
}

/** The binding cap that forces latent shards. */
export function AdvancedSection({ errs, locked }: SectionProps) {
  const adapter = useLab((s) => s.adapter);
  const limits = planLimits(adapter);
  const adapterCap = largestBinding(limits);
  return (
    <Fieldset legend="Advanced" locked={locked}>
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
    </Fieldset>
  );
}
