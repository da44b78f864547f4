import { useEffect, useRef, useState } from 'react';
import type { AdapterReport } from '../gpu/device';
import { startWorker } from '../worker/client';
import type { FromWorker } from '../worker/protocol';
import type { SelfCheckResult } from '../worker/selfcheck';

export function App() {
  const [adapter, setAdapter] = useState<AdapterReport | null>(null);
  const [banner, setBanner] = useState<string | null>(null);
  const [check, setCheck] = useState<SelfCheckResult | null>(null);
  const [busy, setBusy] = useState(false);
  const worker = useRef<ReturnType<typeof startWorker> | null>(null);

  useEffect(() => {
    const w = startWorker((m: FromWorker) => {
      if (m.type === 'ready') setAdapter(m.adapter);
      else if (m.type === 'no-webgpu') setBanner(m.message);
      else if (m.type === 'selfcheck') {
        setCheck(m.result);
        setBusy(false);
      } else if (m.type === 'device-lost')
        setBanner(`The GPU device was lost (${m.message}). Reload the page to continue.`);
      else if (m.type === 'gpu-error' || m.type === 'error') {
        setBanner(m.message);
        setBusy(false);
      }
    });
    worker.current = w;
    w.send({ type: 'init' });
    return () => w.terminate();
  }, []);

  return (
    <main className="app">
      <header>
        <h1>SAE Lab</h1>
        <p className="sub">TopK sparse autoencoders on your own GPU, in hand-written WGSL.</p>
      </header>
      {banner && (
        <div className="banner error" role="alert">
          {banner}
        </div>
      )}
      <section className="card" aria-label="adapter">
        <h2>GPU adapter</h2>
        {adapter ? (
          <dl className="kv" data-testid="adapter-info">
            <dt>vendor</dt>
            <dd>{adapter.vendor || '—'}</dd>
            <dt>architecture</dt>
            <dd>{adapter.architecture || '—'}</dd>
            <dt>max storage binding</dt>
            <dd>{(adapter.limits.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB</dd>
            <dt>features</dt>
            <dd>{adapter.features.join(', ')}</dd>
          </dl>
        ) : (
          !banner && <p>Requesting adapter…</p>
        )}
        <button
          type="button"
          disabled={!adapter || busy}
          onClick={() => {
            setBusy(true);
            worker.current?.send({ type: 'selfcheck' });
          }}
        >
          Run encode check
        </button>
        {check && (
          <p data-testid="selfcheck" className={check.ok ? 'ok' : 'bad'}>
            encode ({check.variant}) vs float64 reference: relative error {check.relErr.toExponential(2)} —{' '}
            {check.ok ? 'PASS' : 'FAIL'}
          </p>
        )}
      </section>
    </main>
  );
}
