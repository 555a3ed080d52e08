/**
 * An opened ext2/3/4 filesystem: inode-level operations for the vfs (lookup, readdir, read, readlink,
 * extents). Metadata goes through one BlockCache (charged to the metadata budget); file data is read
 * straight from the source, one read per physically contiguous run.
 */
import { CorruptError, LimitExceededError, UnsupportedError } from '../../errors.ts';
import { u32le } from '../../io/bytes.ts';
import { BlockCache, type ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import type { DirEntry, Extent, ExtentBatch, FsNode, NodeKind, Volume } from '../types.ts';
import { mapBlockMap } from './blockmap.ts';
import { HTREE_UNUSABLE, type RawDirEntry, htreeLookup, parseDirRegion, verifyDirLeaf } from './dir.ts';
import { mapExtentTree, walkExtentTree } from './extents.ts';
import { GroupTable } from './groups.ts';
import {
  EXT4_CASEFOLD_FL,
  EXT4_ENCRYPT_FL,
  EXT4_EXTENTS_FL,
  EXT4_INDEX_FL,
  EXT4_INLINE_DATA_FL,
  EXT4_VERITY_FL,
  I_BLOCK_SIZE,
  type Inode,
  inlineDataXattr,
  isFastSymlink,
  parseInode,
} from './inode.ts';
import { RunList } from './runs.ts';
import type { Superblock } from './superblock.ts';
import { kindOfMode } from '../filetype.ts';

/** Extents per `extentBatches` batch. */
const EXTENT_BATCH = 4096;

/**
 * The next up-to-EXTENT_BATCH extents (holes included) from run `at.i` on, up to run `upTo`, into a
 * packed batch (see ExtentBatch), the file being mapped up to byte `at.pos`; `done` once every run is
 * out and `upTo` is the last (the tail hole up to `size` included). A plain function: V8 optimizes its
 * loop while it runs, which it never does in an async generator.
 */
function extentBatch(runs: RunList, at: { i: number; pos: number }, bs: number, size: number, upTo = runs.count): { batch: ExtentBatch; done: boolean } {
  const n = upTo;
  // Room for a hole and the data of every run left (up to the batch size), and for the tail hole.
  const data = new Float64Array(3 * Math.min(EXTENT_BATCH, 2 * (n - at.i) + 1));
  const src = runs.data;
  let i = at.i;
  let pos = at.pos;
  let k = 0;
  // Each run adds at most two extents (a hole before it, then its data); room is kept for the tail hole.
  while (i < n && k + 9 <= data.length) {
    const start = (src[3 * i] as number) * bs;
    if (start >= size) {
      i = n;
      break;
    }
    const len = Math.min((src[3 * i + 1] as number) * bs, size - start);
    const physical = (src[3 * i + 2] as number) * bs;
    i++;
    if (start > pos) {
      data[k] = pos;
      data[k + 1] = start - pos;
      data[k + 2] = -1;
      k += 3;
    }
    data[k] = start;
    data[k + 1] = len;
    data[k + 2] = physical;
    k += 3;
    pos = start + len;
  }
  const done = i >= n && n === runs.count;
  if (done && pos < size) {
    data[k] = pos;
    data[k + 1] = size - pos;
    data[k + 2] = -1;
    k += 3;
    pos = size;
  }
  at.i = i;
  at.pos = pos;
  return { batch: { count: k / 3, data }, done };
}

export const EXT4_ROOT_INO = 2;

/** The vfs-facing node; `inode` is the decoded on-disk inode. */
export class ExtNode implements FsNode {
  readonly kind: NodeKind;
  readonly size: number;
  readonly id: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly nlink: number;
  readonly mtime: number;
  constructor(readonly inode: Inode) {
    this.kind = kindOfMode(inode.mode);
    this.size = inode.size;
    this.id = inode.ino;
    this.mode = inode.mode;
    this.uid = inode.uid;
    this.gid = inode.gid;
    this.nlink = inode.links;
    this.mtime = inode.mtime;
  }
}

const MAX_CACHED_MAPS = 64;
/** Parsed inodes kept (a boot looks the root and /boot up a dozen times each: one parse and checksum). */
const MAX_CACHED_INODES = 64;

export class ExtVolume implements Volume {
  readonly type: string;
  readonly label: string;
  readonly uuid: string;
  private readonly meta: BlockCache;
  private readonly groups: GroupTable;
  private readonly maps = new Map<number, RunList>();
  private readonly inodes = new Map<number, ExtNode>();

  constructor(
    readonly source: ByteSource,
    readonly ctx: Context,
    readonly sb: Superblock,
  ) {
    this.type = sb.type;
    this.label = sb.label;
    this.uuid = sb.uuid;
    this.meta = new BlockCache(source, ctx.budget, sb.blockSize);
    this.groups = new GroupTable(sb, this.meta);
  }

  async root(): Promise<ExtNode> {
    const n = await this.node(EXT4_ROOT_INO);
    if (n.kind !== 'dir') throw new CorruptError('ext.RootInode', `root inode is not a directory (mode 0o${n.mode.toString(8)})`);
    return n;
  }

  /** Reads and validates inode `ino`, charging one node. */
  async node(ino: number): Promise<ExtNode> {
    const sb = this.sb;
    if (!Number.isSafeInteger(ino) || ino < 1 || ino > sb.inodesCount) throw new CorruptError('ext.Inode', `inode number ${ino} outside 1..${sb.inodesCount}`);
    // Charged on every visit, cached or not: walks over a looping tree stay bounded.
    this.ctx.budget.chargeNode();
    const hit = this.inodes.get(ino);
    if (hit) return hit;
    const group = Math.floor((ino - 1) / sb.inodesPerGroup);
    const index = (ino - 1) % sb.inodesPerGroup;
    const gd = await this.groups.get(group);
    const offset = gd.inodeTable * sb.blockSize + index * sb.inodeSize;
    const raw = await this.meta.read(offset, sb.inodeSize);
    const node = new ExtNode(parseInode(sb, ino, raw, offset));
    if (this.inodes.size >= MAX_CACHED_INODES) this.inodes.delete(this.inodes.keys().next().value as number);
    this.inodes.set(ino, node);
    return node;
  }

  private asExt(n: FsNode): ExtNode {
    if (!(n instanceof ExtNode)) throw new CorruptError('ext.Node', 'node does not belong to this ext volume');
    return n;
  }

  private refuseProtected(n: ExtNode, what: string): void {
    const f = n.inode.flags;
    if (f & EXT4_ENCRYPT_FL) throw new UnsupportedError(`ext inode ${n.id} (${what})`, ['encrypt']);
    if (f & EXT4_VERITY_FL && n.kind === 'file') throw new UnsupportedError(`ext inode ${n.id} (${what})`, ['verity']);
  }

  /** The logical→physical runs of a block-mapped inode (cached for a few inodes). */
  private async runs(n: ExtNode): Promise<RunList> {
    const hit = this.maps.get(n.id);
    if (hit) return hit;
    const sb = this.sb;
    const maxLogical = Math.ceil(n.size / sb.blockSize);
    const runs = n.inode.flags & EXT4_EXTENTS_FL
      ? await mapExtentTree(this.ctx, sb, this.meta, n.inode, maxLogical)
      : await mapBlockMap(this.ctx, sb, this.meta, n.inode, maxLogical);
    this.remember(n, runs);
    return runs;
  }

  private remember(n: ExtNode, runs: RunList): void {
    if (this.maps.size >= MAX_CACHED_MAPS) this.maps.delete(this.maps.keys().next().value as number);
    this.maps.set(n.id, runs);
  }

  private isInline(n: ExtNode): boolean {
    if (!(n.inode.flags & EXT4_INLINE_DATA_FL)) return false;
    if (!this.sb.hasInlineData) throw new CorruptError('ext.Inode.i_flags', `inode ${n.id} has inline data on a filesystem without inline_data`);
    return true;
  }

  /** Inline data: i_block (60 bytes) followed by the system.data xattr value, cut to the inode size. */
  private inlineBytes(n: ExtNode): Uint8Array {
    const extra = inlineDataXattr(this.sb, n.inode);
    const total = I_BLOCK_SIZE + extra.length;
    if (n.size > total) throw new CorruptError('ext.InlineData', `inode ${n.id}: size ${n.size} exceeds its ${total} inline bytes`);
    const out = new Uint8Array(n.size);
    out.set(n.inode.iBlock.subarray(0, Math.min(n.size, I_BLOCK_SIZE)));
    if (n.size > I_BLOCK_SIZE) out.set(extra.subarray(0, n.size - I_BLOCK_SIZE), I_BLOCK_SIZE);
    return out;
  }

  async read(file: FsNode, offset: number, length: number): Promise<Uint8Array> {
    const n = this.asExt(file);
    if (n.kind !== 'file' && n.kind !== 'symlink' && n.kind !== 'dir') throw new CorruptError('ext.Read', `inode ${n.id} has no data`);
    this.refuseProtected(n, 'read');
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new CorruptError('ext.Read', `bad range ${offset}+${length}`);
    }
    const end = Math.min(n.size, offset + length);
    if (end <= offset) return new Uint8Array(0);
    const want = end - offset;
    if (want > this.ctx.limits.allocBytes) throw new LimitExceededError('allocBytes', `read of ${want} bytes`, this.ctx.limits.allocBytes);
    if (this.isInline(n)) return this.inlineBytes(n).slice(offset, end);
    const out = new Uint8Array(want);
    const bs = this.sb.blockSize;
    const runs = await this.runs(n);
    for (let i = runs.firstAfter(Math.floor(offset / bs)); i < runs.count; i++) {
      const rStart = runs.logical(i) * bs;
      if (rStart >= end) break;
      const from = Math.max(offset, rStart);
      const to = Math.min(end, rStart + runs.blocks(i) * bs);
      if (to <= from) continue;
      this.ctx.budget.check();
      const data = await this.source.read(runs.physical(i) * bs + (from - rStart), to - from);
      out.set(data, from - offset);
    }
    return out;
  }

  async *extents(file: FsNode): AsyncIterable<Extent> {
    for await (const { count, data } of this.extentBatches(file)) {
      for (let i = 0; i < 3 * count; i += 3) {
        const physical = data[i + 2] as number;
        yield { logical: data[i] as number, length: data[i + 1] as number, physical: physical < 0 ? null : physical };
      }
    }
  }

  async *extentBatches(file: FsNode): AsyncIterable<ExtentBatch> {
    const n = this.asExt(file);
    this.refuseProtected(n, 'extents');
    if (n.kind !== 'file') throw new CorruptError('ext.Extents', `inode ${n.id} is not a regular file`);
    if (n.size === 0) return;
    // Inline bytes have no block of their own, and a physical offset of −1 would mean a hole (zeros).
    if (this.isInline(n)) throw new UnsupportedError(`ext inode ${n.id} extents`, ['inline_data (use read)']);
    const bs = this.sb.blockSize;
    const at = { i: 0, pos: 0 };
    let runs = this.maps.get(n.id);
    if (!runs && n.inode.flags & EXT4_EXTENTS_FL) {
      // Leaf by leaf: every run but the last (the next leaf may continue it) goes out at once.
      const walking = new RunList();
      for await (const _ of walkExtentTree(this.ctx, this.sb, this.meta, n.inode, Math.ceil(n.size / bs), walking)) {
        while (at.i < walking.count - 1) {
          const { batch } = extentBatch(walking, at, bs, n.size, walking.count - 1);
          if (batch.count) yield batch;
        }
      }
      this.remember(n, walking);
      runs = walking;
    }
    runs ??= await this.runs(n);
    for (;;) {
      const { batch, done } = extentBatch(runs, at, bs, n.size);
      if (batch.count) yield batch;
      if (done) return;
    }
  }

  async readlink(link: FsNode): Promise<Uint8Array> {
    const n = this.asExt(link);
    if (n.kind !== 'symlink') throw new CorruptError('ext.Readlink', `inode ${n.id} is not a symlink`);
    this.refuseProtected(n, 'readlink');
    if (n.size > this.ctx.limits.pathBytes) throw new LimitExceededError('pathBytes', `symlink target of ${n.size} bytes`, this.ctx.limits.pathBytes);
    if (isFastSymlink(this.sb, n.inode)) return n.inode.iBlock.slice(0, n.size);
    return this.read(n, 0, n.size);
  }

  // ---- directories ----

  private dirBlockCount(n: ExtNode): number {
    const bs = this.sb.blockSize;
    if (n.size % bs !== 0) throw new CorruptError('ext.Directory', `directory ${n.id} size ${n.size} is not a whole number of blocks`);
    return n.size / bs;
  }

  /** A directory block through the metadata cache; null for a hole. */
  private async dirBlock(n: ExtNode, runs: RunList, lb: number): Promise<{ data: Uint8Array; offset: number } | null> {
    const i = runs.firstAfter(lb);
    if (i >= runs.count || runs.logical(i) > lb) return null;
    const bs = this.sb.blockSize;
    const offset = (runs.physical(i) + (lb - runs.logical(i))) * bs;
    return { data: await this.meta.read(offset, bs), offset };
  }

  /** Entries of every block (or of the inline area), in on-disk order. */
  private async *dirEntries(n: ExtNode): AsyncGenerator<RawDirEntry> {
    if (n.kind !== 'dir') throw new CorruptError('ext.Directory', `inode ${n.id} is not a directory`);
    this.refuseProtected(n, 'readdir');
    if (n.inode.flags & EXT4_CASEFOLD_FL) throw new UnsupportedError(`ext directory ${n.id}`, ['casefold']);
    const where = `directory ${n.id}`;
    if (this.isInline(n)) {
      // Inline directory: i_block starts with the parent's inode number, then entries; more entries in system.data.
      const parent = u32le(n.inode.iBlock, 0, 'ext.InlineDir');
      yield { inode: parent, name: new Uint8Array([0x2e, 0x2e]), kind: 'dir' };
      for (const e of parseDirRegion(this.sb, n.inode.iBlock.subarray(4), where, undefined).entries) yield e;
      const extra = inlineDataXattr(this.sb, n.inode);
      if (extra.length > 0) for (const e of parseDirRegion(this.sb, extra, `${where} (inline xattr)`, undefined).entries) yield e;
      return;
    }
    const nblocks = this.dirBlockCount(n);
    const runs = await this.runs(n);
    for (let lb = 0; lb < nblocks; lb++) {
      const blk = await this.dirBlock(n, runs, lb);
      if (!blk) continue;
      this.ctx.budget.check();
      const region = parseDirRegion(this.sb, blk.data, `${where} block ${lb}`, blk.offset);
      if (this.sb.metadataCsum && region.tail !== null) verifyDirLeaf(n.inode, blk.data, region.tail, `${where} block ${lb}`, blk.offset);
      for (const e of region.entries) yield e;
    }
  }

  async *readdir(dir: FsNode): AsyncIterable<DirEntry> {
    const n = this.asExt(dir);
    for await (const e of this.dirEntries(n)) yield { name: e.name, kind: e.kind };
  }

  async lookup(dir: FsNode, name: Uint8Array): Promise<FsNode | null> {
    const n = this.asExt(dir);
    const found = await this.findEntry(n, name);
    if (!found) return null;
    const isDotName = (name.length === 1 && name[0] === 0x2e) || (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e);
    if (found.inode === n.id && !isDotName) {
      throw new CorruptError('ext.DirectoryLoop', `directory ${n.id} contains itself as "${new TextDecoder().decode(name)}"`);
    }
    return this.node(found.inode);
  }

  private async findEntry(n: ExtNode, name: Uint8Array): Promise<RawDirEntry | null> {
    if (n.kind !== 'dir') throw new CorruptError('ext.Directory', `inode ${n.id} is not a directory`);
    this.refuseProtected(n, 'lookup');
    if (this.sb.hasDirIndex && n.inode.flags & EXT4_INDEX_FL && !this.isInline(n) && !(n.inode.flags & EXT4_CASEFOLD_FL)) {
      const nblocks = this.dirBlockCount(n);
      const runs = await this.runs(n);
      const r = await htreeLookup(this.sb, n.inode, nblocks, (lb) => this.dirBlock(n, runs, lb), name, `directory ${n.id}`);
      if (r !== HTREE_UNUSABLE) return r;
    }
    let scanned = 0;
    const max = this.ctx.limits.dirEntries;
    for await (const e of this.dirEntries(n)) {
      if (++scanned > max) throw new LimitExceededError('dirEntries', `lookup scanned more than ${max} entries`, max);
      if (e.name.length === name.length && e.name.every((x, i) => x === name[i])) return e;
    }
    return null;
  }
}
