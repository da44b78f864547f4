/** Browser entry of bench/index.html: runs the suite with the page's query and leaves the result in
 * window.__benchDone for bench/page.ts. */
import { runBenchSuite } from './suite';

declare global {
  interface Window {
    __benchDone?: unknown;
  }
}

runBenchSuite(new URLSearchParams(location.search))
  .then((r) => {
    window.__benchDone = r;
  })
  .catch((e) => {
    window.__benchDone = { error: e instanceof Error ? e.message : String(e) };
  });
