/**
 * The ext2/3/4 superblock (struct ext4_super_block, kernel fs/ext4/ext4.h; e2fsprogs
 * lib/ext2fs/ext2_fs.h). Raw fields are read by offset, then validated into `Superblock` with every
 * derived value (block size, group count, descriptor size, checksum seed) computed from checked fields.
 */
import { CorruptError, UnsupportedError } from '../../errors.ts';
import { bound, cString, pow2, slice, u16le, u32le, u8, uuidString } from '../../io/bytes.ts';
import { crc32cRaw } from '../../io/checksum.ts';

export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;
export const EXT4_SUPER_MAGIC = 0xef53;

// s_feature_compat
export const COMPAT_HAS_JOURNAL = 0x4;
export const COMPAT_DIR_INDEX = 0x20;
export const COMPAT_SPARSE_SUPER2 = 0x200;

// s_feature_incompat
export const INCOMPAT_COMPRESSION = 0x1;
export const INCOMPAT_FILETYPE = 0x2;
export const INCOMPAT_RECOVER = 0x4;
export const INCOMPAT_JOURNAL_DEV = 0x8;
export const INCOMPAT_META_BG = 0x10;
export const INCOMPAT_EXTENTS = 0x40;
export const INCOMPAT_64BIT = 0x80;
export const INCOMPAT_MMP = 0x100;
export const INCOMPAT_FLEX_BG = 0x200;
export const INCOMPAT_EA_INODE = 0x400;
export const INCOMPAT_DIRDATA = 0x1000;
export const INCOMPAT_CSUM_SEED = 0x2000;
export const INCOMPAT_LARGEDIR = 0x4000;
export const INCOMPAT_INLINE_DATA = 0x8000;
export const INCOMPAT_ENCRYPT = 0x10000;
export const INCOMPAT_CASEFOLD = 0x20000;

// s_feature_ro_compat
export const RO_COMPAT_SPARSE_SUPER = 0x1;
export const RO_COMPAT_LARGE_FILE = 0x2;
export const RO_COMPAT_BTREE_DIR = 0x4;
export const RO_COMPAT_HUGE_FILE = 0x8;
export const RO_COMPAT_GDT_CSUM = 0x10;
export const RO_COMPAT_METADATA_CSUM = 0x400;
export const RO_COMPAT_VERITY = 0x8000;

/**
 * INCOMPAT bits this reader handles. RECOVER (journal not yet replayed) is read as-is: we never replay
 * the journal (README). MMP and EA_INODE do not change how files, directories and links are read.
 * ENCRYPT is accepted for the filesystem and refused per encrypted inode.
 */
const INCOMPAT_SUPPORTED =
  INCOMPAT_FILETYPE |
  INCOMPAT_RECOVER |
  INCOMPAT_META_BG |
  INCOMPAT_EXTENTS |
  INCOMPAT_64BIT |
  INCOMPAT_MMP |
  INCOMPAT_FLEX_BG |
  INCOMPAT_EA_INODE |
  INCOMPAT_CSUM_SEED |
  INCOMPAT_LARGEDIR |
  INCOMPAT_INLINE_DATA |
  INCOMPAT_ENCRYPT;

const INCOMPAT_NAMES: ReadonlyArray<[number, string]> = [
  [INCOMPAT_COMPRESSION, 'compression'],
  [INCOMPAT_JOURNAL_DEV, 'journal_dev'],
  [0x20, 'incompat_0x20'],
  [INCOMPAT_DIRDATA, 'dirdata'],
  [INCOMPAT_CASEFOLD, 'casefold'],
];

/** Features that only the ext4 driver (not ext2/ext3) implements; blkid's rule for naming the type. */
const EXT3_INCOMPAT = INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_META_BG;
const EXT3_RO_COMPAT = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE | RO_COMPAT_BTREE_DIR;

/** The raw fields, named as in struct ext4_super_block. */
export interface RawSuperblock {
  s_inodes_count: number;
  s_blocks_count_lo: number;
  s_first_data_block: number;
  s_log_block_size: number;
  s_log_cluster_size: number;
  s_blocks_per_group: number;
  s_inodes_per_group: number;
  s_magic: number;
  s_rev_level: number;
  s_first_ino: number;
  s_inode_size: number;
  s_feature_compat: number;
  s_feature_incompat: number;
  s_feature_ro_compat: number;
  s_uuid: Uint8Array;
  s_volume_name: string;
  s_hash_seed: [number, number, number, number];
  s_def_hash_version: number;
  s_desc_size: number;
  s_first_meta_bg: number;
  s_blocks_count_hi: number;
  s_flags: number;
  s_checksum_type: number;
  s_backup_bgs: [number, number];
  s_checksum_seed: number;
  s_checksum: number;
}

export function readRawSuperblock(b: Uint8Array): RawSuperblock {
  const w = 'ext.Superblock';
  return {
    s_inodes_count: u32le(b, 0x0, w),
    s_blocks_count_lo: u32le(b, 0x4, w),
    s_first_data_block: u32le(b, 0x14, w),
    s_log_block_size: u32le(b, 0x18, w),
    s_log_cluster_size: u32le(b, 0x1c, w),
    s_blocks_per_group: u32le(b, 0x20, w),
    s_inodes_per_group: u32le(b, 0x28, w),
    s_magic: u16le(b, 0x38, w),
    s_rev_level: u32le(b, 0x4c, w),
    s_first_ino: u32le(b, 0x54, w),
    s_inode_size: u16le(b, 0x58, w),
    s_feature_compat: u32le(b, 0x5c, w),
    s_feature_incompat: u32le(b, 0x60, w),
    s_feature_ro_compat: u32le(b, 0x64, w),
    s_uuid: slice(b, 0x68, 16, w),
    s_volume_name: cString(b, 0x78, 16, w),
    s_hash_seed: [u32le(b, 0xec, w), u32le(b, 0xf0, w), u32le(b, 0xf4, w), u32le(b, 0xf8, w)],
    s_def_hash_version: u8(b, 0xfc, w),
    s_desc_size: u16le(b, 0xfe, w),
    s_first_meta_bg: u32le(b, 0x104, w),
    s_blocks_count_hi: u32le(b, 0x150, w),
    s_flags: u32le(b, 0x160, w),
    s_checksum_type: u8(b, 0x175, w),
    s_backup_bgs: [u32le(b, 0x24c, w), u32le(b, 0x250, w)],
    s_checksum_seed: u32le(b, 0x270, w),
    s_checksum: u32le(b, 0x3fc, w),
  };
}

export interface Superblock {
  readonly raw: RawSuperblock;
  readonly type: 'ext2' | 'ext3' | 'ext4';
  readonly label: string;
  readonly uuid: string;
  readonly blockSize: number;
  readonly log2BlockSize: number;
  readonly blocksCount: number;
  readonly firstDataBlock: number;
  readonly blocksPerGroup: number;
  readonly inodesPerGroup: number;
  readonly inodesCount: number;
  readonly inodeSize: number;
  readonly groupCount: number;
  readonly descSize: number;
  readonly descPerBlock: number;
  readonly firstMetaBg: number;
  readonly hasFiletype: boolean;
  readonly hasExtents: boolean;
  readonly has64bit: boolean;
  readonly hasMetaBg: boolean;
  readonly hasInlineData: boolean;
  readonly hasLargedir: boolean;
  readonly hasDirIndex: boolean;
  readonly hasHugeFile: boolean;
  readonly hasSparseSuper: boolean;
  readonly hasSparseSuper2: boolean;
  readonly metadataCsum: boolean;
  readonly gdtCsum: boolean;
  /** The metadata_csum seed: s_checksum_seed or crc32c(~0, s_uuid) (kernel ext4_fill_super). */
  readonly csumSeed: number;
  /** s_flags EXT2_FLAGS_UNSIGNED_HASH: the htree hash treats name bytes as unsigned. */
  readonly unsignedHash: boolean;
}

export function isExt(b: Uint8Array): boolean {
  return b.length >= 0x3a && u16le(b, 0x38) === EXT4_SUPER_MAGIC;
}

/** Which name blkid would give this filesystem. */
export function extType(raw: RawSuperblock): 'ext2' | 'ext3' | 'ext4' {
  if ((raw.s_feature_incompat & ~EXT3_INCOMPAT) !== 0 || (raw.s_feature_ro_compat & ~EXT3_RO_COMPAT) !== 0) return 'ext4';
  return raw.s_feature_compat & COMPAT_HAS_JOURNAL ? 'ext3' : 'ext2';
}

/** Validates a 1024-byte superblock read at byte 1024 of `srcSize` bytes. */
export function parseSuperblock(b: Uint8Array): Superblock {
  const raw = readRawSuperblock(b);
  const w = 'ext.Superblock';
  const at = (field: number) => SUPERBLOCK_OFFSET + field;
  if (raw.s_magic !== EXT4_SUPER_MAGIC) throw new CorruptError(w, `bad magic 0x${raw.s_magic.toString(16)}`, at(0x38));

  const incompat = raw.s_feature_incompat;
  const unknown = incompat & ~INCOMPAT_SUPPORTED;
  if (unknown !== 0) {
    const names: string[] = [];
    let rest = unknown;
    for (const [bit, name] of INCOMPAT_NAMES) {
      if (rest & bit) {
        names.push(name);
        rest &= ~bit;
      }
    }
    if (rest) names.push(`incompat_0x${(rest >>> 0).toString(16)}`);
    throw new UnsupportedError('ext filesystem', names);
  }
  const ro = raw.s_feature_ro_compat;
  const metadataCsum = (ro & RO_COMPAT_METADATA_CSUM) !== 0;
  if (metadataCsum) {
    // Kernel ext4_superblock_csum: crc32c(~0, sb[0..0x3fc]), no final inversion.
    if (raw.s_checksum_type !== 1) throw new UnsupportedError('ext metadata checksum', [`checksum_type_${raw.s_checksum_type}`]);
    const c = crc32cRaw(0xffffffff, b.subarray(0, 0x3fc));
    if (c !== raw.s_checksum) {
      throw new CorruptError('ext.SuperblockChecksum', `stored 0x${raw.s_checksum.toString(16)}, computed 0x${c.toString(16)}`, at(0x3fc));
    }
  }

  // 1 KiB .. 64 KiB blocks (EXT4_MIN/MAX_BLOCK_LOG_SIZE).
  const logBs = 10 + bound(raw.s_log_block_size, 0, 6, 'ext.Superblock.s_log_block_size', at(0x18));
  const blockSize = pow2(logBs);
  const has64bit = (incompat & INCOMPAT_64BIT) !== 0;
  const blocksCount = raw.s_blocks_count_lo + (has64bit ? bound(raw.s_blocks_count_hi, 0, 0xffff, 'ext.Superblock.s_blocks_count_hi', at(0x150)) * 2 ** 32 : 0);
  bound(blocksCount, 1, Number.MAX_SAFE_INTEGER, 'ext.Superblock.s_blocks_count', at(0x4));
  if (!Number.isSafeInteger(blocksCount * blockSize)) throw new CorruptError('ext.Superblock.s_blocks_count', `${blocksCount} blocks overflow`, at(0x4));
  const firstDataBlock = bound(raw.s_first_data_block, 0, blockSize === 1024 ? 1 : 0, 'ext.Superblock.s_first_data_block', at(0x14));
  if (firstDataBlock >= blocksCount) throw new CorruptError('ext.Superblock.s_first_data_block', `${firstDataBlock} ≥ blocks count ${blocksCount}`, at(0x14));
  const blocksPerGroup = bound(raw.s_blocks_per_group, 8, blockSize * 8, 'ext.Superblock.s_blocks_per_group', at(0x20));
  const inodesPerGroup = bound(raw.s_inodes_per_group, 1, blockSize * 8, 'ext.Superblock.s_inodes_per_group', at(0x28));
  const inodeSize = raw.s_rev_level === 0 ? 128 : raw.s_inode_size;
  if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0) {
    throw new CorruptError('ext.Superblock.s_inode_size', `inode size ${inodeSize}`, at(0x58));
  }
  const groupCount = Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup);
  // A group's inodes must be countable from s_inodes_count (the kernel rejects the mismatch too).
  const inodesCount = bound(raw.s_inodes_count, 2, groupCount * inodesPerGroup, 'ext.Superblock.s_inodes_count', at(0x0));

  let descSize = 32;
  if (has64bit) {
    // EXT4_MIN_DESC_SIZE_64BIT .. EXT4_MAX_DESC_SIZE, a power of two.
    descSize = bound(raw.s_desc_size, 64, 1024, 'ext.Superblock.s_desc_size', at(0xfe));
    if ((descSize & (descSize - 1)) !== 0 || descSize > blockSize) throw new CorruptError('ext.Superblock.s_desc_size', `descriptor size ${descSize}`, at(0xfe));
  }
  const descPerBlock = blockSize / descSize;
  const hasMetaBg = (incompat & INCOMPAT_META_BG) !== 0;
  const firstMetaBg = hasMetaBg ? raw.s_first_meta_bg : 0;
  if (hasMetaBg && firstMetaBg > Math.ceil(groupCount / descPerBlock)) {
    throw new CorruptError('ext.Superblock.s_first_meta_bg', `${firstMetaBg} beyond ${Math.ceil(groupCount / descPerBlock)} descriptor blocks`, at(0x104));
  }
  if (!hasMetaBg && 1 + firstDataBlock + Math.ceil(groupCount / descPerBlock) > blocksCount) {
    throw new CorruptError('ext.Superblock', `group descriptor table of ${groupCount} groups does not fit`, at(0x4));
  }

  const csumSeed = incompat & INCOMPAT_CSUM_SEED ? raw.s_checksum_seed : crc32cRaw(0xffffffff, raw.s_uuid);
  return {
    raw,
    type: extType(raw),
    label: raw.s_volume_name,
    uuid: uuidString(raw.s_uuid),
    blockSize,
    log2BlockSize: logBs,
    blocksCount,
    firstDataBlock,
    blocksPerGroup,
    inodesPerGroup,
    inodesCount,
    inodeSize,
    groupCount,
    descSize,
    descPerBlock,
    firstMetaBg,
    hasFiletype: (incompat & INCOMPAT_FILETYPE) !== 0,
    hasExtents: (incompat & INCOMPAT_EXTENTS) !== 0,
    has64bit,
    hasMetaBg,
    hasInlineData: (incompat & INCOMPAT_INLINE_DATA) !== 0,
    hasLargedir: (incompat & INCOMPAT_LARGEDIR) !== 0,
    hasDirIndex: (raw.s_feature_compat & COMPAT_DIR_INDEX) !== 0,
    hasHugeFile: (ro & RO_COMPAT_HUGE_FILE) !== 0,
    hasSparseSuper: (ro & RO_COMPAT_SPARSE_SUPER) !== 0,
    hasSparseSuper2: (raw.s_feature_compat & COMPAT_SPARSE_SUPER2) !== 0,
    metadataCsum,
    gdtCsum: !metadataCsum && (ro & RO_COMPAT_GDT_CSUM) !== 0,
    csumSeed,
    unsignedHash: (raw.s_flags & 0x2) !== 0,
  };
}

function isPowerOf(n: number, base: number): boolean {
  let x = base;
  while (x < n) x *= base;
  return x === n;
}

/** ext4_bg_has_super: does group `g` hold a superblock (and, without meta_bg, a GDT) copy? */
export function groupHasSuper(sb: Superblock, g: number): boolean {
  if (g === 0) return true;
  if (sb.hasSparseSuper2) return g === sb.raw.s_backup_bgs[0] || g === sb.raw.s_backup_bgs[1];
  if (g <= 1 || !sb.hasSparseSuper) return true;
  if (g % 2 === 0) return false;
  return isPowerOf(g, 3) || isPowerOf(g, 5) || isPowerOf(g, 7);
}
