/**
 * Start-up autotuner (docs/DESIGN.md §2 "Autotuner"): times the kernel variants on this adapter at the run's own shape,
 * bound to the run's own buffers, and keeps the fastest. Barriers cost a lot on some adapters
 * (SwiftShader emulates them) and little on others, so the best variant differs per adapter.
 * Choices are cached per adapter and shape (in memory, and in OPFS when available).
 */

import { writeOpfsFile } from '../data/opfs';
import {
  ENCODE_TOPK_VARIANT_NAMES,
  ENCODE_VARIANT_NAMES,
  TOPK_INSERT_MAX_K,
  TOPK_VARIANT_NAMES,
} from '../gpu/kernel-variants';
import { type EncodeVariant, encodeVariantsFor } from '../gpu/kernels/encode';
import { encodeTopKVariantsFor } from '../gpu/kernels/encode-topk';
import { gpuForms } from '../gpu/kernels/kernel';
import { timeGpu } from '../gpu/timing';
import { kList } from './config';
import type { GpuSae } from './step';
import { type KernelChoice, withoutCopy } from './step-host';

const memo = new Map<string, KernelChoice>();
const CACHE_FILE = 'autotune.json';

export interface AutotuneReport {
  choice: KernelChoice;
  cached: boolean;
  /** the cache's key for this choice: adapter, batch, d, N, k, activation and latent tile */
  key: string;
  /** fastest ms per candidate (of its timed rounds), e.g. {"encode:blocked4x4": 3.1, "topk:insert": 0.8} */
  timings: Record<string, number>;
  /** timed runs per screening key of `timings` (fewer than its level's rounds: dropped as too slow) */
  screenRuns: Record<string, number>;
}

function cacheKey(sae: GpuSae, adapter: string): string {
  const c = sae.cfg;
  // The TopK the step runs: k, BatchTopK's cap or Multi-TopK's 4k (the threshold family runs none).
  const kTop = kList(c);
  return `${adapter}|B${c.batchSize}|d${c.d}|N${c.nLatents}|k${kTop}|${c.activation}|tile${sae.plan.tileLatents}`;
}

/**
 * Choices remembered outside this session (the CLI keeps them in a file, as the page keeps them in
 * OPFS), keyed as {@link autotune} keys them: the next autotune at such a key takes the choice instead
 * of timing. Entries naming a variant this build does not have are ignored.
 */
export function seedAutotune(entries: Record<string, unknown>): void {
  for (const [key, c] of Object.entries(entries)) if (knownChoice(c)) memo.set(key, c);
}

function knownChoice(c: unknown): c is KernelChoice {
  if (!c || typeof c !== 'object') return false;
  const k = c as Partial<KernelChoice>;
  return (
    (ENCODE_VARIANT_NAMES as readonly unknown[]).includes(k.encode) &&
    (TOPK_VARIANT_NAMES as readonly unknown[]).includes(k.topk) &&
    Number.isInteger(k.topkTile) &&
    (k.fused == null || (ENCODE_TOPK_VARIANT_NAMES as readonly unknown[]).includes(k.fused)) &&
    (k.fusedChunk === undefined || Number.isInteger(k.fusedChunk))
  );
}

async function readOpfs(): Promise<Record<string, KernelChoice>> {
  try {
    const dir = await navigator.storage.getDirectory();
    const file = await (await dir.getFileHandle(CACHE_FILE)).getFile();
    return JSON.parse(await file.text());
  } catch {
    return {};
  }
}

async function writeOpfs(all: Record<string, KernelChoice>) {
  try {
    const dir = await navigator.storage.getDirectory();
    const h = await dir.getFileHandle(CACHE_FILE, { create: true });
    await writeOpfsFile(h, new TextEncoder().encode(JSON.stringify(all)));
  } catch {
    // No OPFS (e.g. some headless contexts): the in-memory cache still holds for this session.
  }
}

/** What the autotuner is doing now, in words (the page and the CLI show it while a run prepares). */
type Progress = (what: string) => void;

/** A candidate slower than this on its first run is timed once (at scale one run takes seconds). */
const SLOW_MS = 250;
/**
 * Whether the fused encode + TopK competes with the unfused pair on equal terms. With one tile and
 * AuxK on, the unfused path takes AuxK's dead pre-activations from the [B, N] it already wrote, while
 * the fused one must recompute them (encode-dead): a cost the first-tile timing cannot see (no latent
 * is dead yet at start-up), up to a whole encoder pass once most latents are dead. There the unfused
 * path is kept; with several tiles both paths recompute them.
 */
function fusedComparable(sae: GpuSae): boolean {
  return sae.plan.tiles.length > 1 || !sae.cfg.auxk || sae.cfg.kAux === 0;
}

/**
 * The fastest run (ms) of phase `name` under each build in `builds`, timed in alternating rounds
 * (every build once per round) so that all of them are measured under the same load (the fastest, not
 * the median: a shared machine's load only ever adds time; with two rounds a median is their mean,
 * and one slow run decided the pick: three peer-configuration runs picked unroll8x16, unroll16x8 and
 * unroll16x16, 24.1, 23.0 and 24.9k tokens/s). Timed one after the other,
 * a shared machine's load drift once made the autotuner keep unroll4x4 where unroll16x16 was 1.2×
 * faster. Each build is compiled first: a one-row forward dispatches its encoder, selection and
 * decoder at almost no cost, so no timed run includes a pipeline compile (seconds on SwiftShader for
 * the large unrolled tiles: 3 s for unroll16x16). Round 0 warms up and is dropped, unless some build
 * took over SLOW_MS there: then round 0 is the measure (at scale one run takes seconds).
 */
async function timeAlternating(
  sae: GpuSae,
  name: 'encode' | 'topk' | 'select',
  builds: KernelChoice[],
  samples: number,
): Promise<number[]> {
  const record = (enc: GPUCommandEncoder) => {
    const tuned = sae.tunePhases[name];
    const ph = tuned ? { record: tuned } : sae.phases.find((p) => p.name === name);
    if (!ph) throw new Error(`autotune: no phase ${name}`);
    const pass = enc.beginComputePass({ label: `autotune:${name}` });
    ph.record(pass);
    pass.end();
  };
  for (const k of builds) {
    sae.build(k);
    sae.forward(1);
  }
  await sae.device.queue.onSubmittedWorkDone();
  const ms = builds.map(() => [] as number[]);
  for (let round = 0; round <= samples; round++) {
    for (const [i, k] of builds.entries()) {
      sae.build(k);
      ms[i].push((await timeGpu(sae.device, record, { warmup: 0, samples: 1 })).medianMs);
    }
    if (round === 0 && ms.some((m) => m[0] > SLOW_MS)) return ms.map((m) => m[0]);
  }
  return ms.map((m) => Math.min(...m.slice(1)));
}

/** Compiled copies of the encoder timed against each other on software adapters (ours). */
const ENCODER_COPIES = 3;
/**
 * Below this many ms a step's encoder is not worth the copies' compiles and timing: 12% of 20 ms is
 * 2.4 ms a step (ours). setEncoderCopyMinMs changes it (tests).
 */
let encoderCopyMinMs = 20;
/**
 * Nor where the run's encoder time (its ms a step × the run's steps) is under this (ours): about one
 * compilation in four is ~10% slower, so the copies save about 2.5% of it on average, 10 s at 400 s,
 * about what they cost on SwiftShader (two compilations of unroll16x16, 3 s each, and three rounds of
 * three encoder runs). A first click on the demo, whose budget is proposed to finish in minutes, does
 * not wait for them.
 */
const COPY_MIN_RUN_ENCODER_MS = 400_000;
/** Tests: the encoder time from which pickEncoderCopy compiles copies (null: the default, 20 ms). */
export function setEncoderCopyMinMs(ms: number | null) {
  encoderCopyMinMs = ms ?? 20;
}

/**
 * On a software adapter, the fastest of ENCODER_COPIES compilations of the chosen encoder, timed in
 * alternating rounds like the variants (timings "encode-copy:n"); the others are left to the pipeline
 * cache. Why: SwiftShader fixes a kernel's speed when it compiles it, and the same code compiled again
 * may run at another speed. In one pass (2026-12-03, unroll16x16 with chunk maxima, four copies
 * alternated three rounds): d = 768, B = 1024, N = 4096 one copy 845–894 ms, the others 749–793; at
 * d = 64, B = 4096, N = 1024 the same copy (one pipeline serves both shapes) 86–88 ms, the others
 * 78–83. Over five runs about one compilation in four was the slow kind, and it stayed slow, so a run
 * that drew it trained about 10% slower for its whole length. The copies compute the same bits (one
 * WGSL function; encode.gpu.ts checks it). A GPU adapter compiles once (its kernels do not show this).
 */
export async function pickEncoderCopy(
  sae: GpuSae,
  choice: KernelChoice,
  samples: number,
  timings: Record<string, number>,
  progress: Progress = () => {},
  steps = Number.POSITIVE_INFINITY,
): Promise<KernelChoice> {
  const first = withoutCopy(choice);
  // The fused encode + TopK is a kernel of its own (encode-topk.ts), with no encoder to copy.
  const encoder = !!sae.tunePhases.encode || sae.phases.some((p) => p.name === 'encode');
  if (!gpuForms(sae.device) && !first.fused && encoder) {
    // The encoder stage's timing where it ran (a fresh choice); else one run now (a cached choice).
    const ms =
      timings[`encode:${first.encode}`] ??
      (await timeAlternating(sae, 'encode', [{ ...first, encodeCopy: 0 }], 1))[0];
    if (ms >= encoderCopyMinMs && ms * steps >= COPY_MIN_RUN_ENCODER_MS) {
      progress(`timing ${ENCODER_COPIES} compilations of the encoder (${first.encode}) against each other`);
      const builds = Array.from({ length: ENCODER_COPIES }, (_, encodeCopy) => ({ ...first, encodeCopy }));
      const best = await fastest(
        sae,
        'encode',
        builds,
        samples,
        timings,
        (k) => `encode-copy:${k.encodeCopy}`,
      );
      sae.build(best);
      return best;
    }
  }
  sae.build(first);
  return first;
}

/** The fastest of `builds` by timeAlternating; each one's time is recorded under `label(build)`. */
async function fastest(
  sae: GpuSae,
  name: 'encode' | 'topk' | 'select',
  builds: KernelChoice[],
  samples: number,
  timings: Record<string, number>,
  label: (k: KernelChoice) => string,
): Promise<KernelChoice> {
  const ms = await timeAlternating(sae, name, builds, samples);
  let best = 0;
  builds.forEach((k, i) => {
    timings[label(k)] = ms[i];
    if (ms[i] < ms[best]) best = i;
  });
  return builds[best];
}

/**
 * The encoder screening's levels for a batch of B > 256 rows (ours): every variant on a few rows
 * (16 at d = 768, as many more as d is smaller: the same work, 192 rows at d = 64), those within 2× of
 * the fastest there (at most 10) on a quarter of the batch (at least 256 rows), the 3 fastest of those
 * on the whole batch. The first level only tells the slow variants (naive, shared-memory, indexed
 * tiles) from the rest: 16 rows at d = 64 take 2.3–4.3 ms for every unrolled tile and naive alike,
 * mostly the submission, and a top 6 by those times once left unroll16x16 out (the pick trained the
 * peer configuration at 21.0k tokens/s where unroll16x16 makes 26–27.6k). Likewise a 256-row run at
 * d = 64 (7–9 ms) ranked the unrolled tiles by chance; from 512 rows on (B = 2048, d = 64,
 * alternating rounds) they sort as on the whole batch: 16x16 12–13 ms, 16x8 13–14, 8x16 13–15, 4x8
 * 15.5. At d = 768 (B = 1024) the second level stays at 256 rows.
 */
const screenLevels = (B: number, d: number) => [
  { rows: Math.min(Math.max(16, Math.round((16 * 768) / d)), 256), keep: 10, within: 2 },
  { rows: Math.max(256, Math.floor(B / 4)), keep: 3, within: Number.POSITIVE_INFINITY },
];
/**
 * Rounds of each screening level, the fastest run of each variant kept (ours), unless a round's
 * fastest run took SCREEN_ONE_ROUND_MS or more (then the submission is noise).
 */
const SCREEN_ROUNDS = 3;
const SCREEN_ONE_ROUND_MS = 50;
/**
 * A variant whose fastest run in a level is over SCREEN_DROP× the level's fastest after a round is not
 * timed again in that level (ours: twice level 0's 2× margin, so a run slowed 2× by the machine cannot
 * drop one that would be kept); it is still ranked by the runs it had. SwiftShader, B = 4096, d = 64,
 * N = 4096: tiled, naive, blocked*, vec4* and wgtile4x4 took 2.1 s of each 2.3 s round at 192 rows.
 */
const SCREEN_DROP = 4;

/**
 * The encoder variants to time on the whole batch. Where the batch is larger than the last screening
 * level's rows (and the step has an untiled encoder), the variants are screened on a few rows first,
 * each level keeping its fastest: a whole-batch run of each slow variant cost seconds on SwiftShader
 * (the page's default shape took 70 s to start), and even 256 rows of the indexed and shared-memory
 * encoders took 1.6–5.9 s each at d = 768 (naive 2.1, blocked2x4 5.4, tiled 5.9), twice with the run
 * that compiled them. So each variant is compiled by a one-row run, then timed on a few rows; only
 * those within 2× of the fastest there (at most 10) run the next level (screenLevels).
 */
async function screenEncoders(
  sae: GpuSae,
  timings: Record<string, number>,
  runs: Record<string, number>,
  progress: Progress,
) {
  let left: EncodeVariant[] = encodeVariantsFor(sae.cfg.d);
  const levels = screenLevels(sae.cfg.batchSize, sae.cfg.d);
  if (!sae.tunePhases.encodeRows || sae.cfg.batchSize <= levels[levels.length - 1].rows) return left;
  const run = (rows: number) =>
    timeGpu(
      sae.device,
      (enc) => {
        // Read after each build: every build has its own encoder.
        const pass = enc.beginComputePass({ label: 'autotune:screen' });
        sae.tunePhases.encodeRows?.(pass, rows);
        pass.end();
      },
      { warmup: 0, samples: 1 },
    );
  for (const [level, { rows, keep, within }] of levels.entries()) {
    const ms = new Map<EncodeVariant, number>();
    // Alternating rounds, the fastest of SCREEN_ROUNDS each (level 0 compiles each pipeline in its
    // first round): one run of a few milliseconds is at the mercy of the machine.
    let timed = left;
    for (let round = 0; round < SCREEN_ROUNDS; round++) {
      for (const [i, encode] of timed.entries()) {
        const what = level === 0 && round === 0 ? 'compiling and timing' : `round ${round + 1}`;
        progress(`screening the encoders on ${rows} rows: ${what} ${encode} (${i + 1}/${timed.length})`);
        sae.build({ ...sae.kernels, fused: null, encode });
        if (level === 0 && round === 0) await run(1); // compiles the pipeline
        const t = (await run(rows)).medianMs;
        ms.set(encode, Math.min(t, ms.get(encode) ?? Number.POSITIVE_INFINITY));
        const key = `encode@${rows}rows:${encode}`;
        runs[key] = (runs[key] ?? 0) + 1;
      }
      const best = Math.min(...ms.values());
      if (best >= SCREEN_ONE_ROUND_MS) break;
      timed = timed.filter((encode) => (ms.get(encode) ?? 0) <= SCREEN_DROP * best);
    }
    for (const [encode, t] of ms) timings[`encode@${rows}rows:${encode}`] = t;
    const sorted = [...ms].sort((a, b) => a[1] - b[1]);
    left = sorted
      .filter(([, t]) => t <= within * sorted[0][1])
      .slice(0, keep)
      .map(([encode]) => encode);
  }
  return left;
}

/**
 * Picks the encode and TopK variants, then fused encode + TopK or not, for this GpuSae and rebuilds
 * it with them.
 * `adapter` names the adapter for the cache (vendor/architecture/device); `steps`, the run's length,
 * decides whether compiled copies of the encoder are worth timing (pickEncoderCopy).
 */
export async function autotune(
  sae: GpuSae,
  adapter: string,
  samples = 2,
  progress: Progress = () => {},
  steps = Number.POSITIVE_INFINITY,
): Promise<AutotuneReport> {
  const key = cacheKey(sae, adapter);
  const stored = memo.get(key) ?? (await readOpfs())[key];
  if (stored) {
    memo.set(key, stored);
    const timings: Record<string, number> = {};
    const choice = await pickEncoderCopy(
      sae,
      { ...sae.kernels, ...stored },
      samples,
      timings,
      progress,
      steps,
    );
    return { choice, cached: true, key, timings, screenRuns: {} };
  }
  const timings: Record<string, number> = {};
  const screenRuns: Record<string, number> = {};
  const base: KernelChoice = { ...withoutCopy(sae.kernels), fused: null };
  const encoders = (await screenEncoders(sae, timings, screenRuns, progress)).map((encode) => ({
    ...base,
    encode,
  }));
  progress(`timing the encoders on the whole batch: ${encoders.map((k) => k.encode).join(', ')}`);
  let best = await fastest(sae, 'encode', encoders, samples, timings, (k) => `encode:${k.encode}`);
  const kTop = kList(sae.cfg);
  const topks = !sae.phases.some((p) => p.name === 'topk')
    ? []
    : kTop <= TOPK_INSERT_MAX_K
      ? (['bitonic', 'insert', 'chunked'] as const)
      : (['bitonic'] as const);
  if (topks.length > 0) {
    const builds = topks.map((topk) => ({ ...best, topk }));
    progress(`timing the TopK variants: ${topks.join(', ')}`);
    best = await fastest(sae, 'topk', builds, samples, timings, (k) => `topk:${k.topk}`);
  }
  // 'chunkmax' moves the chunk maxima into an unrolled encoder (untiled: one [B, N]): it competes on
  // encoder + TopK, which is what it changes.
  if (best.topk === 'chunked' && best.encode.startsWith('unroll') && sae.plan.tiles.length === 1) {
    const builds = [best, { ...best, topk: 'chunkmax' as const }];
    progress(`timing the TopK on chunk maxima from the encoder (${best.encode}) against its own scan`);
    best = await fastest(sae, 'select', builds, samples, timings, (k) => `select:${k.topk}`);
  }
  // Fused encode + TopK against the best unfused pair, on the whole selection of the first tile
  // (encoder, TopK and the merge where tiles are merged).
  const chunkMin = sae.plan.fusedChunkMin;
  if (chunkMin > 0 && fusedComparable(sae)) {
    const chunks = [chunkMin, 4 * chunkMin].filter((ch, i) => i === 0 || ch < sae.plan.tileLatents);
    // The fused forms of the chosen encoder's family (scalar or vec4) with its register tile, and the
    // 4×4 scalar one: each candidate is a pipeline to compile, which costs seconds on SwiftShader.
    const family = best.encode.startsWith('vec4') ? 'vec4' : 'blocked';
    const encodeOf = best.encode;
    const fusedCandidates = encodeTopKVariantsFor(sae.cfg.d).filter(
      (v) => v === 'blocked4x4' || (v.startsWith(family) && encodeOf.endsWith(v.slice(family.length))),
    );
    const builds: KernelChoice[] = [
      { ...best, fused: null },
      ...fusedCandidates.flatMap((fused) => chunks.map((fusedChunk) => ({ ...best, fused, fusedChunk }))),
    ];
    progress(
      `timing the fused encode + TopK (${fusedCandidates.join(', ')}) against ${best.encode} + ${best.topk}`,
    );
    best = await fastest(sae, 'select', builds, samples, timings, (k) =>
      k.fused ? `select:fused:${k.fused}:${k.fusedChunk}` : 'select:unfused',
    );
  }
  memo.set(key, best);
  const all = await readOpfs();
  all[key] = best;
  await writeOpfs(all);
  // The choice is built here, in the compiled copy of its encoder that runs fastest (never remembered:
  // another process compiles anew).
  const choice = await pickEncoderCopy(sae, best, samples, timings, progress, steps);
  return { choice, cached: false, key, timings, screenRuns };
}
