import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/data/rng';
import { codesByLatent, type SparseCodes } from '../../../src/eval/codes';
import {
  bernoulliEntropy,
  fitLogistic1D,
  oneVsRest,
  probeLoss,
  rawProbe,
  softplus,
} from '../../../src/eval/probe';

const N = 20;
const k = 3;
const rows = 400;

/** Codes where latent planted[c] fires (value 0.5–2) exactly on rows of class c; other slots random latents. */
function plantedCodes(labels: Int32Array, planted: number[], seed: number): SparseCodes {
  const rng = new Rng(seed);
  const idx = new Uint32Array(rows * k);
  const val = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const used = new Set<number>();
    let j = 0;
    const c = labels[r];
    if (c < planted.length) {
      idx[r * k] = planted[c];
      val[r * k] = 0.5 + 1.5 * rng.nextFloat();
      used.add(planted[c]);
      j = 1;
    }
    for (; j < k; j++) {
      let i: number;
      do i = rng.nextInt(N);
      while (used.has(i) || planted.includes(i));
      used.add(i);
      idx[r * k + j] = i;
      val[r * k + j] = rng.nextFloat();
    }
  }
  return { rows, k, idx, val };
}

describe('probe loss', () => {
  it('finds the planted latent and beats the constant baseline', () => {
    const rng = new Rng(1);
    const labels = Int32Array.from({ length: rows }, () => (rng.nextFloat() < 0.3 ? 0 : 1)); // class 0 = "label 1"
    const codes = plantedCodes(labels, [7], 2);
    const y = Uint8Array.from(labels, (c) => (c === 0 ? 1 : 0));
    const rep = probeLoss(codes, N, [y]);
    const t = rep.tasks[0];
    expect(t.bestLatent).toBe(7);
    let pos = 0;
    for (const v of y) pos += v;
    expect(t.constantLoss).toBeCloseTo(bernoulliEntropy(pos / rows), 12);
    expect(t.loss).toBeLessThan(0.01); // separable: only the tiny L2 keeps it above 0
    expect(t.loss).toBeLessThan(t.constantLoss);
    expect(t.fitted).toBe(N);
  });

  it('one-vs-rest over class labels finds one planted latent per class', () => {
    const rng = new Rng(3);
    const labels = Int32Array.from({ length: rows }, () => rng.nextInt(4)); // class 3 has no latent
    const codes = plantedCodes(labels, [3, 5, 9], 4);
    const tasks = oneVsRest(labels);
    expect(tasks.length).toBe(4);
    const rep = probeLoss(codesByLatent(codes, N), N, tasks, { minFires: 5 });
    expect(rep.tasks.slice(0, 3).map((t) => t.bestLatent)).toEqual([3, 5, 9]);
    // class 3 = "none of the planted latents fires": no single latent separates it perfectly,
    // but the best probe still beats the constant.
    expect(rep.tasks[3].loss).toBeLessThan(rep.tasks[3].constantLoss);
    expect(rep.meanLoss).toBeLessThan(rep.meanConstantLoss);
  });

  it('the 1-D Newton fit is the minimum of the regularized objective (grid check)', () => {
    const rng = new Rng(7);
    const n = 300;
    const y = new Uint8Array(n);
    const rowsActive: number[] = [];
    const z: number[] = [];
    for (let r = 0; r < n; r++) {
      const active = rng.nextFloat() < 0.4;
      const zz = active ? 3 * rng.nextFloat() : 0;
      if (active) {
        rowsActive.push(r);
        z.push(zz);
      }
      y[r] = rng.nextFloat() < 1 / (1 + Math.exp(-(1.5 * zz - 1))) ? 1 : 0; // noisy: not separable
    }
    let nPos = 0;
    for (const v of y) nPos += v;
    const lam = 1e-3;
    const fit = fitLogistic1D(rowsActive, z, y, nPos, { l2: lam });
    const zAll = new Float64Array(n);
    rowsActive.forEach((r, j) => {
      zAll[r] = z[j];
    });
    const J = (a: number, b: number) => {
      let s = 0;
      for (let r = 0; r < n; r++) s += softplus(a * zAll[r] + b) - y[r] * (a * zAll[r] + b);
      return s / n + 0.5 * lam * a * a;
    };
    const Jfit = J(fit.a, fit.b);
    expect(fit.loss).toBeCloseTo(Jfit - 0.5 * lam * fit.a * fit.a, 12);
    for (let da = -0.05; da <= 0.05; da += 0.01)
      for (let db = -0.05; db <= 0.05; db += 0.01)
        expect(J(fit.a + da, fit.b + db)).toBeGreaterThanOrEqual(Jfit - 1e-12);
    expect(fit.a).toBeGreaterThan(0.8);
  });

  it('raw-activation probe: reported loss is the CE of its weights and beats the constant', () => {
    const rng = new Rng(8);
    const d = 6;
    const n = 500;
    const x = new Float32Array(n * d);
    const y = new Uint8Array(n);
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let c = 0; c < d; c++) {
        x[r * d + c] = 5 + (c + 1) * rng.normal(); // offset and unequal scales
        s += (c % 2 ? 1 : -0.5) * (x[r * d + c] - 5);
      }
      y[r] = s + 0.5 * rng.normal() > 0 ? 1 : 0;
    }
    const fit = rawProbe(x, n, d, y, { l2: 1e-4, iters: 200 });
    let ce = 0;
    for (let r = 0; r < n; r++) {
      let s = fit.b;
      for (let c = 0; c < d; c++) s += fit.w[c] * x[r * d + c];
      ce += softplus(s) - y[r] * s;
    }
    expect(fit.loss).toBeCloseTo(ce / n, 6);
    let pos = 0;
    for (const v of y) pos += v;
    expect(fit.loss).toBeLessThan(0.25 * bernoulliEntropy(pos / n));
    // through probeLoss: codes that carry no information → best latent ≈ constant, raw ≪ constant
    const labels = Int32Array.from(y, (v) => (v ? 1 : 0));
    const noise = plantedCodes(
      Int32Array.from(labels, () => 9),
      [],
      1,
    );
    const rep = probeLoss(noise, N, [y.subarray(0, rows)], { x: x.subarray(0, rows * d), d });
    expect(rep.tasks[0].rawLoss).toBeLessThan(0.5 * rep.tasks[0].constantLoss);
    expect(rep.tasks[0].loss).toBeGreaterThan(0.9 * rep.tasks[0].constantLoss);
  });
});
