/**
 * Extent trees (kernel fs/ext4/ext4_extents.h, ext4.wiki "Extent Tree"). The walk is iterative and
 * fails closed on everything the kernel's __ext4_ext_check() rejects: bad magic, eh_entries > eh_max,
 * eh_max larger than what fits, a child whose depth is not its parent's depth − 1 (so a self-reference
 * or a cycle is caught at the first revisit), depth > 5, extents out of order or overlapping, block
 * numbers outside the filesystem, and a bad extent-block checksum under metadata_csum.
 */
import { CorruptError } from '../../errors.ts';
import { u16le, u32le, u32leWords } from '../../io/bytes.ts';
import { crc32cRaw } from '../../io/checksum.ts';
import type { ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import type { Inode } from './inode.ts';
import { RunList } from './runs.ts';
import type { Superblock } from './superblock.ts';

export const EXT4_EXT_MAGIC = 0xf30a;
/** EXT4_MAX_EXTENT_DEPTH */
export const MAX_EXTENT_DEPTH = 5;
/** ee_len above this marks an unwritten (preallocated) extent, read as zeros. */
const EXT_INIT_MAX_LEN = 32768;

interface ExtentHeader {
  readonly eh_magic: number;
  readonly eh_entries: number;
  readonly eh_max: number;
  readonly eh_depth: number;
}

function readExtentHeader(b: Uint8Array): ExtentHeader {
  const w = 'ext.ExtentHeader';
  return { eh_magic: u16le(b, 0, w), eh_entries: u16le(b, 2, w), eh_max: u16le(b, 4, w), eh_depth: u16le(b, 6, w) };
}

/** Checks a node's header; `capacity` is how many 12-byte entries fit in the node. */
function checkHeader(h: ExtentHeader, capacity: number, expectDepth: number | null, where: string, offset?: number): void {
  if (h.eh_magic !== EXT4_EXT_MAGIC) throw new CorruptError('ext.ExtentHeader', `${where}: bad magic 0x${h.eh_magic.toString(16)}`, offset);
  if (h.eh_max === 0 || h.eh_max > capacity) throw new CorruptError('ext.ExtentHeader', `${where}: eh_max ${h.eh_max} exceeds ${capacity}`, offset);
  if (h.eh_entries > h.eh_max) throw new CorruptError('ext.ExtentHeader', `${where}: eh_entries ${h.eh_entries} > eh_max ${h.eh_max}`, offset);
  if (expectDepth !== null && h.eh_depth !== expectDepth) {
    throw new CorruptError('ext.ExtentDepth', `${where}: depth ${h.eh_depth}, its parent requires ${expectDepth}`, offset);
  }
}

/**
 * Maps the whole extent tree rooted in `inode.i_block` into runs of initialised blocks, in logical
 * order, limited to `maxLogical` blocks (the file's size). Every tree node visited costs one node of
 * the budget; extent blocks are metadata reads through `meta` (the block cache).
 */
export async function mapExtentTree(ctx: Context, sb: Superblock, meta: ByteSource, inode: Inode, maxLogical: number): Promise<RunList> {
  const runs = new RunList();
  for await (const _ of walkExtentTree(ctx, sb, meta, inode, maxLogical, runs)) {
    // every leaf is in `runs` once the walk ends
  }
  return runs;
}

/**
 * mapExtentTree leaf by leaf: adds each leaf's extents to `runs` and yields after it (so a copy can
 * start along the first runs while the rest of a tree of thousands of extents is still being read).
 * The last run may still grow when the next leaf continues it; every run before it is final.
 */
export async function* walkExtentTree(ctx: Context, sb: Superblock, meta: ByteSource, inode: Inode, maxLogical: number, runs: RunList): AsyncGenerator<void> {
  const bs = sb.blockSize;
  const root = inode.iBlock;
  const rootHdr = readExtentHeader(root);
  checkHeader(rootHdr, 4, null, `inode ${inode.ino} root`);
  const maxDepth = Math.min(MAX_EXTENT_DEPTH, ctx.limits.treeDepth);
  if (rootHdr.eh_depth > maxDepth) {
    throw new CorruptError('ext.ExtentDepth', `inode ${inode.ino}: tree depth ${rootHdr.eh_depth} exceeds ${maxDepth}`);
  }
  const visited = new Set<number>();
  // Next logical block that may start: enforces ascending, non-overlapping extents across the tree.
  let nextLogical = 0;
  // Explicit stack of nodes to visit: children pushed in reverse so they pop in logical order.
  // Children are read when they are popped, not when their parent is: a leaf's runs go out before
  // the next leaf is read (and checksummed).
  const stack: { node: Uint8Array | null; depth: number; where: string; offset?: number }[] = [{ node: root, depth: rootHdr.eh_depth, where: `inode ${inode.ino} root` }];
  while (stack.length > 0) {
    const top = stack.pop() as (typeof stack)[number];
    const { depth, where, offset } = top;
    ctx.budget.chargeNode();
    const node = top.node ?? (await meta.read(offset as number, bs));
    const h = readExtentHeader(node);
    const capacity = Math.floor((node.length - 12) / 12);
    checkHeader(h, capacity, depth, where, offset);
    if (top.node === null && sb.metadataCsum) verifyExtentBlock(sb, inode, node, h.eh_max, where, offset as number);
    if (depth === 0) {
      nextLogical = addLeaf(ctx, sb, node, h.eh_entries, nextLogical, maxLogical, runs, where, offset);
      yield;
      continue;
    }
    let prev = -1;
    const children: { logical: number; block: number }[] = [];
    for (let i = 0; i < h.eh_entries; i++) {
      const e = 12 + i * 12;
      const ei_block = u32le(node, e, 'ext.ExtentIndex');
      const ei_leaf_lo = u32le(node, e + 4, 'ext.ExtentIndex');
      const ei_leaf_hi = u16le(node, e + 8, 'ext.ExtentIndex');
      if (ei_block <= prev) throw new CorruptError('ext.ExtentIndex', `${where}: index ${i} at logical ${ei_block} out of order`, offset);
      prev = ei_block;
      const block = ei_leaf_lo + ei_leaf_hi * 2 ** 32;
      if (block < 1 || block >= sb.blocksCount) {
        throw new CorruptError('ext.ExtentIndex', `${where}: index ${i} points to block ${block} outside the filesystem`, offset);
      }
      children.push({ logical: ei_block, block });
    }
    for (let i = children.length - 1; i >= 0; i--) {
      const c = children[i] as { logical: number; block: number };
      // Beyond the file's end nothing is read; skip the subtree.
      if (c.logical >= maxLogical) continue;
      if (visited.has(c.block)) throw new CorruptError('ext.ExtentLoop', `${where}: extent block ${c.block} referenced twice`, offset);
      visited.add(c.block);
      stack.push({ node: null, depth: depth - 1, where: `inode ${inode.ino} extent block ${c.block}`, offset: c.block * bs });
    }
  }
}

/**
 * The extents of one leaf into `runs`; returns the next logical block an extent may start at.
 * A plain function (not part of the async walk) so that V8 optimizes it after a few leaves.
 */
function addLeaf(ctx: Context, sb: Superblock, node: Uint8Array, entries: number, nextLogical: number, maxLogical: number, runs: RunList, where: string, offset: number | undefined): number {
  // The entries as little-endian words where the host allows (checkHeader has bounded `entries` by
  // what the node holds): no field-reader call per field in code that mostly runs unoptimized.
  const words = u32leWords(node, 3 + 3 * entries);
  for (let i = 0; i < entries; i++) {
    let ee_block: number;
    let ee_len_raw: number;
    let ee_start_hi: number;
    let ee_start_lo: number;
    if (words !== null) {
      const w = 3 + 3 * i;
      ee_block = words[w] as number;
      const lenHi = words[w + 1] as number;
      ee_len_raw = lenHi & 0xffff;
      ee_start_hi = lenHi >>> 16;
      ee_start_lo = words[w + 2] as number;
    } else {
      const e = 12 + i * 12;
      ee_block = u32le(node, e, 'ext.Extent');
      ee_len_raw = u16le(node, e + 4, 'ext.Extent');
      ee_start_hi = u16le(node, e + 6, 'ext.Extent');
      ee_start_lo = u32le(node, e + 8, 'ext.Extent');
    }
    const unwritten = ee_len_raw > EXT_INIT_MAX_LEN;
    const len = unwritten ? ee_len_raw - EXT_INIT_MAX_LEN : ee_len_raw;
    if (len === 0) throw new CorruptError('ext.Extent', `${where}: extent ${i} has length 0`, offset);
    if (ee_block < nextLogical) {
      throw new CorruptError('ext.Extent', `${where}: extent ${i} at logical ${ee_block} overlaps or is out of order`, offset);
    }
    if (ee_block + len > 2 ** 32) throw new CorruptError('ext.Extent', `${where}: extent ${i} passes logical block 2^32`, offset);
    nextLogical = ee_block + len;
    // A zero high half keeps phys a small integer (unboxed in unoptimized code).
    const phys = ee_start_hi === 0 ? ee_start_lo : ee_start_lo + ee_start_hi * 2 ** 32;
    if (phys < 1 || phys + len > sb.blocksCount) {
      throw new CorruptError('ext.Extent', `${where}: extent ${i} blocks ${phys}+${len} outside the filesystem of ${sb.blocksCount}`, offset);
    }
    if (unwritten || ee_block >= maxLogical) continue;
    runs.add(ee_block, Math.min(len, maxLogical - ee_block), phys, ctx);
  }
  return nextLogical;
}

/** ext4_extent_block_csum(): crc32c(inode seed, header + eh_max entries), stored in the tail after them. */
function verifyExtentBlock(sb: Superblock, inode: Inode, blk: Uint8Array, ehMax: number, where: string, off: number): void {
  const tail = 12 + 12 * ehMax;
  if (tail + 4 > sb.blockSize) throw new CorruptError('ext.ExtentBlockChecksum', `${where}: no room for the checksum tail`, off);
  const stored = u32le(blk, tail, 'ext.ExtentTail');
  const computed = crc32cRaw(inode.csumSeed, blk.subarray(0, tail));
  if (stored !== computed) {
    throw new CorruptError('ext.ExtentBlockChecksum', `${where}: stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)}`, off + tail);
  }
}
