/** CRC-32 of the zip members (npz.ts) and of the checkpoint format (src/sae/checkpoint.ts). */

let crcTable: Int32Array | null = null;

/** CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as zlib.crc32. Pass `crc` to continue. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  const t = crcTable;
  let c = ~crc;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
