import { setTheme, type Theme, useLab } from '../store/lab';
import { AdapterPanel } from './AdapterPanel';
import { Banners } from './Banners';
import { Charts } from './Charts';
import { ConfigPanel } from './ConfigPanel';
import { DatasetPanel } from './DatasetPanel';
import { EvalPanel } from './EvalPanel';
import { PersistPanel, ResumeOffer } from './PersistPanel';
import { RunPanel } from './RunPanel';
import { SweepPanel } from './SweepPanel';

const NEXT_THEME: Record<Theme, Theme> = { system: 'dark', dark: 'light', light: 'system' };
const THEME_LABEL: Record<Theme, string> = { system: '◐ auto', dark: '☾ dark', light: '☀ light' };

function ThemeToggle() {
  const theme = useLab((s) => s.theme);
  return (
    <button
      type="button"
      className="ghost"
      data-testid="theme-toggle"
      title="Theme: follows the system, dark or light"
      onClick={() => setTheme(NEXT_THEME[theme])}
    >
      {THEME_LABEL[theme]}
    </button>
  );
}

function AdapterChip() {
  const adapter = useLab((s) => s.adapter);
  const webgpu = useLab((s) => s.webgpu);
  if (webgpu === 'missing') return <span className="chip bad">no WebGPU</span>;
  if (!adapter) return <span className="chip muted">connecting…</span>;
  return (
    <span className="chip" title={adapter.description}>
      <span className="dot ok" /> {adapter.vendor || 'GPU'} {adapter.architecture}
    </span>
  );
}

export function App() {
  return (
    <div className="app">
      <header className="top">
        <div>
          <h1>
            SAE Lab <span className="muted thin">· TopK sparse autoencoders</span>
          </h1>
          <p className="sub">
            Train TopK SAEs (Gao et al. 2024) on language-model activations on your own GPU, with hand-written
            WebGPU kernels. Nothing leaves this machine.
          </p>
        </div>
        <div className="row">
          <AdapterChip />
          <ThemeToggle />
        </div>
      </header>
      <Banners />
      <ResumeOffer />
      <main className="layout">
        <div className="col side">
          <DatasetPanel />
          <ConfigPanel />
        </div>
        <div className="col mainc">
          <RunPanel />
          <Charts />
          <EvalPanel />
          <PersistPanel />
          <AdapterPanel />
        </div>
      </main>
      <SweepPanel />
      <footer className="muted small">
        SAE Lab · the math follows openai/sparse_autoencoder; defaults are the paper's. The GPU lives in a
        worker; this page never touches GPU buffers.
      </footer>
    </div>
  );
}
