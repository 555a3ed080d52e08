/**
 * The squashfs 4.0 superblock (squashfs-tools `squashfs_fs.h` struct squashfs_super_block, Linux
 * Documentation/filesystems/squashfs.rst): 96 bytes at offset 0, little-endian.
 */
import { CorruptError, UnsupportedError } from '../../errors.ts';
import { bound, u16le, u32le, u64le } from '../../io/bytes.ts';

export const SQUASHFS_MAGIC = 0x73717368; // "hsqs"
export const SUPERBLOCK_SIZE = 96;
/** Metadata blocks hold at most 8 KiB of uncompressed data (SQUASHFS_METADATA_SIZE). */
export const METADATA_SIZE = 8192;
/** A table start of all ones means the table is absent (SQUASHFS_INVALID_BLK). */
export const INVALID_BLK = 0xffff_ffff_ffff_ffffn;

export const FLAG_COMP_OPT = 0x0400;
export const FLAG_NOI = 0x0001;

export const COMPRESSORS: Readonly<Record<number, string>> = { 1: 'gzip', 2: 'lzma', 3: 'lzo', 4: 'xz', 5: 'lz4', 6: 'zstd' };

export interface Superblock {
  readonly inodes: number;
  readonly mkfsTime: number;
  readonly blockSize: number;
  readonly blockLog: number;
  readonly fragments: number;
  readonly compression: number;
  readonly compressor: string;
  readonly flags: number;
  readonly noIds: number;
  /** Inode reference of the root: metadata block (relative to the inode table) << 16 | offset. */
  readonly rootBlock: number;
  readonly rootOffset: number;
  readonly bytesUsed: number;
  readonly idTableStart: number;
  readonly inodeTableStart: number;
  readonly directoryTableStart: number;
  /** null when absent. */
  readonly fragmentTableStart: number | null;
  readonly lookupTableStart: number | null;
  readonly xattrIdTableStart: number | null;
}

/** True when the 4 bytes look like squashfs (the probe's cheap test). */
export function hasMagic(b: Uint8Array): boolean {
  return b.length >= 4 && u32le(b, 0) === SQUASHFS_MAGIC;
}

function offsetField(b: Uint8Array, off: number, name: string, bytesUsed: number, optional: boolean): number | null {
  const v = u64le(b, off, 'squashfs.Superblock');
  if (optional && v === INVALID_BLK) return null;
  if (v >= BigInt(bytesUsed)) throw new CorruptError(`squashfs.Superblock.${name}`, `table start ${v} is not inside bytes_used ${bytesUsed}`, off);
  return Number(v);
}

/** Decodes and validates the superblock against the size of the image it sits in. */
export function decodeSuperblock(b: Uint8Array, imageSize: number): Superblock {
  const W = 'squashfs.Superblock';
  const s_magic = u32le(b, 0, W);
  if (s_magic !== SQUASHFS_MAGIC) throw new CorruptError(`${W}.s_magic`, `bad magic 0x${s_magic.toString(16)}`, 0);
  const inodes = u32le(b, 4, W);
  const mkfs_time = u32le(b, 8, W);
  const block_size = u32le(b, 12, W);
  const fragments = u32le(b, 16, W);
  const compression = u16le(b, 20, W);
  const block_log = u16le(b, 22, W);
  const flags = u16le(b, 24, W);
  const no_ids = u16le(b, 26, W);
  const s_major = u16le(b, 28, W);
  const s_minor = u16le(b, 30, W);
  const root_inode = u64le(b, 32, W);
  const bytes_used64 = u64le(b, 40, W);
  if (s_major !== 4 || s_minor !== 0) throw new UnsupportedError('squashfs', [`version-${s_major}.${s_minor}`]);
  // Block size: a power of two from 4 KiB to 1 MiB, and block_log must agree (squashfs_fill_super).
  bound(block_log, 12, 20, `${W}.block_log`, 22);
  if (block_size !== 2 ** block_log) throw new CorruptError(`${W}.block_size`, `${block_size} is not 2^block_log (${block_log})`, 12);
  const compressor = COMPRESSORS[compression];
  if (compressor === undefined) throw new UnsupportedError('squashfs', [`compression-${compression}`]);
  if (bytes_used64 > BigInt(imageSize)) throw new CorruptError(`${W}.bytes_used`, `${bytes_used64} exceeds the image size ${imageSize}`, 40);
  const bytesUsed = Number(bytes_used64);
  bound(bytesUsed, SUPERBLOCK_SIZE, imageSize, `${W}.bytes_used`, 40);
  const idTableStart = offsetField(b, 48, 'id_table_start', bytesUsed, false) as number;
  const xattrIdTableStart = offsetField(b, 56, 'xattr_id_table_start', bytesUsed, true);
  const inodeTableStart = offsetField(b, 64, 'inode_table_start', bytesUsed, false) as number;
  const directoryTableStart = offsetField(b, 72, 'directory_table_start', bytesUsed, false) as number;
  const fragmentTableStart = offsetField(b, 80, 'fragment_table_start', bytesUsed, true);
  const lookupTableStart = offsetField(b, 88, 'lookup_table_start', bytesUsed, true);
  if (inodeTableStart < SUPERBLOCK_SIZE || directoryTableStart <= inodeTableStart) {
    throw new CorruptError(`${W}.directory_table_start`, `inode table ${inodeTableStart} must precede directory table ${directoryTableStart}`, 72);
  }
  // Counts: every inode takes at least 16 bytes of the inode table, every id 4 bytes, every fragment entry 16.
  bound(inodes, 1, Math.floor(((directoryTableStart - inodeTableStart) * METADATA_SIZE) / 16), `${W}.inodes`, 4);
  bound(no_ids, 1, 65536, `${W}.no_ids`, 26);
  if (fragments > 0 && fragmentTableStart === null) throw new CorruptError(`${W}.fragments`, `${fragments} fragments but no fragment table`, 16);
  bound(fragments, 0, Math.floor(bytesUsed / 2) * 512, `${W}.fragments`, 16);
  const rootBlock = Number(root_inode >> 16n);
  const rootOffset = Number(root_inode & 0xffffn);
  bound(rootBlock, 0, directoryTableStart - inodeTableStart - 1, `${W}.root_inode`, 32);
  bound(rootOffset, 0, METADATA_SIZE - 1, `${W}.root_inode`, 32);
  return {
    inodes,
    mkfsTime: mkfs_time,
    blockSize: block_size,
    blockLog: block_log,
    fragments,
    compression,
    compressor,
    flags,
    noIds: no_ids,
    rootBlock,
    rootOffset,
    bytesUsed,
    idTableStart,
    inodeTableStart,
    directoryTableStart,
    fragmentTableStart,
    lookupTableStart,
    xattrIdTableStart,
  };
}
