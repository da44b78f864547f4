import common from '../../../shaders/common.wgsl?raw';
import { expand, getPipeline } from '../pipelines';
import { STEP_PARAMS_WGSL } from '../step-params';
import { reachableText } from '../wgsl';

interface BindingDecl {
  binding: number;
  name: string;
  type: GPUBufferBindingType;
}

/** group-0 buffer bindings declared in WGSL, with their variable names. */
function parseBindings(code: string): BindingDecl[] {
  const re = /@group\(0\)\s*@binding\((\d+)\)\s*var<(storage|uniform)(?:\s*,\s*(read_write|read))?>\s*(\w+)/g;
  return [...code.matchAll(re)].map((m) => ({
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
  return parseBindings(code).filter((b) => new RegExp(`\\b${b.name}\\b`).test(text));
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
  const full = expand(`${STEP_PARAMS_WGSL}\n${common}\n${code}`, templates);
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
  /** workgroups to dispatch */
  groups: number;
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
        pass.dispatchWorkgroups(p.groups);
      });
    },
  };
}

/** Workgroups for a grid-stride loop over `count` items of `perGroup` each, capped by the limit. */
export function groupsFor(device: GPUDevice, count: number, perGroup = 1): number {
  return Math.max(1, Math.min(Math.ceil(count / perGroup), device.limits.maxComputeWorkgroupsPerDimension));
}

/**
 * Workgroups of a loop with one workgroup per row or per latent, each striding over the rest: at most
 * LOOP_GROUPS_MAX. Ours: SwiftShader pays per workgroup (about 20 µs, and the zero-fill of its
 * workgroup memory), so one per row cost as much as the work (decode at B = 4096: 4096 groups took
 * as long as the main decode's arithmetic); 256 still spreads over every core of a large GPU.
 */
const LOOP_GROUPS_MAX = 256;
export const loopGroups = (device: GPUDevice, count: number) =>
  Math.min(groupsFor(device, count), LOOP_GROUPS_MAX);

export const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
