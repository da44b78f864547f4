import { createGpu, withErrorScopes } from '../../src/gpu/device';
import { registry } from './harness';

// Every *.gpu.ts registers its tests on import.
import.meta.glob('./**/*.gpu.ts', { eager: true });

interface Result {
  name: string;
  ok: boolean;
  ms: number;
  error?: string;
}

declare global {
  interface Window {
    __gpuDone?: { results: Result[]; adapter: unknown };
  }
}

async function main() {
  const out = document.getElementById('out')!;
  const filter = new URLSearchParams(location.search).get('filter') ?? '';
  const results: Result[] = [];
  let uncaptured: string[] = [];
  const gpu = await createGpu({
    onUncapturedError: (m) => uncaptured.push(m),
    onLost: (i) => uncaptured.push(`device lost: ${i.reason} ${i.message}`),
  });
  console.log(`GPU ${gpu.report.vendor} ${gpu.report.architecture}`);
  for (const t of registry) {
    if (filter && !t.name.includes(filter)) continue;
    const t0 = performance.now();
    uncaptured = [];
    let error: string | undefined;
    try {
      await withErrorScopes(gpu.device, t.name, () => t.fn(gpu.device));
      await gpu.device.queue.onSubmittedWorkDone();
      if (uncaptured.length) error = uncaptured.join('; ');
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
    const r: Result = { name: t.name, ok: !error, ms: performance.now() - t0, error };
    results.push(r);
    console.log(
      `${r.ok ? 'PASS' : 'FAIL'} ${r.name} (${r.ms.toFixed(0)} ms)${r.error ? `\n    ${r.error}` : ''}`,
    );
    out.textContent = results.map((x) => `${x.ok ? 'PASS' : 'FAIL'} ${x.name}`).join('\n');
  }
  window.__gpuDone = { results, adapter: gpu.report };
  gpu.destroy();
}

main().catch((e) => {
  console.log(`FAIL harness: ${e instanceof Error ? e.message : String(e)}`);
  window.__gpuDone = { results: [{ name: 'harness', ok: false, ms: 0, error: String(e) }], adapter: null };
});
