/**
 * openActivationFile: one entry point for every supported format. The format is
 * decided from the first bytes (magic), falling back to the extension, so a
 * renamed file still opens and a mislabelled one gets a precise message.
 */
import { DataError, fmtBytes } from './errors.ts';
import { isNpyMagic, openNpy } from './npy.ts';
import { openNpz } from './npz.ts';
import { openSafetensors } from './safetensors.ts';
import { type ActivationSource, contiguousSource, type FloatDtype } from './source.ts';

export interface OpenOptions {
  /** Array (npz) or tensor (safetensors) name; default: first 2-D/3-D float one. */
  tensor?: string;
  /** Element type of a raw file; default from the extension (.f16 -> f16), else f32. */
  rawDtype?: 'f32' | 'f16';
  /** Row width d of a raw file. Required for raw files. */
  rawWidth?: number;
}

type FileFormat = 'npy' | 'npz' | 'safetensors' | 'raw';

const RAW_EXT = /\.(bin|raw|dat|f32|f16|fp16|fp32)$/i;

/** Guesses the format from the first 16 bytes and the name. */
function detectFormat(head: Uint8Array, name: string, opts: OpenOptions = {}): FileFormat {
  const lower = name.toLowerCase();
  if (isNpyMagic(head)) return 'npy';
  if (
    head.length >= 4 &&
    head[0] === 0x50 &&
    head[1] === 0x4b &&
    (head[2] === 3 || head[2] === 5) &&
    (head[3] === 4 || head[3] === 6)
  ) {
    return 'npz';
  }
  // A raw dump has no magic, so its extension wins over the weak safetensors sniff below.
  if (RAW_EXT.test(lower)) return 'raw';
  // The safetensors reader gives the precise message (bad length, not JSON, bad offsets).
  if (lower.endsWith('.safetensors')) return 'safetensors';
  // safetensors renamed: u64 header length (< 2^40), then '{'
  if (head.length >= 9 && head[8] === 0x7b && head[5] === 0 && head[6] === 0 && head[7] === 0)
    return 'safetensors';
  if (opts.rawWidth !== undefined) return 'raw';
  const hex = Array.from(head.subarray(0, 8), (x) => x.toString(16).padStart(2, '0')).join(' ');
  if (lower.endsWith('.npy')) {
    throw new DataError(
      name,
      `not a .npy file: wrong magic bytes ${hex} (expected 93 4e 55 4d 50 59 = \\x93NUMPY)`,
    );
  }
  if (lower.endsWith('.npz'))
    throw new DataError(name, `not a .npz (zip) file: wrong magic bytes ${hex} (expected 50 4b = PK)`);
  throw new DataError(
    name,
    `unrecognised format (first bytes ${hex}); expected .npy, .npz, .safetensors, or raw float32/float16 with a given width`,
  );
}

/**
 * Opens a raw headerless float32/float16 file of rows of `width` values,
 * little-endian (what `tensor.numpy().tofile(path)` writes on any common machine).
 */
function openRaw(
  blob: Blob,
  name: string,
  rawDtype: 'f32' | 'f16',
  width: number | undefined,
): ActivationSource {
  if (blob.size === 0) throw new DataError(name, 'file is empty (0 bytes)');
  if (width === undefined)
    throw new DataError(name, 'raw file needs the row width d (no header to read it from)');
  if (!Number.isSafeInteger(width) || width <= 0)
    throw new DataError(name, `raw row width must be a positive integer, got ${width}`);
  const dtype: FloatDtype = rawDtype === 'f16' ? 'float16' : 'float32';
  const rowBytes = width * (rawDtype === 'f16' ? 2 : 4);
  if (blob.size % rowBytes !== 0) {
    throw new DataError(
      name,
      `size ${fmtBytes(blob.size)} (${blob.size} bytes) is not a multiple of the row size ${rowBytes} bytes (d=${width} ${rawDtype}); wrong width or dtype, or truncated`,
    );
  }
  const rows = blob.size / rowBytes;
  return contiguousSource({
    blob,
    name,
    dataOffset: 0,
    rows,
    d: width,
    dtype,
    littleEndian: true,
    shape: [rows, width],
  });
}

/**
 * Opens an activation file lazily: reads only headers now; rows are read by Blob
 * slices on demand. Works on a browser File and on node's fs.openAsBlob.
 * @throws DataError (one line, naming the file) for anything that isn't a readable
 *         2-D/3-D float matrix.
 */
export async function openActivationFile(
  blob: Blob,
  name: string,
  opts: OpenOptions = {},
): Promise<ActivationSource> {
  if (blob.size === 0) throw new DataError(name, 'file is empty (0 bytes)');
  const head = new Uint8Array(await blob.slice(0, 16).arrayBuffer());
  const format = detectFormat(head, name, opts);
  switch (format) {
    case 'npy':
      return openNpy(blob, name);
    case 'npz':
      return openNpz(blob, name, opts.tensor);
    case 'safetensors':
      return openSafetensors(blob, name, opts.tensor);
    case 'raw': {
      const dt = opts.rawDtype ?? (/\.(f16|fp16)$/i.test(name) ? 'f16' : 'f32');
      return openRaw(blob, name, dt, opts.rawWidth);
    }
  }
}
