/**
 * On-disk inodes (struct ext4_inode) and their in-inode extended attributes (only `system.data`, the
 * inline_data continuation, is needed). Checksum as kernel ext4_inode_csum(): crc32c seeded with
 * (fs seed, inode number, generation) over the inode with i_checksum_lo/hi as zeros.
 */
import { CorruptError } from '../../errors.ts';
import { bound, slice, u16le, u32le, u8 } from '../../io/bytes.ts';
import { crc32cRaw } from '../../io/checksum.ts';
import type { Superblock } from './superblock.ts';

// i_flags
export const EXT4_ENCRYPT_FL = 0x800;
export const EXT4_INDEX_FL = 0x1000;
export const EXT4_HUGE_FILE_FL = 0x40000;
export const EXT4_EXTENTS_FL = 0x80000;
export const EXT4_VERITY_FL = 0x100000;
export const EXT4_INLINE_DATA_FL = 0x10000000;
export const EXT4_CASEFOLD_FL = 0x40000000;

export const S_IFMT = 0xf000;
export const S_IFDIR = 0x4000;
export const S_IFREG = 0x8000;
export const S_IFLNK = 0xa000;

/** i_block: 15 × u32 = 60 bytes (EXT4_N_BLOCKS). */
export const I_BLOCK_OFFSET = 0x28;
export const I_BLOCK_SIZE = 60;

export interface Inode {
  readonly ino: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtime: number;
  readonly links: number;
  readonly flags: number;
  /** i_blocks in 512-byte units (fs blocks when HUGE_FILE_FL). */
  readonly blocks: number;
  readonly fileAcl: number;
  readonly generation: number;
  /** The 60 bytes of i_block (extent root, block map, fast symlink or inline data). */
  readonly iBlock: Uint8Array;
  /** The whole on-disk inode (s_inode_size bytes), for in-inode xattrs. */
  readonly raw: Uint8Array;
  readonly extraIsize: number;
  /** Seed for this inode's extent-block and directory-block checksums. */
  readonly csumSeed: number;
}

const le32 = (n: number) => new Uint8Array([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff]);

/** Decodes and validates inode `ino` from its `s_inode_size` bytes at byte `offset` of the image. */
export function parseInode(sb: Superblock, ino: number, b: Uint8Array, offset: number): Inode {
  const w = 'ext.Inode';
  const i_mode = u16le(b, 0x0, w);
  const i_uid = u16le(b, 0x2, w);
  const i_size_lo = u32le(b, 0x4, w);
  const i_mtime = u32le(b, 0x10, w);
  const i_gid = u16le(b, 0x18, w);
  const i_links_count = u16le(b, 0x1a, w);
  const i_blocks_lo = u32le(b, 0x1c, w);
  const i_flags = u32le(b, 0x20, w);
  const i_generation = u32le(b, 0x64, w);
  const i_file_acl_lo = u32le(b, 0x68, w);
  const i_size_high = u32le(b, 0x6c, w);
  const l_i_blocks_high = u16le(b, 0x74, w);
  const l_i_file_acl_high = u16le(b, 0x76, w);
  const l_i_uid_high = u16le(b, 0x78, w);
  const l_i_gid_high = u16le(b, 0x7a, w);
  const l_i_checksum_lo = u16le(b, 0x7c, w);
  const i_extra_isize = sb.inodeSize > 128 ? u16le(b, 0x80, w) : 0;

  if (sb.inodeSize > 128 && (i_extra_isize > sb.inodeSize - 128 || i_extra_isize % 4 !== 0)) {
    throw new CorruptError('ext.Inode.i_extra_isize', `inode ${ino}: extra size ${i_extra_isize}`, offset + 0x80);
  }
  // i_checksum_hi (at 0x82) exists when the extra part covers it (EXT4_FITS_IN_INODE).
  const hasCsumHi = sb.inodeSize > 128 && i_extra_isize >= 4;
  const csumSeed = sb.metadataCsum ? crc32cRaw(crc32cRaw(sb.csumSeed, le32(ino)), le32(i_generation)) : 0;
  if (sb.metadataCsum) {
    // A real copy: `b` may be a Node Buffer, whose slice() is a view of the caller's bytes.
    const copy = new Uint8Array(sb.inodeSize);
    copy.set(b.subarray(0, sb.inodeSize));
    copy[0x7c] = 0;
    copy[0x7d] = 0;
    if (hasCsumHi) {
      copy[0x82] = 0;
      copy[0x83] = 0;
    }
    const c = crc32cRaw(csumSeed, copy);
    const stored = hasCsumHi ? l_i_checksum_lo + u16le(b, 0x82, w) * 0x10000 : l_i_checksum_lo;
    const computed = hasCsumHi ? c : c & 0xffff;
    // An all-zero inode is never written by the kernel; e2fsprogs treats it as checksum-valid (unused).
    if (stored !== computed && b.some((x) => x !== 0)) {
      throw new CorruptError('ext.InodeChecksum', `inode ${ino}: stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)}`, offset + 0x7c);
    }
  }

  // ext4_isize(): i_size_high counts for regular files, and for directories with largedir.
  const type = i_mode & S_IFMT;
  const useHigh = type === S_IFREG || (type === S_IFDIR && sb.hasLargedir);
  const high = useHigh ? bound(i_size_high, 0, 2 ** 21 - 1, 'ext.Inode.i_size_high', offset + 0x6c) : 0;
  const size = i_size_lo + high * 2 ** 32;
  const blocks = i_blocks_lo + (sb.hasHugeFile ? l_i_blocks_high * 2 ** 32 : 0);

  return {
    ino,
    mode: i_mode,
    uid: i_uid + l_i_uid_high * 0x10000,
    gid: i_gid + l_i_gid_high * 0x10000,
    size,
    mtime: i_mtime,
    links: i_links_count,
    flags: i_flags,
    blocks,
    fileAcl: i_file_acl_lo + (sb.has64bit ? l_i_file_acl_high * 2 ** 32 : 0),
    generation: i_generation,
    iBlock: slice(b, I_BLOCK_OFFSET, I_BLOCK_SIZE, w),
    raw: b,
    extraIsize: i_extra_isize,
    csumSeed,
  };
}

/** ext4_inode_is_fast_symlink(): the target lives in i_block. */
export function isFastSymlink(sb: Superblock, inode: Inode): boolean {
  if ((inode.mode & S_IFMT) !== S_IFLNK) return false;
  if (inode.flags & (EXT4_INLINE_DATA_FL | EXT4_EXTENTS_FL)) return false;
  if (inode.size >= I_BLOCK_SIZE) return false;
  // Blocks charged to the inode, minus its xattr block, must be none.
  const perBlock = inode.flags & EXT4_HUGE_FILE_FL ? 1 : sb.blockSize / 512;
  const eaBlocks = inode.fileAcl !== 0 ? perBlock : 0;
  return inode.blocks - eaBlocks <= 0;
}

const EXT4_XATTR_MAGIC = 0xea020000;
const EXT4_XATTR_INDEX_SYSTEM = 7;

/**
 * The value of the in-inode xattr `system.data` (the part of inline data beyond i_block), or an empty
 * array when absent. Entries (struct ext4_xattr_entry) follow the ibody header; values are relative to
 * the first entry. Every offset and size is checked against the inode's extra space.
 */
export function inlineDataXattr(sb: Superblock, inode: Inode): Uint8Array {
  const w = 'ext.InodeXattr';
  const start = 128 + inode.extraIsize;
  const end = sb.inodeSize;
  if (sb.inodeSize <= 128 || start + 4 > end) return new Uint8Array(0);
  const b = inode.raw;
  if (u32le(b, start, w) !== EXT4_XATTR_MAGIC) return new Uint8Array(0);
  const first = start + 4;
  let off = first;
  // Each entry is at least 16 bytes, so this terminates within the inode.
  while (off + 4 <= end) {
    if (u32le(b, off, w) === 0) break;
    if (off + 16 > end) throw new CorruptError(w, `inode ${inode.ino}: entry at ${off} overruns the inode`);
    const e_name_len = u8(b, off, w);
    const e_name_index = u8(b, off + 1, w);
    const e_value_offs = u16le(b, off + 2, w);
    const e_value_inum = u32le(b, off + 4, w);
    const e_value_size = u32le(b, off + 8, w);
    const entryLen = (16 + e_name_len + 3) & ~3;
    if (off + entryLen > end) throw new CorruptError(w, `inode ${inode.ino}: entry name at ${off} overruns the inode`);
    const name = slice(b, off + 16, e_name_len, w);
    if (e_name_index === EXT4_XATTR_INDEX_SYSTEM && e_name_len === 4 && name[0] === 0x64 && name[1] === 0x61 && name[2] === 0x74 && name[3] === 0x61) {
      if (e_value_inum !== 0) throw new CorruptError(w, `inode ${inode.ino}: system.data stored in an EA inode`);
      const vstart = first + e_value_offs;
      if (e_value_size > end - first || vstart + e_value_size > end) {
        throw new CorruptError(w, `inode ${inode.ino}: system.data value ${e_value_offs}+${e_value_size} outside the inode`);
      }
      return b.slice(vstart, vstart + e_value_size);
    }
    off += entryLen;
  }
  return new Uint8Array(0);
}
