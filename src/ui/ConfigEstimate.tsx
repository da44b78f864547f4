/**
 * Below the configuration form: its validation problems, the buffer plan's problems on this adapter,
 * and the estimate of GPU memory (the engine's plan, by buffer group) and time (step and run, at the
 * measured or assumed rate) with a shorter budget offered when the run would be long.
 */
import type { ResolvedConfig } from '../sae/config';
import { formatBytes } from '../store/files';
import { patchConfig, useLab } from '../store/lab';
import {
  type BudgetProposal,
  estimateMemory,
  estimateTime,
  type MemoryEstimate,
  proposeBudget,
  stepFlops,
  type TimeEstimate,
} from './estimate';
import { fmtCompact, fmtDuration, fmtInt, fmtNum } from './format';

/** Validation problems of the form (validateConfig's messages), one per line. */
export function ConfigProblems({ problems }: { problems: string[] }) {
  if (problems.length === 0) return null;
  return (
    <ul className="problems" data-testid="config-problems">
      {problems.map((p) => (
        <li key={p}>{p}</li>
      ))}
    </ul>
  );
}

/**
 * The plan's problems and the memory and time estimate of a valid config (`resolved`: null while the
 * form has problems, then nothing is shown).
 */
export function ConfigEstimate({
  resolved,
  d,
  locked,
}: {
  resolved: ResolvedConfig | null;
  d: number;
  locked: boolean;
}) {
  const config = useLab((s) => s.config);
  const adapter = useLab((s) => s.adapter);
  const measured = useLab((s) => s.measured);
  // The engine's buffer plan on this adapter (WebGPU's default limits until it is known).
  const mem = resolved ? estimateMemory(resolved, adapter) : null;
  const time = mem ? estimateTime({ ...config, d }, measured, adapter) : null;
  // A first click should finish while the user watches: offer a shorter budget, change nothing else.
  const proposal = time && !locked ? proposeBudget({ ...config, d }, time, adapter) : null;
  return (
    <>
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
          <MemoryLine mem={mem} />
          <TimeLine time={time} flops={stepFlops(config.batchSize, d, config.nLatents)} proposal={proposal} />
        </div>
      )}
    </>
  );
}

/** GPU memory of the plan, its shards and tiles, and the breakdown by buffer group. */
function MemoryLine({ mem }: { mem: MemoryEstimate }) {
  return (
    <div>
      <span className="muted">GPU memory ≈ </span>
      <strong data-testid="estimate-memory">{formatBytes(mem.total)}</strong>
      {(mem.plan.shards.length > 1 || mem.plan.tiles.length > 1) && (
        <span className="muted small" data-testid="estimate-shards">
          {' '}
          · {mem.plan.shards.length} latent shard{mem.plan.shards.length > 1 ? 's' : ''},{' '}
          {mem.plan.tiles.length} tile{mem.plan.tiles.length > 1 ? 's' : ''} of {fmtInt(mem.plan.tileLatents)}{' '}
          latents (binding cap {formatBytes(mem.plan.bindingCap)})
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
  );
}

/** Step and run time at the measured or assumed rate, and a shorter budget when the run is long. */
function TimeLine({
  time,
  flops,
  proposal,
}: {
  time: TimeEstimate;
  flops: number;
  proposal: BudgetProposal | null;
}) {
  return (
    <div>
      <span className="muted">Step ≈ </span>
      <strong data-testid="estimate-step">{fmtDuration(time.stepSeconds)}</strong>
      <span className="muted">, run ≈ </span>
      <strong>{fmtDuration(time.runSeconds)}</strong>
      <p className="help">
        {fmtCompact(flops)}FLOP per step (2·B·d·N·3) at {fmtNum(time.gflops, 3)} GFLOP/s{' '}
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
  );
}
