/**
 * Inode numbers and on-disk inodes (xfs_format.h `struct xfs_dinode`, big-endian; di_crc is stored
 * little-endian like every XFS checksum). Inode and block numbers are split with BigInt arithmetic:
 * an inode number has agblklog + inopblog + 32 significant bits, more than JS bit operators keep.
 */
import { CorruptError, UnsupportedError } from '../../errors.ts';
import { bound, bytesEqual, pow2, slice, toSafe, u16be, u32be, u32le, u64be, u8, i32be } from '../../io/bytes.ts';
import { xfsCksum } from './cksum.ts';
import type { Superblock } from './superblock.ts';

export const XFS_DINODE_MAGIC = 0x494e; // 'IN'

export const enum DinodeFormat {
  Dev = 0,
  Local = 1,
  Extents = 2,
  Btree = 3,
}

/** di_flags2 bits (xfs_format.h XFS_DIFLAG2_*). */
const DIFLAG2_BIGTIME = 0x8n;
const DIFLAG2_NREXT64 = 0x10n;

export interface Dinode {
  readonly ino: bigint;
  readonly mode: number;
  readonly version: number;
  readonly format: number;
  readonly uid: number;
  readonly gid: number;
  readonly nlink: number;
  readonly mtime: number;
  readonly size: number;
  readonly nextents: number;
  /** XFS_DIFLAG_REALTIME: the data fork maps realtime-device blocks. */
  readonly realtime: boolean;
  /** The data fork's bytes (literal area up to di_forkoff). */
  readonly dataFork: Uint8Array;
  /** Byte offset of the data fork within the inode (for error messages). */
  readonly forkOffset: number;
}

/** Byte offset of an fs block run [fsb, fsb+count) in the data device, checked against the AG geometry. */
export function fsbToByte(sb: Superblock, fsb: bigint, count: number, what: string): number {
  const perAg = BigInt(pow2(sb.agBlkLog));
  const agno = fsb / perAg;
  const agbno = Number(fsb % perAg);
  if (agno >= BigInt(sb.agCount)) throw new CorruptError(what, `block ${fsb} lies in AG ${agno} of ${sb.agCount}`);
  if (count < 0 || agbno + count > sb.agBlocks) throw new CorruptError(what, `blocks ${agbno}+${count} run past AG ${agno} of ${sb.agBlocks} blocks`);
  const block = Number(agno) * sb.agBlocks + agbno;
  if (block + count > sb.dBlocks) throw new CorruptError(what, `blocks ${block}+${count} lie past sb_dblocks ${sb.dBlocks}`);
  return block * sb.blockSize;
}

/** Byte offset of inode `ino` (agno | agbno | index within block). */
export function inodeByteOffset(sb: Superblock, ino: bigint): number {
  const inoBits = BigInt(sb.agBlkLog + sb.inopbLog);
  const agno = ino >> inoBits;
  const agino = ino & ((1n << inoBits) - 1n);
  const agbno = Number(agino >> BigInt(sb.inopbLog));
  const index = Number(agino & ((1n << BigInt(sb.inopbLog)) - 1n));
  if (ino <= 0n || agno >= BigInt(sb.agCount) || agbno >= sb.agBlocks) {
    throw new CorruptError('xfs.InodeNumber', `inode ${ino} outside ${sb.agCount} AGs of ${sb.agBlocks} blocks`);
  }
  const block = Number(agno) * sb.agBlocks + agbno;
  if (block >= sb.dBlocks) throw new CorruptError('xfs.InodeNumber', `inode ${ino} lies past sb_dblocks`);
  return block * sb.blockSize + index * sb.inodeSize;
}

/** Decodes one inode's core (v1–v3) and locates its data fork; v3 inodes are checksummed. */
export function decodeDinode(sb: Superblock, ino: bigint, b: Uint8Array, at: number): Dinode {
  const W = `xfs.Inode(${ino})`;
  const di_magic = u16be(b, 0, W);
  const di_mode = u16be(b, 2, W);
  const di_version = u8(b, 4, W);
  const di_format = u8(b, 5, W);
  const di_onlink = u16be(b, 6, W);
  const di_uid = u32be(b, 8, W);
  const di_gid = u32be(b, 12, W);
  const di_nlink = u32be(b, 16, W);
  const di_size = u64be(b, 56, W);
  const di_nextents = u32be(b, 76, W);
  const di_forkoff = u8(b, 82, W);
  const di_flags = u16be(b, 90, W);

  if (di_magic !== XFS_DINODE_MAGIC) throw new CorruptError(`${W}.di_magic`, `bad magic 0x${di_magic.toString(16)}`, at);
  bound(di_version, 1, 3, `${W}.di_version`, at + 4);
  if ((di_version === 3) !== sb.hasCrc) throw new CorruptError(`${W}.di_version`, `v${di_version} inode on a v${sb.version} filesystem`, at + 4);
  let coreSize = 100;
  let flags2 = 0n;
  if (di_version === 3) {
    coreSize = 176;
    const di_crc = u32le(b, 100, W);
    slice(b, 0, sb.inodeSize, W);
    const want = xfsCksum(b, sb.inodeSize, 100);
    if (want !== di_crc) throw new CorruptError(`${W}.di_crc`, `checksum 0x${di_crc.toString(16)} != computed 0x${want.toString(16)}`, at + 100);
    const di_ino = u64be(b, 152, W);
    if (di_ino !== ino) throw new CorruptError(`${W}.di_ino`, `inode claims to be ${di_ino}`, at + 152);
    if (!bytesEqual(slice(b, 160, 16, W), sb.metaUuid)) throw new CorruptError(`${W}.di_uuid`, 'inode belongs to another filesystem', at + 160);
    flags2 = u64be(b, 120, W);
  }
  let nextents = di_nextents;
  if (flags2 & DIFLAG2_NREXT64) {
    if (!sb.hasNrext64) throw new CorruptError(`${W}.di_flags2`, 'nrext64 inode without the superblock feature', at + 120);
    nextents = toSafe(u64be(b, 24, W), `${W}.di_big_nextents`);
  }
  const size = toSafe(di_size, `${W}.di_size`);
  const literal = sb.inodeSize - coreSize;
  const forkSize = di_forkoff === 0 ? literal : bound(di_forkoff * 8, 1, literal, `${W}.di_forkoff`, at + 82);
  let mtime: number;
  if (flags2 & DIFLAG2_BIGTIME) {
    // Bigtime: nanoseconds since 1901-12-13 (xfs_format.h XFS_BIGTIME_EPOCH_OFFSET = 2^31 s).
    mtime = Math.floor(Number(u64be(b, 40, W)) / 1e9) - 2 ** 31;
  } else {
    mtime = i32be(b, 40, W);
  }
  if (di_format > DinodeFormat.Btree) throw new UnsupportedError(`${W} data fork format ${di_format}`);
  return {
    ino,
    mode: di_mode,
    version: di_version,
    format: di_format,
    uid: di_uid,
    gid: di_gid,
    nlink: di_version === 1 ? di_onlink : di_nlink,
    mtime,
    size,
    nextents,
    realtime: di_flags % 2 === 1,
    dataFork: slice(b, coreSize, forkSize, W),
    forkOffset: at + coreSize,
  };
}
