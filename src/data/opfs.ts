/**
 * The Origin Private File System as the checkpoint store (src/sae/checkpoint.ts), the autotuner's
 * cache and the LM extraction cache (src/worker/lm-extract.ts) use it: minimal typings (the async
 * iterators live in lib.dom.asynciterable, not enabled here) and the one file writer.
 */

export interface OpfsDir {
  getDirectoryHandle(name: string, o?: { create?: boolean }): Promise<OpfsDir>;
  getFileHandle(name: string, o?: { create?: boolean }): Promise<OpfsFile>;
  removeEntry(name: string, o?: { recursive?: boolean }): Promise<void>;
  values(): AsyncIterable<{ kind: 'file' | 'directory'; name: string }>;
}

export interface OpfsFile {
  getFile(): Promise<File>;
  createWritable?(): Promise<{
    write(b: BufferSource): Promise<void>;
    close(): Promise<void>;
    abort?(): Promise<void>;
  }>;
  createSyncAccessHandle?(): Promise<{
    truncate(n: number): void;
    write(b: BufferSource, o?: { at?: number }): number;
    flush(): void;
    close(): void;
  }>;
  move?(name: string): Promise<void>;
}

/**
 * Replaces the contents of `h` with `bytes`. Uses createWritable (Chromium, Firefox, Safari 17+: it
 * writes a swap file and swaps it in on close; aborted on a failed write, so the old contents stay)
 * or, where only that exists (older Safari workers), a sync access handle.
 */
export async function writeOpfsFile(h: OpfsFile, bytes: Uint8Array): Promise<void> {
  const buf = bytes as Uint8Array<ArrayBuffer>;
  if (h.createWritable) {
    const w = await h.createWritable();
    try {
      await w.write(buf);
      await w.close();
    } catch (e) {
      await w.abort?.().catch(() => {});
      throw e;
    }
  } else if (h.createSyncAccessHandle) {
    const s = await h.createSyncAccessHandle();
    try {
      s.truncate(0);
      s.write(buf, { at: 0 });
      s.flush();
    } finally {
      s.close();
    }
  } else throw new Error('OPFS file handles here support neither createWritable nor createSyncAccessHandle');
}
