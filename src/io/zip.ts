/**
 * Zips of SAE files: the export's zip (written) and an import's zip (read, every member's CRC-32
 * and size checked against the central directory).
 */
import { unzipSync, zipSync } from 'fflate';
import { crc32 } from '../data/crc32.ts';
import { DataError } from '../data/errors.ts';

/** Zips files (deflate level 6; safetensors of random floats barely compress, but json does). */
export function zipExport(files: Map<string, Uint8Array>): Uint8Array {
  const z: Record<string, Uint8Array> = {};
  for (const [name, bytes] of files) z[name] = bytes;
  return zipSync(z, { level: 6 });
}

/**
 * Unzips into path → bytes, skipping directory entries and macOS resource forks. Every member's
 * CRC-32 and size are checked against the central directory (fflate's unzipSync checks neither,
 * so a corrupt deflate stream that still inflates would otherwise import as different weights).
 */
export function filesFromZip(bytes: Uint8Array, name = 'zip'): Map<string, Uint8Array> {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (e) {
    throw new DataError(name, `not a readable zip file (${(e as Error).message})`);
  }
  for (const [member, [crc, size]] of zipDirectoryChecks(bytes, name)) {
    const b = entries[member];
    if (!b) continue;
    if (size !== null && b.length !== size)
      throw new DataError(
        name,
        `member ${member}: ${b.length} bytes, the zip directory says ${size}; corrupt archive`,
      );
    if (crc32(b) !== crc) throw new DataError(name, `member ${member}: CRC mismatch, the archive is corrupt`);
  }
  const out = new Map<string, Uint8Array>();
  for (const [p, b] of Object.entries(entries)) {
    if (p.endsWith('/') || p.startsWith('__MACOSX/') || p.split('/').pop()!.startsWith('._')) continue;
    out.set(p, b);
  }
  return out;
}

/**
 * member name → [CRC-32, uncompressed size or null when zip64 moved it] from the central directory,
 * named as fflate names them (UTF-8 when flag bit 11 is set, else latin1). Called after unzipSync
 * accepted the archive, but every read is still bounds-checked.
 */
function zipDirectoryChecks(bytes: Uint8Array, name: string): Map<string, [number, number | null]> {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const corrupt = () => new DataError(name, 'corrupt zip central directory');
  let e = bytes.length - 22;
  while (e >= 0 && v.getUint32(e, true) !== 0x06054b50) e--;
  if (e < 0) throw corrupt();
  let count = v.getUint16(e + 10, true);
  let p = v.getUint32(e + 16, true);
  if (e >= 20 && v.getUint32(e - 20, true) === 0x07064b50) {
    const z = v.getUint32(e - 12, true); // fflate reads the low 32 bits of the zip64 record offset
    if (z + 56 <= bytes.length && v.getUint32(z, true) === 0x06064b50) {
      count = v.getUint32(z + 32, true);
      p = v.getUint32(z + 48, true);
    }
  }
  const out = new Map<string, [number, number | null]>();
  for (let k = 0; k < count; k++) {
    if (p + 46 > bytes.length || v.getUint32(p, true) !== 0x02014b50) throw corrupt();
    const utf8 = (v.getUint16(p + 8, true) & 0x800) !== 0;
    const size = v.getUint32(p + 24, true);
    const nameLen = v.getUint16(p + 28, true);
    if (p + 46 + nameLen > bytes.length) throw corrupt();
    const member = new TextDecoder(utf8 ? 'utf-8' : 'latin1').decode(
      bytes.subarray(p + 46, p + 46 + nameLen),
    );
    out.set(member, [v.getUint32(p + 16, true), size === 0xffffffff ? null : size]);
    p += 46 + nameLen + v.getUint16(p + 30, true) + v.getUint16(p + 32, true);
  }
  return out;
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

/** Whether the bytes open with a zip's local file header. */
export function isZip(b: Uint8Array): boolean {
  return b.length >= 4 && ZIP_MAGIC.every((x, i) => b[i] === x);
}
