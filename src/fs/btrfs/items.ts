/**
 * Item bodies of the FS and root trees (uapi btrfs_tree.h): btrfs_inode_item, btrfs_dir_item,
 * btrfs_file_extent_item, btrfs_root_item. Each is read by field offset, then validated.
 */
import { CorruptError } from '../../errors.ts';
import { bound, slice, u16le, u32le, u64le, u64leSafe, u8 } from '../../io/bytes.ts';
import { readKey, type Key } from './tree.ts';

export const INODE_ITEM_KEY = 1;
export const INODE_REF_KEY = 12;
export const DIR_ITEM_KEY = 84;
export const DIR_INDEX_KEY = 96;
export const EXTENT_DATA_KEY = 108;
export const ROOT_ITEM_KEY = 132;

export const FS_TREE_OBJECTID = 5n;
export const ROOT_TREE_DIR_OBJECTID = 6n;
export const CHUNK_TREE_OBJECTID = 3n;

export interface InodeItem {
  readonly size: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
  readonly mode: number;
  readonly mtime: number;
}

export function parseInodeItem(b: Uint8Array, where: number): InodeItem {
  const what = 'btrfs.InodeItem';
  if (b.length < 160) throw new CorruptError(what, `item of ${b.length} bytes, need 160`, where);
  return {
    size: u64leSafe(b, 16, what),
    nlink: u32le(b, 40, what),
    uid: u32le(b, 44, what),
    gid: u32le(b, 48, what),
    mode: u32le(b, 52, what),
    mtime: Number(u64le(b, 136, what)),
  };
}

/** BTRFS_FT_* */
export const FT_REG_FILE = 1;
export const FT_DIR = 2;
export const FT_SYMLINK = 7;

export interface DirItem {
  readonly location: Key;
  readonly type: number;
  readonly name: Uint8Array;
}

/**
 * A DIR_ITEM/DIR_INDEX body holds one or more (btrfs_dir_item, name, data) entries. Each entry's
 * header + name_len + data_len must fit what remains of the item (GRUB 11e1cffb7: it did not check).
 */
export function parseDirItems(b: Uint8Array, where: number, maxEntries: number): DirItem[] {
  const what = 'btrfs.DirItem';
  const out: DirItem[] = [];
  let off = 0;
  while (off < b.length) {
    if (out.length >= maxEntries) throw new CorruptError(what, `more than ${maxEntries} entries in one item`, where);
    if (b.length - off < 30) throw new CorruptError(what, `entry header at ${off} runs past the ${b.length}-byte item`, where + off);
    const location = readKey(b, off, what);
    const data_len = u16le(b, off + 25, what);
    const name_len = u16le(b, off + 27, what);
    const type = u8(b, off + 29, what);
    const total = 30 + name_len + data_len;
    if (total > b.length - off) {
      throw new CorruptError(what, `entry name_len ${name_len} + data_len ${data_len} exceeds the ${b.length - off} bytes left in the item`, where + off);
    }
    if (name_len === 0) throw new CorruptError(what, 'empty name', where + off);
    out.push({ location, type, name: slice(b, off + 30, name_len, what) });
    off += total; // total ≥ 31: progress
  }
  return out;
}

export const EXTENT_INLINE = 0;
export const EXTENT_REG = 1;
export const EXTENT_PREALLOC = 2;
export const COMPRESS_NONE = 0;
export const COMPRESS_ZLIB = 1;
export const COMPRESS_LZO = 2;
export const COMPRESS_ZSTD = 3;

/** Largest uncompressed size of a compressed extent (BTRFS_MAX_UNCOMPRESSED). */
export const MAX_UNCOMPRESSED = 128 * 1024;

export type FileExtent =
  | { readonly kind: 'inline'; readonly ramBytes: number; readonly compression: number; readonly data: Uint8Array }
  | {
      readonly kind: 'regular' | 'prealloc';
      readonly ramBytes: number;
      readonly compression: number;
      readonly diskBytenr: number;
      readonly diskNumBytes: number;
      readonly offset: number;
      readonly numBytes: number;
    };

export function parseFileExtent(b: Uint8Array, where: number): FileExtent {
  const what = 'btrfs.FileExtent';
  const ram_bytes = u64leSafe(b, 8, what);
  const compression = u8(b, 16, what);
  const encryption = u8(b, 17, what);
  const other_encoding = u16le(b, 18, what);
  const type = u8(b, 20, what);
  if (encryption !== 0 || other_encoding !== 0) throw new CorruptError(what, `encryption ${encryption}/encoding ${other_encoding} not defined`, where);
  if (compression > COMPRESS_ZSTD) throw new CorruptError(what, `compression type ${compression}`, where);
  if (type === EXTENT_INLINE) {
    const data = b.subarray(21);
    if (compression === COMPRESS_NONE) {
      if (ram_bytes !== data.length) throw new CorruptError(what, `inline ram_bytes ${ram_bytes} != ${data.length} bytes stored`, where);
    } else {
      bound(ram_bytes, 0, MAX_UNCOMPRESSED, 'btrfs.FileExtentRamBytes', where);
    }
    return { kind: 'inline', ramBytes: ram_bytes, compression, data };
  }
  if (type !== EXTENT_REG && type !== EXTENT_PREALLOC) throw new CorruptError(what, `extent type ${type}`, where);
  if (b.length < 53) throw new CorruptError(what, `item of ${b.length} bytes, need 53`, where);
  const disk_bytenr = u64leSafe(b, 21, what);
  const disk_num_bytes = u64leSafe(b, 29, what);
  const offset = u64leSafe(b, 37, what);
  const num_bytes = u64leSafe(b, 45, what);
  if (compression !== COMPRESS_NONE) {
    bound(ram_bytes, 1, MAX_UNCOMPRESSED, 'btrfs.FileExtentRamBytes', where);
    bound(disk_num_bytes, 1, MAX_UNCOMPRESSED, 'btrfs.FileExtentDiskNumBytes', where);
    if (offset > ram_bytes || num_bytes > ram_bytes - offset) throw new CorruptError(what, `range ${offset}+${num_bytes} outside ${ram_bytes} decompressed bytes`, where);
  } else if (disk_bytenr !== 0 && (offset > disk_num_bytes || num_bytes > disk_num_bytes - offset)) {
    throw new CorruptError(what, `range ${offset}+${num_bytes} outside the ${disk_num_bytes}-byte disk extent`, where);
  }
  return { kind: type === EXTENT_REG ? 'regular' : 'prealloc', ramBytes: ram_bytes, compression, diskBytenr: disk_bytenr, diskNumBytes: disk_num_bytes, offset, numBytes: num_bytes };
}

export interface RootItem {
  readonly rootDirid: bigint;
  readonly bytenr: number;
  readonly level: number;
}

export function parseRootItem(b: Uint8Array, where: number): RootItem {
  const what = 'btrfs.RootItem';
  if (b.length < 239) throw new CorruptError(what, `item of ${b.length} bytes, need 239`, where);
  return { rootDirid: u64le(b, 168, what), bytenr: u64leSafe(b, 176, what), level: u8(b, 238, what) };
}

