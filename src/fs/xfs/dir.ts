/**
 * Version 2/3 directories (xfs_da_format.h): short form in the inode, and block, leaf and node
 * forms in the fork's data space (dir blocks from offset 0), leaf space (XFS_DIR2_LEAF_OFFSET =
 * 32 GiB) and free space (64 GiB, not needed to read). Lookups hash the name (xfs_da_hashname) and
 * follow the leaf or da-node index; data entries are bounds- and tag-checked wherever they are read.
 */
import { CorruptError } from '../../errors.ts';
import { bound, bytesEqual, slice, u16be, u32be, u32le, u64be, u8 } from '../../io/bytes.ts';
import { xfsCksum } from './cksum.ts';
import { kindOfFileType } from '../filetype.ts';
import type { NodeKind } from '../types.ts';
import type { Superblock } from './superblock.ts';

export interface XfsDirEntry {
  readonly name: Uint8Array;
  readonly ino: bigint;
  readonly kind: NodeKind | 'unknown';
}

/** Byte offset of the leaf and free sections of a directory's logical space. */
export const DIR2_LEAF_OFFSET = 2 ** 35;

const DIR2_BLOCK_MAGIC = 0x58443242; // 'XD2B'
const DIR2_DATA_MAGIC = 0x58443244; // 'XD2D'
const DIR3_BLOCK_MAGIC = 0x58444233; // 'XDB3'
const DIR3_DATA_MAGIC = 0x58444433; // 'XDD3'
export const DIR2_LEAF1_MAGIC = 0xd2f1;
export const DIR2_LEAFN_MAGIC = 0xd2ff;
export const DA_NODE_MAGIC = 0xfebe;
export const DIR3_LEAF1_MAGIC = 0x3df1;
export const DIR3_LEAFN_MAGIC = 0x3dff;
export const DA3_NODE_MAGIC = 0x3ebe;
const DATA_FREE_TAG = 0xffff;

/**
 * xfs_da_hashname (xfs_da_btree.c): a 32-bit rotate-xor hash. The hash is 32 bits by definition, so
 * 32-bit operators are exact here (name bytes shifted by at most 21 stay below 2^31).
 */
export function daHashName(name: Uint8Array): number {
  const rol = (x: number, n: number) => ((x << n) | (x >>> (32 - n))) >>> 0;
  let hash = 0;
  let i = 0;
  const b = (k: number) => name[k] as number;
  for (; name.length - i >= 4; i += 4) hash = ((b(i) << 21) ^ (b(i + 1) << 14) ^ (b(i + 2) << 7) ^ b(i + 3) ^ rol(hash, 28)) >>> 0;
  switch (name.length - i) {
    case 3:
      return ((b(i) << 14) ^ (b(i + 1) << 7) ^ b(i + 2) ^ rol(hash, 21)) >>> 0;
    case 2:
      return ((b(i) << 7) ^ b(i + 1) ^ rol(hash, 14)) >>> 0;
    case 1:
      return (b(i) ^ rol(hash, 7)) >>> 0;
    default:
      return hash;
  }
}

/** Short-form directory (xfs_dir2_sf_hdr + xfs_dir2_sf_entry) in the first `size` bytes of the fork. */
export function shortformEntries(sb: Superblock, fork: Uint8Array, size: number, ino: bigint, forkAt: number): XfsDirEntry[] {
  const W = `xfs.DirShortform(${ino})`;
  bound(size, 6, fork.length, `${W}.di_size`, forkAt);
  const b = slice(fork, 0, size, W);
  const count = u8(b, 0, W);
  const i8count = u8(b, 1, W);
  const inoSize = i8count ? 8 : 4;
  let off = 2 + inoSize;
  if (off > b.length) throw new CorruptError(W, 'header overruns the fork', forkAt);
  const out: XfsDirEntry[] = [];
  for (let i = 0; i < count; i++) {
    const namelen = u8(b, off, W);
    if (namelen === 0) throw new CorruptError(`${W}.namelen`, `entry ${i} has an empty name`, forkAt + off);
    const need = 1 + 2 + namelen + (sb.hasFtype ? 1 : 0) + inoSize;
    if (off + need > b.length) throw new CorruptError(W, `entry ${i} of ${count} overruns the ${size}-byte fork`, forkAt + off);
    const name = new Uint8Array(b.subarray(off + 3, off + 3 + namelen));
    let p = off + 3 + namelen;
    const kind = sb.hasFtype ? kindOfFileType(u8(b, p++, W)) : 'unknown';
    const entIno = inoSize === 8 ? u64be(b, p, W) : BigInt(u32be(b, p, W));
    out.push({ name, ino: entIno, kind });
    off += need;
  }
  return out;
}

/** v5 dir blocks carry xfs_dir3_blk_hdr / xfs_da3_blkinfo: crc, self daddr, uuid, owner. */
export function verifyDir3Header(sb: Superblock, b: Uint8Array, crcOff: number, byte: number, owner: bigint, W: string): void {
  const stored = u32le(b, crcOff, W);
  const want = xfsCksum(b, b.length, crcOff);
  if (want !== stored) throw new CorruptError(`${W}.crc`, `checksum 0x${stored.toString(16)} != computed 0x${want.toString(16)}`, byte + crcOff);
  const blkno = u64be(b, crcOff + 4, W);
  const uuid = slice(b, crcOff + 20, 16, W);
  const own = u64be(b, crcOff + 36, W);
  if (blkno !== BigInt(byte / 512)) throw new CorruptError(`${W}.blkno`, `block claims daddr ${blkno}`, byte + crcOff + 4);
  if (!bytesEqual(uuid, sb.metaUuid)) throw new CorruptError(`${W}.uuid`, 'block belongs to another filesystem', byte + crcOff + 20);
  if (own !== owner) throw new CorruptError(`${W}.owner`, `block owned by inode ${own}`, byte + crcOff + 36);
}

/**
 * Validates a data or single-block directory block and returns where its entry area ends
 * (before the leaf entries and tail for a block-format directory).
 */
export function dataBlockBounds(sb: Superblock, b: Uint8Array, byte: number, owner: bigint, single: boolean, W: string): { start: number; end: number } {
  const magic = u32be(b, 0, W);
  const want = sb.hasCrc ? (single ? DIR3_BLOCK_MAGIC : DIR3_DATA_MAGIC) : single ? DIR2_BLOCK_MAGIC : DIR2_DATA_MAGIC;
  if (magic !== want) throw new CorruptError(`${W}.magic`, `bad magic 0x${magic.toString(16)}`, byte);
  if (sb.hasCrc) verifyDir3Header(sb, b, 4, byte, owner, W);
  const start = sb.hasCrc ? 64 : 16;
  let end = b.length;
  if (single) {
    // xfs_dir2_block_tail {count, stale} at the end, preceded by count leaf entries.
    const count = u32be(b, b.length - 8, W);
    const max = Math.floor((b.length - 8 - start) / 8);
    bound(count, 0, max, `${W}.tail.count`, byte + b.length - 8);
    end = b.length - 8 - count * 8;
  }
  return { start, end };
}

/** Block-format leaf entries (hashval, address) sit between the data area and the tail. */
export function blockLeafEntries(b: Uint8Array, end: number): { at: number; count: number } {
  return { at: end, count: (b.length - 8 - end) / 8 };
}

/** One data entry (xfs_dir2_data_entry) at `off`; its tag must equal `off`. null for a free region. */
export function dataEntryAt(sb: Superblock, b: Uint8Array, off: number, end: number, byte: number, W: string): { entry: XfsDirEntry | null; size: number } {
  if (u16be(b, off, W) === DATA_FREE_TAG) {
    const length = u16be(b, off + 2, W);
    if (length < 8 || length % 8 !== 0 || off + length > end) throw new CorruptError(`${W}.unused.length`, `free region of ${length} bytes at ${off}`, byte + off);
    const tag = u16be(b, off + length - 2, W);
    if (tag !== off) throw new CorruptError(`${W}.unused.tag`, `tag ${tag} != offset ${off}`, byte + off);
    return { entry: null, size: length };
  }
  const inumber = u64be(b, off, W);
  const namelen = u8(b, off + 8, W);
  if (namelen === 0) throw new CorruptError(`${W}.namelen`, `entry at ${off} has an empty name`, byte + off + 8);
  const ft = sb.hasFtype ? 1 : 0;
  const size = Math.ceil((8 + 1 + namelen + ft + 2) / 8) * 8;
  if (off + size > end) throw new CorruptError(W, `entry at ${off} of ${size} bytes runs past ${end}`, byte + off);
  const tag = u16be(b, off + size - 2, W);
  if (tag !== off) throw new CorruptError(`${W}.tag`, `tag ${tag} != offset ${off}`, byte + off + size - 2);
  const name = new Uint8Array(b.subarray(off + 9, off + 9 + namelen));
  const kind = sb.hasFtype ? kindOfFileType(u8(b, off + 9 + namelen, W)) : 'unknown';
  return { entry: { name, ino: inumber, kind }, size };
}

/** All entries of a data block's entry area, in order. */
export function dataBlockEntries(sb: Superblock, b: Uint8Array, start: number, end: number, byte: number, W: string): XfsDirEntry[] {
  const out: XfsDirEntry[] = [];
  let off = start;
  while (off < end) {
    const { entry, size } = dataEntryAt(sb, b, off, end, byte, W);
    if (entry) out.push(entry);
    off += size; // size ≥ 8: every step makes progress
  }
  return out;
}

/** Header layout of leaf and da-node blocks (xfs_dir2_leaf_hdr / xfs_da_node_hdr and their v3 forms). */
export function daHeader(sb: Superblock, b: Uint8Array, byte: number, owner: bigint, W: string): { magic: number; forw: number; count: number; level: number; ents: number } {
  const forw = u32be(b, 0, W);
  const magic = u16be(b, 8, W);
  if (sb.hasCrc) {
    if (magic !== DIR3_LEAF1_MAGIC && magic !== DIR3_LEAFN_MAGIC && magic !== DA3_NODE_MAGIC) {
      throw new CorruptError(`${W}.magic`, `bad magic 0x${magic.toString(16)}`, byte + 8);
    }
    verifyDir3Header(sb, b, 12, byte, owner, W);
    return { magic, forw, count: u16be(b, 56, W), level: u16be(b, 58, W), ents: 64 };
  }
  if (magic !== DIR2_LEAF1_MAGIC && magic !== DIR2_LEAFN_MAGIC && magic !== DA_NODE_MAGIC) {
    throw new CorruptError(`${W}.magic`, `bad magic 0x${magic.toString(16)}`, byte + 8);
  }
  return { magic, forw, count: u16be(b, 12, W), level: u16be(b, 14, W), ents: 16 };
}

export function isLeafMagic(m: number): boolean {
  return m === DIR2_LEAF1_MAGIC || m === DIR2_LEAFN_MAGIC || m === DIR3_LEAF1_MAGIC || m === DIR3_LEAFN_MAGIC;
}
