/**
 * Walking the S+tree (kernel fs/reiserfs/stree.c search_by_key, without its balancing side): a descent
 * from the root by key, then in-order iteration over items leaf after leaf.
 *
 * Every step is checked: each child's blk_level must be exactly its parent's minus one (so a child
 * equal to an ancestor, or any cycle, is a level mismatch), every node's keys must lie inside the
 * delimiting keys its parent gives it ([left, right)), and every node read is charged to the
 * nodesVisited budget. Together these bound every walk: the depth is at most MAX_HEIGHT and the key
 * ranges of sibling subtrees are disjoint, so no block is reached twice by one iteration.
 */
import { CorruptError, LimitExceededError } from '../../errors.ts';
import type { BlockCache } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import { compareKeys, keyString, type Key } from './key.ts';
import { DISK_LEAF_NODE_LEVEL, decodeNode, type InternalNode, type ItemHead, type LeafNode, type TreeNode } from './node.ts';
import { MAX_HEIGHT, type Superblock } from './superblock.ts';

export interface ItemRef {
  readonly leaf: LeafNode;
  readonly ih: ItemHead;
}

interface PathStep {
  readonly node: InternalNode;
  pos: number;
  readonly lkey: Key | null;
  readonly rkey: Key | null;
}

/** Decoded nodes kept per volume (the BlockCache holds the bytes; this saves re-decoding). */
const DECODED_NODES = 512;

export class STree {
  private readonly decoded = new Map<number, TreeNode>();
  readonly rootLevel: number;

  constructor(
    private readonly cache: BlockCache,
    private readonly sb: Superblock,
    private readonly ctx: Context,
  ) {
    // search_by_key expects the root at level s_tree_height - 1.
    this.rootLevel = sb.treeHeight - 1;
    if (this.rootLevel < DISK_LEAF_NODE_LEVEL || this.rootLevel > MAX_HEIGHT || this.rootLevel > ctx.limits.treeDepth) {
      throw new CorruptError('reiserfs.TreeHeight', `s_tree_height ${sb.treeHeight} gives root level ${this.rootLevel}`);
    }
  }

  /** Reads block `block` expecting it at `level` with all keys in [lkey, rkey). */
  private async node(block: number, level: number, lkey: Key | null, rkey: Key | null): Promise<TreeNode> {
    this.ctx.budget.chargeNode();
    const bs = this.sb.blockSize;
    const at = block * bs;
    let n = this.decoded.get(block);
    if (!n) {
      const data = await this.cache.read(at, bs);
      n = decodeNode(data, block, this.sb.blockCount, at);
      if (this.decoded.size >= DECODED_NODES) this.decoded.delete(this.decoded.keys().next().value as number);
      this.decoded.set(block, n);
    }
    if (n.level !== level) {
      throw new CorruptError('reiserfs.TreeLevel', `block ${block} has blk_level ${n.level} where level ${level} was expected`, at);
    }
    const first = n.kind === 'leaf' ? (n.items[0] as ItemHead).key : (n.keys[0] as Key);
    const last = n.kind === 'leaf' ? (n.items[n.items.length - 1] as ItemHead).key : (n.keys[n.keys.length - 1] as Key);
    if (lkey && compareKeys(first, lkey) < 0) {
      throw new CorruptError('reiserfs.DelimitingKey', `block ${block}: first key ${keyString(first)} below the left delimiting key ${keyString(lkey)}`, at);
    }
    if (rkey && compareKeys(last, rkey) >= 0) {
      throw new CorruptError('reiserfs.DelimitingKey', `block ${block}: last key ${keyString(last)} not below the right delimiting key ${keyString(rkey)}`, at);
    }
    return n;
  }

  private async descend(step: PathStep[], block: number, level: number, lkey: Key | null, rkey: Key | null, key: Key | null): Promise<LeafNode> {
    let b = block;
    let lv = level;
    let lk = lkey;
    let rk = rkey;
    for (let hops = 0; ; hops++) {
      if (hops > MAX_HEIGHT) throw new LimitExceededError('treeDepth', `reiserfs descent passed ${MAX_HEIGHT} levels`, MAX_HEIGHT);
      const n = await this.node(b, lv, lk, rk);
      if (n.kind === 'leaf') return n;
      // Child i covers [keys[i-1], keys[i]): i = number of keys ≤ key (leftmost child when key is null).
      let i = 0;
      if (key) {
        let lo = 0;
        let hi = n.keys.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (compareKeys(n.keys[mid] as Key, key) <= 0) lo = mid + 1;
          else hi = mid;
        }
        i = lo;
      }
      step.push({ node: n, pos: i, lkey: lk, rkey: rk });
      const nl = i > 0 ? (n.keys[i - 1] as Key) : lk;
      const nr = i < n.keys.length ? (n.keys[i] as Key) : rk;
      b = n.children[i] as number;
      lv = n.level - 1;
      lk = nl;
      rk = nr;
    }
  }

  /**
   * Items in key order starting at `key`: with `floor`, at the last item whose key is ≤ `key` (the
   * item that may contain it), else at the first item ≥ `key`. The caller stops when done.
   */
  async *items(key: Key, floor: boolean): AsyncGenerator<ItemRef> {
    const path: PathStep[] = [];
    let leaf = await this.descend(path, this.sb.rootBlock, this.rootLevel, null, null, key);
    let lo = 0;
    let hi = leaf.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys((leaf.items[mid] as ItemHead).key, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    let pos = lo;
    if (floor) {
      const exact = pos < leaf.items.length && compareKeys((leaf.items[pos] as ItemHead).key, key) === 0;
      if (!exact && pos > 0) pos--;
    }
    for (;;) {
      for (; pos < leaf.items.length; pos++) yield { leaf, ih: leaf.items[pos] as ItemHead };
      // Next leaf: climb to the nearest ancestor with a child to the right, go down its leftmost path.
      let top: PathStep | undefined;
      while ((top = path[path.length - 1]) && top.pos >= top.node.children.length - 1) path.pop();
      if (!top) return;
      top.pos++;
      const n = top.node;
      const lk = n.keys[top.pos - 1] as Key;
      const rk = top.pos < n.keys.length ? (n.keys[top.pos] as Key) : top.rkey;
      leaf = await this.descend(path, n.children[top.pos] as number, n.level - 1, lk, rk, null);
      pos = 0;
    }
  }
}
