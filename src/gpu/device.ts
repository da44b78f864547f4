/**
 * One place that owns the GPUDevice: adapter selection, the limits the engine asks for,
 * adapter info for the UI/bench, and the single handler for device loss and uncaptured errors.
 * Works in a window and in a worker (navigator.gpu exists in both).
 */

const NO_WEBGPU_MESSAGE =
  'This browser has no WebGPU; use Chrome/Edge 113+ or enable it (chrome://flags/#enable-unsafe-webgpu).';

export class WebGPUUnavailableError extends Error {
  constructor(detail?: string) {
    super(detail ? `${NO_WEBGPU_MESSAGE} (${detail})` : NO_WEBGPU_MESSAGE);
    this.name = 'WebGPUUnavailableError';
  }
}

export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  features: string[];
  limits: Record<string, number>;
}

/** Limits the engine cares about, reported and requested at the adapter's maximum. */
const LIMIT_NAMES = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxUniformBufferBindingSize',
  'minStorageBufferOffsetAlignment',
] as const;

export interface DeviceEvents {
  /** Called once when the device is lost for any reason other than our own destroy(). */
  onLost?: (info: { reason: string; message: string }) => void;
  /** Called for every GPU error that no error scope caught (validation, OOM, internal). */
  onUncapturedError?: (message: string) => void;
}

export interface GpuContext {
  adapter: GPUAdapter;
  device: GPUDevice;
  report: AdapterReport;
  /** Destroys the device without firing onLost. */
  destroy(): void;
}

function describeAdapter(adapter: GPUAdapter): AdapterReport {
  const info = adapter.info;
  const limits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) limits[name] = Number(adapter.limits[name]);
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter),
    features: [...adapter.features].sort(),
    limits,
  };
}

/**
 * The limits named in `fallback` as an adapter report gives them; a name the report lacks (or no
 * report: the adapter is not known yet) keeps its fallback value, e.g. WebGPU's defaults.
 */
export function reportLimits<T extends { [K in keyof T]: number }>(
  report: Pick<AdapterReport, 'limits'> | null | undefined,
  fallback: T,
): T {
  const out = { ...fallback };
  for (const name of Object.keys(fallback) as (keyof T & string)[]) {
    const v = report?.limits[name];
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) out[name] = v as T[keyof T & string];
  }
  return out;
}

/**
 * Requests the high-performance adapter and a device with the adapter's maximum storage-buffer
 * sizes (the defaults, 128 MiB bindings, are far too small for [B, N] pre-activations).
 * Throws WebGPUUnavailableError with a user-facing message when WebGPU is missing.
 */
export async function createGpu(
  events: DeviceEvents = {},
  label = 'sae-lab',
  /** optional features to ask for where the adapter has them (the benchmarks: in-pass timestamps) */
  extraFeatures: string[] = [],
): Promise<GpuContext> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new WebGPUUnavailableError('navigator.gpu is undefined');
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new WebGPUUnavailableError('no adapter was found');
  const requiredLimits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) {
    if (name === 'minStorageBufferOffsetAlignment') continue;
    requiredLimits[name] = Number(adapter.limits[name]);
  }
  // 'subgroups': software forms that share values within a quad of lanes (kernel.ts quadForms:
  // grad-both.wgsl, topk-rank-quad.wgsl).
  const wanted = ['timestamp-query', 'subgroups', ...extraFeatures] as GPUFeatureName[];
  const requiredFeatures = wanted.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ label, requiredLimits, requiredFeatures });
  let destroyedByUs = false;
  device.lost.then((info) => {
    if (destroyedByUs && info.reason === 'destroyed') return;
    events.onLost?.({ reason: info.reason, message: info.message });
  });
  device.addEventListener('uncapturederror', (ev) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    events.onUncapturedError?.(err.message);
  });
  return {
    adapter,
    device,
    report: describeAdapter(adapter),
    destroy() {
      destroyedByUs = true;
      device.destroy();
    },
  };
}

/**
 * A GPU error (validation, out-of-memory, internal) that ended an operation: `phase` says what was
 * running, `kind` is the error's class (GPUValidationError, …), `detail` the driver's message.
 */
export class GpuError extends Error {
  constructor(
    readonly phase: string,
    readonly kind: string,
    readonly detail: string,
    message = `${phase}: GPU ${kind}: ${detail}`,
  ) {
    super(message);
    this.name = 'GpuError';
  }
}

/** The class name of a GPUError (GPUValidationError, GPUOutOfMemoryError, GPUInternalError). */
export const gpuErrorKind = (e: GPUError) => e.constructor?.name || 'GPUError';

/**
 * TEST HOOK (fault injection, never used by a normal run): records a genuinely invalid command — a
 * copyBufferToBuffer past the end of a 16-byte buffer — and submits it, so that the device raises a
 * real validation error. Called outside any error scope, the error reaches the device's
 * `uncapturederror` handler exactly as a real fault would.
 */
export function injectGpuFault(device: GPUDevice, label = 'injected-fault') {
  const src = device.createBuffer({ label: `${label}:src`, size: 16, usage: GPUBufferUsage.COPY_SRC });
  const dst = device.createBuffer({ label: `${label}:dst`, size: 16, usage: GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder({ label });
  enc.copyBufferToBuffer(src, 0, dst, 0, 64); // 64 bytes from a 16-byte buffer: invalid
  device.queue.submit([enc.finish()]);
  src.destroy();
  dst.destroy();
}

/**
 * Runs fn inside validation / out-of-memory / internal error scopes and throws the first
 * error with its message (a GpuError), so a WGSL or binding mistake fails loudly where it happened.
 */
export async function withErrorScopes<T>(
  device: GPUDevice,
  what: string,
  fn: () => T | Promise<T>,
): Promise<T> {
  device.pushErrorScope('internal');
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T | undefined;
  let thrown: unknown;
  try {
    result = await fn();
  } catch (e) {
    thrown = e;
  }
  const [validation, oom, internal] = [
    await device.popErrorScope(),
    await device.popErrorScope(),
    await device.popErrorScope(),
  ];
  // Out of memory first: a buffer that could not be allocated is invalid, and every use of it then
  // raises a validation error ("invalid due to a previous error") that names the symptom, not the cause.
  const first = oom ?? validation ?? internal;
  // A GPU error explains a JS failure that follows it (e.g. a failed readback), so it wins.
  if (first) throw new GpuError(what, gpuErrorKind(first), first.message);
  if (thrown !== undefined) throw thrown;
  return result as T;
}
