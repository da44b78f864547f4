/**
 * The lab's low-rate state (adapter, dataset, config, run status, banners) in one zustand store, with
 * its actions as plain functions. The worker connection lives in worker.ts; high-rate curves live in
 * series.ts, not here.
 */
import { create } from 'zustand';
import type { AdapterReport } from '../gpu/device';
import { DEFAULTS, type ResolvedConfig, type SaeConfig } from '../sae/config';
import type { KernelChoice } from '../sae/step-host';
import type { DatasetInfo, EvalResult, RunStatus } from '../worker/protocol';
import type { SelfCheckResult } from '../worker/selfcheck';

export type BannerKind = 'no-webgpu' | 'dataset-error' | 'device-lost' | 'nan' | 'gpu-error' | 'error';

export interface Banner {
  id: number;
  kind: BannerKind;
  title: string;
  message: string;
  /** what the user can do next */
  next: string;
}

export type FileRole = 'activations' | 'tokens' | 'vocab' | 'ignore';

export interface PickedFile {
  file: File;
  role: FileRole;
}

export type ConfigForm = Omit<SaeConfig, 'd'>;

export interface RunState {
  runId: string;
  status: RunStatus;
  message?: string;
  config: ResolvedConfig | null;
  kernels: KernelChoice | null;
  gpuBytes: number;
  totalSteps: number;
  final: (EvalResult & { tokensPerS: number }) | null;
  nanAt: number | null;
  /** the worker's word on its last recovery from a lost GPU device ("…resuming from checkpoint step 16") */
  recovery?: string;
}

/** Throughput of the last finished (or stopped) run, for the time-per-step estimate. */
export interface MeasuredSpeed {
  tokensPerS: number;
  d: number;
  nLatents: number;
  batchSize: number;
}

export type Theme = 'system' | 'light' | 'dark';

export interface LabState {
  adapter: AdapterReport | null;
  webgpu: 'pending' | 'ok' | 'missing';
  selfcheck: SelfCheckResult | null;
  selfcheckBusy: boolean;
  banners: Banner[];

  picked: PickedFile[];
  rawDtype: 'f32' | 'f16';
  rawWidth: string;
  tensor: string;
  /** rows holding NaN or Inf in opened files: skipped and counted, or the file refused (row named) */
  nonFinite: 'skip' | 'stop';
  dataset: {
    status: 'none' | 'loading' | 'ready' | 'error';
    source: 'demo' | 'files' | null;
    fraction: number;
    phase: string;
    info: DatasetInfo | null;
  };

  config: ConfigForm;
  run: RunState | null;
  measured: MeasuredSpeed | null;
  theme: Theme;
}

const MEASURED_KEY = 'sae-lab.measured';
const THEME_KEY = 'sae-lab.theme';

function loadJson<T>(key: string): T | null {
  try {
    const s = localStorage.getItem(key);
    return s ? (JSON.parse(s) as T) : null;
  } catch {
    return null;
  }
}

export const useLab = create<LabState>(() => ({
  adapter: null,
  webgpu: 'pending',
  selfcheck: null,
  selfcheckBusy: false,
  banners: [],
  picked: [],
  rawDtype: 'f32',
  rawWidth: '',
  tensor: '',
  nonFinite: 'skip',
  dataset: { status: 'none', source: null, fraction: 0, phase: '', info: null },
  config: { ...DEFAULTS },
  run: null,
  measured: loadJson<MeasuredSpeed>(MEASURED_KEY),
  theme: (loadJson<Theme>(THEME_KEY) ?? 'system') as Theme,
}));

let bannerId = 0;

export function addBanner(b: Omit<Banner, 'id'>) {
  useLab.setState((s) => ({
    // one banner per kind: the newest replaces an older one
    banners: [...s.banners.filter((x) => x.kind !== b.kind), { ...b, id: ++bannerId }],
  }));
}

export function dismissBanner(id: number) {
  useLab.setState((s) => ({ banners: s.banners.filter((b) => b.id !== id) }));
}

export function clearBanners(kind: BannerKind) {
  useLab.setState((s) => ({ banners: s.banners.filter((b) => b.kind !== kind) }));
}

export function setConfig<K extends keyof ConfigForm>(key: K, value: ConfigForm[K]) {
  useLab.setState((s) => ({ config: { ...s.config, [key]: value } }));
}

export function patchConfig(patch: Partial<ConfigForm>) {
  useLab.setState((s) => ({ config: { ...s.config, ...patch } }));
}

export function resetConfig() {
  useLab.setState({ config: { ...DEFAULTS } });
}

export function updateRun(patch: Partial<RunState>) {
  useLab.setState((s) => (s.run ? { run: { ...s.run, ...patch } } : {}));
}

export function saveMeasured(m: MeasuredSpeed) {
  if (!(m.tokensPerS > 0)) return;
  useLab.setState({ measured: m });
  try {
    localStorage.setItem(MEASURED_KEY, JSON.stringify(m));
  } catch {
    // storage can be unavailable (private mode); the estimate then uses the assumed rate
  }
}

export function setTheme(theme: Theme) {
  useLab.setState({ theme });
  try {
    localStorage.setItem(THEME_KEY, JSON.stringify(theme));
  } catch {
    // ignore
  }
  applyTheme(theme);
}

export function applyTheme(theme: Theme) {
  const root = document.documentElement;
  if (theme === 'system') delete root.dataset.theme;
  else root.dataset.theme = theme;
}

export const isActive = (st: RunStatus | undefined) =>
  st === 'preparing' || st === 'running' || st === 'paused' || st === 'stopping';
