/**
 * When a sweep run has converged: its held-out nMSE improved by less than a fraction tol over the
 * last doubling of tokens (detectConvergence), and whether a run should stop now (shouldStop).
 */
import type { TokenBudget } from './sweep';

/** One held-out evaluation during a run. */
export interface CurveSample {
  /** Tokens trained on so far (> 0). */
  tokens: number;
  /** Held-out normalized MSE at that point (≥ 0). */
  nmse: number;
}

export interface ConvergenceResult {
  /** True when the criterion has been met at some sample at or after minTokens. */
  converged: boolean;
  /**
   * Interpolated token count at which the improvement over the preceding
   * doubling first fell below tol (at or after minTokens). Null when not
   * converged. When the criterion already holds at the first sample that
   * can be tested, the crossing happened earlier than can be seen: this is
   * that sample's tokens (an upper bound) and `censored` is true.
   */
  tokensToConvergence: number | null;
  censored: boolean;
  /** Relative improvement (L(t/2) − L(t)) / L(t/2) at the last sample; null if the curve spans less than one doubling. */
  lastImprovement: number | null;
}

export interface ConvergenceOptions {
  /** Ignore crossings before this many tokens (early plateaus). Default 0. */
  minTokens?: number;
}

/**
 * Decide whether a run has converged: nMSE improved by less than a fraction
 * `tol` over the last doubling of tokens, i.e.
 *     r(t) = (L(t/2) − L(t)) / L(t/2) < tol.
 *
 * - L is the running minimum of the nMSE curve, so one noisy evaluation above
 *   the trend does not read as "stopped improving" (r ≥ 0 always).
 * - L(t/2) is interpolated linearly in log tokens between samples; r is
 *   evaluated at every sample with t ≥ 2·t_first.
 * - The convergence point is the FIRST crossing of tol at or after
 *   `minTokens`, interpolated linearly in log tokens between the last
 *   sample above tol and the first below. This is exactly where an
 *   until-converged run (`shouldStop`) stops, so tokens-to-convergence means
 *   the same for fixed-budget runs analysed afterwards. An early plateau
 *   can trigger it too; that is what minTokens is for.
 *
 * Accuracy: on a smooth a·t^-b + c curve sampled 4× per doubling the
 * crossing is within a few percent of the exact one; evaluation noise of ε
 * (relative) moves r by ≈ 1.4ε, and the first crossing catches downward
 * excursions, so noise biases it early: at tol = 1% (see the tests) ε = 0.1%
 * gives 0.6–1.4× the exact crossing, ε = 0.2% gives 0.3–1.5×. Use a larger
 * tol, or evaluate on more held-out tokens, when evaluations are noisier.
 *
 * @param curve samples sorted by strictly increasing tokens; non-finite nMSE
 *   samples (diverged evaluations) are ignored.
 * @param tol fraction in (0, 1), e.g. 0.01.
 */
export function detectConvergence(
  curve: readonly CurveSample[],
  tol: number,
  options: ConvergenceOptions = {},
): ConvergenceResult {
  if (!(tol > 0 && tol < 1)) throw new RangeError(`detectConvergence: tol must be in (0, 1), got ${tol}`);
  const minTokens = options.minTokens ?? 0;
  const samples = curve.filter((s) => Number.isFinite(s.nmse));
  for (let i = 0; i < samples.length; i++) {
    if (!(samples[i].tokens > 0) || (i > 0 && !(samples[i].tokens > samples[i - 1].tokens))) {
      throw new RangeError('detectConvergence: tokens must be positive and strictly increasing');
    }
  }
  const none: ConvergenceResult = {
    converged: false,
    tokensToConvergence: null,
    censored: false,
    lastImprovement: null,
  };
  if (samples.length < 2) return none;

  const logT = samples.map((s) => Math.log(s.tokens));
  const env: number[] = [];
  for (const s of samples) env.push(Math.min(s.nmse, env.length ? env[env.length - 1] : Infinity));

  /** Envelope at log-tokens x, x within [logT[0], logT[last]]. */
  const envAt = (x: number): number => {
    let j = 1;
    while (j < logT.length - 1 && logT[j] < x) j++;
    const w = (x - logT[j - 1]) / (logT[j] - logT[j - 1]);
    return env[j - 1] + Math.min(1, Math.max(0, w)) * (env[j] - env[j - 1]);
  };

  // r at every sample that has a full doubling behind it.
  const tested: { x: number; r: number }[] = [];
  for (let i = 0; i < samples.length; i++) {
    const xHalf = logT[i] - Math.LN2;
    if (xHalf < logT[0] - 1e-12) continue;
    const before = envAt(Math.max(xHalf, logT[0]));
    // A zero loss cannot improve further: call that no improvement.
    const r = before > 0 ? (before - env[i]) / before : 0;
    tested.push({ x: logT[i], r });
  }
  if (tested.length === 0) return none;
  const lastImprovement = tested[tested.length - 1].r;

  const xMin = minTokens > 0 ? Math.log(minTokens) : -Infinity;
  for (let j = 0; j < tested.length; j++) {
    const b = tested[j];
    if (b.x < xMin - 1e-12 || !(b.r < tol)) continue;
    const a = j > 0 ? tested[j - 1] : null;
    if (a === null || a.r < tol) {
      // Already below tol at the first sample we may look at.
      return { converged: true, tokensToConvergence: Math.exp(b.x), censored: true, lastImprovement };
    }
    const w = (a.r - tol) / (a.r - b.r);
    const x = Math.max(xMin, a.x + w * (b.x - a.x));
    return { converged: true, tokensToConvergence: Math.exp(x), censored: false, lastImprovement };
  }
  return { ...none, lastImprovement };
}

/**
 * Whether a run should stop now, given its curve so far (the last sample is
 * "now"). Fixed budgets stop at their token count; 'converged' budgets stop
 * at maxTokens, or once `detectConvergence` (with the budget's minTokens)
 * says converged.
 */
export function shouldStop(
  curve: readonly CurveSample[],
  budget: TokenBudget,
): { stop: boolean; reason: 'budget' | 'converged' | null } {
  const tokens = curve.length ? curve[curve.length - 1].tokens : 0;
  if (budget.kind === 'tokens') {
    return tokens >= budget.tokens ? { stop: true, reason: 'budget' } : { stop: false, reason: null };
  }
  if (tokens >= budget.maxTokens) return { stop: true, reason: 'budget' };
  if (detectConvergence(curve, budget.tol, { minTokens: budget.minTokens }).converged) {
    return { stop: true, reason: 'converged' };
  }
  return { stop: false, reason: null };
}
