/**
 * Small seeded PRNG: xoshiro128** (Blackman & Vigna), 128-bit state, 32-bit output,
 * seeded through splitmix32 so that nearby seeds give unrelated streams.
 *
 * Deterministic across platforms (pure 32-bit integer arithmetic via Math.imul and
 * >>> 0), cheap to copy, and the state can be saved / restored for checkpoints.
 * Used by the data layer (shuffling, held-out independent), the synthetic data
 * generator and the trainer (initialization).
 */

/** splitmix32 step: returns [next state, output]. Used for seeding and hashing. */
function splitmix32(state: number): [number, number] {
  const s = (state + 0x9e3779b9) >>> 0;
  let z = s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  z = (z ^ (z >>> 16)) >>> 0;
  return [s, z];
}

/**
 * Mixes any number of 32-bit integers (e.g. seed, stream id, row index) into one
 * well-scrambled uint32. Used to derive independent sub-streams: Rng.derive(seed, row).
 * Non-integers and values >= 2^32 are folded in by their low and high 32 bits.
 */
export function hashU32(...parts: number[]): number {
  let h = 0x243f6a88;
  for (const p of parts) {
    const lo = p >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    h = splitmix32((h ^ lo) >>> 0)[1];
    if (hi !== 0) h = splitmix32((h ^ hi) >>> 0)[1];
  }
  return h;
}

export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  /** Second Box-Muller value, cached; part of the state. */
  private spare = 0;
  private hasSpare = false;

  /** @param seed any number; its low 32 bits (and high bits, if any) select the stream. */
  constructor(seed = 0) {
    this.seed(seed);
  }

  /** A generator for sub-stream `parts` of `seed`, independent of the others (hash-derived). */
  static derive(seed: number, ...parts: number[]): Rng {
    return new Rng(hashU32(seed, ...parts));
  }

  /** Re-seeds in place. */
  seed(seed: number): void {
    let st = hashU32(seed);
    const out: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [ns, z] = splitmix32(st);
      st = ns;
      out.push(z);
    }
    // An all-zero state is the one fixed point of xoshiro; splitmix output makes it
    // practically impossible, but guard anyway.
    if ((out[0] | out[1] | out[2] | out[3]) === 0) out[0] = 1;
    [this.s0, this.s1, this.s2, this.s3] = out;
    this.hasSpare = false;
    this.spare = 0;
  }

  /** Uniform uint32 in [0, 2^32). */
  nextU32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    const s2 = this.s2;
    const s3 = this.s3;
    // result = rotl(s1 * 5, 7) * 9
    const t5 = Math.imul(s1, 5);
    const result = Math.imul((t5 << 7) | (t5 >>> 25), 9) >>> 0;
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    this.s1 = (s1 ^ n2) >>> 0;
    this.s0 = (s0 ^ n3) >>> 0;
    this.s2 = (n2 ^ t) >>> 0;
    this.s3 = ((n3 << 11) | (n3 >>> 21)) >>> 0;
    return result;
  }

  /** Uniform float in [0, 1) with 32 random bits. */
  nextFloat(): number {
    return this.nextU32() * 2.3283064365386963e-10; // 2^-32
  }

  /** Uniform float in (0, 1]: safe to take the log of. */
  nextFloatOpen(): number {
    return (this.nextU32() + 1) * 2.3283064365386963e-10;
  }

  /** Uniform integer in [0, n), unbiased (rejection on the top partial block). n <= 2^32. */
  nextInt(n: number): number {
    if (!(n > 0) || n > 4294967296) throw new RangeError(`nextInt: bad range ${n}`);
    if (n === 1) return 0;
    const limit = 4294967296 - (4294967296 % n);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return x % n;
  }

  /** Standard normal N(0, 1) by Box-Muller; the second value of each pair is cached. */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    const u = this.nextFloatOpen();
    const v = this.nextFloat();
    const r = Math.sqrt(-2 * Math.log(u));
    const a = 2 * Math.PI * v;
    this.spare = r * Math.sin(a);
    this.hasSpare = true;
    return r * Math.cos(a);
  }

  /** Exponential with mean 1. */
  exponential(): number {
    return -Math.log(this.nextFloatOpen());
  }

  /** Poisson(lambda), exact: Knuth's product method on pieces of rate <= 16, summed. O(lambda). */
  poisson(lambda: number): number {
    let k = 0;
    let rest = lambda;
    while (rest > 0) {
      const piece = Math.min(rest, 16);
      rest -= piece;
      const limit = Math.exp(-piece);
      let p = this.nextFloatOpen();
      while (p > limit) {
        k++;
        p *= this.nextFloatOpen();
      }
    }
    return k;
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return a;
  }

  /** Snapshot of the full state (for checkpoints): 6 numbers. */
  getState(): number[] {
    return [this.s0, this.s1, this.s2, this.s3, this.hasSpare ? 1 : 0, this.spare];
  }

  /** Restores a snapshot taken with getState(). */
  setState(state: readonly number[]): void {
    if (state.length !== 6) throw new Error('Rng.setState: expected 6 numbers');
    this.s0 = state[0] >>> 0;
    this.s1 = state[1] >>> 0;
    this.s2 = state[2] >>> 0;
    this.s3 = state[3] >>> 0;
    this.hasSpare = state[4] === 1;
    this.spare = state[5];
  }
}
