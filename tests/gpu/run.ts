/**
 * Node side of the GPU test harness: serves tests/gpu/index.html on localhost, opens it in headless
 * Chromium (WebGPU on SwiftShader here), streams one line per test and ends with a total.
 * Usage: tsx tests/gpu/run.ts [filter]
 */
import { openSession } from '../../cli/browser';

const filter = process.argv[2] ?? '';
const TIMEOUT_MS = Number(process.env.GPU_TEST_TIMEOUT_MS ?? 15 * 60_000);

const session = await openSession(
  `/tests/gpu/index.html${filter ? `?filter=${encodeURIComponent(filter)}` : ''}`,
  {
    log: (line) => {
      if (/^(PASS|FAIL|GPU|\[pageerror\]| {4})/.test(line)) console.log(line);
    },
  },
);
let code = 1;
try {
  await session.page.waitForFunction(() => window.__gpuDone !== undefined, null, {
    timeout: TIMEOUT_MS,
    polling: 250,
  });
  const done = (await session.page.evaluate(() => window.__gpuDone))!;
  const passed = done.results.filter((r) => r.ok).length;
  const failed = done.results.length - passed;
  console.log(`\ngpu tests: ${passed} passed, ${failed} failed`);
  code = failed === 0 && passed > 0 ? 0 : 1;
} catch (e) {
  console.log(`FAIL harness: ${e instanceof Error ? e.message : String(e)}`);
} finally {
  await session.close();
}
process.exit(code);
