/**
 * The encoder's matmul in NumPy (BLAS) on this machine's CPU cores, at a benchmark entry's shape:
 * pre = (x − b_pre) · W_encᵀ + b_enc, float32, [B, d] × [d, N]. The distance from our WGSL encoder to
 * what the machine does with a tuned BLAS (on SwiftShader both run on the same cores). Needs python3
 * with numpy; without it the entry says why instead of a figure.
 */
import { spawnSync } from 'node:child_process';

const SCRIPT = `
import sys, time, json
import numpy as np
B, d, N, samples = (int(a) for a in sys.argv[1:5])
rng = np.random.default_rng(0)
x = rng.standard_normal((B, d), dtype=np.float32)
b_pre = rng.standard_normal(d, dtype=np.float32) * 0.1
W = rng.standard_normal((N, d), dtype=np.float32) * 0.05
b_enc = rng.standard_normal(N, dtype=np.float32) * 0.1
ts = []
for i in range(samples + 1):
    t0 = time.perf_counter()
    pre = (x - b_pre) @ W.T + b_enc
    ts.append(time.perf_counter() - t0)
ts = sorted(ts[1:])
print(json.dumps({"median_ms": ts[len(ts) // 2] * 1e3, "numpy": np.__version__}))
`;

export interface NumpyMatmul {
  median_ms?: number;
  gflops?: number;
  numpy?: string;
  error?: string;
}

export function numpyEncode(B: number, d: number, N: number, samples = 3): NumpyMatmul {
  const r = spawnSync('python3', ['-c', SCRIPT, String(B), String(d), String(N), String(samples)], {
    encoding: 'utf8',
    timeout: 10 * 60_000,
  });
  if (r.status !== 0)
    return { error: (r.stderr || r.error?.message || 'python3 failed').trim().split('\n').pop() };
  const out = JSON.parse(r.stdout) as { median_ms: number; numpy: string };
  return { ...out, gflops: (2 * B * d * N) / (out.median_ms * 1e6) };
}
