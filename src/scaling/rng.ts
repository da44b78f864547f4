/**
 * Small deterministic random number generators for the scaling code: the
 * bootstrap must give the same answer for the same seed on every machine, so
 * it cannot use Math.random.
 */

/** A function returning uniform floats in [0, 1). */
export type Rng = () => number;

/**
 * mulberry32: a 32-bit state PRNG. Not cryptographic; fast, and good enough
 * for resampling indices and synthetic noise. Same seed → same sequence.
 */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draw (Box–Muller), consuming two uniforms from `rng`. */
export function gaussian(rng: Rng): number {
  // 1 - u keeps the argument of log in (0, 1], so log never sees 0.
  const u = 1 - rng();
  const v = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Uniform integer in [0, n). */
export function randInt(rng: Rng, n: number): number {
  return Math.min(n - 1, Math.floor(rng() * n));
}
