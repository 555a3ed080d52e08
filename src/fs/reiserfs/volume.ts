/**
 * A mounted ReiserFS: objects are found by key in the S+tree (tree.ts). An object (dirId, objectId)
 * has a stat-data item at offset 0, then either directory items (keyed by the hash of their first
 * name) or body items keyed by byte offset + 1: direct items (tails, bytes inline) and indirect items
 * (arrays of u32 unformatted block numbers, 0 = hole). Gaps between body items are holes too.
 */
import { CorruptError, InvalidArgumentError, IsADirectoryError, LimitExceededError, NotADirectoryError } from '../../errors.ts';
import { bytesEqual, u32le } from '../../io/bytes.ts';
import { BlockCache, type ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import type { DirEntry, FsNode, NodeKind, Volume } from '../types.ts';
import { hashFor, hashValue, type NameHash } from './hash.ts';
import { decodeDirItem, decodeStatData, kindOfMode, type DirEntryRaw } from './items.ts';
import { TYPE_ANY, TYPE_DIRECT, TYPE_DIRENTRY, TYPE_INDIRECT, TYPE_STAT_DATA, compareObject, keyString } from './key.ts';
import { itemBody } from './node.ts';
import type { Superblock } from './superblock.ts';
import { STree, type ItemRef } from './tree.ts';

/** reiserfs.h REISERFS_ROOT_PARENT_OBJECTID / REISERFS_ROOT_OBJECTID. */
const ROOT_DIR_ID = 1;
const ROOT_OBJECT_ID = 2;
const HASH_MASK = 0x7fffff80;
/** reiserfs.h PRIVROOT_NAME. */
const PRIV_ROOT = new TextEncoder().encode('.reiserfs_priv');

export class ReiserNode implements FsNode {
  constructor(
    readonly kind: NodeKind,
    readonly size: number,
    readonly dirId: number,
    readonly objectId: number,
    readonly mode: number,
    readonly uid: number,
    readonly gid: number,
    readonly nlink: number,
    readonly mtime: number,
  ) {}
  /** Object ids are unique in the filesystem; hard links share one. */
  get id(): number {
    return this.objectId;
  }
}

export class ReiserVolume implements Volume {
  readonly type = 'reiserfs';
  readonly label?: string;
  readonly uuid?: string;
  private readonly cache: BlockCache;
  private readonly tree: STree;
  private readonly hash: NameHash | null;
  private readonly maxV1Size = 0xffffffff;
  /** s_maxbytes for 3.6 objects: 2^41 blocks (super.c), capped to exact JS integers. */
  private readonly maxV2Size: number;

  constructor(
    readonly source: ByteSource,
    readonly sb: Superblock,
    private readonly ctx: Context,
  ) {
    if (sb.label) this.label = sb.label;
    if (sb.uuid) this.uuid = sb.uuid;
    this.cache = new BlockCache(source, ctx.budget, sb.blockSize);
    this.tree = new STree(this.cache, sb, ctx);
    this.hash = hashFor(sb.hashCode);
    this.maxV2Size = Math.min(Number.MAX_SAFE_INTEGER, 2 ** 41 * sb.blockSize);
  }

  async root(): Promise<FsNode> {
    const node = await this.object(ROOT_DIR_ID, ROOT_OBJECT_ID);
    if (node.kind !== 'dir') throw new CorruptError('reiserfs.Root', `root object has mode ${node.mode.toString(8)}`);
    return node;
  }

  /** Loads the stat data of object (dirId, objectId). */
  async object(dirId: number, objectId: number): Promise<ReiserNode> {
    const want = { dirId, objectId, offset: 0n, type: TYPE_STAT_DATA };
    for await (const { leaf, ih } of this.tree.items(want, false)) {
      if (ih.key.dirId !== dirId || ih.key.objectId !== objectId || ih.key.offset !== 0n || ih.key.type !== TYPE_STAT_DATA) break;
      const at = leaf.block * this.sb.blockSize + ih.location;
      const sd = decodeStatData(itemBody(leaf, ih), ih, ih.version === 0 ? this.maxV1Size : this.maxV2Size, at);
      return new ReiserNode(kindOfMode(sd.mode), sd.size, dirId, objectId, sd.mode, sd.uid, sd.gid, sd.nlink, sd.mtime);
    }
    throw new CorruptError('reiserfs.StatData', `no stat data for object ${keyString(want)}`);
  }

  private asNode(n: FsNode): ReiserNode {
    if (!(n instanceof ReiserNode)) throw new InvalidArgumentError('node does not belong to this reiserfs volume');
    return n;
  }

  /** Directory items of `dir`, starting at the one that may hold hash offset `from`. */
  private async *dirItems(dir: ReiserNode, from: number): AsyncGenerator<{ ref: ItemRef; entries: DirEntryRaw[] }> {
    if (dir.kind !== 'dir') throw new NotADirectoryError(`object ${dir.objectId}`);
    const start = { dirId: dir.dirId, objectId: dir.objectId, offset: BigInt(from), type: TYPE_DIRENTRY };
    for await (const ref of this.tree.items(start, true)) {
      const c = compareObject(ref.ih.key, dir);
      if (c < 0) continue;
      if (c > 0) return;
      if (ref.ih.key.type === TYPE_STAT_DATA) continue;
      if (ref.ih.key.type !== TYPE_DIRENTRY) throw new CorruptError('reiserfs.Directory', `directory ${dir.objectId} has a ${ref.ih.key.type} item`);
      const at = ref.leaf.block * this.sb.blockSize + ref.ih.location;
      yield { ref, entries: decodeDirItem(itemBody(ref.leaf, ref.ih), ref.ih, at) };
    }
  }

  async *readdir(dirNode: FsNode): AsyncIterable<DirEntry> {
    const dir = this.asNode(dirNode);
    let seen = 0;
    for await (const { entries } of this.dirItems(dir, 0)) {
      for (const e of entries) {
        if (++seen > this.ctx.limits.dirEntries) throw new LimitExceededError('dirEntries', `directory ${dir.objectId}`, this.ctx.limits.dirEntries);
        if (isDotOrDotDot(e.name)) continue;
        // The kernel's xattr root is private: its readdir hides it (xattr.c is_privroot_deh), so do we.
        if (dir.dirId === ROOT_DIR_ID && dir.objectId === ROOT_OBJECT_ID && bytesEqual(e.name, PRIV_ROOT)) continue;
        yield { name: e.name, kind: 'unknown' };
      }
    }
  }

  async lookup(dirNode: FsNode, name: Uint8Array): Promise<FsNode | null> {
    const dir = this.asNode(dirNode);
    let seen = 0;
    const count = (): void => {
      if (++seen > this.ctx.limits.dirEntries) throw new LimitExceededError('dirEntries', `lookup in directory ${dir.objectId}`, this.ctx.limits.dirEntries);
    };
    if (this.hash) {
      // Entries are sorted by deh_offset = hash value | generation (reiserfs.h GET_HASH_VALUE), so
      // start at the item that may hold the hash and stop past it.
      const hv = hashValue(this.hash, name);
      for await (const { entries } of this.dirItems(dir, hv)) {
        for (const e of entries) {
          count();
          const h = e.offset & HASH_MASK;
          if (h < hv) continue;
          if (h > hv) return null;
          if (bytesEqual(e.name, name)) return this.object(e.dirId, e.objectId);
        }
      }
      return null;
    }
    // Unknown hash (s_hash_function_code unset): compare every name.
    for await (const { entries } of this.dirItems(dir, 0)) {
      for (const e of entries) {
        count();
        if (bytesEqual(e.name, name)) return this.object(e.dirId, e.objectId);
      }
    }
    return null;
  }

  async readlink(linkNode: FsNode): Promise<Uint8Array> {
    const link = this.asNode(linkNode);
    if (link.kind !== 'symlink') throw new InvalidArgumentError(`object ${link.objectId} is not a symlink`);
    if (link.size > this.ctx.limits.pathBytes) throw new LimitExceededError('pathBytes', `symlink of ${link.size} bytes`, this.ctx.limits.pathBytes);
    return this.body(link, 0, link.size);
  }

  async read(fileNode: FsNode, offset: number, length: number): Promise<Uint8Array> {
    const file = this.asNode(fileNode);
    if (file.kind === 'dir') throw new IsADirectoryError(`object ${file.objectId}`);
    if (file.kind !== 'file') throw new InvalidArgumentError(`object ${file.objectId} is not a regular file`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new InvalidArgumentError(`bad read range ${offset}+${length}`);
    }
    return this.body(file, offset, length);
  }

  /**
   * Bytes [offset, offset+length) ∩ [0, size) of an object's body. Indirect pointers that are
   * physically contiguous (also across items) become one source read; holes stay zero.
   */
  private async body(file: ReiserNode, offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(file.size, offset + length);
    if (offset >= end) return new Uint8Array(0);
    if (end - offset > this.ctx.limits.allocBytes) throw new LimitExceededError('allocBytes', `read of ${end - offset} bytes`, this.ctx.limits.allocBytes);
    const out = new Uint8Array(end - offset);
    const bs = this.sb.blockSize;
    const src = this.source;
    // The pending run of contiguous blocks: logical byte start, physical byte start, byte length.
    let run: { logical: number; physical: number; len: number } | null = null;
    const flush = async (): Promise<void> => {
      if (!run) return;
      const lo = Math.max(run.logical, offset);
      const hi = Math.min(run.logical + run.len, end);
      const r = run;
      run = null;
      if (hi > lo) out.set(await src.read(r.physical + (lo - r.logical), hi - lo), lo - offset);
    };
    let prevEnd = 0;
    const where = (ref: ItemRef): number => ref.leaf.block * bs + ref.ih.location;
    const start = { dirId: file.dirId, objectId: file.objectId, offset: BigInt(offset) + 1n, type: TYPE_ANY };
    for await (const ref of this.tree.items(start, true)) {
      const { ih } = ref;
      const c = compareObject(ih.key, file);
      if (c < 0) continue;
      if (c > 0) break;
      if (ih.key.type === TYPE_STAT_DATA) continue;
      if (ih.key.type !== TYPE_DIRECT && ih.key.type !== TYPE_INDIRECT) {
        throw new CorruptError('reiserfs.Body', `object ${file.objectId} has an item of type ${ih.key.type}`, where(ref));
      }
      // Body item keys hold byte offset + 1 (reiserfs.h: "offset of the first byte + 1").
      if (ih.key.offset < 1n || ih.key.offset > BigInt(this.maxV2Size)) {
        throw new CorruptError('reiserfs.Body', `object ${file.objectId}: item offset ${ih.key.offset}`, where(ref));
      }
      const itemStart = Number(ih.key.offset) - 1;
      if (itemStart >= end) break;
      if (itemStart < prevEnd) throw new CorruptError('reiserfs.Body', `object ${file.objectId}: item at ${itemStart} overlaps the previous one (ends ${prevEnd})`, where(ref));
      const body = itemBody(ref.leaf, ih);
      if (ih.key.type === TYPE_DIRECT) {
        prevEnd = itemStart + body.length;
        const lo = Math.max(itemStart, offset);
        const hi = Math.min(prevEnd, end);
        if (hi > lo) out.set(body.subarray(lo - itemStart, hi - itemStart), lo - offset);
        continue;
      }
      if (body.length % 4 !== 0 || itemStart % bs !== 0) {
        throw new CorruptError('reiserfs.IndirectItem', `object ${file.objectId}: ${body.length}-byte indirect item at ${itemStart}`, where(ref));
      }
      const n = body.length / 4;
      prevEnd = itemStart + n * bs;
      for (let i = 0; i < n; i++) {
        const ls = itemStart + i * bs;
        if (ls + bs <= offset) continue;
        if (ls >= end) break;
        const ptr = u32le(body, i * 4, 'reiserfs.IndirectItem');
        if (ptr === 0) continue; // a hole: `out` is already zero
        if (ptr >= this.sb.blockCount) {
          throw new CorruptError('reiserfs.IndirectItem', `object ${file.objectId}: block pointer ${ptr} past the filesystem (${this.sb.blockCount} blocks)`, where(ref) + i * 4);
        }
        const phys = ptr * bs;
        if (run && run.physical + run.len === phys && run.logical + run.len === ls) {
          run.len += bs;
        } else {
          await flush();
          run = { logical: ls, physical: phys, len: bs };
        }
      }
    }
    await flush();
    return out;
  }
}

function isDotOrDotDot(n: Uint8Array): boolean {
  return (n.length === 1 && n[0] === 0x2e) || (n.length === 2 && n[0] === 0x2e && n[1] === 0x2e);
}
