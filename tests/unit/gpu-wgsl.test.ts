import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { usedBindings } from '../../src/gpu/kernels/kernel';
import { fusedRowUpdate } from '../../src/gpu/kernels/update-fused';
import { expand } from '../../src/gpu/pipelines';
import { reachableText, workgroupBytes } from '../../src/gpu/wgsl';

const SHADERS = join(resolve(import.meta.dirname, '../..'), 'shaders');
const read = (f: string) => readFileSync(join(SHADERS, f), 'utf8');
const common = read('common.wgsl');

describe('workgroupBytes', () => {
  it('counts the workgroup arrays an entry point reaches, with template sizes and const products', () => {
    const topk = expand(`${common}\n${read('topk.wgsl')}`, { KP: 512, T: 2048, WG: 64, PER_THREAD: 16 });
    // bv, bi [KP] + tv, ti [T], 4 bytes each: 20 KiB — over WebGPU's default 16 KiB
    expect(workgroupBytes(topk, 'topk')).toBe((512 + 2048) * 8 + 8); // bv/bi, tv/ti, and the tile's survivor counter (atomic + copy)
    // the insertion variant keeps its list in private memory
    expect(workgroupBytes(topk, 'topk_insert')).toBe(0);
    const encode = expand(read('encode.wgsl'), { RB: 4, RN: 8 });
    expect(workgroupBytes(encode, 'encode_tiled')).toBe(2 * 16 * 16 * 4);
    expect(workgroupBytes(encode, 'encode_wgtile')).toBe(2 * 64 * 4 * 16);
    expect(workgroupBytes(encode, 'encode_blocked')).toBe(0);
  });

  it('refuses a declaration it cannot size instead of passing it unchecked', () => {
    const code = 'override S: u32 = 4u;\nvar<workgroup> a: array<f32, S>;\nfn main() { a[0] = 1.0; }';
    expect(() => workgroupBytes(code, 'main')).toThrow(/cannot size var<workgroup> a/);
  });

  it('sizes every entry point of every shader in the repository (no declaration it cannot read)', () => {
    let entries = 0;
    for (const f of readdirSync(SHADERS).filter((n) => n.endsWith('.wgsl') && n !== 'common.wgsl')) {
      // Templates set to small numbers: only whether each declaration can be read is checked here.
      const code = `${common}\n${read(f)}`.replace(/\{\{\w+\}\}/g, '8');
      for (const m of code.matchAll(/@compute[^\n]*\n?\s*fn\s+(\w+)/g)) {
        expect(workgroupBytes(code, m[1]), `${f}:${m[1]}`).toBeGreaterThanOrEqual(0);
        entries++;
      }
    }
    expect(entries).toBeGreaterThan(40);
  });
});

describe('usedBindings', () => {
  it('follows calls, not names in comments or after a dot', () => {
    const code = [
      '@group(0) @binding(0) var<storage, read> a: array<f32>;',
      '@group(0) @binding(1) var<storage, read_write> b: array<f32>;',
      '@group(0) @binding(2) var<storage, read_write> c: array<f32>;',
      '@group(0) @binding(4) var<storage, read> x: array<f32>;',
      'fn helper(i: u32) -> f32 { return a[i]; }',
      '// other (a comment) names other; @group(0) @binding(3) var<storage, read> d: array<f32>;',
      'fn other(i: u32) { c[i] = 1.0; }',
      '@compute @workgroup_size(1) fn main() {',
      '  // other (this comment) must not pull c in',
      '  b[0] = helper(vec2<u32>(0u, 1u).x);',
      '}',
    ].join('\n');
    expect(usedBindings(code, 'main').map((x) => x.name)).toEqual(['a', 'b']);
    expect(reachableText(code, 'main')).not.toMatch(/other/);
  });

  it("keeps every entry point of every kernel module within WebGPU's default 8 storage buffers", () => {
    // Entry points that need more, each used only where its wrapper finds the device limit (below).
    const aboveDefault: Record<string, number> = { 'update.wgsl:update_rows_v4': 10 };
    // The modules as the wrappers compose them (grad.ts appends its software and long-list forms).
    const modules: Record<string, string> = {};
    for (const f of readdirSync(SHADERS).filter((n) => n.endsWith('.wgsl') && n !== 'common.wgsl'))
      modules[f] = read(f);
    modules['grad-latent.wgsl'] += read('grad-long.wgsl') + read('grad-reg.wgsl');
    for (const f of ['grad-long.wgsl', 'grad-reg.wgsl']) delete modules[f];
    modules['update.wgsl'] += read('update-fused.wgsl');
    delete modules['update-fused.wgsl'];
    let entries = 0;
    for (const [f, body] of Object.entries(modules)) {
      const code = `${common}\n${body}`.replace(/\{\{\w+\}\}/g, '8');
      for (const m of code.matchAll(/@compute[^\n]*\n?\s*fn\s+(\w+)/g)) {
        const storage = usedBindings(code, m[1]).filter((b) => b.type !== 'uniform');
        expect(
          storage.length,
          `${f}:${m[1]} binds ${storage.map((b) => b.name).join(', ')}`,
        ).toBeLessThanOrEqual(aboveDefault[`${f}:${m[1]}`] ?? 8);
        entries++;
      }
    }
    expect(entries).toBeGreaterThan(40);
  });

  it('uses the fused row update only on a device that binds its 10 storage buffers', () => {
    const device = (max: number) =>
      ({
        limits: { maxStorageBuffersPerShaderStage: max },
        adapterInfo: { vendor: 'google', architecture: 'swiftshader', device: '', description: '' },
      }) as unknown as GPUDevice;
    const soft = { d: 64, clipGrad: false };
    expect(fusedRowUpdate(device(10), soft)).toBe(true);
    expect(fusedRowUpdate(device(8), soft)).toBe(false);
    expect(fusedRowUpdate(device(10), { d: 66, clipGrad: false })).toBe(false);
    expect(fusedRowUpdate(device(10), { d: 64, clipGrad: true })).toBe(false);
  });
});
