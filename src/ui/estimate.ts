/**
 * GPU memory and step-time estimates for the config panel. The memory is the engine's own buffer plan
 * (src/sae/plan.ts: every buffer a step holds, checked against the adapter's limits), summed by group;
 * the time mirrors docs/DESIGN.md §1 "Cost": the dense encode (2·B·d·N flops forward, about twice that backward)
 * dominates.
 */
import { type AdapterReport, reportLimits } from '../gpu/device';
import type { ResolvedConfig } from '../sae/config';
import {
  type BufferPlan,
  bufferPlan,
  DEFAULT_LIMITS,
  type PlanLimits,
  type PlannedBuffer,
} from '../sae/plan';
import type { MeasuredSpeed } from '../store/lab';

export interface MemoryEstimate {
  total: number;
  parts: { name: string; bytes: number }[];
  /** the plan's problems: one line per limit the config breaks (Start stays disabled while any) */
  problems: string[];
  plan: BufferPlan;
}

/** The adapter's limits a plan needs, or WebGPU's defaults while the adapter is not known. */
export const planLimits = (adapter: AdapterReport | null): PlanLimits =>
  reportLimits(adapter, DEFAULT_LIMITS);

const GROUP_LABEL: Record<PlannedBuffer['group'], string> = {
  parameters: 'parameters W_enc, W_dec, biases',
  gradients: 'gradients',
  adam: 'Adam moments m, v',
  ema: 'EMA weights',
  batch: 'batch x, x̂, e, g, AuxK residual',
  'pre-activations': 'pre-activations (tile [B, n] or [B, N])',
  entries: 'TopK/AuxK entries, CSC order, running top-k',
  latents: 'per-latent counters',
  small: 'small buffers and uniforms',
};

/** The config's buffer plan on this adapter, summed by group. */
export function estimateMemory(c: ResolvedConfig, adapter: AdapterReport | null): MemoryEstimate {
  const plan = bufferPlan(c, planLimits(adapter));
  const sums = new Map<PlannedBuffer['group'], number>();
  for (const b of plan.buffers) sums.set(b.group, (sums.get(b.group) ?? 0) + b.bytes);
  const parts = [...sums].map(([g, bytes]) => ({ name: GROUP_LABEL[g] ?? g, bytes }));
  return { total: plan.totalBytes, parts, problems: plan.problems, plan };
}

/** FLOPs of one step: encode forward 2·B·d·N, and ≈ twice that for the rest (backward, AuxK, update). */
export const stepFlops = (B: number, d: number, N: number) => 2 * B * d * N * 3;

export interface TimeEstimate {
  stepSeconds: number;
  gflops: number;
  source: 'measured' | 'assumed';
  runSeconds: number;
}

/** A fallback adapter or a CPU rasterizer (SwiftShader, llvmpipe): the GPU emulated on the CPU. */
const isEmulated = (a: AdapterReport) =>
  a.isFallbackAdapter || /swiftshader|llvmpipe|cpu/i.test(a.architecture);

export function estimateTime(
  c: { d: number; nLatents: number; batchSize: number; tokens: number },
  measured: MeasuredSpeed | null,
  adapter: AdapterReport | null,
): TimeEstimate {
  let gflops: number;
  let source: TimeEstimate['source'];
  if (measured && measured.tokensPerS > 0) {
    // achieved rate of the last run: tokens/s × flops per token
    gflops = (measured.tokensPerS * stepFlops(1, measured.d, measured.nLatents)) / 1e9;
    source = 'measured';
  } else {
    gflops = !adapter || isEmulated(adapter) ? 2 : 500;
    source = 'assumed';
  }
  const stepSeconds = stepFlops(c.batchSize, c.d, c.nLatents) / (gflops * 1e9);
  return { stepSeconds, gflops, source, runSeconds: (stepSeconds * c.tokens) / c.batchSize };
}

/** A token budget that finishes while the user watches, and why it is offered. */
export interface BudgetProposal {
  tokens: number;
  seconds: number;
  reason: string;
}

/** The run the proposal aims at (ours): long enough for the curves to settle on the demo. */
export const WATCHABLE_SECONDS = 120;
/** Runs estimated longer than this get a proposal (ours). */
const PROPOSE_ABOVE_SECONDS = 300;

/**
 * On an emulated adapter, or when the measured (or assumed) speed makes `tokens` take more than a
 * few minutes, a budget of whole batches that takes about WATCHABLE_SECONDS at the same rate; null
 * when the run is short already. Only the token budget changes: N, k, B and the recipe stay.
 */
export function proposeBudget(
  c: { d: number; nLatents: number; batchSize: number; tokens: number },
  time: TimeEstimate,
  adapter: AdapterReport | null,
): BudgetProposal | null {
  if (time.runSeconds <= PROPOSE_ABOVE_SECONDS || time.stepSeconds <= 0) return null;
  const steps = Math.max(1, Math.floor(WATCHABLE_SECONDS / time.stepSeconds));
  const tokens = Math.min(c.tokens, steps * c.batchSize);
  if (tokens >= c.tokens) return null;
  const emulated = !!adapter && isEmulated(adapter);
  const rate = `${time.gflops.toPrecision(3)} GFLOP/s ${time.source === 'measured' ? 'measured in the last run' : 'assumed'}`;
  return {
    tokens,
    seconds: (tokens / c.batchSize) * time.stepSeconds,
    reason: `${emulated ? 'this adapter emulates the GPU on the CPU, and ' : ''}at ${rate} the budget takes ${Math.round(time.runSeconds / 60)} min`,
  };
}
