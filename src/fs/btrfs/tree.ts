/**
 * btrfs B-tree nodes (struct btrfs_header, btrfs_item, btrfs_key_ptr; kernel tree-checker.c is
 * the model for what a valid node looks like). Every node read is checked: crc32c, bytenr, fsid,
 * level (child = parent − 1), nritems fits, keys strictly ascending, leaf item bodies inside the
 * leaf and clear of the item headers. Walks are iterative with an explicit stack.
 */
import { CorruptError, LimitExceededError } from '../../errors.ts';
import { bytesEqual, slice, u32le, u64le, u64leSafe, u8 } from '../../io/bytes.ts';
import { crc32c } from '../../io/checksum.ts';
import type { ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import type { ChunkMap } from './chunks.ts';

export const HEADER_SIZE = 101;
export const KEY_SIZE = 17;
const ITEM_SIZE = 25;
const KEY_PTR_SIZE = 33;
/** BTRFS_MAX_LEVEL: levels 0..7. */
export const MAX_LEVEL = 7;

export interface Key {
  readonly objectid: bigint;
  readonly type: number;
  readonly offset: bigint;
}

export function readKey(b: Uint8Array, off: number, what: string): Key {
  return { objectid: u64le(b, off, what), type: u8(b, off + 8, what), offset: u64le(b, off + 9, what) };
}

export function compareKeys(a: Key, b: Key): number {
  if (a.objectid !== b.objectid) return a.objectid < b.objectid ? -1 : 1;
  if (a.type !== b.type) return a.type < b.type ? -1 : 1;
  if (a.offset !== b.offset) return a.offset < b.offset ? -1 : 1;
  return 0;
}

export const MAX_U64 = 2n ** 64n - 1n;

export interface LeafItem {
  readonly key: Key;
  /** The item body (a view into the node). */
  readonly data: Uint8Array;
  /** Logical address of the body, for error messages. */
  readonly where: number;
  /** Logical address of the leaf holding it. */
  readonly node: number;
}

export interface TreeNode {
  readonly logical: number;
  readonly level: number;
  readonly owner: bigint;
  readonly keys: readonly Key[];
  /** Internal nodes: child logical addresses. */
  readonly children: readonly number[];
  /** Leaves: items. */
  readonly items: readonly LeafItem[];
}

/** Decodes and validates one node's bytes. */
export function parseNode(b: Uint8Array, logical: number, fsid: Uint8Array, expectedLevel: number): TreeNode {
  const what = 'btrfs.Node';
  const stored = u32le(b, 0, what);
  const computed = crc32c(b.subarray(0x20));
  if (stored !== computed) throw new CorruptError('btrfs.NodeCsum', `node checksum ${computed.toString(16)} != stored ${stored.toString(16)}`, logical);
  if (!bytesEqual(slice(b, 0x20, 16, what), fsid)) throw new CorruptError('btrfs.NodeFsid', 'node belongs to another filesystem', logical);
  const bytenr = u64le(b, 0x30, what);
  if (bytenr !== BigInt(logical)) throw new CorruptError('btrfs.NodeBytenr', `node header says bytenr ${bytenr}`, logical);
  const owner = u64le(b, 0x58, what);
  const nritems = u32le(b, 0x60, what);
  const level = u8(b, 0x64, what);
  if (level !== expectedLevel) throw new CorruptError('btrfs.NodeLevel', `level ${level}, expected ${expectedLevel}`, logical);
  const space = b.length - HEADER_SIZE;
  const keys: Key[] = [];
  const children: number[] = [];
  const items: LeafItem[] = [];
  if (level > 0) {
    if (nritems < 1 || nritems > Math.floor(space / KEY_PTR_SIZE)) throw new CorruptError('btrfs.NodeNritems', `${nritems} key pointers in a ${b.length}-byte node`, logical);
    for (let i = 0; i < nritems; i++) {
      const p = HEADER_SIZE + i * KEY_PTR_SIZE;
      keys.push(readKey(b, p, what));
      children.push(u64leSafe(b, p + KEY_SIZE, what));
    }
  } else {
    if (nritems > Math.floor(space / ITEM_SIZE)) throw new CorruptError('btrfs.NodeNritems', `${nritems} items in a ${b.length}-byte leaf`, logical);
    const headersEnd = nritems * ITEM_SIZE;
    for (let i = 0; i < nritems; i++) {
      const p = HEADER_SIZE + i * ITEM_SIZE;
      const key = readKey(b, p, what);
      const offset = u32le(b, p + KEY_SIZE, what);
      const size = u32le(b, p + KEY_SIZE + 4, what);
      // Item bodies are addressed from the end of the header and must not overlap the item array.
      if (offset < headersEnd || offset > space || size > space - offset) {
        throw new CorruptError('btrfs.LeafItem', `item ${i} body ${offset}+${size} outside the leaf data area [${headersEnd}, ${space})`, logical + p);
      }
      keys.push(key);
      items.push({ key, data: b.subarray(HEADER_SIZE + offset, HEADER_SIZE + offset + size), where: logical + HEADER_SIZE + offset, node: logical });
    }
  }
  for (let i = 1; i < keys.length; i++) {
    if (compareKeys(keys[i - 1] as Key, keys[i] as Key) >= 0) throw new CorruptError('btrfs.NodeKeyOrder', `key ${i} not above key ${i - 1}`, logical);
  }
  return { logical, level, owner, keys, children, items };
}

/** Reads tree nodes through the chunk map, trying each copy until one validates. */
export class NodeReader {
  private readonly cache = new Map<number, TreeNode>();
  private static readonly CACHE_NODES = 512;

  constructor(
    private readonly meta: ByteSource,
    private readonly chunks: ChunkMap,
    private readonly nodesize: number,
    private readonly fsid: Uint8Array,
    private readonly ctx: Context,
  ) {}

  async read(logical: number, level: number): Promise<TreeNode> {
    this.ctx.budget.chargeNode();
    if (level < 0 || level > MAX_LEVEL) throw new CorruptError('btrfs.NodeLevel', `level ${level} outside [0, ${MAX_LEVEL}]`, logical);
    const hit = this.cache.get(logical);
    if (hit) {
      if (hit.level !== level) throw new CorruptError('btrfs.NodeLevel', `level ${hit.level}, expected ${level}`, logical);
      return hit;
    }
    if (logical % this.nodesize !== 0 && logical % 4096 !== 0) throw new CorruptError('btrfs.NodeAlign', 'tree block not aligned', logical);
    const places = this.chunks.map(logical, this.nodesize);
    let firstError: unknown = null;
    for (const p of places) {
      if (p.length !== this.nodesize) throw new CorruptError('btrfs.NodeSpan', 'tree block crosses a chunk or stripe boundary', logical);
      try {
        const b = await this.meta.read(p.physical, p.length);
        const node = parseNode(b, logical, this.fsid, level);
        if (this.cache.size >= NodeReader.CACHE_NODES) this.cache.delete(this.cache.keys().next().value as number);
        this.cache.set(logical, node);
        return node;
      } catch (e) {
        // Another copy (DUP/RAID1) may be intact; limits are not retried.
        if (e instanceof LimitExceededError) throw e;
        firstError ??= e;
      }
    }
    throw firstError;
  }
}

/** Index of the last key ≤ `key` in sorted `keys`, or −1. */
function lastAtOrBelow(keys: readonly Key[], key: Key): number {
  let lo = 0;
  let hi = keys.length - 1;
  let ans = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (compareKeys(keys[mid] as Key, key) <= 0) {
      ans = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return ans;
}

/** A child's first key must equal its parent's pointer key (as the kernel's read_extent_buffer checks first_key). */
function checkFirstKey(child: TreeNode, pointerKey: Key): void {
  const first = child.keys[0];
  if (!first || compareKeys(first, pointerKey) !== 0) {
    throw new CorruptError('btrfs.NodeFirstKey', "child's first key differs from its parent's pointer key", child.logical);
  }
}

export interface TreeRoot {
  readonly logical: number;
  readonly level: number;
}

/**
 * Visits leaf items with min ≤ key ≤ max in key order. `visit` returns false to stop. Each
 * internal node pushes only the children whose key range can overlap [min, max]; the depth
 * cannot exceed the root's level because each child is read at parent level − 1.
 */
export async function walkRange(reader: NodeReader, root: TreeRoot, min: Key, max: Key, visit: (item: LeafItem) => boolean | void): Promise<void> {
  // Stack of (node address, level, lower bound key of the subtree for the ordering check).
  const stack: { logical: number; level: number; low: Key | null }[] = [{ logical: root.logical, level: root.level, low: null }];
  while (stack.length > 0) {
    const { logical, level, low } = stack.pop() as { logical: number; level: number; low: Key | null };
    const node = await reader.read(logical, level);
    if (low) checkFirstKey(node, low);
    if (node.level === 0) {
      let i = Math.max(0, lastAtOrBelow(node.keys, min));
      for (; i < node.items.length; i++) {
        const item = node.items[i] as LeafItem;
        const c = compareKeys(item.key, min);
        if (c < 0) continue;
        if (compareKeys(item.key, max) > 0) return;
        if (visit(item) === false) return;
      }
      continue;
    }
    const first = Math.max(0, lastAtOrBelow(node.keys, min));
    let last = lastAtOrBelow(node.keys, max);
    if (last < first) last = first;
    // Push in reverse so the leftmost child is visited first.
    for (let i = last; i >= first; i--) stack.push({ logical: node.children[i] as number, level: node.level - 1, low: node.keys[i] as Key });
  }
}

/** The item with the largest key ≤ `key`, if that item's key is ≥ `floor`; else null. One descent. */
export async function findLastAtOrBelow(reader: NodeReader, root: TreeRoot, floor: Key, key: Key): Promise<LeafItem | null> {
  let node = await reader.read(root.logical, root.level);
  while (node.level > 0) {
    const i = lastAtOrBelow(node.keys, key);
    if (i < 0) return null;
    const childKey = node.keys[i] as Key;
    const child = await reader.read(node.children[i] as number, node.level - 1);
    checkFirstKey(child, childKey);
    node = child;
  }
  const i = lastAtOrBelow(node.keys, key);
  if (i < 0) return null;
  const item = node.items[i] as LeafItem;
  return compareKeys(item.key, floor) >= 0 ? item : null;
}

/** The item with exactly this key, or null. */
export async function findExact(reader: NodeReader, root: TreeRoot, key: Key): Promise<LeafItem | null> {
  return findLastAtOrBelow(reader, root, key, key);
}
