/**
 * npm run bench [-- --full | --only encode,step,scale,...] [--samples 3 --max-n 65536 --encode V
 * --topk V --fused V --shape B,d,N,k,kAux --gpt2-layers L --gpt2-T T --minutes M --soak-tokens T --out FILE]: runs bench/index.html in headless Chromium and
 * prints one JSON document (adapter, shapes, median ms per variant and phase, GFLOP/s, ratios).
 * Without --only or --full it runs the quick default, the step profile at its two shapes with AuxK
 * active (a few minutes on SwiftShader; step-idle adds the second with AuxK idle); --full runs every
 * benchmark (the scale sweep to N = 2^20 takes hours there).
 * `--only soak [--minutes 30]` (never part of --full) trains on the demo for that long and samples the
 * JS heap, GPU bytes and live GPU buffers once a minute (bench/soak.ts): samples and slopes.
 */
import { writeFileSync } from 'node:fs';
import { benchArgs } from './args';
import { numpyEncode } from './numpy';
import { runBenchPage } from './page';
import { type SoakSample, sampleSoak, soakFits, soakSummary } from './soak';

interface BenchEntry {
  name: string;
  shape?: { B: number; d: number; N: number };
  variants?: Record<string, { gflops: number }>;
  best?: string;
  encode_gflops?: number;
  numpy_encode?: unknown;
  ratio_numpy_over_ours_gflops?: number;
}

/** The fields of a step profile the summary line reads (step.bench.ts benchStep). */
interface StepEntry {
  name: string;
  shape?: { B: number; d: number; N: number; k: number; kAux: number };
  dead_latents: number;
  dead_tokens: number;
  ratio_step_over_encode: number;
  ratio_step_over_encode_from: string;
  phases_ms?: Record<string, number>;
  in_pass?: { phases_ms: Record<string, number> };
}

const { args, opt } = benchArgs('bench');
const q = new URLSearchParams();
for (const name of [
  'only',
  'samples',
  'max-n',
  'encode',
  'topk',
  'fused',
  'shape',
  'gpt2-layers',
  'gpt2-T',
  'minutes',
  'soak-tokens',
])
  if (opt(name)) q.set(name, opt(name)!);
// An empty `only` runs everything (bench/main.ts); the quick default is the step profile.
if (!opt('only') && !args.includes('--full')) q.set('only', 'step');

const soak = (opt('only') ?? '').split(',').includes('soak');
const minutes = Number(opt('minutes') ?? 30);
if (soak && !(minutes >= 1)) throw new Error(`--minutes ${opt('minutes')}: expected a number of minutes ≥ 1`);
let soakSamples: SoakSample[] = [];
const log = (l: string) => process.stderr.write(`${l}\n`);
const result = await runBenchPage(
  q,
  log,
  soak
    ? {
        timeoutMs: (minutes + 60) * 60_000,
        during: async (page) => {
          soakSamples = await sampleSoak(page, minutes, log);
        },
      }
    : {},
);
if (soak) {
  const e = (result.entries ?? []).find((x) => (x as { name?: string }).name === 'soak') as
    | Record<string, unknown>
    | undefined;
  if (e && soakSamples.length) {
    const fits = soakFits(soakSamples);
    Object.assign(e, { samples: soakSamples, fits });
    log(soakSummary(fits));
  }
}
// The same matmul in NumPy/BLAS on the same cores, next to every encoder figure of this run.
for (const e of (result.entries ?? []) as BenchEntry[]) {
  if (!e.shape || !(e.name === 'encode' || e.name === 'step')) continue;
  const { B, d, N } = e.shape;
  const np = numpyEncode(B, d, N);
  e.numpy_encode = np;
  const ours = e.name === 'encode' ? e.variants?.[e.best ?? '']?.gflops : e.encode_gflops;
  if (np.gflops && ours) e.ratio_numpy_over_ours_gflops = np.gflops / ours;
}
// One line per step profile on stderr: the ratio issue #19 asks about and what lies beyond the encoder.
for (const e of (result.entries ?? []) as StepEntry[]) {
  if (e.name !== 'step' || !e.shape) continue;
  const { B, d, N, k, kAux } = e.shape;
  const beyond = Object.entries(e.in_pass?.phases_ms ?? e.phases_ms ?? {})
    .filter(([name]) => name !== 'encode')
    .sort((a, b) => b[1] - a[1])
    .slice(0, 6)
    .map(([name, ms]) => `${name} ${ms.toFixed(1)}`)
    .join(', ');
  log(
    `step B=${B} d=${d} N=${N} k=${k} kAux=${kAux} (deadTokens ${e.dead_tokens}: ${e.dead_latents} dead): ` +
      `${e.ratio_step_over_encode.toFixed(3)}× its encoder (${e.ratio_step_over_encode_from}); beyond it, ms: ${beyond}`,
  );
}
const json = JSON.stringify(result, null, 2);
console.log(json);
if (opt('out')) writeFileSync(opt('out')!, json);
if (result.error) process.exitCode = 1;
