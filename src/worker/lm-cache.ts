/**
 * Where the page's LM extractions (./lm-extract.ts, ./gpt2-extract.ts) put their rows: .npy files in
 * the Origin Private File System under sae-lab-lm-cache/<key>/ (key: SHA-256 of model, tokenizer,
 * text and settings), written while the windows run, a chunk of rows at a time (src/data/npy-writer.ts),
 * never as a whole-dataset buffer. The dataset then opens from those files (read in chunks, like a
 * dropped file), and the same extraction again opens them without a forward pass.
 *
 * meta.json is written last, so an entry without it (a cancelled, failed or crashed extraction) is a
 * miss; a cancel or failure also removes the entry. Without OPFS (some private modes) the rows go to
 * memory instead and nothing is cached.
 */
import { type ByteSink, chunkRowsFor, memorySink, NpyRowWriter, opfsSink } from '../data/npy-writer';
import { type OpfsDir, writeOpfsFile } from '../data/opfs';
import { openTokenIds } from '../data/sidecars';
import type { ExtractChunk } from '../lm/extract';

const CACHE_DIR = 'sae-lab-lm-cache';
/**
 * Bump when the extraction or the cache layout changes: old entries are then never hit.
 * 2: rows streamed to the entry (128-byte headers) and the stored dtype in the key and meta.
 */
export const CACHE_VERSION = 2;

export interface CacheMeta {
  version: number;
  nTokens: number;
  d: number;
  windows: number;
  window: number;
  charsUsed: number;
  seconds: number;
  /** how the rows are stored: float32 ('<f4') or float16 ('<f2') */
  dtype: 'f32' | 'f16';
}

/** The entry's three .npy files: rows [n, d], token ids [n] ('<i4'), positions in window [n] ('<i4'). */
export interface ExtractionBlobs {
  acts: Blob;
  tokens: Blob;
  positions: Blob;
}

async function cacheRoot(create: boolean): Promise<OpfsDir | null> {
  try {
    const storage = (globalThis.navigator as Navigator | undefined)?.storage;
    if (!storage?.getDirectory) return null;
    const root = (await storage.getDirectory()) as unknown as OpfsDir;
    return await root.getDirectoryHandle(CACHE_DIR, { create });
  } catch {
    return null;
  }
}

/** The cached files of `key`, or null (a missing or partial entry is a miss). */
export async function readCache(key: string): Promise<({ meta: CacheMeta } & ExtractionBlobs) | null> {
  try {
    const dir = await (await cacheRoot(false))?.getDirectoryHandle(key);
    if (!dir) return null;
    // meta.json is written last, so its presence means the entry is whole
    const meta = JSON.parse(
      await (await (await dir.getFileHandle('meta.json')).getFile()).text(),
    ) as CacheMeta;
    if (meta.version !== CACHE_VERSION) return null;
    const get = async (n: string) => (await dir.getFileHandle(n)).getFile();
    return {
      meta,
      acts: await get('acts.npy'),
      tokens: await get('tokens.npy'),
      positions: await get('positions.npy'),
    };
  } catch {
    return null;
  }
}

/**
 * One extraction's output while it runs: the rows, token ids and positions of each window appended
 * to three .npy writers that each hold at most `chunkRows` rows; {@link finish} completes the files
 * and the cache entry, {@link discard} removes them.
 */
class ExtractionOutput {
  private readonly acts: NpyRowWriter;
  private readonly tokens: NpyRowWriter;
  private readonly positions: NpyRowWriter;
  windows = 0;

  private constructor(
    private readonly entry: { root: OpfsDir; key: string; dir: OpfsDir } | null,
    sinks: ByteSink[],
    d: number,
    dtype: 'f32' | 'f16',
    readonly chunkRows: number,
  ) {
    this.acts = new NpyRowWriter(sinks[0], dtype === 'f16' ? '<f2' : '<f4', d, chunkRows);
    this.tokens = new NpyRowWriter(sinks[1], '<i4', 1, chunkRows, true);
    this.positions = new NpyRowWriter(sinks[2], '<i4', 1, chunkRows, true);
  }

  /**
   * Opens the cache entry `key` for writing (an existing one is removed first: the caller asked for
   * a fresh extraction), or memory when there is no private file system.
   * @param chunkRows rows held per file before a write (default: 4 MiB of rows)
   */
  static async create(
    key: string,
    d: number,
    dtype: 'f32' | 'f16',
    chunkRows = chunkRowsFor(d * (dtype === 'f16' ? 2 : 4)),
  ): Promise<ExtractionOutput> {
    const root = await cacheRoot(true);
    if (root) {
      try {
        await root.removeEntry(key, { recursive: true }).catch(() => {});
        const dir = await root.getDirectoryHandle(key, { create: true });
        const sinks = [];
        for (const n of ['acts.npy', 'tokens.npy', 'positions.npy'])
          sinks.push(await opfsSink(await dir.getFileHandle(n, { create: true })));
        return new ExtractionOutput({ root, key, dir }, sinks, d, dtype, chunkRows);
      } catch {
        await root.removeEntry(key, { recursive: true }).catch(() => {});
      }
    }
    return new ExtractionOutput(null, [memorySink(), memorySink(), memorySink()], d, dtype, chunkRows);
  }

  /** Rows so far. */
  get rows(): number {
    return this.tokens.rows;
  }

  /** Whether the files are in the private file system (and so cached once finished). */
  get cached(): boolean {
    return this.entry !== null;
  }

  /** Appends one window's rows (an empty window counts as a window). */
  async add(c: ExtractChunk): Promise<void> {
    this.windows++;
    if (c.tokens.length === 0) return;
    await this.acts.append(c.acts);
    await this.tokens.append(c.tokens);
    await this.positions.append(c.positions);
  }

  /** Completes the three files, then meta.json (the entry is whole from then on). */
  async finish(meta: Omit<CacheMeta, 'version' | 'nTokens' | 'windows'>): Promise<ExtractionBlobs> {
    const acts = await this.acts.finish();
    const tokens = await this.tokens.finish();
    const positions = await this.positions.finish();
    if (this.entry) {
      const full: CacheMeta = { version: CACHE_VERSION, nTokens: this.rows, windows: this.windows, ...meta };
      const h = await this.entry.dir.getFileHandle('meta.json', { create: true });
      await writeOpfsFile(h, new TextEncoder().encode(JSON.stringify(full)));
    }
    return { acts, tokens, positions };
  }

  /** Drops the files and the entry (cancel, failure, or no rows). */
  async discard(): Promise<void> {
    await Promise.all([this.acts.abort(), this.tokens.abort(), this.positions.abort()]);
    await this.entry?.root.removeEntry(this.entry.key, { recursive: true }).catch(() => {});
  }
}

/**
 * Writes every chunk of `chunks` to `out` as it comes; on an error (a cancel throws the signal's
 * reason from the window loop) the output is discarded before the error goes on.
 * @param onChunk called after each window's rows are written (progress, yielding to events)
 */
async function streamChunks(
  chunks: AsyncIterable<ExtractChunk>,
  out: ExtractionOutput,
  onChunk: (c: ExtractChunk) => void | Promise<void>,
): Promise<void> {
  try {
    for await (const c of chunks) {
      await out.add(c);
      await onChunk(c);
    }
  } catch (e) {
    await out.discard();
    throw e;
  }
}

/**
 * Runs an extraction's windows into a new output for `key` and finishes it: the rows go to the files
 * a chunk at a time as windows finish. No rows at all, an error or a cancel discard the files.
 * @returns the files, the rows' positions in their windows [rows], and whether they are cached
 */
export async function extractToFiles(o: {
  key: string;
  d: number;
  dtype: 'f32' | 'f16';
  chunks: AsyncIterable<ExtractChunk>;
  onChunk?: (c: ExtractChunk) => void | Promise<void>;
  /** the error to throw when no window gave a row */
  noRows: () => Error;
  /** what meta.json records besides the counts, once the windows are done */
  meta: (rows: number) => Pick<CacheMeta, 'window' | 'charsUsed' | 'seconds'>;
  chunkRows?: number;
}): Promise<ExtractionBlobs & { rows: number; windows: number; positionIds: Int32Array; cached: boolean }> {
  const out = await ExtractionOutput.create(o.key, o.d, o.dtype, o.chunkRows);
  await streamChunks(o.chunks, out, o.onChunk ?? (() => {}));
  const rows = out.rows;
  try {
    if (rows === 0) throw o.noRows();
    const blobs = await out.finish({ d: o.d, dtype: o.dtype, ...o.meta(rows) });
    const posIds = await openTokenIds(blobs.positions, 'positions.npy', rows);
    return {
      ...blobs,
      rows,
      windows: out.windows,
      positionIds: await posIds.readIds(0, rows),
      cached: out.cached,
    };
  } catch (e) {
    await out.discard();
    throw e;
  }
}
