/**
 * Sweep-specific plots built on `renderLogLogSvg`: the figures the sweep
 * page shows, as standalone SVG for the CLI's exports.
 */
import { predictLN, predictPowerLaw } from './laws';
import { type PlotSeries, renderLogLogSvg } from './svg';
import type { SweepFits, SweepRun } from './sweep-result';

/** Final nMSE vs N, one series per k, with each k's L(N) fit when it succeeded. */
export function lossVsNSvg(runs: readonly SweepRun[], fits?: SweepFits): string {
  const ks = [...new Set(runs.map((r) => r.config.k))].sort((a, b) => a - b);
  const series: PlotSeries[] = ks.map((k) => {
    const outcome = fits?.LN.find((f) => f.k === k)?.outcome;
    return {
      name: outcome?.ok ? `k=${k} (β=${outcome.fit.params.beta.toFixed(3)})` : `k=${k}`,
      points: runs.filter((r) => r.config.k === k).map((r) => ({ x: r.config.N, y: r.final.nmse })),
      curve: outcome?.ok ? (N: number) => predictLN(outcome.fit.params, N) : undefined,
    };
  });
  return renderLogLogSvg({
    title: 'Final nMSE vs latents',
    xLabel: 'latents N',
    yLabel: 'nMSE',
    series,
    idPrefix: 'loss-vs-n',
  });
}

/** Tokens to convergence vs N, one series per k, with each k's power-law fit when it succeeded. */
export function tokensVsNSvg(runs: readonly SweepRun[], fits?: SweepFits): string {
  const ks = [...new Set(runs.map((r) => r.config.k))].sort((a, b) => a - b);
  const series: PlotSeries[] = ks.map((k) => {
    const outcome = fits?.T.find((f) => f.k === k)?.outcome;
    return {
      name: outcome?.ok ? `k=${k} (T ∝ N^${outcome.fit.params.beta.toFixed(2)})` : `k=${k}`,
      points: runs
        .filter((r) => r.config.k === k && r.final.tokens_to_convergence !== null)
        .map((r) => ({ x: r.config.N, y: r.final.tokens_to_convergence as number })),
      curve: outcome?.ok ? (N: number) => predictPowerLaw(outcome.fit.params, N) : undefined,
    };
  });
  return renderLogLogSvg({
    title: 'Tokens to convergence vs latents',
    xLabel: 'latents N',
    yLabel: 'tokens',
    series,
    idPrefix: 'tokens-vs-n',
  });
}
