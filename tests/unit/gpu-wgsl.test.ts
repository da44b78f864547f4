import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expand } from '../../src/gpu/pipelines';
import { workgroupBytes } from '../../src/gpu/wgsl';

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
