/**
 * The btrfs driver: superblock (+ mirrors) → chunk map (sys_chunk_array, chunk tree) → root tree
 * → the FS tree of the default subvolume, or of `options.subvolume` (a path from the top-level
 * subvolume, crossing into subvolumes through their dir items). Inode-level operations only; the
 * vfs walks paths.
 */
import { CorruptError, InvalidArgumentError, LimitExceededError, UnsupportedError } from '../../errors.ts';
import { addSafe, bytesEqual, slice, textEncoder, toSafe } from '../../io/bytes.ts';
import { crc32cRaw } from '../../io/checksum.ts';
import { BlockCache, type ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import type { DirEntry, Extent, FilesystemDriver, FsNode, NodeKind, OpenOptions, ProbeResult, Volume } from '../types.ts';
import { CHUNK_ITEM_KEY, ChunkMap, parseChunk, parseSysChunkArray } from './chunks.ts';
import { decompressExtent } from './compression.ts';
import {
  COMPRESS_NONE,
  DIR_INDEX_KEY,
  DIR_ITEM_KEY,
  EXTENT_DATA_KEY,
  FS_TREE_OBJECTID,
  FT_DIR,
  FT_REG_FILE,
  FT_SYMLINK,
  INODE_ITEM_KEY,
  MAX_UNCOMPRESSED,
  ROOT_ITEM_KEY,
  ROOT_TREE_DIR_OBJECTID,
  parseDirItems,
  parseFileExtent,
  parseInodeItem,
  parseRootItem,
  type DirItem,
  type FileExtent,
} from './items.ts';
import { MAGIC, SUPER_OFFSETS, SUPER_SIZE, parseSuperblock, readSuperblock, type Superblock } from './superblock.ts';
import { MAX_U64, NodeReader, findExact, findLastAtOrBelow, walkRange, type Key, type LeafItem, type TreeRoot } from './tree.ts';
import { kindOfMode } from '../filetype.ts';

/** Name hash of DIR_ITEM keys: the kernel's btrfs_name_hash() = crc32c(~1, name) without final inversion. */
export function nameHash(name: Uint8Array): bigint {
  return BigInt(crc32cRaw(0xfffffffe, name));
}

/** Entries allowed in one DIR_ITEM body (hash collisions); real ones hold one or two. */
const MAX_DIR_ITEM_ENTRIES = 64;
/** Decompressed extents kept for sequential reads. */
const EXTENT_CACHE = 8;
/**
 * Decompressed bytes one read may produce, per byte returned. Legitimate files reach 32× when only
 * a sector of each 128 KiB compressed extent is still referenced (partial overwrites, reflinks); a
 * hostile file with thousands of 1-byte references to distinct extents would otherwise make a
 * 1 MiB read decompress gigabytes.
 */
const AMPLIFICATION = 32;

interface Subvolume {
  readonly id: bigint;
  readonly root: TreeRoot;
  readonly rootDirid: bigint;
}

class BtrfsNode implements FsNode {
  constructor(
    readonly kind: NodeKind,
    readonly size: number,
    readonly id: string,
    readonly mode: number,
    readonly uid: number,
    readonly gid: number,
    readonly nlink: number,
    readonly mtime: number,
    readonly subvol: Subvolume,
    readonly ino: bigint,
  ) {}
}

function kindFromType(t: number): DirEntry['kind'] {
  if (t === FT_REG_FILE) return 'file';
  if (t === FT_DIR) return 'dir';
  if (t === FT_SYMLINK) return 'symlink';
  return t >= 3 && t <= 6 ? 'other' : 'unknown';
}

function key(objectid: bigint, type: number, offset: bigint): Key {
  return { objectid, type, offset };
}

class BtrfsVolume implements Volume {
  readonly type = 'btrfs';
  readonly label: string;
  readonly uuid: string;
  private rootNode: BtrfsNode | null = null;
  private readonly subvols = new Map<bigint, Subvolume>();
  private readonly extentCache = new Map<string, Uint8Array>();
  rootSubvol!: Subvolume;
  rootIno!: bigint;

  constructor(
    readonly source: ByteSource,
    private readonly ctx: Context,
    readonly sb: Superblock,
    readonly chunks: ChunkMap,
    private readonly reader: NodeReader,
  ) {
    this.label = sb.label;
    this.uuid = sb.uuid;
  }

  private get rootTree(): TreeRoot {
    return { logical: this.sb.root, level: this.sb.rootLevel };
  }

  async subvolume(id: bigint): Promise<Subvolume> {
    const known = this.subvols.get(id);
    if (known) return known;
    // ROOT_ITEM offsets are 0 for subvolumes and the creation transid for snapshots: take the last.
    const item = await findLastAtOrBelow(this.reader, this.rootTree, key(id, ROOT_ITEM_KEY, 0n), key(id, ROOT_ITEM_KEY, MAX_U64));
    if (!item) throw new CorruptError('btrfs.RootItem', `no root item for tree ${id}`);
    const ri = parseRootItem(item.data, item.where);
    const sv: Subvolume = { id, root: { logical: ri.bytenr, level: ri.level }, rootDirid: ri.rootDirid };
    if (this.subvols.size > 4096) throw new LimitExceededError('nodesVisited', 'too many subvolumes opened', 4096);
    this.subvols.set(id, sv);
    return sv;
  }

  async inode(sv: Subvolume, ino: bigint): Promise<BtrfsNode> {
    const item = await findExact(this.reader, sv.root, key(ino, INODE_ITEM_KEY, 0n));
    if (!item) throw new CorruptError('btrfs.InodeItem', `inode ${ino} of tree ${sv.id} has no inode item`);
    const ii = parseInodeItem(item.data, item.where);
    return new BtrfsNode(kindOfMode(ii.mode), ii.size, `${sv.id}:${ino}`, ii.mode, ii.uid, ii.gid, ii.nlink, ii.mtime, sv, ino);
  }

  /** The node a directory entry points to: an inode of the same tree, or a subvolume's root directory. */
  async follow(sv: Subvolume, entry: DirItem): Promise<BtrfsNode> {
    const loc = entry.location;
    if (loc.type === INODE_ITEM_KEY) return this.inode(sv, loc.objectid);
    if (loc.type === ROOT_ITEM_KEY) {
      const child = await this.subvolume(loc.objectid);
      return this.inode(child, child.rootDirid);
    }
    throw new CorruptError('btrfs.DirItem', `location key type ${loc.type}`);
  }

  async findDirEntry(sv: Subvolume, dirIno: bigint, name: Uint8Array, root = sv.root): Promise<DirItem | null> {
    const item = await findExact(this.reader, root, key(dirIno, DIR_ITEM_KEY, nameHash(name)));
    if (!item) return null;
    for (const e of parseDirItems(item.data, item.where, MAX_DIR_ITEM_ENTRIES)) if (bytesEqual(e.name, name)) return e;
    return null;
  }

  setRoot(sv: Subvolume, ino: bigint): void {
    this.rootSubvol = sv;
    this.rootIno = ino;
  }

  async root(): Promise<FsNode> {
    this.rootNode ??= await this.inode(this.rootSubvol, this.rootIno);
    return this.rootNode;
  }

  private own(n: FsNode): BtrfsNode {
    if (!(n instanceof BtrfsNode)) throw new InvalidArgumentError('node does not come from this btrfs volume');
    return n;
  }

  async lookup(dir: FsNode, name: Uint8Array): Promise<FsNode | null> {
    const d = this.own(dir);
    if (d.kind !== 'dir') return null;
    const e = await this.findDirEntry(d.subvol, d.ino, name);
    return e ? this.follow(d.subvol, e) : null;
  }

  async *readdir(dir: FsNode): AsyncIterable<DirEntry> {
    const d = this.own(dir);
    const items: LeafItem[] = [];
    const max = this.ctx.limits.dirEntries;
    await walkRange(this.reader, d.subvol.root, key(d.ino, DIR_INDEX_KEY, 0n), key(d.ino, DIR_INDEX_KEY, MAX_U64), (item) => {
      if (items.length >= max) throw new LimitExceededError('dirEntries', `directory ${d.id} has more than ${max} entries`, max);
      items.push(item);
    });
    for (const item of items) {
      // A DIR_INDEX body holds exactly one entry.
      const [e] = parseDirItems(item.data, item.where, 1);
      if (e) yield { name: e.name, kind: kindFromType(e.type) };
    }
  }

  /** Decompressed bytes produced by the current read() (see AMPLIFICATION). */
  private inflated = 0;
  private inflateCap = 0;

  private async decompressed(ext: Extract<FileExtent, { kind: 'regular' | 'prealloc' }>, where: number): Promise<Uint8Array> {
    const id = `${ext.diskBytenr}:${ext.diskNumBytes}:${ext.compression}:${ext.ramBytes}`;
    const hit = this.extentCache.get(id);
    if (hit) return hit;
    this.inflated += ext.ramBytes;
    if (this.inflated > this.inflateCap) {
      throw new LimitExceededError('decompressedBytes', `one read decompressed ${this.inflated} bytes (many small references to compressed extents)`, this.inflateCap);
    }
    this.ctx.budget.check();
    const input = await this.readLogical(ext.diskBytenr, ext.diskNumBytes);
    const out = decompressExtent(this.ctx.codecs, ext.compression, input, ext.ramBytes, this.sb.sectorsize, where);
    if (this.extentCache.size >= EXTENT_CACHE) this.extentCache.delete(this.extentCache.keys().next().value as string);
    this.extentCache.set(id, out);
    return out;
  }

  /** File data at a logical address, read straight from the source in as few reads as the chunk layout allows. */
  private async readLogical(logical: number, length: number, into?: Uint8Array, at = 0): Promise<Uint8Array> {
    const out = into ?? new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const [p] = this.chunks.map(logical + done, length - done);
      if (!p || p.length <= 0) throw new CorruptError('btrfs.ChunkMap', `no mapping for logical ${logical + done}`);
      out.set(await this.source.read(p.physical, p.length), at + done);
      done += p.length;
    }
    return out;
  }

  async read(file: FsNode, offset: number, length: number): Promise<Uint8Array> {
    const f = this.own(file);
    if (f.kind !== 'file' && f.kind !== 'symlink') throw new InvalidArgumentError(`${f.id} is not a regular file`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) throw new InvalidArgumentError(`bad read range ${offset}+${length}`);
    const n = Math.max(0, Math.min(length, f.size - offset));
    if (n > this.ctx.limits.allocBytes) throw new LimitExceededError('allocBytes', `read of ${n} bytes`, this.ctx.limits.allocBytes);
    const out = new Uint8Array(n); // holes and prealloc extents read as these zeros
    if (n === 0) return out;
    const end = offset + n;
    this.inflated = 0;
    this.inflateCap = AMPLIFICATION * Math.max(n, this.sb.sectorsize) + 2 * MAX_UNCOMPRESSED;
    const tree = f.subvol.root;
    const first = await findLastAtOrBelow(this.reader, tree, key(f.ino, EXTENT_DATA_KEY, 0n), key(f.ino, EXTENT_DATA_KEY, BigInt(offset)));
    const items: LeafItem[] = [];
    await walkRange(this.reader, tree, first?.key ?? key(f.ino, EXTENT_DATA_KEY, 0n), key(f.ino, EXTENT_DATA_KEY, BigInt(end - 1)), (item) => {
      items.push(item);
    });
    // Uncompressed pieces, merged when both file and disk positions continue each other.
    const runs: { dst: number; logical: number; length: number }[] = [];
    for (const item of items) {
      const fileOff = toSafe(item.key.offset, 'btrfs.FileExtentKey');
      const ext = parseFileExtent(item.data, item.where);
      if (ext.kind === 'inline') {
        if (fileOff !== 0) throw new CorruptError('btrfs.FileExtent', `inline extent at file offset ${fileOff}`, item.where);
        const data = ext.compression === COMPRESS_NONE ? ext.data : decompressExtent(this.ctx.codecs, ext.compression, ext.data, ext.ramBytes, this.sb.sectorsize, item.where);
        const s = Math.max(offset, 0);
        const e = Math.min(end, data.length);
        if (e > s) out.set(data.subarray(s, e), s - offset);
        continue;
      }
      const extEnd = addSafe(fileOff, ext.numBytes, 'btrfs.FileExtent');
      const s = Math.max(offset, fileOff);
      const e = Math.min(end, extEnd);
      if (e <= s || ext.kind === 'prealloc' || ext.diskBytenr === 0) continue;
      if (ext.compression !== COMPRESS_NONE) {
        const data = await this.decompressed(ext, item.where);
        const from = ext.offset + (s - fileOff);
        out.set(data.subarray(from, from + (e - s)), s - offset);
        continue;
      }
      const logical = ext.diskBytenr + ext.offset + (s - fileOff);
      const last = runs[runs.length - 1];
      if (last && last.dst + last.length === s - offset && last.logical + last.length === logical) last.length += e - s;
      else runs.push({ dst: s - offset, logical, length: e - s });
    }
    for (const r of runs) await this.readLogical(r.logical, r.length, out, r.dst);
    return out;
  }

  /**
   * The file's mapping for big copies: uncompressed regular extents through the chunk map (the first
   * copy of DUP/RAID1), prealloc and hole extents as holes. Inline or compressed data cannot be
   * mapped: Unsupported, and the copy reads the file instead (src/fs/types.ts).
   */
  async *extents(file: FsNode): AsyncIterable<Extent> {
    const f = this.own(file);
    if (f.kind !== 'file') throw new UnsupportedError('btrfs extents', ['not a regular file']);
    if (f.size === 0) return;
    const items: LeafItem[] = [];
    await walkRange(this.reader, f.subvol.root, key(f.ino, EXTENT_DATA_KEY, 0n), key(f.ino, EXTENT_DATA_KEY, BigInt(f.size - 1)), (item) => {
      items.push(item);
    });
    for (const item of items) {
      const fileOff = toSafe(item.key.offset, 'btrfs.FileExtentKey');
      const ext = parseFileExtent(item.data, item.where);
      if (ext.kind === 'inline') throw new UnsupportedError('btrfs extents', ['inline extent']);
      if (ext.compression !== COMPRESS_NONE) throw new UnsupportedError('btrfs extents', ['compressed extent']);
      const len = Math.min(ext.numBytes, f.size - fileOff);
      if (len <= 0) continue;
      if (ext.kind === 'prealloc' || ext.diskBytenr === 0) {
        yield { logical: fileOff, length: len, physical: null };
        continue;
      }
      const logical = addSafe(ext.diskBytenr, ext.offset, 'btrfs.FileExtent');
      for (let done = 0; done < len; ) {
        const [p] = this.chunks.map(logical + done, len - done);
        if (!p || p.length <= 0) throw new CorruptError('btrfs.ChunkMap', `no mapping for logical ${logical + done}`, item.where);
        const n = Math.min(p.length, len - done);
        yield { logical: fileOff + done, length: n, physical: p.physical };
        done += n;
      }
    }
  }

  async readlink(link: FsNode): Promise<Uint8Array> {
    const l = this.own(link);
    if (l.kind !== 'symlink') throw new InvalidArgumentError(`${l.id} is not a symlink`);
    return this.read(l, 0, l.size);
  }
}

async function loadChunkTree(sb: Superblock, chunks: ChunkMap, reader: NodeReader): Promise<void> {
  await walkRange(reader, { logical: sb.chunkRoot, level: sb.chunkRootLevel }, key(0n, 0, 0n), key(MAX_U64, 255, MAX_U64), (item) => {
    if (item.key.type !== CHUNK_ITEM_KEY) return;
    const logical = Number(item.key.offset);
    if (!Number.isSafeInteger(logical)) throw new CorruptError('btrfs.Chunk', `logical ${item.key.offset} beyond 2^53`, item.where);
    chunks.add(parseChunk(item.data, 0, logical, sb.devid, item.where).chunk);
  });
}

async function openVolume(src: ByteSource, ctx: Context, options?: OpenOptions): Promise<BtrfsVolume> {
  const sb = await readSuperblock(src);
  const meta = new BlockCache(src, ctx.budget, 4096);
  const chunks = new ChunkMap(src.size);
  parseSysChunkArray(sb.sysChunkArray, sb.devid, chunks, sb.offset);
  const reader = new NodeReader(meta, chunks, sb.nodesize, sb.metadataFsid, ctx);
  await loadChunkTree(sb, chunks, reader);
  const vol = new BtrfsVolume(src, ctx, sb, chunks, reader);
  const top = await vol.subvolume(FS_TREE_OBJECTID);
  if (options?.subvolume !== undefined) {
    // A path from the top-level subvolume; dir items that point at ROOT_ITEMs cross into subvolumes.
    let sv = top;
    let ino = top.rootDirid;
    const parts = options.subvolume.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.length > ctx.limits.pathBytes) throw new LimitExceededError('pathBytes', 'subvolume path too long', ctx.limits.pathBytes);
    for (const part of parts) {
      if (part === '..') throw new InvalidArgumentError(`subvolume path ${options.subvolume} may not contain ..`);
      const e = await vol.findDirEntry(sv, ino, textEncoder.encode(part));
      if (!e) throw new UnsupportedError(`btrfs subvolume ${options.subvolume}`, [`no entry ${part}`]);
      const node = await vol.follow(sv, e);
      if (node.kind !== 'dir') throw new InvalidArgumentError(`btrfs subvolume path ${options.subvolume}: ${part} is not a directory`);
      sv = node.subvol;
      ino = node.ino;
    }
    vol.setRoot(sv, ino);
  } else {
    // The default subvolume: ROOT_TREE_DIR's "default" dir item in the root tree (5 when absent).
    const rootTree = { logical: sb.root, level: sb.rootLevel };
    const e = await vol.findDirEntry(top, ROOT_TREE_DIR_OBJECTID, textEncoder.encode('default'), rootTree);
    const id = e && e.location.type === ROOT_ITEM_KEY ? e.location.objectid : FS_TREE_OBJECTID;
    const sv = await vol.subvolume(id);
    vol.setRoot(sv, sv.rootDirid);
  }
  await vol.root();
  return vol;
}

export const btrfs: FilesystemDriver = {
  id: 'btrfs',
  async probe(src: ByteSource, _ctx: Context): Promise<ProbeResult | null> {
    const off = SUPER_OFFSETS[0];
    if (src.size < off + SUPER_SIZE) return null;
    const b = await src.read(off, SUPER_SIZE);
    if (!bytesEqual(slice(b, 0x40, 8), MAGIC)) return null;
    try {
      const sb = parseSuperblock(b, off);
      if (sb) return { type: 'btrfs', label: sb.label, uuid: sb.uuid };
    } catch {
      // A damaged primary: still btrfs; open() falls back to the mirrors.
    }
    return { type: 'btrfs' };
  },
  open(src: ByteSource, ctx: Context, options?: OpenOptions): Promise<Volume> {
    return openVolume(src, ctx, options);
  },
};
