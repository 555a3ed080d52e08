/**
 * S+tree nodes (kernel fs/reiserfs/reiserfs.h): every formatted block starts with `struct block_head`
 * (24 bytes: blk_level, blk_nr_item, blk_free_space, blk_reserved, blk_right_delim_key).
 * Internal nodes (level > 1) hold blk_nr_item keys then blk_nr_item + 1 `struct disk_child`
 * (dc_block_number u32, dc_size u16, dc_reserved u16). Leaves (level 1) hold blk_nr_item
 * `struct item_head` (24 bytes: ih_key, ih_free_space/ih_entry_count, ih_item_len, ih_item_location,
 * ih_version) whose bodies are packed from the end of the block, item 0 last.
 * Everything is validated here, once per block: counts fit the block, keys strictly increase, item
 * bodies lie after the heads, inside the block, in order and without overlap.
 */
import { CorruptError } from '../../errors.ts';
import { u16le, u32le } from '../../io/bytes.ts';
import { KEY_FORMAT_3_5, KEY_FORMAT_3_6, KEY_SIZE, compareKeys, decodeKey, keyString, type Key } from './key.ts';

export const BLKH_SIZE = 24;
export const IH_SIZE = 24;
export const DC_SIZE = 8;
/** blk_level of a leaf (DISK_LEAF_NODE_LEVEL); 0 is a free block (FREE_LEVEL). */
export const DISK_LEAF_NODE_LEVEL = 1;

export interface ItemHead {
  readonly key: Key;
  /** ih_version: KEY_FORMAT_3_5 or KEY_FORMAT_3_6. */
  readonly version: number;
  /** ih_entry_count for directory items, ih_free_space for others. */
  readonly entryCount: number;
  readonly location: number;
  readonly length: number;
}

export interface InternalNode {
  readonly kind: 'internal';
  readonly block: number;
  readonly level: number;
  readonly keys: readonly Key[];
  /** dc_block_number of the nr_item + 1 children. */
  readonly children: readonly number[];
}

export interface LeafNode {
  readonly kind: 'leaf';
  readonly block: number;
  readonly level: 1;
  readonly items: readonly ItemHead[];
  readonly data: Uint8Array;
}

export type TreeNode = InternalNode | LeafNode;

/** Decodes and validates one formatted block. `at` is its byte offset (for messages). */
export function decodeNode(data: Uint8Array, block: number, blockCount: number, at: number): TreeNode {
  const W = 'reiserfs.BlockHead';
  const bs = data.length;
  const blk_level = u16le(data, 0, W);
  const blk_nr_item = u16le(data, 2, W);
  if (blk_level < DISK_LEAF_NODE_LEVEL) throw new CorruptError(W, `block ${block} has blk_level ${blk_level} (not a tree node)`, at);
  if (blk_level === DISK_LEAF_NODE_LEVEL) {
    const maxItems = Math.floor((bs - BLKH_SIZE) / IH_SIZE);
    if (blk_nr_item < 1 || blk_nr_item > maxItems) {
      throw new CorruptError(W, `leaf ${block} blk_nr_item ${blk_nr_item} outside [1, ${maxItems}]`, at + 2);
    }
    return decodeLeaf(data, block, blk_nr_item, at);
  }
  // keys + children must fit: 24 + 16n + 8(n + 1) ≤ bs.
  const maxKeys = Math.floor((bs - BLKH_SIZE - DC_SIZE) / (KEY_SIZE + DC_SIZE));
  if (blk_nr_item < 1 || blk_nr_item > maxKeys) {
    throw new CorruptError(W, `internal node ${block} blk_nr_item ${blk_nr_item} outside [1, ${maxKeys}]`, at + 2);
  }
  const WI = 'reiserfs.InternalNode';
  const keys: Key[] = [];
  for (let i = 0; i < blk_nr_item; i++) {
    const off = BLKH_SIZE + i * KEY_SIZE;
    const k = decodeKey(data, off, 'auto', WI, at + off);
    if (i > 0 && compareKeys(keys[i - 1] as Key, k) >= 0) {
      throw new CorruptError(WI, `block ${block}: key ${i} ${keyString(k)} not above key ${i - 1}`, at + off);
    }
    keys.push(k);
  }
  const children: number[] = [];
  const dcBase = BLKH_SIZE + blk_nr_item * KEY_SIZE;
  for (let i = 0; i <= blk_nr_item; i++) {
    const off = dcBase + i * DC_SIZE;
    const dc_block_number = u32le(data, off, WI);
    if (dc_block_number === 0 || dc_block_number >= blockCount || dc_block_number === block) {
      throw new CorruptError(WI, `block ${block}: child ${i} points to block ${dc_block_number}`, at + off);
    }
    children.push(dc_block_number);
  }
  return { kind: 'internal', block, level: blk_level, keys, children };
}

function decodeLeaf(data: Uint8Array, block: number, nr: number, at: number): LeafNode {
  const W = 'reiserfs.ItemHead';
  const bs = data.length;
  const bodiesStart = BLKH_SIZE + nr * IH_SIZE;
  const items: ItemHead[] = [];
  // Bodies are packed downwards from the end of the block: item i ends where item i-1 starts.
  let limit = bs;
  for (let i = 0; i < nr; i++) {
    const off = BLKH_SIZE + i * IH_SIZE;
    const ih_version = u16le(data, off + 22, W);
    if (ih_version !== KEY_FORMAT_3_5 && ih_version !== KEY_FORMAT_3_6) {
      throw new CorruptError(W, `leaf ${block} item ${i}: ih_version ${ih_version}`, at + off + 22);
    }
    const key = decodeKey(data, off, ih_version, W, at + off);
    const ih_entry_count = u16le(data, off + 16, W);
    const ih_item_len = u16le(data, off + 18, W);
    const ih_item_location = u16le(data, off + 20, W);
    if (ih_item_location < bodiesStart || ih_item_location + ih_item_len > limit) {
      throw new CorruptError(
        W,
        `leaf ${block} item ${i}: body ${ih_item_location}+${ih_item_len} outside [${bodiesStart}, ${limit}) (overlaps the heads, another item or the block end)`,
        at + off + 20,
      );
    }
    if (i > 0 && compareKeys((items[i - 1] as ItemHead).key, key) >= 0) {
      throw new CorruptError(W, `leaf ${block} item ${i}: key ${keyString(key)} not above the previous item's`, at + off);
    }
    limit = ih_item_location;
    items.push({ key, version: ih_version, entryCount: ih_entry_count, location: ih_item_location, length: ih_item_len });
  }
  return { kind: 'leaf', block, level: DISK_LEAF_NODE_LEVEL, items, data };
}

/** The body of item `ih` (already bounds-checked by decodeLeaf). */
export function itemBody(leaf: LeafNode, ih: ItemHead): Uint8Array {
  return leaf.data.subarray(ih.location, ih.location + ih.length);
}
