/**
 * Headless Chromium with WebGPU for the GPU tests, the benchmarks and the CLI.
 * CHROME_PATH overrides the browser; SAE_LAB_CHROME_ARGS adds flags (e.g. on a machine with a real
 * GPU: "--use-angle=vulkan --enable-features=Vulkan" and without the SwiftShader ones via SAE_LAB_GPU=hw).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';

const REPO_ROOT = resolve(import.meta.dirname, '..');

export function chromePath(): string {
  const candidates = [
    process.env.CHROME_PATH,
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
    '/usr/bin/google-chrome',
  ];
  for (const c of candidates) if (c && existsSync(c)) return c;
  throw new Error('no Chromium found: install it (apt-get install -y chromium) or set CHROME_PATH');
}

/** Flags: docs/DESIGN.md §5. SAE_LAB_GPU=hw drops the SwiftShader forcing for real GPUs. */
export function chromeArgs(): string[] {
  const base = [
    '--enable-unsafe-webgpu',
    '--no-sandbox',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
  ];
  const gpu =
    process.env.SAE_LAB_GPU === 'hw'
      ? // Linux + NVIDIA/AMD (Vulkan): Dawn on the Vulkan driver, ANGLE on Vulkan too; no window surface
        // in headless mode; the blocklist would send some drivers back to software.
        [
          '--enable-features=Vulkan,VulkanFromANGLE,DefaultANGLEVulkan',
          '--use-angle=vulkan',
          '--disable-vulkan-surface',
          '--ignore-gpu-blocklist',
        ]
      : ['--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-webgpu-adapter=swiftshader'];
  const extra = (process.env.SAE_LAB_CHROME_ARGS ?? '').split(/\s+/).filter(Boolean);
  return [...base, ...gpu, ...(robust() ? [] : [NO_ROBUSTNESS]), ...extra];
}

/**
 * Dawn's robustness pass clamps every buffer index in every shader. Headless sessions run only this
 * repository's kernels, whose indices the GPU tests check against the float64 reference (and the
 * GPU tests run without the pass too), so the CLI, the benchmarks and the GPU tests turn it off:
 * the same bits, faster (measured in the README). SAE_LAB_ROBUST=1 keeps it; the page in a user's
 * browser always has it.
 */
const NO_ROBUSTNESS = '--enable-dawn-features=disable_robustness';

export function robust(): boolean {
  return process.env.SAE_LAB_ROBUST === '1';
}

export interface Session {
  browser: Browser;
  page: Page;
  baseUrl: string;
  close(): Promise<void>;
}

/** Starts a Vite dev server on a free localhost port (a secure context, as WebGPU requires). */
async function startVite(): Promise<ViteDevServer> {
  const server = await createServer({
    root: REPO_ROOT,
    configFile: join(REPO_ROOT, 'vite.config.ts'),
    logLevel: 'error',
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
    optimizeDeps: { noDiscovery: true, include: [] },
  });
  await server.listen();
  return server;
}

export async function openSession(
  path: string,
  opts: { log?: (line: string) => void } = {},
): Promise<Session> {
  const server = await startVite();
  const addr = server.httpServer?.address();
  if (!addr || typeof addr === 'string') throw new Error('vite did not report a port');
  const baseUrl = `http://127.0.0.1:${addr.port}`;
  const browser = await chromium.launch({ executablePath: chromePath(), args: chromeArgs(), headless: true });
  const page = await browser.newPage();
  page.on('pageerror', (e) => opts.log?.(`[pageerror] ${e.message}`));
  page.on('console', (m) => opts.log?.(m.text()));
  await page.goto(baseUrl + path);
  return {
    browser,
    page,
    baseUrl,
    async close() {
      await browser.close().catch(() => {});
      await server.close();
    },
  };
}
