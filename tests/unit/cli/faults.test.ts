import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { writeNpy } from '../../../src/data/npy';
import { syntheticSource } from '../../../src/data/synthetic';
import { CHROME, describeNeeds } from '../prereq';
import { cli } from './run';

describeNeeds(CHROME)('cli: faults', () => {
  let dir = '';
  let data = '';
  let rows: Float32Array;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sae-cli-faults-'));
    const src = syntheticSource({
      d: 16,
      nFeatures: 48,
      rows: 2048,
      seed: 1,
      expectedActive: 3,
      noiseStd: 0.01,
    });
    rows = await src.readRows(0, 2048);
    data = join(dir, 'acts.npy');
    writeFileSync(data, writeNpy(rows, [2048, 16]));
  });

  // named kernels: the two runs are two browser sessions, and the autotuner could time them apart
  const RUN = [
    ...['--n-latents', '64', '--k', '4', '--batch', '64', '--tokens', '2048', '--seed', '3'],
    ...['--encode-variant', 'blocked4x4', '--topk-variant', 'bitonic', '--checkpoint-every', '8'],
  ];

  it('train: a device lost at step 13 resumes from the checkpoint of step 8 (at step 5: from step 0) and ends bit-identical to an uninterrupted run', () => {
    const a = join(dir, 'plain');
    const b = join(dir, 'lost');
    const ra = cli(['train', '--data', data, ...RUN, '--quiet', '--out', a]);
    expect(ra.status, ra.stderr).toBe(0);
    const rb = cli(['train', '--data', data, ...RUN, '--lose-device', '13', '--out', b]);
    expect(rb.status, rb.stderr).toBe(0);
    expect(rb.stderr).toMatch(/^GPU device lost; resuming from checkpoint step 8$/m);
    // lost before the first checkpoint: the run starts again from step 0 (same seed, same kernels)
    const c = join(dir, 'lost-early');
    const rc = cli(['train', '--data', data, ...RUN, '--lose-device', '5', '--out', c]);
    expect(rc.status, rc.stderr).toBe(0);
    expect(rc.stderr).toMatch(/^GPU device lost before the first checkpoint; starting again from step 0 /m);
    const ma = JSON.parse(readFileSync(join(a, 'metrics.json'), 'utf8'));
    const strip = (cv: { tokens_per_s?: number }[]) => cv.map(({ tokens_per_s: _, ...p }) => p);
    for (const o of [b, c]) {
      const mo = JSON.parse(readFileSync(join(o, 'metrics.json'), 'utf8'));
      for (const key of ['nmse', 'explained_variance', 'l0', 'dead_fraction', 'dead_fraction_eval', 'tokens'])
        expect(mo.final[key], `${o} ${key}`).toBe(ma.final[key]);
      expect(strip(mo.curve)).toEqual(strip(ma.curve));
      for (const f of ['sae_weights.safetensors', 'sparsity.safetensors'])
        expect(readFileSync(join(o, 'sae', f)).equals(readFileSync(join(a, 'sae', f))), `${o} ${f}`).toBe(
          true,
        );
    }
  }, 600_000);

  it('train: a device lost again before a new checkpoint is not retried: exit 1, one line saying why', () => {
    // lost at step 13 twice: the retry resumed from step 8 and lost the device before its next checkpoint
    const out = join(dir, 'lost-twice');
    const r = cli([
      'train',
      '--data',
      data,
      ...RUN,
      '--lose-device',
      '13',
      '--lose-device-times',
      '5',
      '--out',
      out,
    ]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr.match(/^GPU device lost.*$/gm)).toEqual([
      'GPU device lost; resuming from checkpoint step 8',
    ]);
    const last = r.stderr.trim().split('\n').pop();
    expect(last).toMatch(
      /^error: .*lost again before a new checkpoint \(step 8\), so not retried\. This run holds [\d.]+ MiB on the GPU: if the device ran out of memory, lower N or the batch size$/,
    );
    expect(existsSync(join(out, 'metrics.json'))).toBe(false);
  }, 300_000);

  it('train: a diverging run exits 1 with one line, and writes no metrics.json or export', () => {
    // activations of 1e20 without input normalization: the float32 loss overflows at once (the lr is
    // capped below 1 by the config, so data is the way to diverge on purpose)
    const huge = join(dir, 'huge.npy');
    writeFileSync(
      huge,
      writeNpy(
        rows.map((v) => v * 1e20),
        [2048, 16],
      ),
    );
    const out = join(dir, 'diverged');
    const r = cli(['train', '--data', huge, ...RUN, '--input-norm', 'none', '--quiet', '--out', out]);
    expect(r.status, r.stderr).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^error: training diverged: loss became (NaN|-?Infinity) at step \d+, the run stopped; no checkpoint was saved/,
    );
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
  }, 300_000);

  it('train: --non-finite stop refuses a file holding NaN with one line naming the file and the row (exit 2)', () => {
    const x = rows.slice();
    x[37 * 16 + 3] = Number.NaN;
    const bad = join(dir, 'bad.npy');
    writeFileSync(bad, writeNpy(x, [2048, 16]));
    const out = join(dir, 'nan-stop');
    const r = cli(['train', '--data', bad, ...RUN, '--non-finite', 'stop', '--quiet', '--out', out]);
    expect(r.status, r.stderr).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toEqual([
      'error: bad.npy: 1 row(s) contain NaN or Inf, first at row 37 (rows 37 of the dataset)',
    ]);
    expect(existsSync(out)).toBe(false);
    const u = cli(['train', '--data', bad, ...RUN, '--non-finite', 'sometimes', '--quiet', '--out', out]);
    expect(u.status).toBe(2);
    expect(u.stderr.trim()).toBe("error: --non-finite must be skip|stop, got 'sometimes'");
  }, 300_000);

  it('train: by default rows holding NaN or Inf are skipped, said on stderr and counted in metrics.json', () => {
    const x = rows.slice();
    x[37 * 16 + 3] = Number.NaN;
    x[1500 * 16] = Number.POSITIVE_INFINITY;
    const bad = join(dir, 'bad-skip.npy');
    writeFileSync(bad, writeNpy(x, [2048, 16]));
    const out = join(dir, 'nan-skip');
    const r = cli(['train', '--data', bad, ...RUN, '--quiet', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    const problem = '2 row(s) contain NaN or Inf (first: 37, 1500); they are skipped in training';
    // --quiet keeps progress off stderr, not this
    expect(r.stderr.trim().split('\n')).toEqual([`warning: bad-skip.npy: ${problem}`]);
    const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(m.dataset.non_finite_rows).toBe(2);
    expect(m.dataset.problems).toEqual([problem]);
    expect(Number.isFinite(m.final.nmse)).toBe(true);
  }, 300_000);
});
