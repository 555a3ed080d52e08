/**
 * The ReiserFS superblock (kernel fs/reiserfs/reiserfs.h `struct reiserfs_super_block_v1` and
 * `struct reiserfs_super_block`): 64 KiB into the device (REISERFS_DISK_OFFSET_IN_BYTES), or 8 KiB for
 * the very first 3.5 layout (REISERFS_OLD_DISK_OFFSET_IN_BYTES), little-endian.
 */
import { CorruptError } from '../../errors.ts';
import { bound, bytesEqual, cString, slice, u16le, u32le, uuidString } from '../../io/bytes.ts';
import type { ByteSource } from '../../io/source.ts';

export const REISERFS_DISK_OFFSET_IN_BYTES = 64 * 1024;
export const REISERFS_OLD_DISK_OFFSET_IN_BYTES = 8 * 1024;
/** Bytes read for a superblock (the 3.6 struct is 204 bytes). */
export const SUPERBLOCK_BYTES = 204;
/** reiserfs.h MAX_HEIGHT: the S+tree never has more levels than this. */
export const MAX_HEIGHT = 5;

const MAGIC_35 = new TextEncoder().encode('ReIsErFs');
const MAGIC_36 = new TextEncoder().encode('ReIsEr2Fs');
/** Non-standard (relocated) journal; s_version then says 3.5 or 3.6. */
const MAGIC_JR = new TextEncoder().encode('ReIsEr3Fs');

/** s_hash_function_code values (reiserfs.h). */
export const UNSET_HASH = 0;
export const TEA_HASH = 1;
export const YURA_HASH = 2;
export const R5_HASH = 3;

/** s_version (REISERFS_VERSION_1/2 in reiserfs_fs.h, sb_version in reiserfsprogs). */
const REISERFS_VERSION_2 = 2;

export interface Superblock {
  /** Byte offset of the superblock in the device. */
  readonly location: number;
  readonly magic: '3.5' | '3.6' | 'relocated-journal';
  /** On-disk format: 3.5 (v1 keys and stat data only) or 3.6. */
  readonly format: '3.5' | '3.6';
  readonly blockCount: number;
  readonly rootBlock: number;
  readonly blockSize: number;
  readonly treeHeight: number;
  readonly hashCode: number;
  readonly label: string | undefined;
  readonly uuid: string | undefined;
}

/** Magic check only (probe): the format name, or null. */
export function matchMagic(raw: Uint8Array): Superblock['magic'] | null {
  const m = slice(raw, 52, 10, 'reiserfs.Superblock');
  if (bytesEqual(m.subarray(0, 9), MAGIC_36)) return '3.6';
  if (bytesEqual(m.subarray(0, 9), MAGIC_JR)) return 'relocated-journal';
  if (bytesEqual(m.subarray(0, 8), MAGIC_35)) return '3.5';
  return null;
}

/** Finds the superblock (64 KiB, then 8 KiB); null when neither holds a magic. */
export async function findSuperblock(src: ByteSource): Promise<{ raw: Uint8Array; location: number } | null> {
  for (const location of [REISERFS_DISK_OFFSET_IN_BYTES, REISERFS_OLD_DISK_OFFSET_IN_BYTES]) {
    if (location + SUPERBLOCK_BYTES > src.size) continue;
    const raw = await src.read(location, SUPERBLOCK_BYTES);
    if (matchMagic(raw)) return { raw, location };
  }
  return null;
}

/** Reads the raw fields by offset (names as in the kernel struct), then validates them. */
export function decodeSuperblock(raw: Uint8Array, location: number, deviceSize: number): Superblock {
  const W = 'reiserfs.Superblock';
  const s_block_count = u32le(raw, 0, W);
  const s_root_block = u32le(raw, 8, W);
  const s_blocksize = u16le(raw, 44, W);
  const s_hash_function_code = u32le(raw, 64, W);
  const s_tree_height = u16le(raw, 68, W);
  const s_version = u16le(raw, 72, W);
  const s_uuid = slice(raw, 84, 16, W);
  const magic = matchMagic(raw);
  if (!magic) throw new CorruptError(W, 'no ReiserFS magic', location + 52);

  // Block sizes the format allows: a power of two from 512 to 8192 (reiserfs.h, mkreiserfs -b).
  if (s_blocksize < 512 || s_blocksize > 8192 || (s_blocksize & (s_blocksize - 1)) !== 0) {
    throw new CorruptError(W, `s_blocksize ${s_blocksize} is not a power of two in [512, 8192]`, location + 44);
  }
  const blockSize = s_blocksize;
  const sbBlock = Math.floor(location / blockSize);
  bound(s_block_count, sbBlock + 2, Math.floor(deviceSize / blockSize), `${W}.s_block_count (device holds ${Math.floor(deviceSize / blockSize)} blocks)`, location);
  bound(s_root_block, sbBlock + 1, s_block_count - 1, `${W}.s_root_block`, location + 8);
  // s_tree_height counts the levels plus one (a lone root leaf has height 2, mkreiserfs/do_balan.c).
  bound(s_tree_height, 2, MAX_HEIGHT + 1, `${W}.s_tree_height`, location + 68);

  let format: Superblock['format'];
  if (magic === '3.5') format = '3.5';
  else if (magic === '3.6') format = '3.6';
  else format = s_version === REISERFS_VERSION_2 ? '3.6' : '3.5';

  // The label and UUID exist only in the 3.6 superblock (struct reiserfs_super_block beyond s_v1).
  let label: string | undefined;
  let uuid: string | undefined;
  if (format === '3.6') {
    const l = cString(raw, 100, 16, W);
    if (l) label = l;
    if (s_uuid.some((x) => x !== 0)) uuid = uuidString(s_uuid);
  }
  return {
    location,
    magic,
    format,
    blockCount: s_block_count,
    rootBlock: s_root_block,
    blockSize,
    treeHeight: s_tree_height,
    hashCode: s_hash_function_code,
    label,
    uuid,
  };
}
