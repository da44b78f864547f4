/**
 * NumPy .npz reader: a zip archive of .npy members (np.savez = stored,
 * np.savez_compressed = deflated).
 *
 * Only the zip's central directory (at the end of the file) and the member's local
 * header are read up front. A stored member is a plain byte range of the archive,
 * so it is wrapped as a sub-Blob (a lazy slice, nothing read) and handed to the .npy
 * reader. A deflated member cannot be sliced at a row offset (deflate has no random
 * access), so it is inflated whole into memory once, streaming the compressed bytes
 * through fflate in 4 MB pieces; members larger than MAX_INFLATED_BYTES are refused
 * with advice to re-save with np.savez.
 */
import { Inflate } from 'fflate';
import { crc32 } from './crc32.ts';
import { DataError, fmtBytes } from './errors.ts';
import { isNpyMagic, openNpy, parseDescr, parseNpyHeader } from './npy.ts';
import type { ActivationSource } from './source.ts';

/** Deflated members above this are refused: they would have to sit in memory whole. */
const MAX_INFLATED_BYTES = 2 ** 31 - 1;

/** One zip member as described by the central directory. */
export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  /** Offset of the member's local file header. */
  localHeaderOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOC = 0x07064b50;
const SIG_CEN = 0x02014b50;
const SIG_LOC = 0x04034b50;

async function readBytes(blob: Blob, a: number, b: number): Promise<Uint8Array> {
  return new Uint8Array(await blob.slice(a, b).arrayBuffer());
}

/** Reads the zip central directory (handles zip64, which np.savez always uses for members). */
export async function readZipDirectory(blob: Blob, file: string): Promise<ZipEntry[]> {
  if (blob.size === 0) throw new DataError(file, 'file is empty (0 bytes)');
  if (blob.size < 22) throw new DataError(file, `not a zip/.npz file: only ${blob.size} bytes`);
  // The end-of-central-directory record is the last 22 bytes plus an optional comment (< 64 KB).
  const tailStart = Math.max(0, blob.size - 22 - 65535);
  const tail = await readBytes(blob, tailStart, blob.size);
  const tv = new DataView(tail.buffer);
  let eocd = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === SIG_EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0)
    throw new DataError(
      file,
      'not a valid zip/.npz: end-of-central-directory record not found (truncated file?)',
    );
  let count = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // zip64: a locator just before the EOCD points at the zip64 EOCD record.
    const loc = eocd - 20;
    if (loc < 0 || tv.getUint32(loc, true) !== SIG_EOCD64_LOC)
      throw new DataError(file, 'zip64 locator missing');
    const e64 = Number(tv.getBigUint64(loc + 8, true));
    const rec = await readBytes(blob, e64, e64 + 56);
    const rv = new DataView(rec.buffer);
    if (rec.length < 56 || rv.getUint32(0, true) !== SIG_EOCD64)
      throw new DataError(file, 'zip64 end record missing');
    count = Number(rv.getBigUint64(32, true));
    cdSize = Number(rv.getBigUint64(40, true));
    cdOffset = Number(rv.getBigUint64(48, true));
  }
  if (cdOffset + cdSize > blob.size) {
    throw new DataError(
      file,
      `zip central directory points past the end of the file (${cdOffset + cdSize} > ${blob.size}); truncated?`,
    );
  }
  const cd = await readBytes(blob, cdOffset, cdOffset + cdSize);
  const cv = new DataView(cd.buffer);
  const entries: ZipEntry[] = [];
  let p = 0;
  const utf8 = new TextDecoder();
  for (let k = 0; k < count; k++) {
    if (p + 46 > cd.length || cv.getUint32(p, true) !== SIG_CEN)
      throw new DataError(file, 'corrupt zip central directory');
    const method = cv.getUint16(p + 10, true);
    const crc32 = cv.getUint32(p + 16, true);
    let compressedSize = cv.getUint32(p + 20, true);
    let size = cv.getUint32(p + 24, true);
    const nameLen = cv.getUint16(p + 28, true);
    const extraLen = cv.getUint16(p + 30, true);
    const commentLen = cv.getUint16(p + 32, true);
    let localHeaderOffset = cv.getUint32(p + 42, true);
    const name = utf8.decode(cd.subarray(p + 46, p + 46 + nameLen));
    // zip64 extra field (id 1): 8-byte values for exactly those fields that are 0xffffffff, in this order.
    let q = p + 46 + nameLen;
    const extraEnd = q + extraLen;
    while (q + 4 <= extraEnd) {
      const id = cv.getUint16(q, true);
      const len = cv.getUint16(q + 2, true);
      if (id === 1) {
        let r = q + 4;
        if (size === 0xffffffff) {
          size = Number(cv.getBigUint64(r, true));
          r += 8;
        }
        if (compressedSize === 0xffffffff) {
          compressedSize = Number(cv.getBigUint64(r, true));
          r += 8;
        }
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = Number(cv.getBigUint64(r, true));
      }
      q += 4 + len;
    }
    entries.push({ name, method, compressedSize, size, crc32, localHeaderOffset });
    p = extraEnd + commentLen;
  }
  return entries;
}

/** Offset of a member's data: past its local header, whose extra field may differ from the central one. */
async function memberDataOffset(blob: Blob, file: string, e: ZipEntry): Promise<number> {
  const lh = await readBytes(blob, e.localHeaderOffset, e.localHeaderOffset + 30);
  const lv = new DataView(lh.buffer);
  if (lh.length < 30 || lv.getUint32(0, true) !== SIG_LOC)
    throw new DataError(file, `corrupt zip local header for ${e.name}`);
  const start = e.localHeaderOffset + 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
  if (start + e.compressedSize > blob.size) {
    throw new DataError(file, `member ${e.name} extends past the end of the file (truncated?)`);
  }
  return start;
}

/**
 * Inflates a deflated member. With `limit`, stops once that many bytes are out (used
 * to peek at a member's .npy header); otherwise inflates everything into one buffer
 * of the size the directory promises and checks length and CRC.
 */
async function inflateMember(
  blob: Blob,
  file: string,
  e: ZipEntry,
  start: number,
  limit?: number,
): Promise<Uint8Array> {
  const want = limit === undefined ? e.size : Math.min(limit, e.size);
  if (want > MAX_INFLATED_BYTES) {
    throw new DataError(
      file,
      `compressed member ${e.name} inflates to ${fmtBytes(e.size)}, too large to hold in memory; re-save with np.savez (uncompressed) or np.save`,
    );
  }
  const out = new Uint8Array(want);
  let got = 0;
  let overflow = false;
  const inf = new Inflate((chunk) => {
    const n = Math.min(chunk.length, want - got);
    if (n < chunk.length) overflow = true;
    out.set(chunk.subarray(0, n), got);
    got += n;
  });
  const PIECE = 4 << 20;
  const end = start + e.compressedSize;
  try {
    for (let a = start; a < end && got < want; a += PIECE) {
      const b = Math.min(end, a + PIECE);
      inf.push(await readBytes(blob, a, b), b === end);
    }
  } catch (err) {
    throw new DataError(file, `member ${e.name}: corrupt deflate data (${(err as Error).message})`);
  }
  if (limit === undefined) {
    if (got !== e.size || overflow)
      throw new DataError(file, `member ${e.name}: inflated to ${got} bytes, zip directory says ${e.size}`);
    if (crc32(out) !== e.crc32)
      throw new DataError(file, `member ${e.name}: CRC mismatch, the archive is corrupt`);
  }
  return out.subarray(0, got);
}

/** The bytes of one member as a Blob: a lazy slice if stored, an in-memory copy if deflated. */
async function memberBlob(blob: Blob, file: string, e: ZipEntry): Promise<Blob> {
  const start = await memberDataOffset(blob, file, e);
  if (e.method === 0) return blob.slice(start, start + e.size);
  if (e.method === 8)
    return new Blob([(await inflateMember(blob, file, e, start)) as Uint8Array<ArrayBuffer>]);
  throw new DataError(
    file,
    `member ${e.name} uses zip compression method ${e.method}; only stored and deflate are supported`,
  );
}

/** First bytes (the .npy header) of a member without reading or inflating all of it. */
async function memberHead(blob: Blob, file: string, e: ZipEntry, n: number): Promise<Uint8Array> {
  const start = await memberDataOffset(blob, file, e);
  if (e.method === 0) return readBytes(blob, start, start + Math.min(n, e.size));
  if (e.method === 8) return inflateMember(blob, file, e, start, n);
  throw new DataError(
    file,
    `member ${e.name} uses zip compression method ${e.method}; only stored and deflate are supported`,
  );
}

/** Summary of one array in an .npz, for a picker UI. */
export interface NpzArrayInfo {
  name: string;
  descr: string;
  shape: number[];
  compressed: boolean;
}

/** Lists the arrays in an .npz (reads the directory and each member's header only). */
export async function listNpz(blob: Blob, file: string): Promise<NpzArrayInfo[]> {
  const entries = await readZipDirectory(blob, file);
  const out: NpzArrayInfo[] = [];
  for (const e of entries) {
    if (!e.name.endsWith('.npy')) continue;
    const name = e.name.slice(0, -4);
    let head = await memberHead(blob, file, e, 4096);
    const member = `${file}[${name}]`;
    let h = parseNpyHeader(head, member);
    if ('needMore' in h) {
      head = await memberHead(blob, file, e, h.needMore);
      h = parseNpyHeader(head, member);
      if ('needMore' in h) throw new DataError(member, 'truncated .npy header');
    }
    out.push({ name, descr: h.descr, shape: h.shape, compressed: e.method !== 0 });
  }
  return out;
}

/**
 * Opens one array of an .npz as an activation source.
 * @param tensor member name, with or without '.npy'; default: the first member that
 *               is a float array of 2 or 3 dimensions.
 */
export async function openNpz(blob: Blob, file: string, tensor?: string): Promise<ActivationSource> {
  const entries = await readZipDirectory(blob, file);
  const npys = entries.filter((e) => e.name.endsWith('.npy'));
  if (npys.length === 0) throw new DataError(file, 'the .npz archive contains no .npy arrays');
  let entry: ZipEntry | undefined;
  if (tensor !== undefined) {
    const want = tensor.endsWith('.npy') ? tensor : `${tensor}.npy`;
    entry = npys.find((e) => e.name === want);
    if (!entry) {
      throw new DataError(
        file,
        `no array named '${tensor}'; arrays: ${npys.map((e) => e.name.slice(0, -4)).join(', ')}`,
      );
    }
  } else {
    const infos = await listNpz(blob, file);
    const pick = infos.find(
      (i) => parseDescr(i.descr).kind === 'f' && (i.shape.length === 2 || i.shape.length === 3),
    );
    if (!pick) {
      const desc = infos.map((i) => `${i.name} ${i.descr} ${JSON.stringify(i.shape)}`).join(', ');
      throw new DataError(file, `no 2-D or 3-D float array in the archive (${desc})`);
    }
    entry = npys.find((e) => e.name === `${pick.name}.npy`)!;
  }
  const member = `${file}[${entry.name.slice(0, -4)}]`;
  const sub = await memberBlob(blob, file, entry);
  if (sub.size > 0 && !isNpyMagic(new Uint8Array(await sub.slice(0, 6).arrayBuffer()))) {
    throw new DataError(member, 'member is not a .npy array');
  }
  // Errors from here name the member, e.g. "acts.npz[layer6]: 1-D array ...".
  return openNpy(sub, member);
}
