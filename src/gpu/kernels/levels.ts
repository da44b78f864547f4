/**
 * Matryoshka levels in WGSL: the body of `fn level_of(i: u32) -> u32`, the first h with
 * i < widths[h] (widths m₀ < … < m_{G−1} = N). Unrolled into G − 1 comparisons against constants,
 * so one level (every activation but Matryoshka) is `return 0u;` and costs nothing.
 */
export function levelOfWgsl(widths: readonly number[]): string {
  const cmp = widths.slice(0, -1).map((w, h) => `  if (i >= ${w}u) { h = ${h + 1}u; }`);
  return cmp.length ? ['  var h = 0u;', ...cmp, '  return h;'].join('\n') : '  return 0u;';
}
