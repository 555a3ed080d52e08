/**
 * The directory-entry file type byte that ext2/3/4 (EXT4_FT_*), XFS (XFS_DIR3_FT_*), EROFS
 * (EROFS_FT_*) and btrfs (BTRFS_FT_*) share with Linux's DT_* order: 0 unknown, 1 regular file,
 * 2 directory, 3–6 devices/FIFO/socket, 7 symlink.
 */
import type { NodeKind } from './types.ts';

export function kindOfFileType(ft: number): NodeKind | 'unknown' {
  switch (ft) {
    case 1:
      return 'file';
    case 2:
      return 'dir';
    case 7:
      return 'symlink';
    case 0:
      return 'unknown';
    default:
      return 'other';
  }
}

/** POSIX `st_mode` type bits (S_IFMT: 0o170000), shared by every Unix filesystem's inode. */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

/** The node kind of a POSIX mode (the mode is ≤ 16 bits, so `&` is exact). */
export function kindOfMode(mode: number): NodeKind {
  switch (mode & S_IFMT) {
    case S_IFDIR:
      return 'dir';
    case S_IFREG:
      return 'file';
    case S_IFLNK:
      return 'symlink';
    default:
      return 'other';
  }
}
