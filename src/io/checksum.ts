/** Table-driven checksums used by on-disk formats (CRC-32 for GPT, CRC-32C for ext4/XFS/btrfs, CRC-16 for ext4 group descriptors). */

/**
 * Tables hold signed 32-bit values: XOR keeps every intermediate a signed 32-bit integer, which V8's
 * interpreter and baseline code keep unboxed (a Uint32Array entry ≥ 2^31 is a heap number each time
 * it is read). Checksums run cold, a few dozen blocks per boot: this halves their cost until V8 optimizes.
 */
function makeTable(poly: number): Int32Array {
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t[i] = c;
  }
  return t;
}

const CRC32_TABLE = makeTable(0xedb88320);
const CRC32C_TABLE = makeTable(0x82f63b78);

function run(table: Int32Array, crc: number, data: Uint8Array): number {
  let c = crc | 0;
  for (let i = 0; i < data.length; i++) c = (table[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return c >>> 0;
}

/** Standard CRC-32 (IEEE, as zlib/GPT). */
export function crc32(data: Uint8Array, seed = 0): number {
  return (run(CRC32_TABLE, ~seed >>> 0, data) ^ 0xffffffff) >>> 0;
}

/** CRC-32C tables for slicing-by-8 (8 × 256 entries), built on first use. */
let crc32cTables: Int32Array | null = null;
function crc32cSlices(): Int32Array {
  if (crc32cTables) return crc32cTables;
  const t = new Int32Array(8 * 256);
  t.set(CRC32C_TABLE);
  for (let i = 0; i < 256; i++) {
    let c = t[i] as number;
    for (let k = 1; k < 8; k++) {
      c = (t[c & 0xff] as number) ^ (c >>> 8);
      t[k * 256 + i] = c;
    }
  }
  crc32cTables = t;
  return t;
}

/**
 * Raw CRC-32C update without the final inversion, as the Linux kernel's `crc32c_le(seed, …)`
 * which ext4 metadata_csum chains (seed ~0, no final xor). Slicing-by-8: eight bytes per step
 * through eight tables — metadata_csum checks every directory, extent and inode block it reads.
 */
export function crc32cRaw(seed: number, data: Uint8Array): number {
  const t = crc32cSlices();
  let c = seed | 0;
  const n = data.length;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const lo = c ^ ((data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24));
    c =
      (t[1792 + (lo & 0xff)] as number) ^
      (t[1536 + ((lo >>> 8) & 0xff)] as number) ^
      (t[1280 + ((lo >>> 16) & 0xff)] as number) ^
      (t[1024 + (lo >>> 24)] as number) ^
      (t[768 + (data[i + 4] as number)] as number) ^
      (t[512 + (data[i + 5] as number)] as number) ^
      (t[256 + (data[i + 6] as number)] as number) ^
      (t[data[i + 7] as number] as number);
  }
  for (; i < n; i++) c = (t[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return c >>> 0;
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
