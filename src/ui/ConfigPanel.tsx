/**
 * The configuration panel: presets, the form's fieldsets (./ConfigSections.tsx), its problems and the
 * memory and time estimate (./ConfigEstimate.tsx). The form lives in the lab store (src/store/lab.ts).
 */
import { RECIPES, type ResolvedConfig, resolveConfig, validateConfig } from '../sae/config';
import { type ConfigForm, isActive, patchConfig, resetConfig, useLab } from '../store/lab';
import { ConfigEstimate, ConfigProblems } from './ConfigEstimate';
import {
  ActivationSection,
  AdvancedSection,
  AuxkSection,
  type FieldErrors,
  InitDataSection,
  OptimizerSection,
  SizeSection,
} from './ConfigSections';

/** A quick preset that trains in seconds even on a CPU-emulated GPU. */
const QUICK: Partial<ConfigForm> = { nLatents: 256, k: 8, batchSize: 256, tokens: 102_400, metricsEvery: 2 };

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

/**
 * The form resolved for width d and checked: the resolved config (null when it cannot be resolved),
 * every problem, and each field's first problem.
 */
function checkForm(
  config: ConfigForm,
  d: number,
): { resolved: ResolvedConfig | null; problems: string[]; errs: FieldErrors } {
  let problems: string[];
  let resolved: ResolvedConfig | null = null;
  try {
    resolved = resolveConfig({ ...config, d });
    problems = validateConfig(resolved);
  } catch (e) {
    problems = (e as Error).message.replace(/^invalid config: /, '').split('; ');
  }
  const errs: FieldErrors = {};
  for (const p of problems) {
    const f = FIELD_OF[p.split(' ')[0]];
    if (f && !errs[f]) errs[f] = p;
  }
  return { resolved, problems, errs };
}

/** Defaults, the paper's recipe, and a quick test that trains in seconds. */
function Presets({ locked }: { locked: boolean }) {
  return (
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
  );
}

export function ConfigPanel() {
  const config = useLab((s) => s.config);
  const info = useLab((s) => s.dataset.info);
  const locked = useLab((s) => isActive(s.run?.status));
  const d = info?.d ?? 64;
  const { resolved, problems, errs } = checkForm(config, d);
  return (
    <section className="card" aria-label="configuration">
      <div className="card-head">
        <h2>Configuration</h2>
        <Presets locked={locked} />
      </div>
      <p className="muted small">
        Each default is the paper's (Gao et al. 2024), its released code's or another named source's (README).
        d = {d}
        {info ? ' from the dataset' : ' (until a dataset is loaded)'}.
      </p>
      <ActivationSection errs={errs} locked={locked} d={d} />
      <SizeSection errs={errs} locked={locked} />
      <OptimizerSection errs={errs} locked={locked} />
      <AuxkSection errs={errs} locked={locked} d={d} />
      <InitDataSection errs={errs} locked={locked} />
      <AdvancedSection errs={errs} locked={locked} />
      <ConfigProblems problems={problems} />
      <ConfigEstimate resolved={resolved && !problems.length ? resolved : null} d={d} locked={locked} />
    </section>
  );
}
