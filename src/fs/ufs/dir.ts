/**
 * Directory blocks: FreeBSD ufs/ufs/dir.h (`struct direct`, 4.4BSD: d_ino u32, d_reclen u16,
 * d_type u8, d_namlen u8) and illumos sys/fs/ufs_fsdir.h (`struct direct`, Solaris/4.2BSD: d_ino
 * u32, d_reclen u16, d_namlen u16). Entries never cross a DIRBLKSIZ (512-byte) chunk.
 */
import { CorruptError } from '../../errors.ts';
import { u16be, u16le, u32be, u32le, u8 } from '../../io/bytes.ts';
import type { DirEntry } from '../types.ts';
import type { UfsFlavour } from './superblock.ts';

/** dir.h DIRBLKSIZ (DEV_BSIZE) and UFS_MAXNAMLEN. */
export const DIRBLKSIZ = 512;
export const MAXNAMLEN = 255;
/** Smallest record: 8-byte header + 1 name byte + NUL, rounded to 4 (dir.h DIRECTSIZ(1)). */
const MIN_RECLEN = 12;

/** dir.h DT_* → our kinds (DT_WHT whiteouts are skipped by the caller). */
const DT_KIND: ReadonlyMap<number, DirEntry['kind']> = new Map([
  [0, 'unknown'],
  [1, 'other'],
  [2, 'other'],
  [4, 'dir'],
  [6, 'other'],
  [8, 'file'],
  [10, 'symlink'],
  [12, 'other'],
]);
const DT_WHT = 14;

export interface RawDirect {
  readonly ino: number;
  readonly name: Uint8Array;
  readonly kind: DirEntry['kind'];
}

/**
 * Decodes one directory chunk (≤ DIRBLKSIZ bytes, starting at byte `base` of the directory) into its
 * live entries. Each record is checked as FreeBSD's ufs_dirbadentry does: d_reclen a multiple of 4,
 * at least DIRECTSIZ(d_namlen), within the chunk; d_namlen ≤ MAXNAMLEN; the walk always advances.
 */
export function decodeDirChunk(chunk: Uint8Array, flavour: UfsFlavour, littleEndian: boolean, base: number, maxIno: number): RawDirect[] {
  const u16 = littleEndian ? u16le : u16be;
  const u32 = littleEndian ? u32le : u32be;
  const out: RawDirect[] = [];
  let off = 0;
  while (off < chunk.length) {
    const at = base + off;
    const remaining = chunk.length - off;
    if (remaining < MIN_RECLEN) throw new CorruptError('ufs.Direct', `${remaining} bytes left in a directory chunk, too few for an entry`, at);
    const d_ino = u32(chunk, off, 'ufs.Direct');
    const d_reclen = u16(chunk, off + 4, 'ufs.Direct');
    let d_type = 0;
    let d_namlen: number;
    if (flavour === 'bsd44') {
      d_type = u8(chunk, off + 6, 'ufs.Direct');
      d_namlen = u8(chunk, off + 7, 'ufs.Direct');
    } else {
      d_namlen = u16(chunk, off + 6, 'ufs.Direct');
    }
    if (d_reclen < MIN_RECLEN || d_reclen % 4 !== 0 || d_reclen > remaining) {
      throw new CorruptError('ufs.Direct', `d_reclen ${d_reclen} invalid (${remaining} bytes left in the ${DIRBLKSIZ}-byte chunk)`, at);
    }
    if (d_ino !== 0) {
      if (d_namlen < 1 || d_namlen > MAXNAMLEN || d_namlen > d_reclen - 8 - 1) {
        throw new CorruptError('ufs.Direct', `d_namlen ${d_namlen} invalid for d_reclen ${d_reclen}`, at);
      }
      const name = chunk.subarray(off + 8, off + 8 + d_namlen);
      if (name.includes(0) || name.includes(0x2f)) throw new CorruptError('ufs.Direct', 'name contains NUL or "/"', at);
      if (d_type !== DT_WHT) {
        if (d_ino >= maxIno) throw new CorruptError('ufs.Direct', `d_ino ${d_ino} out of range (${maxIno} inodes)`, at);
        out.push({ ino: d_ino, name: name.slice(), kind: DT_KIND.get(d_type) ?? 'unknown' });
      }
    }
    off += d_reclen; // d_reclen >= 12: progress is guaranteed
  }
  return out;
}
