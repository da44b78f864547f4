/**
 * The page's extraction output (src/worker/lm-cache.ts) over an in-memory stand-in for the browser's
 * private file system (the real one is exercised in e2e/gpt2.spec.ts): windows stream to
 * sae-lab-lm-cache/<key>/{acts,tokens,positions}.npy in writes of at most chunkRows rows, meta.json
 * last; the entry is then a cache hit. A cancel mid-stream, or no rows, removes the entry; without
 * OPFS the rows go to memory and nothing is cached.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { decodeNpy } from '../../../src/data/npy.ts';
import type { ExtractChunk } from '../../../src/lm/extract.ts';
import { CACHE_VERSION, extractToFiles, readCache } from '../../../src/worker/lm-cache.ts';

/** Every write into a fake OPFS file: its path and byte count. */
type Write = { path: string; bytes: number };

/** A directory tree in memory with OPFS's handle methods; files commit their swap on close. */
function fakeOpfs(writes: Write[]) {
  type Dir = { dirs: Map<string, Dir>; files: Map<string, Uint8Array> };
  const mk = (): Dir => ({ dirs: new Map(), files: new Map() });
  const root = mk();
  const notFound = () => Object.assign(new Error('not found'), { name: 'NotFoundError' });
  const handle = (d: Dir, path: string): unknown => ({
    async getDirectoryHandle(name: string, o?: { create?: boolean }) {
      if (!d.dirs.has(name)) {
        if (!o?.create) throw notFound();
        d.dirs.set(name, mk());
      }
      return handle(d.dirs.get(name) as Dir, `${path}/${name}`);
    },
    async getFileHandle(name: string, o?: { create?: boolean }) {
      if (!d.files.has(name)) {
        if (!o?.create) throw notFound();
        d.files.set(name, new Uint8Array(0));
      }
      const p = `${path}/${name}`;
      return {
        getFile: async () => new File([d.files.get(name) as Uint8Array<ArrayBuffer>], name),
        async createWritable() {
          let swap = new Uint8Array(0);
          return {
            async write(x: BufferSource | { position: number; data: Uint8Array }) {
              const { at, data } =
                'position' in x
                  ? { at: x.position, data: x.data }
                  : { at: swap.length, data: new Uint8Array(x as ArrayBuffer) };
              writes.push({ path: p, bytes: data.length });
              if (at + data.length > swap.length) {
                const g = new Uint8Array(at + data.length);
                g.set(swap);
                swap = g;
              }
              swap.set(data, at);
            },
            async close() {
              d.files.set(name, swap);
            },
            async abort() {},
          };
        },
      };
    },
    async removeEntry(name: string) {
      if (!d.dirs.delete(name) && !d.files.delete(name)) throw notFound();
    },
  });
  return { root, storage: { getDirectory: async () => handle(root, '') } };
}

const D = 8;
/** Extraction-like windows: 63 rows each (64-token windows, position 0 left out), values by row. */
async function* windows(n: number, failAt = -1): AsyncGenerator<ExtractChunk> {
  let row = 0;
  for (let w = 0; w < n; w++) {
    if (w === failAt) throw new Error('extraction cancelled');
    const rows = 63;
    const acts = Float32Array.from({ length: rows * D }, (_, i) => row * D + i);
    const tokens = Int32Array.from({ length: rows }, (_, i) => (row + i) % 50257);
    const positions = Int32Array.from({ length: rows }, (_, i) => i + 1);
    row += rows;
    yield {
      acts,
      tokens,
      positions,
      progress: { charsDone: 0, charsTotal: 1, tokensDone: row, windowsDone: w + 1 },
    };
  }
}

const run = (key: string, n: number, o: { failAt?: number; dtype?: 'f32' | 'f16' } = {}) =>
  extractToFiles({
    key,
    d: D,
    dtype: o.dtype ?? 'f32',
    chunks: windows(n, o.failAt),
    noRows: () => new Error('no rows'),
    meta: () => ({ window: 64, charsUsed: 5, seconds: 1 }),
    chunkRows: 100,
  });

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('extraction output in the private file system', () => {
  it('streams windows to the cache entry in chunks of ≤ chunkRows rows; then a cache hit', async () => {
    const writes: Write[] = [];
    const fs = fakeOpfs(writes);
    vi.stubGlobal('navigator', { storage: fs.storage });
    const out = await run('k1', 7);
    expect(out.rows).toBe(441);
    expect(out.windows).toBe(7);
    expect(out.cached).toBe(true);
    const acts = decodeNpy(await out.acts.arrayBuffer());
    expect(acts.shape).toEqual([441, D]);
    expect(acts.descr).toBe('<f4');
    expect(Array.from(acts.data)).toEqual(Array.from({ length: 441 * D }, (_, i) => i));
    expect(Array.from(decodeNpy(await out.tokens.arrayBuffer()).data).slice(60, 66)).toEqual([
      60, 61, 62, 63, 64, 65,
    ]);
    expect(Array.from(out.positionIds.slice(61, 65))).toEqual([62, 63, 1, 2]);
    // the rows reached the file in writes of at most 100 rows (plus the two 128-byte headers)
    const actWrites = writes.filter((w) => w.path === '/sae-lab-lm-cache/k1/acts.npy').map((w) => w.bytes);
    expect(actWrites.filter((b) => b !== 128)).toEqual([100, 100, 100, 100, 41].map((r) => r * D * 4));
    expect(Math.max(...writes.filter((w) => w.path.endsWith('tokens.npy')).map((w) => w.bytes))).toBe(400);
    // meta.json came last; the entry is whole
    expect(writes[writes.length - 1].path).toBe('/sae-lab-lm-cache/k1/meta.json');
    const hit = await readCache('k1');
    expect(hit?.meta).toEqual({
      version: CACHE_VERSION,
      nTokens: 441,
      windows: 7,
      d: D,
      dtype: 'f32',
      window: 64,
      charsUsed: 5,
      seconds: 1,
    });
    expect(decodeNpy(await (hit as { acts: Blob }).acts.arrayBuffer()).shape).toEqual([441, D]);
  });

  it('a cancel mid-stream, or no rows, removes the entry; a fresh run replaces an old one', async () => {
    const fs = fakeOpfs([]);
    vi.stubGlobal('navigator', { storage: fs.storage });
    await run('k2', 3, { dtype: 'f16' });
    expect((await readCache('k2'))?.meta.dtype).toBe('f16');
    await expect(run('k2', 9, { failAt: 4 })).rejects.toThrow('extraction cancelled');
    expect(await readCache('k2')).toBeNull();
    expect(fs.root.dirs.get('sae-lab-lm-cache')?.dirs.has('k2')).toBe(false);
    await expect(run('k3', 0)).rejects.toThrow('no rows');
    expect(fs.root.dirs.get('sae-lab-lm-cache')?.dirs.size).toBe(0);
    await run('k4', 1);
    expect(decodeNpy((await (await readCache('k4'))?.acts.arrayBuffer()) as ArrayBuffer).shape).toEqual([
      63,
      D,
    ]);
    await run('k4', 2);
    expect((await readCache('k4'))?.meta.nTokens).toBe(126);
  });

  it('without a private file system the rows go to memory and nothing is cached', async () => {
    vi.stubGlobal('navigator', {});
    const out = await run('k5', 2, { dtype: 'f16' });
    expect(out.cached).toBe(false);
    const a = decodeNpy(await out.acts.arrayBuffer());
    expect([a.descr, ...a.shape]).toEqual(['<f2', 126, D]);
    expect(await readCache('k5')).toBeNull();
  });
});
