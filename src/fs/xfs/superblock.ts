/**
 * The XFS superblock (xfs_format.h `struct xfs_dsb`, all fields big-endian) read raw by offset, then
 * validated into a geometry where every derived value comes from checked fields (XSA-443: libfsimage
 * trusted the geometry and shifted by 32 in mask32lo).
 */
import { CorruptError, UnsupportedError } from '../../errors.ts';
import { bound, cString, mulSafe, pow2, slice, u16be, u32be, u32le, u64be, u8, uuidString } from '../../io/bytes.ts';
import { xfsCksum } from './cksum.ts';

export const XFS_SB_MAGIC = 0x58465342; // 'XFSB'

/** sb_versionnum bits (xfs_format.h XFS_SB_VERSION_*). */
const VERSION_DIRV2BIT = 0x2000;
const VERSION_BORGBIT = 0x4000; // ASCII case-insensitive names
const VERSION_MOREBITSBIT = 0x8000;
/** sb_features2 bits. */
const VERSION2_CRCBIT = 0x100;
const VERSION2_FTYPE = 0x200;

/** v5 incompatible features (XFS_SB_FEAT_INCOMPAT_*) this reader understands. */
const INCOMPAT_FTYPE = 0x1;
const INCOMPAT_SPINODES = 0x2;
const INCOMPAT_META_UUID = 0x4;
const INCOMPAT_BIGTIME = 0x8;
const INCOMPAT_NEEDSREPAIR = 0x10;
const INCOMPAT_NREXT64 = 0x20;
const INCOMPAT_SUPPORTED: readonly number[] = [INCOMPAT_FTYPE, INCOMPAT_SPINODES, INCOMPAT_META_UUID, INCOMPAT_BIGTIME, INCOMPAT_NREXT64];

/** Set bits of a 32-bit flag word as values (2^k), by arithmetic: flag words reach 2^31. */
function setBits(word: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < 32; k++) if (Math.floor(word / 2 ** k) % 2 === 1) out.push(2 ** k);
  return out;
}
function has(word: number, bit: number): boolean {
  return Math.floor(word / bit) % 2 === 1;
}
const INCOMPAT_NAMES: readonly [number, string][] = [
  [0x10, 'needsrepair'],
  [0x40, 'exchrange'],
  [0x80, 'parent'],
  [0x100, 'metadir'],
  [0x200, 'zoned'],
];

export interface Superblock {
  readonly version: 4 | 5;
  readonly blockSize: number;
  readonly blockLog: number;
  readonly sectSize: number;
  readonly inodeSize: number;
  readonly inodeLog: number;
  readonly inopbLog: number;
  readonly agBlocks: number;
  readonly agBlkLog: number;
  readonly agCount: number;
  readonly dBlocks: number;
  readonly rootIno: bigint;
  /** Directory block size in bytes and in fs blocks. */
  readonly dirBlkLog: number;
  readonly dirBlkSize: number;
  readonly dirBlkFsbs: number;
  readonly hasFtype: boolean;
  readonly hasCrc: boolean;
  readonly hasBigtime: boolean;
  readonly hasNrext64: boolean;
  readonly asciiCi: boolean;
  readonly label: string;
  readonly uuid: string;
  /** The UUID stamped in v5 metadata headers (sb_meta_uuid when META_UUID is set, else sb_uuid). */
  readonly metaUuid: Uint8Array;
}

const W = 'xfs.Superblock';

/** True when the bytes start with the XFS superblock magic. */
export function isXfsSuperblock(b: Uint8Array): boolean {
  return b.length >= 4 && u32be(b, 0, W) === XFS_SB_MAGIC;
}

/** Decodes and validates the primary superblock from its sector (at least sb_sectsize bytes for v5). */
export function decodeSuperblock(b: Uint8Array, sourceSize: number): Superblock {
  // Raw fields, named as in struct xfs_dsb.
  const sb_magicnum = u32be(b, 0, W);
  const sb_blocksize = u32be(b, 4, W);
  const sb_dblocks = u64be(b, 8, W);
  const sb_uuid = slice(b, 32, 16, W);
  const sb_rootino = u64be(b, 56, W);
  const sb_agblocks = u32be(b, 84, W);
  const sb_agcount = u32be(b, 88, W);
  const sb_versionnum = u16be(b, 100, W);
  const sb_sectsize = u16be(b, 102, W);
  const sb_inodesize = u16be(b, 104, W);
  const sb_inopblock = u16be(b, 106, W);
  const sb_blocklog = u8(b, 120, W);
  const sb_sectlog = u8(b, 121, W);
  const sb_inodelog = u8(b, 122, W);
  const sb_inopblog = u8(b, 123, W);
  const sb_agblklog = u8(b, 124, W);
  const sb_inprogress = u8(b, 126, W);
  const sb_dirblklog = u8(b, 192, W);
  const sb_features2 = u32be(b, 200, W);
  const sb_bad_features2 = u32be(b, 204, W);

  if (sb_magicnum !== XFS_SB_MAGIC) throw new CorruptError(W, `bad magic 0x${sb_magicnum.toString(16)}`, 0);
  const version = sb_versionnum % 16; // XFS_SB_VERSION_NUMBITS
  if (version !== 4 && version !== 5) throw new UnsupportedError(`xfs superblock version ${version}`);

  // Geometry (xfs_sb.c xfs_validate_sb_common), each derived from the checked log.
  bound(sb_blocklog, 9, 16, `${W}.sb_blocklog`, 120);
  if (sb_blocksize !== pow2(sb_blocklog)) throw new CorruptError(`${W}.sb_blocksize`, `${sb_blocksize} is not 2^sb_blocklog (${sb_blocklog})`, 4);
  bound(sb_sectlog, 9, 15, `${W}.sb_sectlog`, 121);
  if (sb_sectsize !== pow2(sb_sectlog)) throw new CorruptError(`${W}.sb_sectsize`, `${sb_sectsize} is not 2^sb_sectlog (${sb_sectlog})`, 102);
  if (sb_sectsize > sb_blocksize) throw new CorruptError(`${W}.sb_sectsize`, `sector ${sb_sectsize} larger than block ${sb_blocksize}`, 102);
  bound(sb_inodelog, 8, 11, `${W}.sb_inodelog`, 122);
  if (sb_inodesize !== pow2(sb_inodelog)) throw new CorruptError(`${W}.sb_inodesize`, `${sb_inodesize} is not 2^sb_inodelog (${sb_inodelog})`, 104);
  if (sb_inodesize > sb_blocksize) throw new CorruptError(`${W}.sb_inodesize`, `inode ${sb_inodesize} larger than block ${sb_blocksize}`, 104);
  if (sb_inopblog !== sb_blocklog - sb_inodelog) throw new CorruptError(`${W}.sb_inopblog`, `${sb_inopblog} != blocklog - inodelog`, 123);
  if (sb_inopblock !== sb_blocksize / sb_inodesize) throw new CorruptError(`${W}.sb_inopblock`, `${sb_inopblock} != blocksize / inodesize`, 106);
  // agblklog is a shift: ≤ 31 keeps agno/agbno splitting exact (the XSA-443 mask32lo bug shifted by 32).
  bound(sb_agblklog, 1, 31, `${W}.sb_agblklog`, 124);
  bound(sb_agblocks, 1, pow2(sb_agblklog), `${W}.sb_agblocks`, 84);
  if (sb_agblocks <= pow2(sb_agblklog - 1) && sb_agblklog > 1) {
    // agblklog is log2 rounded up of agblocks: a smaller agblocks leaves gaps in fs block numbers.
    throw new CorruptError(`${W}.sb_agblklog`, `${sb_agblklog} is not log2(agblocks ${sb_agblocks}) rounded up`, 124);
  }
  bound(sb_agcount, 1, 2 ** 32 - 1, `${W}.sb_agcount`, 88);
  const maxBlocks = mulSafe(sb_agcount, sb_agblocks, `${W}.sb_agcount`);
  if (sb_dblocks > BigInt(maxBlocks) || sb_dblocks <= BigInt(maxBlocks - sb_agblocks)) {
    throw new CorruptError(`${W}.sb_dblocks`, `${sb_dblocks} blocks do not match ${sb_agcount} AGs of ${sb_agblocks}`, 8);
  }
  const dBlocks = Number(sb_dblocks);
  mulSafe(dBlocks, sb_blocksize, `${W}.sb_dblocks`);
  if (sourceSize < sb_sectsize) throw new CorruptError(W, `source of ${sourceSize} bytes is smaller than one sector`);
  bound(sb_dirblklog, 0, 16 - sb_blocklog, `${W}.sb_dirblklog`, 192);
  if (sb_inprogress !== 0) throw new CorruptError(`${W}.sb_inprogress`, 'mkfs did not finish', 126);

  let hasFtype = false;
  let hasCrc = false;
  let hasBigtime = false;
  let hasNrext64 = false;
  let metaUuid = sb_uuid;
  // Some old kernels wrote features2 at the wrong offset (sb_bad_features2); honour either copy.
  const features2 = has(sb_versionnum, VERSION_MOREBITSBIT) ? [sb_features2, sb_bad_features2] : [0];
  if (version === 4) {
    // Directory v1 was removed from XFS long ago; only the v2 format is read.
    if (!has(sb_versionnum, VERSION_DIRV2BIT)) throw new UnsupportedError('xfs v4 superblock', ['dir-v1']);
    if (features2.some((f) => has(f, VERSION2_CRCBIT))) throw new CorruptError(`${W}.sb_features2`, 'CRC bit on a v4 superblock', 200);
    hasFtype = features2.some((f) => has(f, VERSION2_FTYPE));
  } else {
    hasCrc = true;
    const sb_features_incompat = u32be(b, 216, W);
    const sb_crc = u32le(b, 224, W);
    // Checksum over the whole sector with sb_crc zeroed (xfs_sb.c xfs_sb_read_verify, xfs_cksum.h).
    slice(b, 0, sb_sectsize, W);
    const want = xfsCksum(b, sb_sectsize, 224);
    if (want !== sb_crc) throw new CorruptError(`${W}.sb_crc`, `checksum 0x${sb_crc.toString(16)} != computed 0x${want.toString(16)}`, 224);
    if (has(sb_features_incompat, INCOMPAT_NEEDSREPAIR)) throw new UnsupportedError('xfs superblock', ['needsrepair']);
    const unknown = setBits(sb_features_incompat).filter((v) => !INCOMPAT_SUPPORTED.includes(v));
    if (unknown.length) {
      throw new UnsupportedError('xfs superblock', unknown.map((v) => INCOMPAT_NAMES.find(([k]) => k === v)?.[1] ?? `incompat-0x${v.toString(16)}`));
    }
    hasFtype = has(sb_features_incompat, INCOMPAT_FTYPE);
    hasBigtime = has(sb_features_incompat, INCOMPAT_BIGTIME);
    hasNrext64 = has(sb_features_incompat, INCOMPAT_NREXT64);
    if (has(sb_features_incompat, INCOMPAT_META_UUID)) metaUuid = slice(b, 248, 16, W);
    // ro_compat (finobt, rmapbt, reflink, inobtcount) only matters to writers.
  }

  const dirBlkSize = pow2(sb_blocklog + sb_dirblklog);
  return {
    version: version as 4 | 5,
    blockSize: sb_blocksize,
    blockLog: sb_blocklog,
    sectSize: sb_sectsize,
    inodeSize: sb_inodesize,
    inodeLog: sb_inodelog,
    inopbLog: sb_inopblog,
    agBlocks: sb_agblocks,
    agBlkLog: sb_agblklog,
    agCount: sb_agcount,
    dBlocks,
    rootIno: sb_rootino,
    dirBlkLog: sb_dirblklog,
    dirBlkSize,
    dirBlkFsbs: pow2(sb_dirblklog),
    hasFtype,
    hasCrc,
    hasBigtime,
    hasNrext64,
    asciiCi: has(sb_versionnum, VERSION_BORGBIT),
    label: cString(b, 108, 12, W),
    uuid: uuidString(sb_uuid),
    metaUuid: new Uint8Array(metaUuid),
  };
}
