import common from '../../../shaders/common.wgsl?raw';
import { namedThreads } from '../kernel-variants';
import { expand, getPipeline } from '../pipelines';
import { STEP_PARAMS_WGSL } from '../step-params';
import { reachableText, stripComments } from '../wgsl';

interface BindingDecl {
  binding: number;
  name: string;
  type: GPUBufferBindingType;
}

/** group-0 buffer bindings declared in WGSL, with their variable names. */
function parseBindings(code: string): BindingDecl[] {
  const re = /@group\(0\)\s*@binding\((\d+)\)\s*var<(storage|uniform)(?:\s*,\s*(read_write|read))?>\s*(\w+)/g;
  return [...stripComments(code).matchAll(re)].map((m) => ({
    binding: Number(m[1]),
    name: m[4],
    type: m[2] === 'uniform' ? 'uniform' : m[3] === 'read_write' ? 'storage' : 'read-only-storage',
  }));
}

/**
 * The bindings an entry point touches, through the helper functions it calls. Each entry point gets
 * its own explicit layout with only these, so a multi-phase kernel file stays within the per-stage
 * storage-buffer limit (8 by default) however many buffers the file as a whole declares.
 */
export function usedBindings(code: string, entry: string): BindingDecl[] {
  const text = reachableText(code, entry);
  // Not after a '.': `gid.x` is no use of a binding named x.
  return parseBindings(code).filter((b) => new RegExp(`(?<![\\w.])${b.name}\\b`).test(text));
}

export interface EntryPoint {
  pipeline: GPUComputePipeline;
  /** Bind group from the file's full positional buffer list (only this entry's bindings are used). */
  bind(label: string, all: GPUBuffer[]): GPUBindGroup;
}

/** A kernel file: StepParams (generated) + common.wgsl + its WGSL with template sizes expanded. */
export function stepShader(
  device: GPUDevice,
  label: string,
  code: string,
  templates: Record<string, string | number> = {},
) {
  // WGSL directives (enable, diagnostic) go before every declaration.
  const directive = /^(enable|diagnostic|requires)\b[^\n]*;\n/gm;
  const head = (code.match(directive) ?? []).join('');
  const full = expand(`${head}${STEP_PARAMS_WGSL}\n${common}\n${code.replace(directive, '')}`, templates);
  return {
    entry(entryPoint: string, constants: Record<string, number | boolean> = {}): EntryPoint {
      const used = usedBindings(full, entryPoint);
      const layout = device.createBindGroupLayout({
        label: `${label}:${entryPoint}:layout`,
        entries: used.map((b) => ({
          binding: b.binding,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: b.type },
        })),
      });
      const pipeline = getPipeline(device, { label, code: full, entryPoint, constants, layout });
      return {
        pipeline,
        bind: (name, all) =>
          device.createBindGroup({
            label: `${label}:${entryPoint}:${name}`,
            layout: pipeline.getBindGroupLayout(0),
            entries: used.map((b) => ({ binding: b.binding, resource: { buffer: all[b.binding] } })),
          }),
      };
    },
  };
}

export interface Phase {
  entry: string;
  constants?: Record<string, number | boolean>;
  /** workgroups to dispatch: x, or [x, y]; ignored when `indirect` is set */
  groups: number | readonly [number, number];
  /** dispatch with the three u32 (x, y, z) that a kernel wrote at `offset` of `buffer` */
  indirect?: { buffer: GPUBuffer; offset: number };
}

/** An ordered list of phases of one kernel file, bound once and dispatched in order. */
export function phases(
  device: GPUDevice,
  label: string,
  code: string,
  list: Phase[],
  templates: Record<string, string | number> = {},
) {
  const shader = stepShader(device, label, code, templates);
  const eps = list.map((p) => ({ ...p, ep: shader.entry(p.entry, p.constants) }));
  return {
    bind: (name: string, all: GPUBuffer[]) => eps.map((p) => p.ep.bind(name, all)),
    run(pass: GPUComputePassEncoder, bgs: GPUBindGroup[], only?: string[]) {
      eps.forEach((p, i) => {
        if (only && !only.includes(p.entry)) return;
        pass.setPipeline(p.ep.pipeline);
        pass.setBindGroup(0, bgs[i]);
        if (p.indirect) pass.dispatchWorkgroupsIndirect(p.indirect.buffer, p.indirect.offset);
        else if (typeof p.groups === 'number') pass.dispatchWorkgroups(p.groups);
        else pass.dispatchWorkgroups(p.groups[0], p.groups[1]);
      });
    },
  };
}

/** Workgroups for a grid-stride loop over `count` items of `perGroup` each, capped by the limit. */
export function groupsFor(device: GPUDevice, count: number, perGroup = 1): number {
  return Math.max(1, Math.min(Math.ceil(count / perGroup), device.limits.maxComputeWorkgroupsPerDimension));
}

/**
 * Workgroups of a loop with one workgroup per row or per latent, each striding over the rest. On a
 * software adapter at most SOFTWARE_LOOP_GROUPS. Ours: SwiftShader pays per workgroup (about 20 µs, and
 * the zero-fill of its workgroup memory), so one per row cost as much as the work (decode at B = 4096:
 * 4096 groups took as long as the main decode's arithmetic). On a GPU the cap starved the chip: 256
 * workgroups of 16 threads are one half-warp per multiprocessor, nothing to hide a load's latency
 * behind (H200, bench:dawn: the gradient sums at d = 768, N = 4096 took 4.5 ms of an 8.5 ms step), so
 * there each item gets its own workgroup up to the dimension limit. Results do not depend on the
 * count: each item is summed whole by one workgroup.
 * Grid-stride loops over elements or entries take it too (count: workgroups the loop would fill),
 * as Adam, gv, loss_grad and bpre_part do: SwiftShader, alternating rounds, capped vs not: Adam at
 * d = 768 96.8 vs 57.2 ms (about 1.6 µs a workgroup), gv 53.8 vs 46.0, loss 18.7 vs 13.7; d = 64 gv
 * 11.3 vs 9.0, loss 6.9 vs 5.8.
 */
const SOFTWARE_LOOP_GROUPS = 256;
/** Per-device cap override (bench: the old cap on a GPU, for an A/B in one run). */
const loopCap = new WeakMap<GPUDevice, number>();
export function setLoopGroupsCap(device: GPUDevice, cap: number | null) {
  if (cap === null) loopCap.delete(device);
  else loopCap.set(device, cap);
}
/** Whether the device runs on a CPU: SwiftShader, another software rasterizer or the fallback adapter. */
export function isSoftwareDevice(device: GPUDevice): boolean {
  // Without adapterInfo (Chromium < 132) nothing is known: keep the cautious cap.
  const info = (device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
  if (!info) return true;
  const text = [info.vendor, info.architecture, info.device, info.description].join(' ');
  return (
    /swiftshader|llvmpipe|lavapipe|softpipe|software/i.test(text) ||
    Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter)
  );
}
/**
 * Whether kernels take their GPU forms (a workgroup per latent or list with a fixed tree, instead of
 * a barrier-free thread per item): on a GPU, unless overridden. The two forms add in different orders,
 * each deterministically and independently of shards; tests force the GPU forms on SwiftShader.
 */
const gpuFormsOverride = new WeakMap<GPUDevice, boolean>();
export function setGpuForms(device: GPUDevice, on: boolean | null) {
  if (on === null) gpuFormsOverride.delete(device);
  else gpuFormsOverride.set(device, on);
}
export const gpuForms = (device: GPUDevice) => gpuFormsOverride.get(device) ?? !isSoftwareDevice(device);

const idleAuxOverride = new WeakMap<GPUDevice, boolean>();
/** Tests: false makes kernels built after this on `device` do AuxK's dense work with no candidate too. */
export function setIdleAux(device: GPUDevice, on: boolean | null) {
  if (on === null) idleAuxOverride.delete(device);
  else idleAuxOverride.set(device, on);
}
/**
 * Whether the loss and db_pre may leave g_aux alone while AuxK has no candidate (loss.wgsl and
 * grad-latent.wgsl IDLE_AUX), where the caller's variant allows it.
 */
export const idleAux = (device: GPUDevice) => idleAuxOverride.get(device) ?? true;

const quadFormsOverride = new WeakMap<GPUDevice, boolean>();
/** Tests: the quad forms on or off for kernels built after this on `device` (null: the device decides). */
export function setQuadForms(device: GPUDevice, on: boolean | null) {
  if (on === null) quadFormsOverride.delete(device);
  else quadFormsOverride.set(device, on);
}
/**
 * Whether kernels may exchange values within a quad of lanes (WGSL quadBroadcast): the device has
 * 'subgroups' (createGpu asks for it) and its subgroups hold at least 4 lanes.
 */
export const quadForms = (device: GPUDevice) =>
  quadFormsOverride.get(device) ??
  (device.features.has('subgroups') && (device.adapterInfo?.subgroupMinSize ?? 0) >= 4);

export const loopGroups = (device: GPUDevice, count: number) =>
  Math.min(
    groupsFor(device, count),
    loopCap.get(device) ?? (isSoftwareDevice(device) ? SOFTWARE_LOOP_GROUPS : Number.POSITIVE_INFINITY),
  );

export const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/**
 * The columns of a software form that keeps each of a thread's column sums in a named variable
 * (grad-reg.wgsl, decode.wgsl decode_lanes): SwiftShader keeps a function-scope array indexed by a
 * loop counter in memory, every access a per-lane gather or scatter, while named variables stay in
 * registers. TPL threads share an item (a latent's list, a row's entries), TPL a multiple of 4
 * (SwiftShader's SIMD width, so a batch of lanes walks one item in step); thread q owns the columns
 * c_u = q + u·TPL for u < Q of the dT columns (vec4 groups or floats), at most maxQ. Only the last u
 * can pass dT (TPL·(Q − 1) < dT): `col` clamps it for loads and `store` guards its write.
 */
export function namedColumns(dT: number, maxQ: number) {
  const tpl = namedThreads(dT, maxQ);
  const Q = Math.ceil(dT / tpl);
  const U = [...Array(Q).keys()];
  const ragged = (u: number) => tpl * Q > dT && u === Q - 1;
  const lines = (xs: string[], indent: number) => xs.map((l) => ' '.repeat(indent) + l).join('\n');
  return {
    tpl,
    /** `line(u)` for each column, indented */
    each: (line: (u: number) => string, indent: number) => lines(U.map(line), indent),
    /** `let c_u = …;` for thread `q` (a WGSL expression) of `dT` (a WGSL expression) columns */
    cols: (q: string, dTExpr: string, indent: number) =>
      lines(
        U.map((u) => {
          const c = u === 0 ? q : `${q} + ${u * tpl}u`;
          return `let c${u} = ${ragged(u) ? `min(${c}, ${dTExpr} - 1u)` : c};`;
        }),
        indent,
      ),
    /** `write(u)` for each column that exists for thread `q` */
    store: (q: string, dTExpr: string, write: (u: number) => string, indent: number) =>
      lines(
        U.map((u) => (ragged(u) ? `if (${q} + ${u * tpl}u < ${dTExpr}) { ${write(u)} }` : write(u))),
        indent,
      ),
  };
}
