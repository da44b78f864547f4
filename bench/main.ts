import { createGpu } from '../src/gpu/device';
import { benchEncode } from './encode.bench';

declare global {
  interface Window {
    __benchDone?: unknown;
  }
}

const params = new URLSearchParams(location.search);
const only = params.get('only') ?? '';
const samples = Number(params.get('samples') ?? 3);

async function main() {
  const gpu = await createGpu({ onUncapturedError: (m) => console.log(`[gpu error] ${m}`) });
  const entries: unknown[] = [];
  const want = (name: string) => !only || only.split(',').includes(name);
  if (want('encode')) entries.push(await benchEncode(gpu.device, 1024, 768, 4096, samples));
  const result = { adapter: gpu.report, when: new Date().toISOString(), entries };
  gpu.destroy();
  return result;
}

main()
  .then((r) => {
    window.__benchDone = r;
  })
  .catch((e) => {
    window.__benchDone = { error: e instanceof Error ? e.message : String(e) };
  });
