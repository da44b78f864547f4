import { dismissBanner, useLab } from '../store/lab';

export function Banners() {
  const banners = useLab((s) => s.banners);
  if (!banners.length) return null;
  return (
    <div className="banners">
      {banners.map((b) => (
        <div
          key={b.id}
          className={`banner ${b.kind === 'gpu-error' ? 'warn' : 'error'}`}
          role="alert"
          data-testid={`banner-${b.kind}`}
        >
          <div className="banner-body">
            <strong>{b.title}</strong>
            <p className="banner-msg">{b.message}</p>
            <p className="banner-next">
              <span className="muted">What to do: </span>
              {b.next}
            </p>
          </div>
          {b.kind !== 'no-webgpu' && (
            <button
              type="button"
              className="ghost icon"
              aria-label="Dismiss"
              title="Dismiss"
              onClick={() => dismissBanner(b.id)}
            >
              ×
            </button>
          )}
        </div>
      ))}
    </div>
  );
}
