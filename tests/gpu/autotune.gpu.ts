// The autotuner (src/sae/autotune.ts) and the fused encode + TopK it may choose:
// - a phase recorded before any step sees a valid step uniform (it once read k = 0, and the fused
//   kernel's insertion loop counted down from 2^32: a start-up stall);
// - the fused kernel competes where it pays what the unfused path pays for AuxK (several tiles), and is
//   not timed with one tile and AuxK on; whatever it picks, the step runs and its loss is finite.
import { encodeVariantsFor } from '../../src/gpu/kernels/encode';
import { gpuForms } from '../../src/gpu/kernels/kernel';
import { autotune, setEncoderCopyMinMs } from '../../src/sae/autotune';
import { resolveConfig } from '../../src/sae/config';
import { GpuSae } from '../../src/sae/step';
import { DEFAULT_KERNELS, type KernelChoice } from '../../src/sae/step-host';
import { assert, gpuTest, randn } from './harness';
import { randomParams } from './step.gpu';

gpuTest(
  'autotune: the fused selection run before any step gives each row its top k (float64)',
  async (device) => {
    const B = 16;
    const d = 8;
    const N = 200;
    const k = 4;
    const cfg = resolveConfig({ d, nLatents: N, k, batchSize: B });
    const sae = new GpuSae(device, cfg, { ...DEFAULT_KERNELS, fused: 'blocked4x4' });
    const p = randomParams(N, d, 3);
    sae.setState({ params: p });
    const x = randn(B * d, 4);
    sae.writeBatch(x, new Float32Array(B).fill(1));
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    assert(sae.tunePhases.select, 'no select phase to tune');
    sae.tunePhases.select(pass);
    pass.end();
    device.queue.submit([enc.finish()]);
    const got = await sae.readU32('bestIdx', B * k);
    sae.destroy();
    for (let b = 0; b < B; b++) {
      const pre = Array.from({ length: N }, (_, i) => {
        let s = p.b_enc[i];
        for (let c = 0; c < d; c++) s += (x[b * d + c] - p.b_pre[c]) * p.W_enc[i * d + c];
        return s;
      });
      const want = pre
        .map((v, i) => [v, i] as const)
        .sort((a, c) => c[0] - a[0] || a[1] - c[1])
        .slice(0, k)
        .map(([, i]) => i);
      const row = Array.from(got.subarray(b * k, (b + 1) * k));
      assert(row.join() === want.join(), `row ${b}: top-${k} [${row}] != [${want}]`);
    }
  },
);

gpuTest(
  'autotune: fused is timed with several tiles, not with one tile and AuxK; the chosen step runs',
  async (device) => {
    const base = { d: 8, nLatents: 512, k: 4, batchSize: 32 };
    for (const tileLatents of [undefined, 128]) {
      const cfg = resolveConfig(base);
      const sae = new GpuSae(device, cfg, DEFAULT_KERNELS, tileLatents ? { tileLatents } : {});
      const tiles = sae.plan.tiles.length;
      sae.setState({ params: randomParams(cfg.nLatents, cfg.d, 5) });
      sae.writeBatch(randn(cfg.batchSize * cfg.d, 6), new Float32Array(cfg.batchSize).fill(1));
      // A fresh adapter name: no cached choice from an earlier run or test.
      const report = await autotune(sae, `test-${tiles}-${Date.now()}`, 1);
      const fusedTimed = Object.keys(report.timings).filter((t) => t.startsWith('select:fused'));
      if (tiles > 1)
        assert(fusedTimed.length > 0, `${tiles} tiles: fused not timed (${Object.keys(report.timings)})`);
      else assert(fusedTimed.length === 0, `one tile with AuxK: fused was timed (${fusedTimed})`);
      sae.step(1, cfg.lr, 1 / cfg.batchSize);
      const [m] = await sae.readMetrics(0, 1);
      sae.destroy();
      assert(Number.isFinite(m.loss) && m.loss > 0, `loss after the tuned step: ${m.loss}`);
    }
  },
);

// A batch over 256 rows: every encoder variant is screened on a few rows (16 at d = 768, 192 at
// d = 64), those within 2× of the fastest there (at most 10) on a quarter of the batch (at least 256
// rows), and only the 3 fastest of those are timed on the whole batch (whole-batch runs
// of the slow variants made the page's first click wait 70 s on SwiftShader, and their 256-row runs
// took seconds each at d = 768); the pick is one of them, and the step it builds runs. Within a level
// the variants far behind after a round are not timed again.
gpuTest(
  'autotune: encoders screened on a few rows, those within 2× on a quarter batch, three on the whole batch',
  async (device) => {
    const cfg = resolveConfig({ d: 64, nLatents: 256, k: 4, batchSize: 1200 });
    const sae = new GpuSae(device, cfg, DEFAULT_KERNELS);
    sae.setState({ params: randomParams(cfg.nLatents, cfg.d, 7) });
    sae.writeBatch(randn(cfg.batchSize * cfg.d, 8), new Float32Array(cfg.batchSize).fill(1));
    const said: string[] = [];
    const report = await autotune(sae, `test-screen-${Date.now()}`, undefined, (w) => said.push(w));
    const keys = Object.keys(report.timings);
    const fastest = (level: string[], n: number) =>
      [...level].sort((a, b) => report.timings[a] - report.timings[b]).slice(0, n);
    const name = (key: string) => key.slice(key.indexOf(':') + 1);
    // d = 64: 192 rows, then a quarter of 1200.
    const at16 = keys.filter((t) => t.startsWith('encode@192rows:'));
    const at256 = keys.filter((t) => t.startsWith('encode@300rows:'));
    const whole = keys.filter((t) => t.startsWith('encode:'));
    assert(at16.length === encodeVariantsFor(cfg.d).length, `screened on 16 rows ${at16.length}: ${keys}`);
    const best16 = Math.min(...at16.map((k) => report.timings[k]));
    // A variant over 4× the fastest after a round is timed no more in its level: here the shared-memory
    // and indexed encoders (tiled: ~15× an unrolled one at this shape), while the fastest gets every round.
    const rounds = Math.max(...at16.map((k) => report.screenRuns[k]));
    const dropped = at16.filter((k) => report.screenRuns[k] < rounds);
    assert(rounds === 3 && dropped.length > 0, `level 0 runs ${JSON.stringify(report.screenRuns)}`);
    for (const k of dropped)
      assert(report.timings[k] > 4 * best16, `${k} dropped at ${report.timings[k]} ms, best ${best16}`);
    assert(
      at16.every((k) => report.timings[k] > 4 * best16 || report.screenRuns[k] === rounds),
      `a variant within 4× was dropped: ${JSON.stringify(report.screenRuns)}`,
    );
    const next256 = fastest(at16, 10)
      .filter((k) => report.timings[k] <= 2 * best16)
      .map(name);
    assert(
      at256.length === next256.length && at256.every((k) => next256.includes(name(k))),
      `screened on 256 rows: ${at256}, want ${next256}`,
    );
    assert(whole.length === Math.min(3, at256.length), `timed on the whole batch: ${whole}`);
    // What it is doing, as it goes: each variant's compile and first timing, each later round, the
    // whole-batch finalists by name, then the TopK stage.
    const stages = said.filter((w) => !w.includes('compilations of the encoder'));
    for (const [i, v] of encodeVariantsFor(cfg.d).entries())
      assert(
        said.includes(
          `screening the encoders on 192 rows: compiling and timing ${v} (${i + 1}/${at16.length})`,
        ),
        `no compile message for ${v}: ${said.join(' | ')}`,
      );
    assert(
      said.includes(`timing the encoders on the whole batch: ${whole.map(name).join(', ')}`) &&
        said.some((w) => w.startsWith('screening the encoders on 300 rows: round 1 ')) &&
        // The compiled copies' stage may follow (when the encoder takes ≥ 20 ms: a loaded machine).
        stages.indexOf('timing the TopK variants: bitonic, insert, chunked') > stages.length - 3,
      `stages: ${said.join(' | ')}`,
    );
    const nextWhole = fastest(at256, 3).map(name);
    for (const k of whole) assert(nextWhole.includes(name(k)), `${k} is not among the 3 fastest on 256 rows`);
    assert(
      whole.includes(`encode:${report.choice.encode}`),
      `picked ${report.choice.encode}, not a finalist`,
    );
    sae.step(1, cfg.lr, 1 / cfg.batchSize);
    const [m] = await sae.readMetrics(1, 2);
    assert(Number.isFinite(m.loss), `loss ${m.loss}`);
    sae.destroy();
  },
);

// The candidates of a stage are timed in alternating rounds (each once per round), not one after the
// other: under a shared machine's drifting load, sequential timings once made the autotuner keep a
// 1.2× slower encoder. Every build the autotuner makes is logged; within the TopK stage (the encoder
// fixed, topk varying) no variant is built twice in a row once all are compiled, and each is built
// once per round.
gpuTest('autotune: a stage times its candidates in alternating rounds', async (device) => {
  const cfg = resolveConfig({ d: 8, nLatents: 256, k: 4, batchSize: 64 });
  const sae = new GpuSae(device, cfg, DEFAULT_KERNELS);
  sae.setState({ params: randomParams(cfg.nLatents, cfg.d, 9) });
  sae.writeBatch(randn(cfg.batchSize * cfg.d, 10), new Float32Array(cfg.batchSize).fill(1));
  const built: KernelChoice[] = [];
  const build = sae.build.bind(sae);
  sae.build = (k: KernelChoice) => {
    built.push(k);
    build(k);
  };
  const samples = 2;
  const report = await autotune(sae, `test-rounds-${Date.now()}`, samples);
  // The builds up to the choice (pickEncoderCopy's come after it and set encodeCopy).
  const topks = built
    .filter((k) => k.encodeCopy === undefined && k.encode === report.choice.encode && k.fused === null)
    .map((k) => k.topk);
  // Where the TopK stage kept 'chunked' on an unrolled encoder, 'chunkmax' is then timed against it
  // on encoder + TopK (2 builds to compile, (samples + 1) rounds of 2), and the faster one kept.
  const t = report.timings;
  const chunkMaxStage = t['select:chunkmax'] !== undefined;
  if (chunkMaxStage) {
    assert(t['select:chunked'] !== undefined, `chunkmax timed alone: ${JSON.stringify(t)}`);
    const want = t['select:chunkmax'] < t['select:chunked'] ? 'chunkmax' : 'chunked';
    assert(report.choice.topk === want, `kept ${report.choice.topk}, faster was ${want}`);
    const last = topks.slice(-(2 + 2 * (samples + 1)) - 1, -1);
    assert(
      last.every((k) => k === 'chunked' || k === 'chunkmax'),
      `chunkmax stage builds: ${last}`,
    );
  } else assert(report.choice.topk !== 'chunkmax', 'chunkmax kept without its stage');
  const tail = chunkMaxStage ? 2 + 2 * (samples + 1) : 0;
  // The TopK stage: 3 variants, compiled once each, then (samples + 1) rounds of 3.
  const stage = topks.slice(-(3 + 3 * (samples + 1)) - 1 - tail, -1 - tail);
  const rounds = stage.slice(3);
  assert(new Set(stage).size === 3, `TopK stage builds: ${stage}`);
  for (let i = 1; i < rounds.length; i++)
    assert(rounds[i] !== rounds[i - 1], `built ${rounds[i]} twice in a row: ${rounds}`);
  for (const t of new Set(rounds))
    assert(
      rounds.filter((r) => r === t).length === samples + 1,
      `${t} built ${rounds.filter((r) => r === t).length}×: ${rounds}`,
    );
  sae.destroy();
});

// On a software adapter the autotuner times compiled copies of its encoder and keeps the fastest,
// again after a cached choice (a copy's speed belongs to its compilation, so none is cached); on a GPU
// adapter it compiles none, nor for a run too short to pay for them. The threshold is lowered to 0 so
// that a small shape qualifies.
gpuTest(
  'autotune: the fastest compiled copy of the encoder, picked again after a cached choice',
  async (device) => {
    setEncoderCopyMinMs(0);
    try {
      const cfg = resolveConfig({ d: 16, nLatents: 128, k: 4, batchSize: 64 });
      const sae = new GpuSae(device, cfg, DEFAULT_KERNELS);
      sae.setState({ params: randomParams(cfg.nLatents, cfg.d, 7) });
      sae.writeBatch(randn(cfg.batchSize * cfg.d, 8), new Float32Array(cfg.batchSize).fill(1));
      const adapter = `test-copies-${Date.now()}`;
      for (const pass of ['timed', 'cached']) {
        const report = await autotune(sae, adapter, 1);
        assert(report.cached === (pass === 'cached'), `${pass}: cached = ${report.cached}`);
        const copies = [0, 1, 2].map((c) => report.timings[`encode-copy:${c}`]);
        if (gpuForms(device)) {
          assert(
            copies.every((t) => t === undefined),
            `${pass}: copies timed on a GPU adapter`,
          );
          assert(!sae.kernels.encodeCopy, `${pass}: copy ${sae.kernels.encodeCopy} on a GPU adapter`);
          continue;
        }
        assert(
          copies.every((t) => t >= 0),
          `${pass}: copies timed ${JSON.stringify(report.timings)}`,
        );
        const fastest = copies.indexOf(Math.min(...copies));
        assert(
          report.choice.encodeCopy === fastest,
          `${pass}: chose copy ${report.choice.encodeCopy}, fastest ${fastest}`,
        );
        assert(
          sae.kernels.encodeCopy === fastest,
          `${pass}: built copy ${sae.kernels.encodeCopy}, fastest ${fastest}`,
        );
      }
      // A run too short to pay for the copies (its encoder time under 400 s): none compiled.
      const short = await autotune(sae, `${adapter}-short`, 1, undefined, 10);
      const shortCopies = Object.keys(short.timings).filter((k) => k.startsWith('encode-copy'));
      assert(shortCopies.length === 0, `10 steps: copies timed ${shortCopies}`);
      assert(sae.kernels.encodeCopy === undefined, `10 steps: built copy ${sae.kernels.encodeCopy}`);
      sae.step(1, cfg.lr, 1 / cfg.batchSize);
      const [m] = await sae.readMetrics(0, 1);
      sae.destroy();
      assert(Number.isFinite(m.loss) && m.loss > 0, `loss after the tuned step: ${m.loss}`);
    } finally {
      setEncoderCopyMinMs(null);
    }
  },
);
