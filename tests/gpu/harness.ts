/**
 * Tiny in-browser test registry for GPU kernel tests. Each *.gpu.ts file calls gpuTest();
 * main.ts runs them one by one inside error scopes on one shared device.
 */

export interface GpuTest {
  name: string;
  fn: (device: GPUDevice) => Promise<void>;
}

export const registry: GpuTest[] = [];

export function gpuTest(name: string, fn: (device: GPUDevice) => Promise<void>) {
  registry.push({ name, fn });
}

/** Seeded uniform/normal generator for test inputs (mulberry32 + Box-Muller). */
export function rng(seed: number) {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  return { u, normal };
}

export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r.normal() * scale;
  return out;
}

/**
 * Element-wise |a - e| <= atol + rtol·|e| (the llm.c check). Throws with the worst element.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
  what: string,
) {
  if (actual.length !== expected.length)
    throw new Error(`${what}: length ${actual.length} != ${expected.length}`);
  let worst = -1;
  let worstExcess = 0;
  let bad = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const tol = atol + rtol * Math.abs(e);
    const err = Math.abs(a - e);
    if (!(err <= tol)) {
      bad++;
      const excess = Number.isNaN(err) ? Number.POSITIVE_INFINITY : err / tol;
      if (worst < 0 || excess > worstExcess) {
        worst = i;
        worstExcess = excess;
      }
    }
  }
  if (bad > 0) {
    throw new Error(
      `${what}: ${bad}/${actual.length} elements out of tolerance (atol ${atol}, rtol ${rtol}); worst [${worst}] got ${actual[worst]} want ${expected[worst]}`,
    );
  }
}

/** ‖a − e‖ / ‖e‖ — a norm-wise relative error, robust where single elements sit near zero. */
export function relErr(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    num += (actual[i] - expected[i]) ** 2;
    den += expected[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

export function assert(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(what);
}
