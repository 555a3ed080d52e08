/**
 * Block mapping of an inode fork: extent lists (xfs_format.h `xfs_bmbt_rec`, 128-bit packed records)
 * and the BMBT B+tree (`xfs_bmdr_block` root in the inode, long-format `xfs_btree_block` nodes with
 * magic BMAP / BMA3). Records are split with BigInt: startoff (54 bits) and startblock (52 bits)
 * straddle the two 64-bit words and exceed what JS bit operators keep.
 */
import { CorruptError, LimitExceededError } from '../../errors.ts';
import { bound, bytesEqual, slice, toSafe, u16be, u32be, u32le, u64be } from '../../io/bytes.ts';
import { xfsCksum } from './cksum.ts';
import type { ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import { fsbToByte } from './inode.ts';
import type { Superblock } from './superblock.ts';

export interface Mapping {
  /** First file block (in fs blocks) this extent maps. */
  readonly fileBlock: number;
  /** Length in fs blocks. */
  readonly count: number;
  /** Byte offset of the first block in the data device. */
  readonly byte: number;
  /** Preallocated, never written: reads as zeros (XFS_EXT_UNWRITTEN). */
  readonly unwritten: boolean;
}

const BMAP_MAGIC = 0x424d4150; // 'BMAP', v4
const BMA3_MAGIC = 0x424d4133; // 'BMA3', v5
/** Long-format btree block header sizes: XFS_BTREE_LBLOCK_LEN and XFS_BTREE_LBLOCK_CRC_LEN. */
const LBLOCK_LEN = 24;
const LBLOCK_CRC_LEN = 72;
/** Deepest BMBT the kernel builds (xfs_bmbt_maxlevels_ondisk is 9 for 64-bit extent counts). */
const BMBT_MAX_LEVELS = 9;

const M21 = (1n << 21n) - 1n;
const M9 = (1n << 9n) - 1n;
const M54 = (1n << 54n) - 1n;

/** Decodes `n` packed extent records at `off` in `b`, appending to `out` (which must stay sorted). */
function decodeRecords(sb: Superblock, b: Uint8Array, off: number, n: number, what: string, out: Mapping[]): void {
  for (let i = 0; i < n; i++) {
    const at = off + i * 16;
    const l0 = u64be(b, at, what);
    const l1 = u64be(b, at + 8, what);
    const unwritten = l0 >> 63n === 1n;
    const startoff = (l0 >> 9n) & M54;
    const startblock = ((l0 & M9) << 43n) | (l1 >> 21n);
    const count = Number(l1 & M21);
    if (count === 0) throw new CorruptError(what, `extent ${i} has zero length`, at);
    const fileBlock = toSafe(startoff, `${what}.startoff`);
    if (!Number.isSafeInteger((fileBlock + count) * sb.blockSize)) throw new CorruptError(what, `extent ${i} at file block ${fileBlock} is beyond 2^53 bytes`, at);
    const prev = out[out.length - 1];
    if (prev && fileBlock < prev.fileBlock + prev.count) {
      throw new CorruptError(what, `extent ${i} at file block ${fileBlock} overlaps or precedes the previous one`, at);
    }
    const byte = fsbToByte(sb, startblock, count, `${what}.startblock`);
    out.push({ fileBlock, count, byte, unwritten });
  }
}

/** The mapping of an extents-format fork (`nextents` records in the literal area). */
export function extentList(sb: Superblock, fork: Uint8Array, nextents: number, what: string): Mapping[] {
  bound(nextents, 0, Math.floor(fork.length / 16), `${what}.di_nextents`);
  const out: Mapping[] = [];
  decodeRecords(sb, fork, 0, nextents, what, out);
  return out;
}

/**
 * The mapping of a btree-format fork. The walk is iterative and checks, per block: magic, v5 CRC,
 * owner and self address, level = parent level − 1, numrecs ≤ maxrecs, keys ascending; a block
 * reached twice is a cycle.
 */
export async function btreeList(
  sb: Superblock,
  cache: ByteSource,
  ctx: Context,
  ino: bigint,
  fork: Uint8Array,
  what: string,
): Promise<Mapping[]> {
  // xfs_bmdr_block: bb_level, bb_numrecs, then keys and ptrs each sized for the fork's maxrecs.
  const bb_level = u16be(fork, 0, what);
  const bb_numrecs = u16be(fork, 2, what);
  bound(bb_level, 1, BMBT_MAX_LEVELS, `${what}.bmdr.bb_level`);
  if (bb_level > ctx.limits.treeDepth) throw new LimitExceededError('treeDepth', `${what}: bmbt of ${bb_level} levels`, ctx.limits.treeDepth);
  const rootMax = Math.floor((fork.length - 4) / 16);
  bound(bb_numrecs, 1, rootMax, `${what}.bmdr.bb_numrecs`);
  const hdr = sb.hasCrc ? LBLOCK_CRC_LEN : LBLOCK_LEN;
  const blockMax = Math.floor((sb.blockSize - hdr) / 16);
  const maxMappings = Math.floor(ctx.limits.allocBytes / 32);

  // Pending children, popped from the end: push in reverse so leaves come out in key order.
  const stack: { ptr: bigint; level: number }[] = [];
  let lastKey = -1n;
  for (let i = 0; i < bb_numrecs; i++) {
    const key = u64be(fork, 4 + i * 8, what);
    if (key <= lastKey) throw new CorruptError(`${what}.bmdr`, `key ${i} not ascending`);
    lastKey = key;
  }
  for (let i = bb_numrecs - 1; i >= 0; i--) stack.push({ ptr: u64be(fork, 4 + rootMax * 8 + i * 8, what), level: bb_level - 1 });

  const visited = new Set<bigint>();
  const out: Mapping[] = [];
  while (stack.length > 0) {
    const { ptr, level } = stack.pop() as { ptr: bigint; level: number };
    if (visited.has(ptr)) throw new CorruptError(`${what}.bmbt`, `block ${ptr} reached twice`);
    visited.add(ptr);
    ctx.budget.chargeNode();
    const byte = fsbToByte(sb, ptr, 1, `${what}.bmbt.ptr`);
    const b = await cache.read(byte, sb.blockSize);
    const W = `${what}.bmbt(${ptr})`;
    const bb_magic = u32be(b, 0, W);
    const lvl = u16be(b, 4, W);
    const numrecs = u16be(b, 6, W);
    if (bb_magic !== (sb.hasCrc ? BMA3_MAGIC : BMAP_MAGIC)) throw new CorruptError(`${W}.bb_magic`, `bad magic 0x${bb_magic.toString(16)}`, byte);
    if (sb.hasCrc) verifyLongBlockV5(sb, b, byte, ino, W);
    if (lvl !== level) throw new CorruptError(`${W}.bb_level`, `level ${lvl} where the parent expects ${level}`, byte + 4);
    bound(numrecs, 1, blockMax, `${W}.bb_numrecs`, byte + 6);
    if (level === 0) {
      if (out.length + numrecs > maxMappings) throw new LimitExceededError('allocBytes', `${what}: more than ${maxMappings} extents`, ctx.limits.allocBytes);
      decodeRecords(sb, b, hdr, numrecs, W, out);
      continue;
    }
    let prevKey = -1n;
    for (let i = 0; i < numrecs; i++) {
      const key = u64be(b, hdr + i * 8, W);
      if (key <= prevKey) throw new CorruptError(`${W}.keys`, `key ${i} not ascending`, byte + hdr + i * 8);
      prevKey = key;
    }
    for (let i = numrecs - 1; i >= 0; i--) stack.push({ ptr: u64be(b, hdr + blockMax * 8 + i * 8, W), level: level - 1 });
  }
  return out;
}

/** v5 long btree block: bb_blkno (512-byte daddr), bb_uuid, bb_owner, bb_crc at 64 over the block. */
function verifyLongBlockV5(sb: Superblock, b: Uint8Array, byte: number, ino: bigint, W: string): void {
  const bb_blkno = u64be(b, 24, W);
  const bb_uuid = slice(b, 40, 16, W);
  const bb_owner = u64be(b, 56, W);
  const bb_crc = u32le(b, 64, W);
  const want = xfsCksum(b, sb.blockSize, 64);
  if (want !== bb_crc) throw new CorruptError(`${W}.bb_crc`, `checksum 0x${bb_crc.toString(16)} != computed 0x${want.toString(16)}`, byte + 64);
  if (bb_blkno !== BigInt(byte / 512)) throw new CorruptError(`${W}.bb_blkno`, `block claims daddr ${bb_blkno}`, byte + 24);
  if (!bytesEqual(bb_uuid, sb.metaUuid)) throw new CorruptError(`${W}.bb_uuid`, 'block belongs to another filesystem', byte + 40);
  if (bb_owner !== ino) throw new CorruptError(`${W}.bb_owner`, `block owned by inode ${bb_owner}`, byte + 56);
}

/** Index of the mapping containing `fileBlock`, or -1 (a hole). Mappings are sorted and disjoint. */
export function findMapping(maps: readonly Mapping[], fileBlock: number): number {
  let lo = 0;
  let hi = maps.length - 1;
  while (lo <= hi) {
    const mid = Math.floor((lo + hi) / 2);
    const m = maps[mid] as Mapping;
    if (fileBlock < m.fileBlock) hi = mid - 1;
    else if (fileBlock >= m.fileBlock + m.count) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/** Index of the first mapping ending after `fileBlock` (where a range scan starts). */
export function firstMappingFrom(maps: readonly Mapping[], fileBlock: number): number {
  let lo = 0;
  let hi = maps.length;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const m = maps[mid] as Mapping;
    if (m.fileBlock + m.count <= fileBlock) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
