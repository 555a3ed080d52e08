/**
 * EROFS directory blocks (erofs_fs.h struct erofs_dirent {nid u64, nameoff u16, file_type u8,
 * reserved u8}): a block starts with its dirents; the first nameoff / 12 is their count; names lie
 * between consecutive nameoffs (the last one up to the block's end or a NUL). Entries are sorted by
 * name across the whole directory, so a lookup binary-searches blocks by their first name, then
 * the block (fs/erofs/namei.c).
 */
import { CorruptError } from '../../errors.ts';
import { bound, u16le, u64le, u8 } from '../../io/bytes.ts';
import type { NodeKind } from '../types.ts';

export interface ErDirent {
  readonly nid: number;
  readonly name: Uint8Array;
  readonly fileType: number;
}

const W = 'erofs.Dirent';
const DIRENT_SIZE = 12;

/** Decodes one directory block (`blk` is its used part: a full block, or the directory's tail). */
export function decodeDirBlock(blk: Uint8Array, dirNid: number, blockIndex: number, maxNid: number): ErDirent[] {
  if (blk.length < DIRENT_SIZE) throw new CorruptError(W, `directory ${dirNid} block ${blockIndex} of ${blk.length} bytes holds no dirent`);
  const first = u16le(blk, 8, W);
  if (first % DIRENT_SIZE !== 0) throw new CorruptError(`${W}.nameoff`, `first nameoff ${first} is not a multiple of 12 (directory ${dirNid} block ${blockIndex})`);
  const count = bound(first / DIRENT_SIZE, 1, Math.floor(blk.length / DIRENT_SIZE), `${W}.nameoff`);
  const out: ErDirent[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * DIRENT_SIZE;
    const nid = u64le(blk, o, W);
    const nameoff = u16le(blk, o + 8, W);
    const file_type = u8(blk, o + 10, W);
    const nextoff = i + 1 < count ? u16le(blk, o + DIRENT_SIZE + 8, W) : blk.length;
    // Names follow the dirents, in order, inside the block.
    if (nameoff < first || nameoff >= nextoff || nextoff > blk.length) {
      throw new CorruptError(`${W}.nameoff`, `name ${i} at ${nameoff}..${nextoff} out of order or outside the ${blk.length}-byte block (directory ${dirNid} block ${blockIndex})`);
    }
    let name = blk.subarray(nameoff, nextoff);
    if (i + 1 === count) {
      const nul = name.indexOf(0);
      if (nul >= 0) name = name.subarray(0, nul);
    }
    if (name.length === 0 || name.length > 255) throw new CorruptError(`${W}.name`, `name of ${name.length} bytes (directory ${dirNid} block ${blockIndex})`);
    if (nid > BigInt(maxNid)) throw new CorruptError(`${W}.nid`, `nid ${nid} outside the image (directory ${dirNid})`);
    out.push({ nid: Number(nid), name, fileType: file_type });
  }
  return out;
}
