/**
 * The UFS superblock (`struct fs`): FreeBSD sys/ufs/ffs/fs.h for UFS1/UFS2, illumos
 * usr/src/uts/common/sys/fs/ufs_fs.h for Solaris UFS1. Both share the first 212 bytes and the magic
 * at byte 1372; they differ in the tail (Solaris keeps a 512-byte fs_fsmnt and puts fs_version /
 * fs_logbno where 4.4BSD keeps fs_maxsymlinklen / fs_old_inodefmt).
 */
import { CorruptError } from '../../errors.ts';
import { bound, cString, i32be, i32le, mulSafe, u32be, u32le, u64be, u64le, toSafe } from '../../io/bytes.ts';
import type { ByteSource } from '../../io/source.ts';

/** FreeBSD fs.h FS_UFS1_MAGIC / FS_UFS2_MAGIC; illumos ufs_fs.h MTB_UFS_MAGIC (multi-terabyte UFS1). */
export const FS_UFS1_MAGIC = 0x011954;
export const FS_UFS2_MAGIC = 0x19540119;
export const MTB_UFS_MAGIC = 0xdecade;
/** fs.h FS_44INODEFMT: 4.4BSD inodes and directories (d_type + 8-bit d_namlen). */
export const FS_44INODEFMT = 2;
/** fs.h SBLOCKSEARCH order: UFS2 (64 KiB), UFS1 (8 KiB), floppy (0), piggy (256 KiB). */
export const SBLOCK_SEARCH = [65536, 8192, 0, 262144] as const;
export const SBLOCK_UFS1 = 8192;
/** Bytes of `struct fs` that we decode (fs.h CTASSERT(sizeof(struct fs) == 1376)). */
export const SBLOCKSIZE = 1376;
/** ufs/dinode.h UFS_NDADDR / UFS_NIADDR. */
export const NDADDR = 12;
export const NIADDR = 3;

/**
 * Directory and inode layout.
 * - 'bsd44': 4.4BSD/FreeBSD/NetBSD (`fs_old_inodefmt` = FS_44INODEFMT): direct = {d_ino u32,
 *   d_reclen u16, d_type u8, d_namlen u8}; UFS1 inode uid/gid at 112/116.
 * - 'solaris': Solaris/illumos (and 4.2BSD) UFS1: direct = {d_ino u32, d_reclen u16, d_namlen u16};
 *   icommon uid/gid at 116/120, shadow at 112.
 */
export type UfsFlavour = 'bsd44' | 'solaris';

export interface Superblock {
  readonly version: 1 | 2;
  readonly littleEndian: boolean;
  readonly flavour: UfsFlavour;
  /** Byte offset of the superblock in the source. */
  readonly location: number;
  readonly magic: number;
  readonly bsize: number;
  readonly fsize: number;
  readonly frag: number;
  readonly bshift: number;
  readonly fshift: number;
  readonly fragshift: number;
  readonly ncg: number;
  readonly ipg: number;
  readonly fpg: number;
  readonly iblkno: number;
  /** UFS1 cylinder-group rotation (cgstart = cgbase + cgoffset * (c & ~cgmask)); 0 for UFS2. */
  readonly cgoffset: number;
  readonly cgmask: number;
  /** Size of the filesystem in fragments. */
  readonly size: number;
  readonly nindir: number;
  readonly inopb: number;
  /** Bytes per on-disk inode (128 UFS1, 256 UFS2). */
  readonly inodeSize: number;
  /** Bytes per block pointer (4 UFS1, 8 UFS2). */
  readonly ptrSize: number;
  /** Fast symlinks shorter than this live in the inode's block-pointer area (0: none, by size). */
  readonly maxsymlinklen: number;
  readonly volname: string;
  readonly id: readonly [number, number];
}

interface Reader {
  i32(b: Uint8Array, off: number, what: string): number;
  u32(b: Uint8Array, off: number, what: string): number;
  u64(b: Uint8Array, off: number, what: string): number;
}

export function readerFor(littleEndian: boolean): Reader {
  return littleEndian
    ? { i32: i32le, u32: u32le, u64: (b, o, w) => toSafe(u64le(b, o, w), w) }
    : { i32: i32be, u32: u32be, u64: (b, o, w) => toSafe(u64be(b, o, w), w) };
}

/** The magic at fs_magic (1372) in either byte order, or null when this is not a UFS superblock. */
export function sniffMagic(sb: Uint8Array): { magic: number; littleEndian: boolean } | null {
  if (sb.length < SBLOCKSIZE) return null;
  for (const le of [true, false]) {
    const m = le ? u32le(sb, 1372, 'ufs.fs_magic') : u32be(sb, 1372, 'ufs.fs_magic');
    if (m === FS_UFS1_MAGIC || m === FS_UFS2_MAGIC || m === MTB_UFS_MAGIC) return { magic: m, littleEndian: le };
  }
  return null;
}

function log2Exact(v: number, what: string, off: number): number {
  const n = Math.log2(v);
  if (!Number.isInteger(n)) throw new CorruptError(what, `${v} is not a power of two`, off);
  return n;
}

/**
 * Decodes and validates one superblock read at byte `location`. Every geometry field used to compute
 * an address is checked against the others (fs.h relations: frag = bsize / fsize, bshift = log2 bsize,
 * nindir = bsize / ptrsize, inopb = bsize / inodesize), so later arithmetic stays in range.
 */
export function decodeSuperblock(sb: Uint8Array, location: number): Superblock {
  const sniff = sniffMagic(sb);
  if (!sniff) throw new CorruptError('ufs.Superblock', 'bad magic', location + 1372);
  const { magic, littleEndian } = sniff;
  const r = readerFor(littleEndian);
  const at = (o: number) => location + o;
  const version = magic === FS_UFS2_MAGIC ? 2 : 1;

  // Raw fields (names as in struct fs).
  const fs_iblkno = r.i32(sb, 16, 'ufs.fs_iblkno');
  const fs_old_cgoffset = r.i32(sb, 24, 'ufs.fs_old_cgoffset');
  const fs_old_cgmask = r.u32(sb, 28, 'ufs.fs_old_cgmask');
  const fs_old_size = r.i32(sb, 36, 'ufs.fs_old_size');
  const fs_ncg = r.u32(sb, 44, 'ufs.fs_ncg');
  const fs_bsize = r.i32(sb, 48, 'ufs.fs_bsize');
  const fs_fsize = r.i32(sb, 52, 'ufs.fs_fsize');
  const fs_frag = r.i32(sb, 56, 'ufs.fs_frag');
  const fs_bshift = r.i32(sb, 80, 'ufs.fs_bshift');
  const fs_fshift = r.i32(sb, 84, 'ufs.fs_fshift');
  const fs_fragshift = r.i32(sb, 96, 'ufs.fs_fragshift');
  const fs_nindir = r.i32(sb, 116, 'ufs.fs_nindir');
  const fs_inopb = r.u32(sb, 120, 'ufs.fs_inopb');
  const fs_id0 = r.u32(sb, 144, 'ufs.fs_id');
  const fs_id1 = r.u32(sb, 148, 'ufs.fs_id');
  const fs_ipg = r.u32(sb, 184, 'ufs.fs_ipg');
  const fs_fpg = r.i32(sb, 188, 'ufs.fs_fpg');
  // 4.4BSD tail (meaningless on Solaris, where 1320/1324 are fs_version/fs_logbno).
  const fs_maxsymlinklen = r.i32(sb, 1320, 'ufs.fs_maxsymlinklen');
  const fs_old_inodefmt = r.i32(sb, 1324, 'ufs.fs_old_inodefmt');

  // Geometry.
  bound(fs_bsize, 4096, 65536, 'ufs.fs_bsize', at(48));
  const bshift = log2Exact(fs_bsize, 'ufs.fs_bsize', at(48));
  bound(fs_fsize, 512, fs_bsize, 'ufs.fs_fsize', at(52));
  const fshift = log2Exact(fs_fsize, 'ufs.fs_fsize', at(52));
  const frag = fs_bsize / fs_fsize;
  if (frag > 8) throw new CorruptError('ufs.fs_frag', `bsize/fsize = ${frag} exceeds 8`, at(56));
  if (fs_frag !== frag) throw new CorruptError('ufs.fs_frag', `${fs_frag} != bsize/fsize = ${frag}`, at(56));
  const fragshift = bshift - fshift;
  if (fs_bshift !== bshift) throw new CorruptError('ufs.fs_bshift', `${fs_bshift} != log2(${fs_bsize})`, at(80));
  if (fs_fshift !== fshift) throw new CorruptError('ufs.fs_fshift', `${fs_fshift} != log2(${fs_fsize})`, at(84));
  if (fs_fragshift !== fragshift) throw new CorruptError('ufs.fs_fragshift', `${fs_fragshift} != ${fragshift}`, at(96));

  const ptrSize = version === 2 ? 8 : 4;
  const inodeSize = version === 2 ? 256 : 128;
  if (fs_nindir !== fs_bsize / ptrSize) throw new CorruptError('ufs.fs_nindir', `${fs_nindir} != bsize/${ptrSize}`, at(116));
  if (fs_inopb !== fs_bsize / inodeSize) throw new CorruptError('ufs.fs_inopb', `${fs_inopb} != bsize/${inodeSize}`, at(120));

  let size: number;
  if (version === 2) {
    size = r.u64(sb, 1080, 'ufs.fs_size');
    // A UFS2 superblock is only the primary one where fs_sblockloc says so (a copy elsewhere is a backup).
    const fs_sblockloc = r.u64(sb, 1000, 'ufs.fs_sblockloc');
    if (fs_sblockloc !== location) {
      throw new CorruptError('ufs.fs_sblockloc', `superblock found at ${location} but fs_sblockloc is ${fs_sblockloc}`, at(1000));
    }
  } else {
    size = fs_old_size;
  }
  bound(size, 1, Math.floor(Number.MAX_SAFE_INTEGER / fs_fsize), 'ufs.fs_size', at(version === 2 ? 1080 : 36));
  bound(fs_fpg, frag, 2 ** 31 - 1, 'ufs.fs_fpg', at(188));
  if (fs_fpg % frag !== 0) throw new CorruptError('ufs.fs_fpg', `${fs_fpg} not a multiple of fs_frag ${frag}`, at(188));
  // fs_ncg = howmany(fs_size, fs_fpg): a larger count would address cylinder groups past the end.
  const ncgWant = Math.ceil(size / fs_fpg);
  if (fs_ncg < 1 || fs_ncg !== ncgWant) {
    throw new CorruptError('ufs.fs_ncg', `${fs_ncg} cylinder groups for ${size} frags of ${fs_fpg} per group (want ${ncgWant})`, at(44));
  }
  bound(fs_ipg, fs_inopb, 2 ** 31, 'ufs.fs_ipg', at(184));
  if (fs_ipg % fs_inopb !== 0) throw new CorruptError('ufs.fs_ipg', `${fs_ipg} not a multiple of INOPB ${fs_inopb}`, at(184));
  // Inode numbers are 32-bit (ino_t on disk).
  if (mulSafe(fs_ncg, fs_ipg, 'ufs.fs_ipg') > 2 ** 32) throw new CorruptError('ufs.fs_ipg', `${fs_ncg} * ${fs_ipg} inodes exceed 2^32`, at(184));
  // The inode table must lie inside the group: iblkno + ipg/INOPB blocks <= fpg.
  const inodeFrags = (fs_ipg / fs_inopb) * frag;
  bound(fs_iblkno, 1, fs_fpg - inodeFrags, 'ufs.fs_iblkno', at(16));

  let cgoffset = 0;
  let cgmask = 0xffffffff;
  if (version === 1) {
    // 4.2BSD rotated cylinder groups (cgstart). Bound so that cgstart stays inside the group's reach.
    cgoffset = bound(fs_old_cgoffset, 0, fs_fpg, 'ufs.fs_old_cgoffset', at(24));
    cgmask = fs_old_cgmask;
  }

  let flavour: UfsFlavour;
  let maxsymlinklen: number;
  if (version === 2) {
    flavour = 'bsd44';
    maxsymlinklen = bound(fs_maxsymlinklen, 0, (NDADDR + NIADDR) * 8, 'ufs.fs_maxsymlinklen', at(1320));
  } else if (magic === FS_UFS1_MAGIC && fs_old_inodefmt === FS_44INODEFMT) {
    flavour = 'bsd44';
    maxsymlinklen = bound(fs_maxsymlinklen, 0, (NDADDR + NIADDR) * 4, 'ufs.fs_maxsymlinklen', at(1320));
  } else {
    // Solaris has no fs_inodefmt: offset 1324 is fs_logbno (a sector number, never 2 since sectors
    // 0..15 are the boot block), and 4.2BSD wrote FS_42INODEFMT (-1). Both use 16-bit d_namlen.
    // Solaris decides fast symlinks by ic_blocks == 0, not by a length threshold.
    flavour = 'solaris';
    maxsymlinklen = 0;
  }
  const volname = version === 2 ? cString(sb, 680, 32, 'ufs.fs_volname') : '';
  return {
    version,
    littleEndian,
    flavour,
    location,
    magic,
    bsize: fs_bsize,
    fsize: fs_fsize,
    frag,
    bshift,
    fshift,
    fragshift,
    ncg: fs_ncg,
    ipg: fs_ipg,
    fpg: fs_fpg,
    iblkno: fs_iblkno,
    cgoffset,
    cgmask,
    size,
    nindir: fs_nindir,
    inopb: fs_inopb,
    inodeSize,
    ptrSize,
    maxsymlinklen,
    volname,
    id: [fs_id0, fs_id1],
  };
}

/**
 * Finds the superblock: fs.h SBLOCKSEARCH order. UFS2 must sit where its fs_sblockloc says; a UFS1
 * superblock is accepted only at 8 KiB or 0, since 64 KiB / 256 KiB can hold a backup copy of a UFS1
 * cylinder group (FreeBSD's ffs_sbget skips UFS1 there too).
 */
export async function findSuperblock(src: ByteSource): Promise<{ sb: Uint8Array; location: number; magic: number } | null> {
  for (const loc of SBLOCK_SEARCH) {
    if (loc + SBLOCKSIZE > src.size) continue;
    const sb = await src.read(loc, SBLOCKSIZE);
    const sniff = sniffMagic(sb);
    if (!sniff) continue;
    if (sniff.magic !== FS_UFS2_MAGIC && loc !== SBLOCK_UFS1 && loc !== 0) continue;
    if (sniff.magic === FS_UFS2_MAGIC) {
      const r = readerFor(sniff.littleEndian);
      let sl: number;
      try {
        sl = r.u64(sb, 1000, 'ufs.fs_sblockloc');
      } catch {
        continue;
      }
      if (sl !== loc) continue;
    }
    return { sb, location: loc, magic: sniff.magic };
  }
  return null;
}

/** Cylinder-group arithmetic (fs.h cgbase/cgstart/cgimin, ino_to_fsba/ino_to_fsbo), from checked values. */
export function inodeByteOffset(sb: Superblock, ino: number): number {
  const cg = Math.floor(ino / sb.ipg);
  const inCg = ino % sb.ipg;
  const cgbase = cg * sb.fpg;
  // (c & ~cgmask): 32-bit bit operations are exact here because cg < fs_ncg <= 2^32 / fs_ipg <= 2^28
  // (fs_ipg >= INOPB >= 16, checked in decodeSuperblock).
  const rot = sb.version === 1 ? sb.cgoffset * ((cg & ~sb.cgmask) >>> 0) : 0;
  const cgimin = cgbase + rot + sb.iblkno;
  const fsba = cgimin + Math.floor(inCg / sb.inopb) * sb.frag;
  const fsbo = inCg % sb.inopb;
  if (fsba + sb.frag > sb.size) throw new CorruptError('ufs.InodeTable', `inode ${ino} lies in frag ${fsba}, past the filesystem (${sb.size} frags)`);
  return fsba * sb.fsize + fsbo * sb.inodeSize;
}
