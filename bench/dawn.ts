/**
 * npm run bench:dawn [-- --only step,scale --samples 5 --max-n 2^20 --encode V --topk V --out FILE
 *   --dawn 'enable-dawn-features=…'] — the benchmark suite (bench/suite.ts) under Node on Dawn's own
 * binding (the npm package `webgpu`, dawn.node), without a browser: for a machine with a real GPU and
 * a Vulkan driver but no Chromium (a CUDA server, say). Dawn is the WebGPU implementation inside
 * Chromium, so the kernels, validation and shader compiler are Chromium's; what differs is Chromium's
 * GPU process and its default toggles. `webgpu` is not one of our dependencies (it carries a 20 MB
 * native module per platform): `npm install --no-save webgpu@0.6.2` first, or copy
 * the bundle this script builds (.dawn/out/bench.mjs, and its chunks) with the package in .dawn/node_modules/webgpu.
 * Prints the adapter line to stderr and the suite's JSON to stdout; exits 1 on a software adapter
 * unless --allow-software (for trying it on SwiftShader's Vulkan ICD).
 */
import { writeFileSync } from 'node:fs';
import { softwareAdapterReason } from './adapter';
import { benchArgs } from './args';

const { args, opt, fail } = benchArgs('bench:dawn');

// A variable module name keeps bundlers and the type checker from resolving the optional package.
const pkg = 'webgpu';
const webgpu = (await import(pkg).catch((e: unknown) =>
  fail(`cannot load the package 'webgpu' (npm install --no-save webgpu@0.6.2): ${String(e)}`),
)) as { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
Object.assign(globalThis, webgpu.globals);
const flags = (opt('dawn') ?? '').split(' ').filter(Boolean);
// Node 20 has no navigator; createGpu (src/gpu/device.ts) reads navigator.gpu as a page does.
const g = globalThis as { navigator?: { gpu?: GPU } };
if (!g.navigator) g.navigator = {};
const nav = g.navigator;
nav.gpu = webgpu.create(flags);

// Imported only now: the kernels' modules read GPUBufferUsage & co. when they load.
const { runBenchSuite } = await import('./suite');
const q = new URLSearchParams({ only: opt('only') ?? 'step,scale', samples: opt('samples') ?? '5' });
for (const name of ['max-n', 'encode', 'topk', 'fused', 'shape', 'gpt2-layers', 'gpt2-T', 'loop-groups'])
  if (opt(name)) q.set(name, opt(name)!);
// The suite's progress lines (console.log) go to stderr, so stdout holds only the JSON.
console.log = (...a: unknown[]) => process.stderr.write(`${a.join(' ')}\n`);
const result = await runBenchSuite(q).catch((e: unknown) => ({
  error: e instanceof Error ? e.message : String(e),
}));
const adapter = 'adapter' in result ? result.adapter : undefined;
if (adapter) {
  process.stderr.write(`adapter: ${adapter.vendor} / ${adapter.architecture} / ${adapter.description}\n`);
  const why = softwareAdapterReason(adapter);
  if (why && !args.includes('--allow-software')) fail(`not a real GPU: the adapter ${why}`);
}
const json = JSON.stringify(
  { ...result, runtime: `node ${process.version}, dawn.node`, dawnFlags: flags },
  null,
  2,
);
process.stdout.write(`${json}\n`);
if (opt('out')) writeFileSync(opt('out')!, json);
// dawn.node keeps the process alive while navigator.gpu is referenced.
delete nav.gpu;
process.exit('error' in result ? 1 : 0);
