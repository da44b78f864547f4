/**
 * npm run bench:hw [-- --only step,scale --samples 5 --max-n 1048576 --out FILE]: the step and scale
 * benchmarks on the machine's real GPU (SAE_LAB_GPU=hw: cli/browser.ts drops the SwiftShader flags and
 * asks for Vulkan). First asks the page for its adapter alone and prints it (vendor, architecture,
 * description, limits) to stderr; when that adapter is SwiftShader, another software rasterizer or the
 * fallback adapter, or there is none, it prints one line and exits 1 before benchmarking anything.
 * Then prints the benchmarks' JSON (adapter included) to stdout, as `npm run bench` does.
 */
import { writeFileSync } from 'node:fs';
import { softwareAdapterReason } from './adapter';
import { benchArgs } from './args';
import { runBenchPage } from './page';

process.env.SAE_LAB_GPU = 'hw';
const { opt, fail } = benchArgs('bench:hw');

// Page logs are kept back until they help explain a failure.
const logs: string[] = [];
const probe = await runBenchPage(new URLSearchParams({ only: 'adapter' }), (l) => logs.push(l)).catch(
  (e: unknown) => ({ error: e instanceof Error ? e.message.split('\n')[0] : String(e) }) as const,
);
if ('error' in probe && probe.error) fail(`no WebGPU adapter with the hardware flags: ${probe.error}`);
const adapter = 'adapter' in probe ? probe.adapter : undefined;
if (!adapter) fail('the bench page reported no adapter');
const why = softwareAdapterReason(adapter!);
if (why) fail(`not a real GPU: the adapter ${why}; check the driver, Vulkan ICD and cli/browser.ts hw flags`);
process.stderr.write(
  `adapter: ${adapter!.vendor} / ${adapter!.architecture} / ${adapter!.description || adapter!.device}\n` +
    `limits: ${JSON.stringify(adapter!.limits)}\n`,
);

const q = new URLSearchParams({ only: opt('only') ?? 'step,scale', samples: opt('samples') ?? '5' });
for (const name of ['max-n', 'encode', 'topk', 'fused']) if (opt(name)) q.set(name, opt(name)!);
const result = await runBenchPage(q);
// The page may pick another adapter than the probe's (it should not); check again.
if (result.adapter && softwareAdapterReason(result.adapter))
  fail(`not a real GPU during the benchmarks: ${softwareAdapterReason(result.adapter)}`);
const json = JSON.stringify(result, null, 2);
console.log(json);
if (opt('out')) writeFileSync(opt('out')!, json);
if (result.error) fail(`benchmark failed: ${result.error}`);
