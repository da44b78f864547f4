import { describe, expect, it } from 'vitest';
import { fitLN, predictLN } from '../../../src/scaling/laws';
import { lossVsNSvg, tokensVsNSvg } from '../../../src/scaling/plots';
import { escapeXml, logTicks, renderLogLogSvg } from '../../../src/scaling/svg';
import { expandGrid } from '../../../src/scaling/sweep';
import { fitSweep, type SweepRun } from '../../../src/scaling/sweep-result';
import { LN_TRUTH, lnPoints } from './synthetic';

/**
 * Minimal well-formedness check: every tag is closed in order, attributes
 * are quoted, and there is exactly one root <svg>. Returns the tags seen.
 */
function checkWellFormed(svg: string): string[] {
  const stack: string[] = [];
  const seen: string[] = [];
  const tagRe = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  let roots = 0;
  for (let m = tagRe.exec(svg); m !== null; m = tagRe.exec(svg)) {
    // Text between tags must not contain a stray '<' (an unparsed tag).
    expect(svg.slice(last, m.index)).not.toMatch(/[<>]/);
    last = tagRe.lastIndex;
    const [, close, name, , selfClose] = m;
    if (close) {
      expect(stack.pop()).toBe(name);
    } else {
      if (stack.length === 0) roots++;
      seen.push(name);
      if (!selfClose) stack.push(name);
    }
  }
  expect(svg.slice(last).trim()).toBe('');
  expect(stack).toEqual([]);
  expect(roots).toBe(1);
  return seen;
}

function viewBox(svg: string): [number, number, number, number] {
  const m = /<svg [^>]*viewBox="([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+)"/.exec(svg);
  expect(m).not.toBeNull();
  return m!.slice(1, 5).map(Number) as [number, number, number, number];
}

describe('renderLogLogSvg', () => {
  const pts = lnPoints(0.01, 1);
  const fit = fitLN(pts);
  const svg = renderLogLogSvg({
    title: 'nMSE vs N <k=32 & friends>',
    xLabel: 'latents N',
    yLabel: 'nMSE',
    series: [
      { name: 'k=32', points: pts.map((p) => ({ x: p.N, y: p.L })), curve: (N) => predictLN(fit.params, N) },
      {
        name: 'truth',
        points: [],
        curve: pts.map((p) => ({ x: p.N, y: predictLN(LN_TRUTH, p.N) })),
        color: '#000',
      },
      {
        name: 'with bad points',
        points: [
          { x: 2048, y: 0.1 },
          { x: -1, y: 0.1 },
          { x: 4096, y: Number.NaN },
        ],
      },
    ],
  });

  it('is a well-formed standalone SVG document', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    const tags = checkWellFormed(svg);
    expect(tags.filter((t) => t === 'path').length).toBe(2);
    expect(tags.filter((t) => t === 'circle').length).toBe(pts.length + 1 + 3); // points + legend swatches
    expect(svg).toContain('nMSE vs N &lt;k=32 &amp; friends&gt;');
    expect(svg).toContain('<desc>2 point(s)');
  });

  it('places every point inside the viewBox, and inside the plot frame', () => {
    const [vx, vy, vw, vh] = viewBox(svg);
    const circles = [...svg.matchAll(/<circle cx="([-\d.]+)" cy="([-\d.]+)"/g)].map((m) => [+m[1], +m[2]]);
    expect(circles.length).toBeGreaterThan(0);
    for (const [cx, cy] of circles) {
      expect(cx).toBeGreaterThanOrEqual(vx);
      expect(cx).toBeLessThanOrEqual(vx + vw);
      expect(cy).toBeGreaterThanOrEqual(vy);
      expect(cy).toBeLessThanOrEqual(vy + vh);
    }
    // Path vertices are finite numbers; the curves span the frame.
    for (const m of svg.matchAll(/<path d="([^"]+)"/g)) {
      const nums = m[1].match(/-?[\d.]+(e-?\d+)?/g)!.map(Number);
      expect(nums.every(Number.isFinite)).toBe(true);
    }
  });

  it('puts decade ticks with superscript labels on the axes', () => {
    // N spans 2^10 … 2^20 ≈ 10^3 … 10^6.
    for (const e of [4, 5, 6]) expect(svg).toContain(`10<tspan dy="-0.6em" font-size="0.75em">${e}</tspan>`);
    // nMSE spans 0.05 … 0.2, less than a decade: 1-2-5 ticks appear.
    expect(svg).toMatch(/>0\.1</);
  });

  it('gives each series its own colour and a legend entry', () => {
    expect(svg).toContain('stroke="#4e79a7"');
    expect(svg).toContain('stroke="#000"');
    expect(svg).toContain('fill="#e15759"');
    for (const name of ['k=32', 'truth', 'with bad points']) expect(svg).toContain(`>${name}</text>`);
  });

  it('handles an empty plot and a single point', () => {
    checkWellFormed(renderLogLogSvg({ xLabel: 'x', yLabel: 'y', series: [] }));
    const one = renderLogLogSvg({
      xLabel: 'x',
      yLabel: 'y',
      series: [{ name: 'a', points: [{ x: 10, y: 10 }] }],
    });
    checkWellFormed(one);
    expect(one).toContain('<circle');
  });
});

describe('logTicks', () => {
  it('uses decades over wide ranges and finer ticks over narrow ones', () => {
    const wide = logTicks(-0.2, 6.3).filter((t) => t.label !== null);
    expect(wide.map((t) => t.at)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const narrow = logTicks(Math.log10(0.04), Math.log10(0.3)).filter((t) => t.label !== null);
    expect(narrow.map((t) => Math.round(10 ** t.at * 1000) / 1000)).toEqual([0.05, 0.1, 0.2]);
    const huge = logTicks(0, 40).filter((t) => t.label !== null);
    expect(huge.length).toBeLessThanOrEqual(11);
  });
});

describe('escapeXml', () => {
  it('escapes the five XML specials', () => {
    expect(escapeXml(`<a href="x">&'`)).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
  });
});

describe('sweep plots', () => {
  it('renders loss and tokens plots from a sweep', () => {
    const runs: SweepRun[] = expandGrid({
      N: [1024, 2048, 4096, 8192, 16384],
      k: [16, 64],
      budget: { kind: 'tokens', tokens: 1e6 },
    }).map((config) => ({
      config,
      final: {
        nmse: predictLN(LN_TRUTH, config.N) * (config.k === 16 ? 1.5 : 1),
        l0: config.k,
        dead_fraction: 0,
        tokens: 1e6,
        tokens_to_convergence: 30 * config.N ** 0.6,
      },
    }));
    const fits = fitSweep(runs);
    for (const svg of [lossVsNSvg(runs, fits), tokensVsNSvg(runs, fits), lossVsNSvg(runs)]) {
      const tags = checkWellFormed(svg);
      expect(tags.filter((t) => t === 'circle').length).toBe(runs.length + 2);
    }
    expect(lossVsNSvg(runs, fits)).toContain('β=-0.300');
    expect(tokensVsNSvg(runs, fits)).toContain('T ∝ N^0.60');
  });
});
