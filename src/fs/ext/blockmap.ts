/**
 * Classic ext2/ext3 block maps (ext4.wiki "Direct/Indirect Block Addressing"): i_block[0..11] direct,
 * [12] single, [13] double, [14] triple indirect. A zero pointer is a hole (a whole subtree for an
 * indirect pointer). The walk is iterative with fixed levels; every indirect block is read once (a
 * block referenced twice is corrupt, which also stops fan-out amplification), pointers past the file's
 * end are ignored, and every block number is checked against s_blocks_count.
 */
import { CorruptError } from '../../errors.ts';
import { u32le, u32leWords } from '../../io/bytes.ts';
import type { ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import type { Inode } from './inode.ts';
import { RunList } from './runs.ts';
import type { Superblock } from './superblock.ts';

const EXT2_NDIR_BLOCKS = 12;

/**
 * The index after the stretch of consecutive block numbers p, p + 1, … that starts at pointer i (at
 * most `count`). Functions of their own: V8 optimizes such a tiny loop while it runs, where inside
 * the map's closures most of a 100 MiB file's 25,600 pointers were read by unoptimized code.
 */
function stretchEnd(words: Uint32Array, i: number, count: number, p: number): number {
  let j = i + 1;
  while (j < count && words[j] === p + (j - i)) j++;
  return j;
}

function slowStretchEnd(data: Uint8Array, i: number, count: number, p: number): number {
  let j = i + 1;
  while (j < count && u32le(data, j * 4, 'ext.BlockMap') === p + (j - i)) j++;
  return j;
}

export async function mapBlockMap(ctx: Context, sb: Superblock, meta: ByteSource, inode: Inode, maxLogical: number): Promise<RunList> {
  const bs = sb.blockSize;
  const perBlock = bs / 4;
  const runs = new RunList();
  const seen = new Set<number>();
  const checkBlock = (blk: number, what: string) => {
    if (blk >= sb.blocksCount || blk < sb.firstDataBlock) {
      throw new CorruptError('ext.BlockMap', `inode ${inode.ino}: ${what} block ${blk} outside the filesystem of ${sb.blocksCount}`);
    }
  };
  const ptr = (i: number) => u32le(inode.iBlock, i * 4, 'ext.BlockMap');

  for (let i = 0; i < EXT2_NDIR_BLOCKS && i < maxLogical; i++) {
    const p = ptr(i);
    if (p === 0) continue;
    checkBlock(p, 'data');
    runs.add(i, 1, p, ctx);
  }

  // Levels 1..3: the subtree under i_block[11 + level] covers perBlock^level logical blocks.
  let base = EXT2_NDIR_BLOCKS;
  for (let level = 1; level <= 3; level++) {
    const span = perBlock ** level;
    const top = ptr(EXT2_NDIR_BLOCKS + level - 1);
    if (base >= maxLogical) break;
    if (top !== 0) await walk(top, level, base);
    base += span;
  }
  return runs;

  /**
   * One indirect block's pointers: data runs (level 1) or the children to visit. A plain function,
   * so that V8 optimizes its loop (the walk around it is async and never is).
   */
  function addPointers(data: Uint8Array, level: number, logical: number, childSpan: number, kids: { block: number; level: number; logical: number }[] | null): void {
    if (kids === null) return addDataPointers(data, logical, Math.min(perBlock, maxLogical - logical));
    for (let i = 0; i < perBlock; i++) {
      const lb = logical + i * childSpan;
      if (lb >= maxLogical) break;
      const p = u32le(data, i * 4, 'ext.BlockMap');
      if (p === 0) continue;
      kids.push({ block: p, level: level - 1, logical: lb });
    }
  }

  /**
   * The first `count` data pointers of a level-1 block, a stretch of consecutive block numbers at a
   * time (a file laid out in order is mostly such stretches): one check of both ends and one run
   * per stretch instead of one per block.
   */
  function addDataPointers(data: Uint8Array, logical: number, count: number): void {
    // The block as little-endian words where the host allows (no field-reader call per pointer).
    const words = u32leWords(data, count);
    let i = 0;
    while (i < count) {
      const p = words !== null ? (words[i] as number) : u32le(data, i * 4, 'ext.BlockMap');
      if (p === 0) {
        i++;
        continue;
      }
      const j = words !== null ? stretchEnd(words, i, count, p) : slowStretchEnd(data, i, count, p);
      checkBlock(p, 'data');
      checkBlock(p + (j - i) - 1, 'data');
      runs.add(logical + i, j - i, p, ctx);
      i = j;
    }
  }

  async function walk(block: number, level: number, logical: number): Promise<void> {
    // Explicit stack of (indirect block, its level, first logical block it maps).
    const stack: { block: number; level: number; logical: number }[] = [{ block, level, logical }];
    while (stack.length > 0) {
      const n = stack.pop() as (typeof stack)[number];
      checkBlock(n.block, `level-${n.level} indirect`);
      if (seen.has(n.block)) throw new CorruptError('ext.BlockMapLoop', `inode ${inode.ino}: indirect block ${n.block} referenced twice`, n.block * bs);
      seen.add(n.block);
      ctx.budget.chargeNode();
      const data = await meta.read(n.block * bs, bs);
      const kids = n.level === 1 ? null : ([] as { block: number; level: number; logical: number }[]);
      addPointers(data, n.level, n.logical, perBlock ** (n.level - 1), kids);
      if (!kids) continue;
      for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i] as (typeof kids)[number]);
    }
  }
}
