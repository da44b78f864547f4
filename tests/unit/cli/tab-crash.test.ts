import { expect, it } from 'vitest';
import { openHeadless } from '../../../cli/headless';
import { CHROME, describeNeeds } from '../prereq';

describeNeeds(CHROME)('cli: the browser tab crashing', () => {
  it('fails whatever the CLI awaits with one message, at once (not at the 24 h deadline)', async () => {
    const h = await openHeadless();
    try {
      await h.send({ type: 'init' });
      await h.next(['ready']);
      // A renderer crash, as the kernel's OOM killer causes one
      await h.session.page.goto('chrome://crash').catch(() => {});
      const t0 = Date.now();
      await expect(h.next(['train-done'])).rejects.toThrow(
        'the headless browser tab running the worker crashed; the run is lost (most often: this machine ran out of memory)',
      );
      expect(Date.now() - t0).toBeLessThan(30_000);
    } finally {
      await h.close();
    }
  }, 120_000);
});
