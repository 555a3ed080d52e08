/**
 * EROFS inodes (erofs_fs.h erofs_inode_compact, 32 bytes, and erofs_inode_extended, 64 bytes), at
 * meta_blkaddr * blocksize + nid * 32. i_format bit 0 is the version, bits 1..3 the data layout.
 */
import { CorruptError, UnsupportedError } from '../../errors.ts';
import { bound, u16le, u32le, u64le } from '../../io/bytes.ts';
import type { ByteSource } from '../../io/source.ts';
import type { FsNode } from '../types.ts';
import type { Superblock } from './superblock.ts';
import { kindOfMode } from '../filetype.ts';

export const FLAT_PLAIN = 0;
export const COMPRESSED_FULL = 1;
export const FLAT_INLINE = 2;
export const COMPRESSED_COMPACT = 3;
export const CHUNK_BASED = 4;

export interface ErNode extends FsNode {
  readonly id: number;
  readonly nid: number;
  readonly layout: number;
  /** i_u: raw_blkaddr, compressed block count or chunk format, by layout. */
  readonly iU: number;
  /** Absolute byte offset of the inode. */
  readonly loc: number;
  readonly inodeSize: number;
  readonly xattrSize: number;
}


/** Reads inode `nid` (validated against the image and the superblock). */
export async function readInode(meta: ByteSource, sb: Superblock, nid: number): Promise<ErNode> {
  const W = 'erofs.Inode';
  const base = sb.metaBlkAddr * sb.blockSize;
  bound(nid, 0, Math.floor((meta.size - base) / 32) - 1, `${W}.nid`);
  const loc = base + nid * 32;
  const c = await meta.read(loc, 32);
  const i_format = u16le(c, 0, W);
  const extended = (i_format & 1) === 1;
  const layout = (i_format >> 1) & 7;
  if (i_format >> 4) throw new UnsupportedError('erofs', [`i_format-0x${i_format.toString(16)}`]);
  if (layout > CHUNK_BASED) throw new CorruptError(`${W}.i_format`, `unknown data layout ${layout} in inode ${nid}`, loc);
  const i_xattr_icount = u16le(c, 2, W);
  const i_mode = u16le(c, 4, W);
  // erofs_xattr_ibody_size: a 12-byte header then 4-byte slots (icount counts the header as 1).
  const xattrSize = i_xattr_icount === 0 ? 0 : 12 + (i_xattr_icount - 1) * 4;
  let size: number;
  let iU: number;
  let ino: number;
  let uid: number;
  let gid: number;
  let nlink: number;
  let mtime: number | undefined;
  if (!extended) {
    nlink = u16le(c, 6, W);
    size = u32le(c, 8, W);
    iU = u32le(c, 16, W);
    ino = u32le(c, 20, W);
    uid = u16le(c, 24, W);
    gid = u16le(c, 26, W);
  } else {
    if (loc + 64 > meta.size) throw new CorruptError(W, `extended inode ${nid} runs past the image`, loc);
    const e = await meta.read(loc, 64);
    const i_size = u64le(e, 8, W);
    if (i_size > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptError(`${W}.i_size`, `${i_size} exceeds 2^53`, loc + 8);
    size = Number(i_size);
    iU = u32le(e, 16, W);
    ino = u32le(e, 20, W);
    uid = u32le(e, 24, W);
    gid = u32le(e, 28, W);
    const mt = u64le(e, 32, W);
    mtime = mt > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(mt);
    nlink = u32le(e, 44, W);
  }
  const kind = kindOfMode(i_mode);
  if ((kind === 'symlink' || kind === 'dir') && (layout === COMPRESSED_FULL || layout === COMPRESSED_COMPACT)) {
    // The kernel refuses compressed directories and symlinks too (erofs_fill_inode).
    throw new CorruptError(`${W}.i_format`, `compressed ${kind} (inode ${nid})`, loc);
  }
  return {
    kind, size, id: nid, nid, mode: i_mode, uid, gid, nlink, ...(mtime === undefined ? {} : { mtime }),
    layout, iU, loc, inodeSize: extended ? 64 : 32, xattrSize, ino,
  } as ErNode;
}
