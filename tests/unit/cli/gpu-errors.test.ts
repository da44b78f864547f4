import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { writeNpy } from '../../../src/data/npy';
import { syntheticSource } from '../../../src/data/synthetic';
import { CHROME, describeNeeds } from '../prereq';
import { cli } from './run';

describeNeeds(CHROME)('cli: limits and GPU errors', () => {
  let dir = '';
  let data = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sae-cli-err-'));
    const src = syntheticSource({
      d: 16,
      nFeatures: 48,
      rows: 2048,
      seed: 1,
      expectedActive: 3,
      noiseStd: 0.01,
    });
    data = join(dir, 'acts.npy');
    writeFileSync(data, writeNpy(await src.readRows(0, 2048), [2048, 16]));
  });

  it('train: a config over --max-binding-mib is refused with one line naming the buffer and the limit, exit 2, no files', () => {
    const out = join(dir, 'limit');
    const r = cli([
      'train',
      ...['--data', data, '--n-latents', '64', '--k', '4', '--batch', '4096', '--tokens', '8192'],
      ...['--max-binding-mib', '0.125', '--quiet', '--out', out],
    ]);
    expect(r.status, r.stderr).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    // the buffer, its size, the limit and where the limit comes from (sizes in plan.ts's units)
    expect(lines[0]).toMatch(/^error: buffer x \[4096, 16\] needs .+, over .+ \(maxBindingMiB 0\.125\)/);
    expect(lines[0]).toMatch(/lower the batch to ≤ 2048/);
    expect(existsSync(out)).toBe(false);
  }, 150_000);

  it('sweep: one run over the limit refuses the whole sweep before its first run, exit 2, no files', () => {
    const out = join(dir, 'sweep-limit');
    const r = cli([
      'sweep',
      ...['--data', data, '--n-latents', '32,64', '--k', '4', '--batch', '4096', '--tokens', '8192'],
      ...['--max-binding-mib', '0.125', '--quiet', '--out', out],
    ]);
    expect(r.status, r.stderr).toBe(2);
    const errs = r.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('error'));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(
      /^error: run N32_k4: buffer x \[4096, 16\] needs .*, over .* \(maxBindingMiB 0\.125\)/,
    );
    expect(existsSync(out)).toBe(false);
  }, 150_000);

  it('train: an injected GPU error stops the run: exit 1, one line naming the GPU error, no metrics.json or export', () => {
    const out = join(dir, 'inject');
    const r = cli([
      'train',
      ...['--data', data, '--n-latents', '64', '--k', '4', '--batch', '64', '--tokens', '8192'],
      ...['--inject-gpu-error', '5', '--quiet', '--out', out],
    ]);
    expect(r.status, r.stderr).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^error: GPU GPUValidationError during training \(noticed at step \d+\), the run stopped/,
    );
    expect(lines[0]).toMatch(/injected-fault@5/);
    expect(existsSync(join(out, 'metrics.json'))).toBe(false);
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
  }, 150_000);
});
