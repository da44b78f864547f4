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
    const soft =
      !adapter || adapter.isFallbackAdapter || /swiftshader|llvmpipe|cpu/i.test(adapter.architecture);
    gflops = soft ? 2 : 500;
    source = 'assumed';
  }
  const stepSeconds = stepFlops(c.batchSize, c.d, c.nLatents) / (gflops * 1e9);
  return { stepSeconds, gflops, source, runSeconds: (stepSeconds * c.tokens) / c.batchSize };
}
