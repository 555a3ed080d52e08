/** Table-driven checksums used by on-disk formats (CRC-32 for GPT, CRC-32C for ext4/XFS/btrfs, CRC-16 for ext4 group descriptors). */

function makeTable(poly: number): Uint32Array {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
}

const CRC32_TABLE = makeTable(0xedb88320);
const CRC32C_TABLE = makeTable(0x82f63b78);

function run(table: Uint32Array, crc: number, data: Uint8Array): number {
  let c = crc >>> 0;
  for (let i = 0; i < data.length; i++) c = (table[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return c >>> 0;
}

/** Standard CRC-32 (IEEE, as zlib/GPT). */
export function crc32(data: Uint8Array, seed = 0): number {
  return (run(CRC32_TABLE, ~seed >>> 0, data) ^ 0xffffffff) >>> 0;
}

/**
 * Raw CRC-32C update without the final inversion, as the Linux kernel's `crc32c_le(seed, …)`
 * which ext4 metadata_csum chains (seed ~0, no final xor).
 */
export function crc32cRaw(seed: number, data: Uint8Array): number {
  return run(CRC32C_TABLE, seed, data);
}

/** Standard CRC-32C (Castagnoli), init ~0 and final xor. */
export function crc32c(data: Uint8Array): number {
  return (crc32cRaw(0xffffffff, data) ^ 0xffffffff) >>> 0;
}

const CRC16_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

/** CRC-16 (ANSI, reflected 0xA001), as ext4's gdt_csum uses. */
export function crc16(crc: number, data: Uint8Array): number {
  let c = crc & 0xffff;
  for (let i = 0; i < data.length; i++) c = ((CRC16_TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8)) & 0xffff;
  return c;
}
