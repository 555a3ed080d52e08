/**
 * Directory entries (struct ext4_dir_entry_2, ext4.wiki "Directory Entries") and hash-tree lookups
 * (struct dx_root / dx_node, "Hash Tree Directories"). Linear parsing enforces what the kernel's
 * ext4_check_dir_entry() does: rec_len ≥ 12, 4-byte aligned, inside the block, name_len ≤ rec_len − 8,
 * so every step advances. The metadata_csum tail (a fake entry with file type 0xDE) is verified and
 * skipped. An htree that cannot be used (unknown hash, bad limits, too deep) falls back to a linear
 * scan; a checksum mismatch in an htree node is corruption.
 */
import { CorruptError } from '../../errors.ts';
import { u16le, u32le, u8 } from '../../io/bytes.ts';
import { crc32cRaw } from '../../io/checksum.ts';
import { kindOfFileType } from '../filetype.ts';
import type { NodeKind } from '../types.ts';
import { dxHash } from './dxhash.ts';
import type { Inode } from './inode.ts';
import type { Superblock } from './superblock.ts';

export interface RawDirEntry {
  readonly inode: number;
  readonly name: Uint8Array;
  readonly kind: NodeKind | 'unknown';
}


const EXT4_FT_DIR_CSUM = 0xde;
const DIRENT_TAIL_SIZE = 12;

/** ext4_rec_len_from_disk(): 64 KiB blocks encode 65536 as 0 or 65535 and use the low 2 bits as bits 16–17. */
export function recLenFromDisk(sb: Superblock, len: number): number {
  if (sb.blockSize < 65536) return len;
  if (len === 65535 || len === 0) return sb.blockSize;
  return (len & 65532) + (len & 3) * 65536;
}

export interface ParsedRegion {
  readonly entries: RawDirEntry[];
  /** Offset of a metadata_csum tail entry reached by the rec_len chain, else null. */
  readonly tail: number | null;
}

/**
 * Parses one directory region: a directory block, or an inline-data area. `offset` is where the
 * region lies in the image (for error messages), `name` names the directory.
 */
export function parseDirRegion(sb: Superblock, b: Uint8Array, where: string, offset: number | undefined): ParsedRegion {
  const entries: RawDirEntry[] = [];
  const tail = walkDirRegion(sb, b, where, offset, null, entries);
  return { entries, tail };
}

/**
 * Looks `name` up in one directory region without making its entries: the same walk and checks as
 * parseDirRegion (every entry, to the tail), names compared where they lie; only the entry found is
 * made. A leaf of a large directory holds a hundred entries or more, and a lookup wants one.
 */
export function findInDirRegion(sb: Superblock, b: Uint8Array, name: Uint8Array, where: string, offset: number | undefined): { found: RawDirEntry | null; tail: number | null } {
  const found: RawDirEntry[] = [];
  const tail = walkDirRegion(sb, b, where, offset, name, found);
  return { found: found[0] ?? null, tail };
}

/**
 * The walk of parseDirRegion and findInDirRegion: checks every entry of the rec_len chain and returns
 * the offset of the metadata_csum tail it reaches (else null). Without `find`, every entry goes to
 * `out`; with it, only the first whose name is `find`.
 */
function walkDirRegion(sb: Superblock, b: Uint8Array, where: string, offset: number | undefined, find: Uint8Array | null, out: RawDirEntry[]): number | null {
  const w = 'ext.DirEntry';
  let off = 0;
  while (off < b.length) {
    if (off + 8 > b.length) throw new CorruptError(w, `${where}: entry at ${off} overruns the ${b.length}-byte block`, offset);
    const inode = u32le(b, off, w);
    const rec_len = recLenFromDisk(sb, u16le(b, off + 4, w));
    const name_len = sb.hasFiletype ? u8(b, off + 6, w) : u16le(b, off + 6, w);
    const file_type = sb.hasFiletype ? u8(b, off + 7, w) : 0;
    if (rec_len < 12 || rec_len % 4 !== 0 || off + rec_len > b.length) {
      throw new CorruptError(w, `${where}: entry at ${off} has rec_len ${rec_len}`, offset === undefined ? undefined : offset + off);
    }
    if (inode === 0 && rec_len === DIRENT_TAIL_SIZE && off + rec_len === b.length && name_len === 0 && file_type === EXT4_FT_DIR_CSUM) return off;
    if (name_len + 8 > rec_len) {
      throw new CorruptError(w, `${where}: entry at ${off} has name_len ${name_len} beyond rec_len ${rec_len}`, offset === undefined ? undefined : offset + off);
    }
    if (inode !== 0) {
      if (inode > sb.inodesCount) throw new CorruptError(w, `${where}: entry at ${off} names inode ${inode} of ${sb.inodesCount}`, offset === undefined ? undefined : offset + off);
      if (name_len === 0) throw new CorruptError(w, `${where}: entry at ${off} has an empty name`, offset === undefined ? undefined : offset + off);
      const at = off + 8;
      let same = find !== null && out.length === 0 && name_len === find.length;
      for (let i = 0; i < name_len; i++) {
        const c = b[at + i] as number;
        if (c === 0x2f || c === 0) {
          throw new CorruptError('ext.DirEntryName', `${where}: entry at ${off} has a name containing '/' or NUL`, offset === undefined ? undefined : offset + off);
        }
        if (same && c !== (find as Uint8Array)[i]) same = false;
      }
      if (find === null || same) out.push({ inode, name: b.slice(at, at + name_len), kind: kindOfFileType(file_type) });
    }
    off += rec_len;
  }
  return null;
}

/** ext4_dirblock_csum_verify(): crc32c(inode seed, block up to the tail), stored in the tail's last word. */
export function verifyDirLeaf(dir: Inode, block: Uint8Array, tail: number, where: string, offset: number): void {
  const stored = u32le(block, tail + 8, 'ext.DirTail');
  const computed = crc32cRaw(dir.csumSeed, block.subarray(0, tail));
  if (stored !== computed) {
    throw new CorruptError('ext.DirBlockChecksum', `${where}: stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)}`, offset + tail + 8);
  }
}

export type ReadDirBlock = (logical: number) => Promise<{ data: Uint8Array; offset: number } | null>;

/** Returned when the htree cannot be used and the caller should scan linearly. */
export const HTREE_UNUSABLE = Symbol('htree unusable');

interface DxCountLimit {
  readonly limit: number;
  readonly count: number;
  /** Offset of the count/limit header (= entry 0) inside the block. */
  readonly at: number;
}

function readCountLimit(b: Uint8Array, at: number): DxCountLimit {
  return { limit: u16le(b, at, 'ext.DxCountLimit'), count: u16le(b, at + 2, 'ext.DxCountLimit'), at };
}

/** ext4_dx_csum_verify(): crc32c over the header and `count` entries, then the dx_tail with its checksum as zero. */
function verifyDxNode(dir: Inode, b: Uint8Array, cl: DxCountLimit, where: string, offset: number): void {
  const tailAt = cl.at + cl.limit * 8;
  if (tailAt + 8 > b.length) throw new CorruptError('ext.DxChecksum', `${where}: no room for the dx tail`, offset);
  const stored = u32le(b, tailAt + 4, 'ext.DxTail');
  let c = crc32cRaw(dir.csumSeed, b.subarray(0, cl.at + cl.count * 8));
  c = crc32cRaw(c, b.subarray(tailAt, tailAt + 4));
  c = crc32cRaw(c, new Uint8Array(4));
  if (stored !== c) {
    throw new CorruptError('ext.DxChecksum', `${where}: stored 0x${stored.toString(16)}, computed 0x${c.toString(16)}`, offset + tailAt + 4);
  }
}

/**
 * Looks `name` up through the hash tree (kernel dx_probe + htree_next_block). Returns the entry, null
 * when the tree says the name is absent, or HTREE_UNUSABLE.
 */
export async function htreeLookup(
  sb: Superblock,
  dir: Inode,
  nblocks: number,
  readBlock: ReadDirBlock,
  name: Uint8Array,
  where: string,
): Promise<RawDirEntry | null | typeof HTREE_UNUSABLE> {
  const bs = sb.blockSize;
  const tailBytes = sb.metadataCsum ? 8 : 0;
  const root = await readBlock(0);
  if (!root) return HTREE_UNUSABLE;
  const rb = root.data;
  const w = 'ext.DxRoot';
  // dx_root_info follows the '.' (12 bytes) and '..' (12 bytes) entries.
  const reserved_zero = u32le(rb, 0x18, w);
  let hash_version = u8(rb, 0x1c, w);
  const info_length = u8(rb, 0x1d, w);
  const indirect_levels = u8(rb, 0x1e, w);
  const maxLevels = sb.hasLargedir ? 3 : 2;
  if (reserved_zero !== 0 || info_length !== 8 || indirect_levels >= maxLevels) return HTREE_UNUSABLE;
  if (hash_version <= 2 && sb.unsignedHash) hash_version += 3;
  const hash = dxHash(name, hash_version, sb.raw.s_hash_seed);
  if (hash === null) return HTREE_UNUSABLE;

  let node = rb;
  let nodeOffset = root.offset;
  let cl = readCountLimit(rb, 0x20);
  let expectLimit = (bs - 0x20 - tailBytes) / 8;
  let nodeWhere = `${where} dx_root`;
  const visited = new Set<number>([0]);
  for (let level = 0; ; level++) {
    if (cl.limit !== expectLimit || cl.count === 0 || cl.count > cl.limit) return HTREE_UNUSABLE;
    if (sb.metadataCsum) verifyDxNode(dir, node, cl, nodeWhere, nodeOffset);
    // Last entry whose hash ≤ ours; entry 0 has the implicit hash 0.
    const hashAt = (i: number) => u32le(node, cl.at + i * 8, 'ext.DxEntry');
    const blockAt = (i: number) => u32le(node, cl.at + i * 8 + 4, 'ext.DxEntry');
    let lo = 1;
    let hi = cl.count - 1;
    while (lo <= hi) {
      const mid = lo + Math.floor((hi - lo) / 2);
      if (hashAt(mid) > hash) hi = mid - 1;
      else lo = mid + 1;
    }
    let at = lo - 1;
    if (level === indirect_levels) {
      // Leaf level: scan the chosen leaf, and the next ones while their hash continues ours (collisions).
      for (;;) {
        const lb = blockAt(at);
        if (lb >= nblocks) return HTREE_UNUSABLE;
        const leaf = await readBlock(lb);
        if (!leaf) return HTREE_UNUSABLE;
        const region = findInDirRegion(sb, leaf.data, name, `${where} block ${lb}`, leaf.offset);
        if (sb.metadataCsum && region.tail !== null) verifyDirLeaf(dir, leaf.data, region.tail, `${where} block ${lb}`, leaf.offset);
        if (region.found) return region.found;
        at++;
        if (at >= cl.count) return level === 0 ? null : HTREE_UNUSABLE;
        if (((hashAt(at) & ~1) >>> 0) !== hash) return null;
      }
    }
    const lb = blockAt(at);
    if (lb >= nblocks || visited.has(lb)) return HTREE_UNUSABLE;
    visited.add(lb);
    const next = await readBlock(lb);
    if (!next) return HTREE_UNUSABLE;
    node = next.data;
    nodeOffset = next.offset;
    nodeWhere = `${where} dx_node ${lb}`;
    // A dx_node starts with a fake empty entry spanning the block.
    if (u32le(node, 0, 'ext.DxNode') !== 0 || recLenFromDisk(sb, u16le(node, 4, 'ext.DxNode')) !== bs) return HTREE_UNUSABLE;
    cl = readCountLimit(node, 8);
    expectLimit = (bs - 8 - tailBytes) / 8;
  }
}

