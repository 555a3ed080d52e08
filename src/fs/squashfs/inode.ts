/**
 * squashfs 4.0 inodes (squashfs_fs.h: squashfs_base_inode and the per-type structs). Every inode
 * starts with a 16-byte base (inode_type, mode, uid, guid, mtime, inode_number); the rest depends
 * on the type. A regular file's block list follows the fixed part in the same metadata stream;
 * it is read lazily, when the file's data is first read.
 */
import { CorruptError } from '../../errors.ts';
import { bound, u16le, u32le, u64le } from '../../io/bytes.ts';
import type { FsNode, NodeKind } from '../types.ts';
import type { MetaPos, MetadataReader } from './metadata.ts';
import { METADATA_SIZE, type Superblock } from './superblock.ts';

export const DIR_TYPE = 1;
export const REG_TYPE = 2;
export const SYMLINK_TYPE = 3;
export const LDIR_TYPE = 8;
export const LREG_TYPE = 9;
export const LSYMLINK_TYPE = 10;
/** No fragment (SQUASHFS_INVALID_FRAG). */
export const INVALID_FRAG = 0xffffffff;

export interface SqNode extends FsNode {
  /** The inode reference it was read from, "block:offset" (relative to the inode table). */
  readonly ref: string;
  readonly inodeType: number;
  // directories
  readonly dirStartBlock?: number;
  readonly dirOffset?: number;
  /** Bytes of directory listing (file_size − 3: the kernel's "." and ".." allowance). */
  readonly dirSize?: number;
  readonly parentInode?: number;
  /** Extended directories: index entries follow the inode at this stream position. */
  readonly indexCount?: number;
  readonly indexPos?: MetaPos;
  // files
  readonly startBlock?: number;
  readonly fragment?: number;
  readonly fragOffset?: number;
  readonly blockCount?: number;
  readonly blockListPos?: MetaPos;
  // symlinks
  readonly target?: Uint8Array;
}

export function kindOfType(t: number): NodeKind {
  switch (t) {
    case DIR_TYPE:
    case LDIR_TYPE:
      return 'dir';
    case REG_TYPE:
    case LREG_TYPE:
      return 'file';
    case SYMLINK_TYPE:
    case LSYMLINK_TYPE:
      return 'symlink';
    default:
      return 'other';
  }
}

/** Reads the inode at (block relative to the inode table, offset). */
export async function readInode(meta: MetadataReader, sb: Superblock, block: number, offset: number, ids: readonly number[]): Promise<SqNode> {
  const W = 'squashfs.Inode';
  bound(offset, 0, METADATA_SIZE - 1, `${W}.offset`);
  const at = sb.inodeTableStart + block;
  const end = sb.directoryTableStart;
  if (block < 0 || at >= end) throw new CorruptError(`${W}.block`, `inode block ${block} outside the inode table`, at);
  const pos: MetaPos = { block: at, offset };
  const ref = `${block}:${offset}`;
  const base = await meta.read(pos, 16, end, W);
  const inode_type = u16le(base, 0, W);
  const mode = u16le(base, 2, W);
  const uidIdx = u16le(base, 4, W);
  const gidIdx = u16le(base, 6, W);
  const mtime = u32le(base, 8, W);
  const inode_number = u32le(base, 12, W);
  bound(inode_number, 1, sb.inodes, `${W}.inode_number`, at);
  const uid = ids[bound(uidIdx, 0, ids.length - 1, `${W}.uid`, at)] as number;
  const gid = ids[bound(gidIdx, 0, ids.length - 1, `${W}.guid`, at)] as number;
  const common = { id: inode_number, mode, uid, gid, mtime, ref, inodeType: inode_type };
  switch (inode_type) {
    case DIR_TYPE: {
      // squashfs_dir_inode: start_block, nlink, file_size (u16), offset (u16), parent_inode
      const b = await meta.read(pos, 16, end, W);
      const start_block = u32le(b, 0, W);
      const nlink = u32le(b, 4, W);
      const file_size = u16le(b, 8, W);
      const dOffset = u16le(b, 10, W);
      const parent_inode = u32le(b, 12, W);
      return dirNode(sb, common, nlink, start_block, file_size, dOffset, parent_inode, 0, pos, at);
    }
    case LDIR_TYPE: {
      // squashfs_ldir_inode: nlink, file_size (u32), start_block, parent_inode, i_count (u16), offset (u16), xattr
      const b = await meta.read(pos, 24, end, W);
      const nlink = u32le(b, 0, W);
      const file_size = u32le(b, 4, W);
      const start_block = u32le(b, 8, W);
      const parent_inode = u32le(b, 12, W);
      const i_count = u16le(b, 16, W);
      const dOffset = u16le(b, 18, W);
      return dirNode(sb, common, nlink, start_block, file_size, dOffset, parent_inode, i_count, { ...pos }, at);
    }
    case REG_TYPE: {
      // squashfs_reg_inode: start_block (u32), fragment, offset, file_size (u32), block_list[]
      const b = await meta.read(pos, 16, end, W);
      return fileNode(sb, common, 1, u32le(b, 0, W), u32le(b, 4, W), u32le(b, 8, W), u32le(b, 12, W), { ...pos }, at);
    }
    case LREG_TYPE: {
      // squashfs_lreg_inode: start_block (u64), file_size (u64), sparse (u64), nlink, fragment, offset, xattr, block_list[]
      const b = await meta.read(pos, 40, end, W);
      const start = u64le(b, 0, W);
      const size = u64le(b, 8, W);
      if (start > BigInt(sb.bytesUsed)) throw new CorruptError(`${W}.start_block`, `data start ${start} past bytes_used`, at);
      if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptError(`${W}.file_size`, `size ${size} exceeds 2^53`, at);
      return fileNode(sb, common, u32le(b, 24, W), Number(start), u32le(b, 28, W), u32le(b, 32, W), Number(size), { ...pos }, at);
    }
    case SYMLINK_TYPE:
    case LSYMLINK_TYPE: {
      // squashfs_symlink_inode: nlink, symlink_size, symlink[] (extended: then xattr)
      const b = await meta.read(pos, 8, end, W);
      const nlink = u32le(b, 0, W);
      const symlink_size = bound(u32le(b, 4, W), 0, 65535, `${W}.symlink_size`, at);
      const target = await meta.read(pos, symlink_size, end, W);
      return { ...common, kind: 'symlink', size: symlink_size, nlink, target };
    }
    case 4: case 5: case 11: case 12: {
      // block/char devices: nlink, rdev (extended: then xattr)
      const b = await meta.read(pos, 8, end, W);
      return { ...common, kind: 'other', size: 0, nlink: u32le(b, 0, W) };
    }
    case 6: case 7: case 13: case 14: {
      // fifo/socket: nlink (extended: then xattr)
      const b = await meta.read(pos, 4, end, W);
      return { ...common, kind: 'other', size: 0, nlink: u32le(b, 0, W) };
    }
    default:
      throw new CorruptError(`${W}.inode_type`, `unknown inode type ${inode_type}`, at);
  }
}

type Common = Omit<SqNode, 'kind' | 'size'>;

function dirNode(
  sb: Superblock, common: Common, nlink: number, startBlock: number, fileSize: number, offset: number,
  parent: number, indexCount: number, indexPos: MetaPos, at: number,
): SqNode {
  const W = 'squashfs.Inode';
  const tableLen = dirTableEnd(sb) - sb.directoryTableStart;
  bound(startBlock, 0, tableLen - 1, `${W}.dir.start_block`, at);
  bound(offset, 0, METADATA_SIZE - 1, `${W}.dir.offset`, at);
  // file_size counts 3 bytes for "." and ".." that are not stored; an empty directory has 3.
  bound(fileSize, 3, Math.max(3, Math.ceil(tableLen / 2) * METADATA_SIZE), `${W}.dir.file_size`, at);
  bound(indexCount, 0, Math.ceil(fileSize / 12), `${W}.dir.i_count`, at);
  return {
    ...common, kind: 'dir', size: fileSize, nlink, dirStartBlock: startBlock, dirOffset: offset, dirSize: fileSize - 3,
    parentInode: parent, indexCount, indexPos,
  };
}

function fileNode(
  sb: Superblock, common: Common, nlink: number, startBlock: number, fragment: number, fragOffset: number, size: number,
  blockListPos: MetaPos, at: number,
): SqNode {
  const W = 'squashfs.Inode';
  bound(startBlock, 0, sb.bytesUsed, `${W}.start_block`, at);
  const hasFrag = fragment !== INVALID_FRAG;
  if (hasFrag) {
    bound(fragment, 0, sb.fragments - 1, `${W}.fragment`, at);
    bound(fragOffset, 0, sb.blockSize - 1, `${W}.offset`, at);
  }
  // Blocks: every full block, plus the tail when it is not in a fragment (squashfs_fill_inode).
  const blockCount = hasFrag ? Math.floor(size / sb.blockSize) : Math.ceil(size / sb.blockSize);
  return { ...common, kind: 'file', size, nlink, startBlock, fragment, fragOffset, blockCount, blockListPos };
}

/** The directory table ends where the next table begins (fragment, export, id or xattr index). */
export function dirTableEnd(sb: Superblock): number {
  let end = sb.bytesUsed;
  for (const t of [sb.fragmentTableStart, sb.lookupTableStart, sb.idTableStart, sb.xattrIdTableStart]) {
    if (t !== null && t > sb.directoryTableStart && t < end) end = t;
  }
  return end;
}
