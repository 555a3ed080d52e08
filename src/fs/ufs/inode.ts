/**
 * On-disk inodes: FreeBSD ufs/ufs/dinode.h (`struct ufs1_dinode`, 128 bytes; `struct ufs2_dinode`,
 * 256 bytes) and illumos sys/fs/ufs_inode.h (`struct icommon`, 128 bytes, the Solaris UFS1 inode).
 */
import { CorruptError } from '../../errors.ts';
import { i32be, i32le, i64be, i64le, slice, toSafe, u16be, u16le, u32be, u32le, u64be, u64le } from '../../io/bytes.ts';
import { NDADDR, NIADDR, type Superblock } from './superblock.ts';
import type { FsNode } from '../types.ts';
import { kindOfMode } from '../filetype.ts';

/** sys/stat.h S_IFMT values, shared by every UFS. */

export interface UfsNode extends FsNode {
  readonly id: number;
  readonly mode: number;
  /** di_db[12]: direct block pointers, in fragments (0 = hole). */
  readonly db: readonly number[];
  /** di_ib[3]: single, double, triple indirect block pointers. */
  readonly ib: readonly number[];
  /** di_blocks: 512-byte sectors held (0 for a fast symlink). */
  readonly blocks: number;
  /** The block-pointer area (db + ib) as raw bytes, where fast symlinks keep their target. */
  readonly shortlink: Uint8Array;
}

/**
 * Decodes the inode `ino` from its raw bytes. Block pointers are kept raw (a fast symlink's target
 * occupies the same bytes); they are range-checked where the block map uses them. A UFS2 pointer
 * that does not fit a safe integer becomes -1, which that check rejects.
 */
export function decodeDinode(sb: Superblock, raw: Uint8Array, ino: number, offset: number): UfsNode {
  const le = sb.littleEndian;
  const u16 = le ? u16le : u16be;
  const u32 = le ? u32le : u32be;
  const i32 = le ? i32le : i32be;
  const what = `ufs.Inode(${ino})`;
  let di_mode: number, di_nlink: number, di_uid: number, di_gid: number, di_size: number, di_blocks: number, di_mtime: number;
  let ptrOff: number;
  const ptrs: number[] = [];
  if (sb.version === 2) {
    // struct ufs2_dinode
    di_mode = u16(raw, 0, what);
    di_nlink = u16(raw, 2, what);
    di_uid = u32(raw, 4, what);
    di_gid = u32(raw, 8, what);
    di_size = toSafe((le ? u64le : u64be)(raw, 16, what), `${what}.di_size`);
    di_blocks = toSafe((le ? u64le : u64be)(raw, 24, what), `${what}.di_blocks`);
    di_mtime = Number((le ? i64le : i64be)(raw, 40, what));
    ptrOff = 112;
    for (let i = 0; i < NDADDR + NIADDR; i++) {
      const v = (le ? i64le : i64be)(raw, ptrOff + i * 8, what);
      ptrs.push(v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(v));
    }
  } else {
    // struct ufs1_dinode (4.4BSD) / struct icommon (Solaris): the same up to byte 112.
    di_mode = u16(raw, 0, what);
    di_nlink = u16(raw, 2, what);
    di_size = toSafe((le ? u64le : u64be)(raw, 8, what), `${what}.di_size`);
    di_mtime = i32(raw, 24, what);
    ptrOff = 40;
    for (let i = 0; i < NDADDR + NIADDR; i++) {
      ptrs.push(i32(raw, ptrOff + i * 4, what));
    }
    di_blocks = i32(raw, 104, what);
    if (di_blocks < 0) throw new CorruptError(`${what}.di_blocks`, `negative block count ${di_blocks}`, offset + 104);
    if (sb.flavour === 'solaris') {
      // icommon: ic_shadow at 112, ic_uid at 116, ic_gid at 120 (ic_suid/ic_sgid at 4/6 are 16-bit legacy copies).
      di_uid = u32(raw, 116, what);
      di_gid = u32(raw, 120, what);
    } else {
      di_uid = u32(raw, 112, what);
      di_gid = u32(raw, 116, what);
    }
  }
  return {
    kind: kindOfMode(di_mode),
    size: di_size,
    id: ino,
    mode: di_mode,
    uid: di_uid,
    gid: di_gid,
    nlink: di_nlink,
    mtime: di_mtime,
    db: ptrs.slice(0, NDADDR),
    ib: ptrs.slice(NDADDR),
    blocks: di_blocks,
    shortlink: slice(raw, ptrOff, (NDADDR + NIADDR) * sb.ptrSize, what),
  };
}
