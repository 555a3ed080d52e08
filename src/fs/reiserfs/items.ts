/**
 * Item bodies (kernel fs/reiserfs/reiserfs.h): stat data (`struct stat_data_v1`, 32 bytes, for 3.5
 * items; `struct stat_data`, 44 bytes, for 3.6 items) and directory items (ih_entry_count
 * `struct reiserfs_de_head` of 16 bytes: deh_offset, deh_dir_id, deh_objectid, deh_location, deh_state,
 * followed by the names packed from the end of the item, entry 0 last).
 */
import { CorruptError } from '../../errors.ts';
import { u16le, u32le, u64le } from '../../io/bytes.ts';
import { KEY_FORMAT_3_5 } from './key.ts';
import type { ItemHead } from './node.ts';
export { kindOfMode } from '../filetype.ts';

export const SD_V1_SIZE = 32;
export const SD_V2_SIZE = 44;
export const DEH_SIZE = 16;
/** deh_state bit DEH_Visible (reiserfs.h): entries without it are deleted/hidden. */
const DEH_VISIBLE = 1 << 2;

const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

export interface StatData {
  readonly mode: number;
  readonly nlink: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtime: number;
}

/**
 * Decodes a stat-data item; `maxSize` is the largest file the format can hold (s_maxbytes) so a
 * size such as 2^60 is refused here rather than trusted later.
 */
export function decodeStatData(body: Uint8Array, ih: ItemHead, maxSize: number, at: number): StatData {
  const W = 'reiserfs.StatData';
  if (ih.version === KEY_FORMAT_3_5) {
    if (body.length !== SD_V1_SIZE) throw new CorruptError(W, `3.5 stat data of ${body.length} bytes (expected ${SD_V1_SIZE})`, at);
    const sd_mode = u16le(body, 0, W);
    const sd_nlink = u16le(body, 2, W);
    const sd_uid = u16le(body, 4, W);
    const sd_gid = u16le(body, 6, W);
    const sd_size = u32le(body, 8, W);
    const sd_mtime = u32le(body, 16, W);
    return { mode: sd_mode, nlink: sd_nlink, uid: sd_uid, gid: sd_gid, size: checkSize(BigInt(sd_size), maxSize, at), mtime: sd_mtime };
  }
  if (body.length !== SD_V2_SIZE) throw new CorruptError(W, `3.6 stat data of ${body.length} bytes (expected ${SD_V2_SIZE})`, at);
  const sd_mode = u16le(body, 0, W);
  const sd_nlink = u32le(body, 4, W);
  const sd_size = u64le(body, 8, W);
  const sd_uid = u32le(body, 16, W);
  const sd_gid = u32le(body, 20, W);
  const sd_mtime = u32le(body, 28, W);
  return { mode: sd_mode, nlink: sd_nlink, uid: sd_uid, gid: sd_gid, size: checkSize(sd_size, maxSize, at), mtime: sd_mtime };
}

function checkSize(size: bigint, maxSize: number, at: number): number {
  if (size > BigInt(maxSize)) throw new CorruptError('reiserfs.StatData', `sd_size ${size} exceeds the format's maximum ${maxSize}`, at + 8);
  return Number(size);
}

export interface DirEntryRaw {
  /** deh_offset: hash value (bits 7..30) and generation number (bits 0..6). */
  readonly offset: number;
  readonly dirId: number;
  readonly objectId: number;
  readonly name: Uint8Array;
}

/**
 * Decodes the visible entries of a directory item. Each name runs from deh_location to the previous
 * entry's location (the item end for entry 0); 3.6 pads names with NULs to 8 bytes, so a name ends at
 * its first NUL. Locations must lie after the heads, strictly decrease and leave a non-empty name.
 */
export function decodeDirItem(body: Uint8Array, ih: ItemHead, at: number): DirEntryRaw[] {
  const W = 'reiserfs.DirEntry';
  const count = ih.entryCount;
  const headsEnd = count * DEH_SIZE;
  if (count < 1 || headsEnd > body.length) {
    throw new CorruptError(W, `ih_entry_count ${count} does not fit a ${body.length}-byte directory item`, at);
  }
  const out: DirEntryRaw[] = [];
  let end = body.length;
  let prevOffset = -1;
  for (let i = 0; i < count; i++) {
    const o = i * DEH_SIZE;
    const deh_offset = u32le(body, o, W);
    const deh_dir_id = u32le(body, o + 4, W);
    const deh_objectid = u32le(body, o + 8, W);
    const deh_location = u16le(body, o + 12, W);
    const deh_state = u16le(body, o + 14, W);
    if (deh_location < headsEnd || deh_location >= end) {
      throw new CorruptError(W, `entry ${i}: deh_location ${deh_location} outside [${headsEnd}, ${end}) (overlaps the headers or the next name)`, at + o + 12);
    }
    // Entries are sorted by deh_offset (hash order); lookups by hash rely on it.
    if (deh_offset <= prevOffset) throw new CorruptError(W, `entry ${i}: deh_offset ${deh_offset} not above the previous entry's`, at + o);
    prevOffset = deh_offset;
    let name = body.subarray(deh_location, end);
    end = deh_location;
    if ((deh_state & DEH_VISIBLE) === 0) continue;
    const nul = name.indexOf(0);
    if (nul >= 0) name = name.subarray(0, nul);
    if (name.length === 0) throw new CorruptError(W, `entry ${i}: empty name`, at + o);
    out.push({ offset: deh_offset, dirId: deh_dir_id, objectId: deh_objectid, name });
  }
  return out;
}
