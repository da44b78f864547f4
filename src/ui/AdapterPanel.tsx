import { useLab } from '../store/lab';
import { runSelfCheck } from '../store/worker';

const MiB = 2 ** 20;

export function AdapterPanel() {
  const adapter = useLab((s) => s.adapter);
  const webgpu = useLab((s) => s.webgpu);
  const check = useLab((s) => s.selfcheck);
  const busy = useLab((s) => s.selfcheckBusy);
  const kernels = useLab((s) => s.run?.kernels ?? null);
  const gpuBytes = useLab((s) => s.run?.gpuBytes ?? 0);

  return (
    <section className="card" aria-label="adapter">
      <h2>GPU adapter</h2>
      {adapter ? (
        <dl className="kv" data-testid="adapter-info">
          <dt>vendor</dt>
          <dd>{adapter.vendor || '—'}</dd>
          <dt>architecture</dt>
          <dd>
            {adapter.architecture || '—'}
            {adapter.isFallbackAdapter && <span className="tag">fallback (CPU)</span>}
          </dd>
          {adapter.description && (
            <>
              <dt>description</dt>
              <dd>{adapter.description}</dd>
            </>
          )}
          <dt>max storage binding</dt>
          <dd>{(adapter.limits.maxStorageBufferBindingSize / MiB).toFixed(0)} MiB</dd>
          <dt>max buffer</dt>
          <dd>{(adapter.limits.maxBufferSize / MiB).toFixed(0)} MiB</dd>
          <dt>workgroup storage</dt>
          <dd>{(adapter.limits.maxComputeWorkgroupStorageSize / 1024).toFixed(0)} KiB</dd>
          <dt>invocations / workgroup</dt>
          <dd>{adapter.limits.maxComputeInvocationsPerWorkgroup}</dd>
          <dt>features</dt>
          <dd className="features">
            {adapter.features.length
              ? adapter.features.map((f) => (
                  <span key={f} className="chip">
                    {f}
                  </span>
                ))
              : '—'}
          </dd>
          <dt>kernels</dt>
          <dd data-testid="kernel-choice">
            {kernels ? (
              <>
                encode <code>{kernels.encode}</code>, TopK <code>{kernels.topk}</code> (tile{' '}
                <code>{kernels.topkTile}</code>)
                {kernels.fused && (
                  <>
                    {' '}
                    · fused encode+TopK <code>{kernels.fused}</code> (chunk <code>{kernels.fusedChunk}</code>)
                  </>
                )}
                {gpuBytes > 0 && <> · {(gpuBytes / MiB).toFixed(1)} MiB allocated</>}
              </>
            ) : (
              <span className="muted">chosen when a run starts</span>
            )}
          </dd>
        </dl>
      ) : (
        <p className="muted">
          {webgpu === 'missing' ? 'No WebGPU adapter on this browser.' : 'Requesting adapter…'}
        </p>
      )}
      <div className="row">
        <button type="button" className="secondary" disabled={!adapter || busy} onClick={runSelfCheck}>
          Run encode check
        </button>
        {busy && <span className="muted">checking…</span>}
      </div>
      {check && (
        <p data-testid="selfcheck" className={check.ok ? 'ok' : 'bad'}>
          encode ({check.variant}) vs float64 reference: relative error {check.relErr.toExponential(2)} —{' '}
          {check.ok ? 'PASS' : 'FAIL'}
        </p>
      )}
    </section>
  );
}
