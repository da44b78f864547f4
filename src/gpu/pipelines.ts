/**
 * Compute-pipeline cache keyed by (device, shader source, entry point, override constants).
 * Shader modules are cached by source so variants of one file share a module.
 */

import { workgroupBytes } from './wgsl';

type Constants = Record<string, number | boolean>;

const modules = new WeakMap<GPUDevice, Map<string, GPUShaderModule>>();
/** Replaces `{{NAME}}` placeholders (sizes WGSL needs as const-expressions). */
export function expand(code: string, templates?: Record<string, string | number>): string {
  let out = code;
  if (templates) for (const [k, v] of Object.entries(templates)) out = out.replaceAll(`{{${k}}}`, String(v));
  return out;
}
const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

function moduleFor(device: GPUDevice, label: string, code: string): GPUShaderModule {
  let m = modules.get(device);
  if (!m) {
    m = new Map();
    modules.set(device, m);
  }
  let mod = m.get(code);
  if (!mod) {
    mod = device.createShaderModule({ label, code });
    m.set(code, mod);
  }
  return mod;
}

function constantsKey(c: Constants): string {
  return Object.keys(c)
    .sort()
    .map((k) => `${k}=${Number(c[k])}`)
    .join(',');
}

/**
 * Returns the cached pipeline for this shader/entry/constants, creating it on first use.
 * `code` may be a template whose `{{NAME}}` placeholders are replaced from `templates`
 * (for sizes WGSL needs as const-expressions, e.g. function-scope array lengths).
 */
export function getPipeline(
  device: GPUDevice,
  opts: {
    label: string;
    code: string;
    entryPoint: string;
    constants?: Constants;
    templates?: Record<string, string | number>;
    /** 'auto' (default), or an explicit bind-group layout. */
    layout?: 'auto' | GPUBindGroupLayout;
    /**
     * Copy n > 0: the same kernel compiled again as a pipeline of its own (an empty entry point is
     * appended, so the module differs and nothing is shared with copy 0). On SwiftShader a kernel's
     * speed is fixed when it is compiled and differs between compilations of the same code: in one
     * pass the encoder's copies ran 749–793 or 845–894 ms (d = 768) and 78–82 or 86–98 ms (d = 64),
     * each copy the same way at both shapes and over every round (autotune.ts pickEncoderCopy).
     */
    copy?: number;
  },
): GPUComputePipeline {
  const code =
    expand(opts.code, opts.templates) +
    (opts.copy ? `\n@compute @workgroup_size(1)\nfn compiled_copy_${opts.copy}() {}\n` : '');
  const constants = opts.constants ?? {};
  const layoutKind = opts.layout ?? 'auto';
  const key = `${opts.entryPoint}|${layoutKind === 'auto' ? 'auto' : layoutKind.label}|${constantsKey(constants)}|${code}`;
  let p = pipelines.get(device);
  if (!p) {
    p = new Map();
    pipelines.set(device, p);
  }
  let pipe = p.get(key);
  if (!pipe) {
    // Refused here with a message that names the kernel, not by a validation error later.
    const wg = workgroupBytes(code, opts.entryPoint);
    const cap = device.limits.maxComputeWorkgroupStorageSize;
    if (wg > cap)
      throw new Error(
        `kernel ${opts.label}:${opts.entryPoint} needs ${wg} bytes of workgroup memory, over this adapter's maxComputeWorkgroupStorageSize of ${cap}: choose a smaller tile or batch`,
      );
    const numeric: Record<string, number> = {};
    for (const [k, v] of Object.entries(constants)) numeric[k] = Number(v);
    pipe = device.createComputePipeline({
      label: `${opts.label}:${opts.entryPoint}[${constantsKey(constants)}]`,
      layout:
        layoutKind === 'auto'
          ? 'auto'
          : device.createPipelineLayout({
              label: `${opts.label}:pipeline-layout`,
              bindGroupLayouts: [layoutKind],
            }),
      compute: {
        module: moduleFor(device, opts.label, code),
        entryPoint: opts.entryPoint,
        constants: numeric,
      },
    });
    p.set(key, pipe);
  }
  return pipe;
}

/** Builds a bind group for group 0 from buffers in binding order. */
export function bindBuffers(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  label: string,
  buffers: GPUBuffer[],
): GPUBindGroup {
  return device.createBindGroup({
    label,
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
}

/**
 * Splits a 1-D workgroup count into a 2-D grid within maxComputeWorkgroupsPerDimension.
 * Shaders recover the linear id as wid.x + wid.y * nx (nx passed by the wrapper) and bound-check it.
 */
export function grid2d(count: number, max = 65535): [number, number] {
  if (count <= max) return [Math.max(1, count), 1];
  const y = Math.ceil(count / max);
  return [Math.ceil(count / y), y];
}
