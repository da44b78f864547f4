/**
 * Back-of-envelope GPU memory and step-time estimates for the config panel. They mirror DESIGN.md §1:
 * the dense encode (2·B·d·N flops forward, about twice that backward) dominates the time, and the
 * [B, N] pre-activations plus parameters and Adam moments dominate the memory.
 */
import type { AdapterReport } from '../gpu/device';
import type { MeasuredSpeed } from '../store/lab';

export interface MemoryEstimate {
  total: number;
  parts: { name: string; bytes: number }[];
  /** largest single buffer; must fit maxStorageBufferBindingSize */
  largestBinding: number;
}

const F = 4;

export function estimateMemory(c: {
  d: number;
  nLatents: number;
  k: number;
  kAux: number;
  batchSize: number;
  ema: boolean;
}): MemoryEstimate {
  const { d, nLatents: N, k, kAux, batchSize: B } = c;
  const paramCount = 2 * N * d + N + d;
  const kk = k + kAux;
  const parts = [
    { name: 'pre-activations B·N', bytes: B * N * F },
    { name: 'params + Adam m, v: 3×(2N·d+N+d)', bytes: 3 * paramCount * F },
    { name: 'gradients 2N·d+N+d', bytes: paramCount * F },
    ...(c.ema ? [{ name: 'EMA weights', bytes: paramCount * F }] : []),
    { name: 'batch scratch x, x̂, e, g: 4·B·d', bytes: 4 * B * d * F },
    { name: 'TopK/AuxK indices + values, CSC: 5·B·(k+kAux)', bytes: 5 * B * kk * F },
    { name: 'dead-latent counters, CSC starts: 3N', bytes: 3 * N * F },
  ];
  return {
    total: parts.reduce((a, p) => a + p.bytes, 0),
    parts,
    largestBinding: Math.max(B * N * F, N * d * F),
  };
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
