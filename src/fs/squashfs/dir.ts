/**
 * Directory listings (squashfs_fs.h squashfs_dir_header / squashfs_dir_entry / squashfs_dir_index).
 * A listing is a run of headers {count − 1, start_block, inode_number}, each followed by at most
 * 256 entries {offset, inode_number delta (s16), type, size − 1, name}. Entries are sorted by name
 * (strcmp order), which lets a lookup stop early; extended directories carry an index of
 * {index, start_block, name} per metadata block crossed, so a lookup can start near its name.
 */
import { CorruptError } from '../../errors.ts';
import { bound, u16le, u32le } from '../../io/bytes.ts';
import type { Context } from '../../limits.ts';
import type { SqNode } from './inode.ts';
import { dirTableEnd } from './inode.ts';
import type { MetaPos, MetadataReader } from './metadata.ts';
import { METADATA_SIZE, type Superblock } from './superblock.ts';

export interface SqDirEntry {
  readonly name: Uint8Array;
  readonly type: number;
  /** Inode reference: block relative to the inode table, offset in it. */
  readonly inodeBlock: number;
  readonly inodeOffset: number;
  readonly inodeNumber: number;
}

const W = 'squashfs.Dir';

/** Byte order comparison (strcmp on names without NULs). */
export function compareNames(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Walks a listing from `pos` over `remaining` bytes, yielding entries in stored order. */
export async function* walkListing(
  meta: MetadataReader, sb: Superblock, ctx: Context, dir: SqNode, pos: MetaPos, remaining: number,
): AsyncGenerator<SqDirEntry> {
  const end = dirTableEnd(sb);
  const inodeTableLen = sb.directoryTableStart - sb.inodeTableStart;
  let seen = 0;
  while (remaining > 0) {
    if (remaining < 12) throw new CorruptError(`${W}.header`, `${remaining} trailing bytes in directory ${dir.id}`, pos.block);
    const h = await meta.read(pos, 12, end, W);
    remaining -= 12;
    const count = u32le(h, 0, W) + 1;
    const start_block = u32le(h, 4, W);
    const inode_number = u32le(h, 8, W);
    // squashfs-tools never writes more than 256 entries per header (SQUASHFS_DIR_COUNT).
    bound(count, 1, 256, `${W}.header.count`, pos.block);
    bound(start_block, 0, inodeTableLen - 1, `${W}.header.start_block`, pos.block);
    for (let i = 0; i < count; i++) {
      if (remaining < 8) throw new CorruptError(`${W}.entry`, `entry ${i} of directory ${dir.id} overruns its listing`, pos.block);
      const e = await meta.read(pos, 8, end, W);
      remaining -= 8;
      const offset = u16le(e, 0, W);
      const delta = u16le(e, 2, W);
      const type = u16le(e, 4, W);
      const size = u16le(e, 6, W) + 1;
      bound(offset, 0, METADATA_SIZE - 1, `${W}.entry.offset`, pos.block);
      bound(type, 1, 7, `${W}.entry.type`, pos.block);
      bound(size, 1, 256, `${W}.entry.size`, pos.block);
      if (size > remaining) throw new CorruptError(`${W}.entry.size`, `name of ${size} bytes overruns directory ${dir.id}`, pos.block);
      const name = await meta.read(pos, size, end, W);
      remaining -= size;
      const number = inode_number + (delta >= 0x8000 ? delta - 0x10000 : delta);
      bound(number, 1, sb.inodes, `${W}.entry.inode_number`, pos.block);
      if (number === dir.id) throw new CorruptError(`${W}.entry`, `directory ${dir.id} contains itself`, pos.block);
      if (name.includes(0x2f) || name.includes(0)) throw new CorruptError(`${W}.entry.name`, `name with '/' or NUL in directory ${dir.id}`, pos.block);
      if (++seen > ctx.limits.dirEntries) throw new CorruptError(`${W}`, `directory ${dir.id} has more than ${ctx.limits.dirEntries} entries`, pos.block);
      yield { name, type, inodeBlock: start_block, inodeOffset: offset, inodeNumber: number };
    }
  }
}

/** Where a lookup of `name` starts: the directory index (extended dirs) or the listing's start. */
export async function lookupStart(meta: MetadataReader, sb: Superblock, dir: SqNode, name: Uint8Array): Promise<{ pos: MetaPos; remaining: number }> {
  const dirSize = dir.dirSize as number;
  let block = dir.dirStartBlock as number;
  let skipped = 0;
  const count = dir.indexCount ?? 0;
  if (count > 0 && dir.indexPos) {
    const ipos = { ...dir.indexPos };
    const end = sb.directoryTableStart;
    const tableLen = dirTableEnd(sb) - sb.directoryTableStart;
    let last = 0;
    for (let i = 0; i < count; i++) {
      const h = await meta.read(ipos, 12, end, `${W}.index`);
      const index = u32le(h, 0, `${W}.index`);
      const start_block = u32le(h, 4, `${W}.index`);
      const size = bound(u32le(h, 8, `${W}.index`) + 1, 1, 256, `${W}.index.size`, ipos.block);
      const iname = await meta.read(ipos, size, end, `${W}.index`);
      if (compareNames(iname, name) > 0) break;
      bound(index, last, dirSize, `${W}.index.index`, ipos.block);
      bound(start_block, 0, tableLen - 1, `${W}.index.start_block`, ipos.block);
      last = index;
      skipped = index;
      block = start_block;
    }
  }
  return {
    pos: { block: sb.directoryTableStart + block, offset: ((dir.dirOffset as number) + skipped) % METADATA_SIZE },
    remaining: dirSize - skipped,
  };
}
