import { describe, expect, it } from 'vitest';
import { parseFlags, UsageError } from '../../../cli/args';
import { fitSummary, planFromFlags, SWEEP_FLAGS } from '../../../cli/sweep';
import {
  ABLATIONS,
  ablationPoint,
  ablationToCsv,
  evalEveryFor,
  RunTracker,
  sweepDocument,
  sweepSvgs,
  trainConfigFor,
  withFixedLr,
} from '../../../src/scaling/runner';
import { expandGrid, lrForN, type SweepRunConfig } from '../../../src/scaling/sweep';

const plan = (s: string) => planFromFlags(parseFlags(s.split(/\s+/).filter(Boolean), SWEEP_FLAGS));

describe('planFromFlags (grid expansion from flags)', () => {
  it('expands N × k, small runs first, lr by the N rule, train flags into the shared config', () => {
    const p = plan('--data demo --n-latents 512,256 --k 16,8 --tokens 2M --batch 1024 --no-auxk --seed 3');
    expect(p.runs.map((r) => r.id)).toEqual(['N256_k8', 'N256_k16', 'N512_k8', 'N512_k16']);
    expect(p.runs[0].lr).toBeCloseTo(lrForN(256), 15);
    expect(p.runs.every((r) => r.seed === 3)).toBe(true);
    expect(p.grid.budget).toEqual({ kind: 'tokens', tokens: 2e6 });
    expect(p.base).toEqual({ batchSize: 1024, auxk: false });
    expect(p.ablation).toBeNull();
  });

  it('--lr fixes the lr for every run; --base-lr scales the rule', () => {
    expect(plan('--n-latents 256,1024 --k 8 --tokens 1k --lr 1e-3').runs.map((r) => r.lr)).toEqual([
      1e-3, 1e-3,
    ]);
    expect(plan('--n-latents 16384 --k 8 --tokens 1k --base-lr 1e-3').runs[0].lr).toBeCloseTo(1e-3, 15);
  });

  it('until converged: tol, cap (falls back to --tokens) and min tokens', () => {
    const p = plan('--n-latents 64 --k 4 --until-converged --tol 0.02 --max-tokens 64k --min-tokens 4k');
    expect(p.grid.budget).toEqual({ kind: 'converged', tol: 0.02, maxTokens: 64000, minTokens: 4000 });
    expect(plan('--n-latents 64 --k 4 --until-converged --tokens 10k').grid.budget).toMatchObject({
      maxTokens: 10000,
      tol: 0.01,
    });
  });

  it('skips k ≥ N and rejects bad grids with a UsageError', () => {
    expect(plan('--n-latents 8,64 --k 8,16 --tokens 1k').runs.map((r) => r.id)).toEqual([
      'N64_k8',
      'N64_k16',
    ]);
    expect(() => plan('--n-latents 100 --k 8 --tokens 1k')).toThrow(UsageError);
    expect(() => plan('--n-latents 64 --k 0 --tokens 1k')).toThrow(UsageError);
    expect(() => plan('--n-latents 8 --k 8 --tokens 1k')).toThrow(/empty/);
    expect(() => plan('--n-latents 64 --k 8')).toThrow(/--tokens/);
    expect(() => plan('--n-latents 64 --k 8 --until-converged')).toThrow(/--max-tokens/);
    expect(() => plan('--k 8 --tokens 1k')).toThrow(/--n-latents/);
  });

  it('--ablate picks the largest N and its middle k, or --ablate-at', () => {
    expect(plan('--n-latents 64,128 --k 4,8,16 --tokens 1k --ablate').ablation?.id).toBe('N128_k8');
    expect(plan('--n-latents 64,128 --k 4,8,16 --tokens 1k --ablate --ablate-at 64,16').ablation?.id).toBe(
      'N64_k16',
    );
    expect(() => plan('--n-latents 64 --k 4 --tokens 1k --ablate --ablate-at 32,4')).toThrow(UsageError);
  });
});

const run = (budget: SweepRunConfig['budget'], N = 256, k = 8): SweepRunConfig => ({
  id: `N${N}_k${k}`,
  N,
  k,
  lr: lrForN(N),
  seed: 0,
  budget,
});

describe('trainConfigFor / evalEveryFor', () => {
  it('puts N, k, lr, seed and the budget over the shared config, and the ablation patch last', () => {
    const r = run({ kind: 'converged', tol: 0.01, maxTokens: 5e5 });
    const c = trainConfigFor(r, { batchSize: 512, k: 99, tiedInit: true }, { tiedInit: false });
    expect(c).toEqual({
      batchSize: 512,
      nLatents: 256,
      k: 8,
      lr: lrForN(256),
      seed: 0,
      tokens: 5e5,
      tiedInit: false,
    });
  });
  it('evaluates about evalsPerRun times, on whole batches, at least once per batch', () => {
    expect(evalEveryFor({ kind: 'tokens', tokens: 64000 }, 256, 16)).toBe(4096);
    expect(evalEveryFor({ kind: 'tokens', tokens: 1000 }, 256, 16)).toBe(256);
    expect(evalEveryFor({ kind: 'converged', tol: 0.01, maxTokens: 1e6 }, 4096, 24) % 4096).toBe(0);
  });
  it('withFixedLr leaves the rule alone without a value', () => {
    const runs = expandGrid({ N: [64, 128], k: [4], budget: { kind: 'tokens', tokens: 10 } });
    expect(withFixedLr(runs, null)).toEqual(runs);
    expect(withFixedLr(runs, 0.01).map((r) => r.lr)).toEqual([0.01, 0.01]);
  });
});

/** nMSE of a curve that flattens: 0.1 + t^-0.5 */
const loss = (t: number) => 0.1 + t ** -0.5;

describe('RunTracker (convergence stop decision)', () => {
  it('asks to stop an until-converged run exactly once, when the test first passes', () => {
    const tr = new RunTracker(run({ kind: 'converged', tol: 0.05, maxTokens: 1e9 }));
    const stops: number[] = [];
    for (let t = 1000; t <= 2_000_000; t += 1000) if (tr.push(t, loss(t))) stops.push(t);
    expect(stops).toHaveLength(1);
    // r(t) = (L(t/2) − L(t)) / L(t/2) is 0.054 at t = 4000 and 0.049 at t = 5000
    expect(stops[0]).toBe(5000);
    expect(tr.stopRequested).toBe(true);
    const rec = tr.finish(
      { tokens: stops[0] + 3000, nmse: loss(stops[0] + 3000), l0: 8, deadFractionRule: 0.01 },
      12,
    );
    expect(rec.stop_reason).toBe('converged');
    expect(rec.final.tokens).toBe(stops[0] + 3000);
    expect(rec.final.tokens_to_convergence).toBeGreaterThan(4000);
    expect(rec.final.tokens_to_convergence).toBeLessThanOrEqual(5000);
    expect(rec.censored).toBe(false);
    expect(rec.final.dead_fraction).toBe(0.01);
  });

  it('never stops a fixed-budget run, but reads tokens-to-convergence off its curve', () => {
    const tr = new RunTracker(run({ kind: 'tokens', tokens: 1e6 }), 0.05);
    for (let t = 1000; t <= 1e6; t += 5000) expect(tr.push(t, loss(t))).toBe(false);
    const rec = tr.finish({ tokens: 1e6, nmse: loss(1e6), l0: 8, deadFractionRule: 0 }, 1);
    expect(rec.stop_reason).toBe('budget');
    expect(rec.final.tokens_to_convergence).not.toBeNull();
  });

  it('ignores repeated, non-increasing and non-finite evaluations; respects minTokens', () => {
    const tr = new RunTracker(run({ kind: 'converged', tol: 0.5, maxTokens: 1e9, minTokens: 50_000 }));
    expect(tr.push(1000, 1)).toBe(false);
    expect(tr.push(1000, 0.5)).toBe(false);
    expect(tr.push(500, 0.5)).toBe(false);
    expect(tr.push(2000, Number.NaN)).toBe(false);
    expect(tr.curve).toHaveLength(1);
    // flat curve: converged immediately by the test, but not before minTokens
    for (let t = 2000; t < 50_000; t += 1000) expect(tr.push(t, 1)).toBe(false);
    expect(tr.push(50_000, 1)).toBe(true);
  });

  it('records a failed run (NaN) as failed, kept out of the fits', () => {
    const tr = new RunTracker(run({ kind: 'tokens', tokens: 1e4 }));
    const bad = tr.finish(
      { tokens: 5000, nmse: Number.NaN, l0: 0, deadFractionRule: 1 },
      1,
      'loss became NaN',
    );
    expect(bad.stop_reason).toBe('failed');
    const doc = sweepDocument([bad], undefined);
    expect(doc.runs).toHaveLength(0);
    expect(doc.failed).toHaveLength(1);
  });
});

describe('sweep document, ablations and exports', () => {
  const recs = () => {
    const runs = expandGrid({ N: [64, 128, 256, 512], k: [4, 8], budget: { kind: 'tokens', tokens: 1e5 } });
    return runs.map((r) => {
      const tr = new RunTracker(r);
      for (let t = 5000; t <= 1e5; t += 5000)
        tr.push(t * (r.N / 64) ** 0.6, 0.05 + (r.N * r.k) ** -0.5 + 1e-3 * (t % 7));
      const L = 0.02 + 3 * r.N ** -0.5 * r.k ** -0.3;
      return tr.finish({ tokens: 1e6, nmse: L, l0: r.k, deadFractionRule: 0 }, 1);
    });
  };

  it('fits what it can and gives FitError messages for the rest, without throwing', () => {
    const doc = sweepDocument(recs().slice(0, 3), undefined);
    expect(doc.fits.LNk.ok).toBe(false);
    expect(doc.fits.LN.every((f) => !f.outcome.ok && /needs at least/.test(f.outcome.error))).toBe(true);
    const lines = fitSummary(doc);
    expect(lines.some((l) => l.includes('no fit: fitLNk'))).toBe(true);
    const full = sweepDocument(recs(), undefined);
    expect(full.fits.LN.every((f) => f.outcome.ok)).toBe(true);
    const ln = full.fits.LN[0].outcome;
    if (ln.ok) expect(ln.fit.params.beta).toBeCloseTo(-0.5, 1);
    expect(JSON.parse(JSON.stringify(full)).runs).toHaveLength(8);
  });

  it('writes one SVG per figure with the fitted curves drawn', () => {
    const svgs = sweepSvgs(sweepDocument(recs(), undefined));
    expect(svgs.map((s) => s.file)).toEqual(['L_vs_N.svg', 'L_vs_k.svg', 'frontier.svg', 'T_vs_N.svg']);
    for (const s of svgs) expect(s.svg.startsWith('<svg')).toBe(true);
    expect(svgs[0].svg).toContain('β=');
  });

  it('ablation point, variants and CSV', () => {
    const runs = expandGrid({ N: [64, 256], k: [4, 8, 16, 32], budget: { kind: 'tokens', tokens: 1 } });
    expect(ablationPoint(runs)?.id).toBe('N256_k8');
    expect(ablationPoint([])).toBeNull();
    expect(ABLATIONS.map((a) => a.id)).toEqual([
      'full',
      'no-tied-init',
      'no-auxk',
      'b-pre-zero',
      'no-grad-projection',
    ]);
    const csv = ablationToCsv([
      { id: 'full', label: 'full, recipe', N: 64, k: 4, nmse: 0.5, l0: 4, dead_fraction: 0, tokens: 10 },
    ]);
    expect(csv).toBe('id,label,N,k,nmse,l0,dead_fraction,tokens\nfull,"full, recipe",64,4,0.5,4,0,10\n');
  });
});
