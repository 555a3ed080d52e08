/**
 * XFS driver (v4 and v5 superblocks): inode-level operations for the vfs. See README.md for the
 * specification followed and what is not supported.
 */
import { CorruptError, IsADirectoryError, LimitExceededError, NotADirectoryError, UnsupportedError } from '../../errors.ts';
import { bound, concatBytes, u16be, u32be, u32le, u64be, bytesEqual, slice } from '../../io/bytes.ts';
import { xfsCksum } from './cksum.ts';
import { BlockCache, type ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import type { DirEntry, Extent, FilesystemDriver, FsNode, NodeKind, ProbeResult, Volume } from '../types.ts';
import { btreeList, extentList, findMapping, firstMappingFrom, type Mapping } from './bmap.ts';
import {
  DA3_NODE_MAGIC,
  DA_NODE_MAGIC,
  DIR2_LEAF_OFFSET,
  blockLeafEntries,
  daHashName,
  daHeader,
  dataBlockBounds,
  dataBlockEntries,
  dataEntryAt,
  isLeafMagic,
  shortformEntries,
  type XfsDirEntry,
} from './dir.ts';
import { DinodeFormat, decodeDinode, inodeByteOffset, type Dinode } from './inode.ts';
import { decodeSuperblock, isXfsSuperblock, type Superblock } from './superblock.ts';
import { kindOfMode } from '../filetype.ts';

/** XFS_SYMLINK_MAXLEN */
const SYMLINK_MAXLEN = 1024;
const SYMLINK_MAGIC = 0x58534c4d; // 'XSLM'
const SYMLINK_HDR = 56;
/** XFS_DA_NODE_MAXDEPTH */
const DA_NODE_MAXDEPTH = 5;
/** Directory blocks kept in memory (LRU) per volume. */
const DIR_BLOCK_MEMO = 32;

export class XfsNode implements FsNode {
  readonly kind: NodeKind;
  readonly size: number;
  readonly id: number | string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly nlink: number;
  readonly mtime: number;
  /** Lazily decoded data-fork mapping (extents or bmbt formats). */
  mapping?: Promise<Mapping[]>;
  constructor(readonly dinode: Dinode) {
    this.kind = kindOfMode(dinode.mode);
    this.size = dinode.size;
    this.id = Number.isSafeInteger(Number(dinode.ino)) ? Number(dinode.ino) : dinode.ino.toString();
    this.mode = dinode.mode;
    this.uid = dinode.uid;
    this.gid = dinode.gid;
    this.nlink = dinode.nlink;
    this.mtime = dinode.mtime;
  }
}

async function readSuperblock(src: ByteSource, ctx: Context): Promise<Superblock | null> {
  if (src.size < 512) return null;
  ctx.budget.chargeMetadata(512);
  let b = await src.read(0, 512);
  if (!isXfsSuperblock(b)) return null;
  // v5 checksums the whole sector; sb_sectsize (offset 102) is validated by decodeSuperblock.
  const sect = u16be(b, 102, 'xfs.Superblock');
  if (sect > 512 && sect <= 32768 && sect <= src.size) {
    ctx.budget.chargeMetadata(sect);
    b = await src.read(0, sect);
  }
  return decodeSuperblock(b, src.size);
}

class XfsVolume implements Volume {
  readonly type = 'xfs';
  readonly label: string;
  readonly uuid: string;
  private readonly cache: BlockCache;
  private rootNode: Promise<XfsNode> | undefined;
  private readonly dirBlocks = new Map<string, { b: Uint8Array; byte: number }>();

  constructor(
    readonly source: ByteSource,
    private readonly ctx: Context,
    readonly sb: Superblock,
  ) {
    this.label = sb.label;
    this.uuid = sb.uuid;
    this.cache = new BlockCache(source, ctx.budget, sb.blockSize);
  }

  root(): Promise<FsNode> {
    this.rootNode ??= this.inode(this.sb.rootIno);
    return this.rootNode;
  }

  async inode(ino: bigint): Promise<XfsNode> {
    this.ctx.budget.chargeNode();
    const at = inodeByteOffset(this.sb, ino);
    const b = await this.cache.read(at, this.sb.inodeSize);
    const d = decodeDinode(this.sb, ino, b, at);
    const node = new XfsNode(d);
    const W = `xfs.Inode(${ino})`;
    // Which fork formats each type may use (xfs_inode_fork.c xfs_iformat_data_fork).
    if (node.kind === 'file' && d.format !== DinodeFormat.Extents && d.format !== DinodeFormat.Btree) {
      throw new CorruptError(`${W}.di_format`, `regular file in fork format ${d.format}`, at + 5);
    }
    if ((node.kind === 'dir' || node.kind === 'symlink') && d.format === DinodeFormat.Dev) {
      throw new CorruptError(`${W}.di_format`, `${node.kind} in device fork format`, at + 5);
    }
    return node;
  }

  private mappings(node: XfsNode): Promise<Mapping[]> {
    node.mapping ??= (async () => {
      const d = node.dinode;
      const W = `xfs.Inode(${d.ino}).bmap`;
      // Realtime files map blocks of the separate realtime device, which we do not have.
      if (d.realtime && node.kind === 'file') throw new UnsupportedError(`xfs inode ${d.ino}`, ['realtime']);
      if (d.format === DinodeFormat.Extents) return extentList(this.sb, d.dataFork, d.nextents, W);
      if (d.format === DinodeFormat.Btree) return btreeList(this.sb, this.cache, this.ctx, d.ino, d.dataFork, W);
      throw new CorruptError(W, `fork format ${d.format} has no block map`);
    })();
    return node.mapping;
  }

  private asXfs(node: FsNode): XfsNode {
    if (!(node instanceof XfsNode)) throw new CorruptError('xfs.Node', 'node from another volume');
    return node;
  }

  /** Reads `nblocks` fs blocks of metadata at file block `fileBlock` through the fork mapping. */
  private async readMapped(node: XfsNode, fileBlock: number, nblocks: number, what: string): Promise<{ b: Uint8Array; byte: number }> {
    // Directory blocks are re-read on every lookup in the same directory: keep the last few, so a
    // walk of a big directory charges the metadata budget once per block rather than per name.
    const key = `${node.dinode.ino}:${fileBlock}:${nblocks}`;
    const hit = this.dirBlocks.get(key);
    if (hit) {
      this.dirBlocks.delete(key);
      this.dirBlocks.set(key, hit);
      return hit;
    }
    const got = await this.readMappedUncached(node, fileBlock, nblocks, what);
    this.dirBlocks.set(key, got);
    if (this.dirBlocks.size > DIR_BLOCK_MEMO) this.dirBlocks.delete(this.dirBlocks.keys().next().value as string);
    return got;
  }

  private async readMappedUncached(node: XfsNode, fileBlock: number, nblocks: number, what: string): Promise<{ b: Uint8Array; byte: number }> {
    const maps = await this.mappings(node);
    const bs = this.sb.blockSize;
    const parts: Uint8Array[] = [];
    let first = -1;
    let blk = fileBlock;
    while (blk < fileBlock + nblocks) {
      const i = findMapping(maps, blk);
      const m = maps[i];
      if (!m || m.unwritten) throw new CorruptError(what, `directory block ${blk} of inode ${node.dinode.ino} is not mapped`);
      const n = Math.min(m.fileBlock + m.count, fileBlock + nblocks) - blk;
      const phys = m.byte + (blk - m.fileBlock) * bs;
      if (first < 0) first = phys;
      parts.push(await this.cache.read(phys, n * bs));
      blk += n;
    }
    return { b: concatBytes(parts), byte: first };
  }

  /**
   * Block form: the fork maps nothing past the first directory block (xfs_dir2_isblock looks at the
   * last mapped offset; a leaf-form directory can also have a one-block data space).
   */
  private async isBlockDir(node: XfsNode): Promise<boolean> {
    const maps = await this.mappings(node);
    const last = maps[maps.length - 1];
    if (!last || last.fileBlock + last.count !== this.sb.dirBlkFsbs) return false;
    if (node.dinode.size !== this.sb.dirBlkSize) {
      throw new CorruptError(`xfs.Dir(${node.dinode.ino}).di_size`, `block-form directory of ${node.dinode.size} bytes`);
    }
    return true;
  }

  private leafBlock(): number {
    return DIR2_LEAF_OFFSET / this.sb.blockSize;
  }

  /** Every entry of a directory, in on-disk order (includes `.` and `..` for block forms). */
  private async *entries(node: XfsNode): AsyncGenerator<XfsDirEntry> {
    const d = node.dinode;
    if (node.kind !== 'dir') throw new NotADirectoryError(String(node.id));
    if (d.format === DinodeFormat.Local) {
      yield* shortformEntries(this.sb, d.dataFork, d.size, d.ino, d.forkOffset);
      return;
    }
    const single = await this.isBlockDir(node);
    const maps = await this.mappings(node);
    const step = this.sb.dirBlkFsbs;
    const leafBlk = this.leafBlock();
    let next = 0; // first dir block not yet read: a dir block split over two mappings is read once
    let scanned = 0;
    for (const m of maps) {
      if (m.fileBlock >= leafBlk) break;
      if (m.unwritten) continue;
      let db = Math.max(next, Math.ceil(m.fileBlock / step) * step);
      for (; db < m.fileBlock + m.count && db < leafBlk; db += step) {
        if (single && db !== 0) throw new CorruptError(`xfs.Dir(${d.ino})`, 'block-format directory maps more than one block');
        const W = `xfs.DirData(${d.ino}:${db})`;
        const { b, byte } = await this.readMapped(node, db, step, W);
        const { start, end } = dataBlockBounds(this.sb, b, byte, d.ino, single, W);
        const ents = dataBlockEntries(this.sb, b, start, end, byte, W);
        scanned += ents.length;
        if (scanned > this.ctx.limits.dirEntries) throw new LimitExceededError('dirEntries', `directory ${d.ino}`, this.ctx.limits.dirEntries);
        yield* ents;
        next = db + step;
      }
      this.ctx.budget.check();
    }
  }

  async *readdir(dir: FsNode): AsyncIterable<DirEntry> {
    for await (const e of this.entries(this.asXfs(dir))) yield { name: e.name, kind: e.kind };
  }

  async lookup(dirNode: FsNode, name: Uint8Array): Promise<FsNode | null> {
    const dir = this.asXfs(dirNode);
    if (dir.kind !== 'dir') throw new NotADirectoryError(String(dir.id));
    if (name.length === 0 || name.length > 255) return null;
    const ino = await this.lookupIno(dir, name);
    return ino === null ? null : this.inode(ino);
  }

  private async lookupIno(dir: XfsNode, name: Uint8Array): Promise<bigint | null> {
    const d = dir.dinode;
    // Short form has no index; ASCII-CI hashes case-folded names, so scan and compare exactly.
    if (d.format === DinodeFormat.Local || this.sb.asciiCi) return this.scan(dir, name);
    const hash = daHashName(name);
    if (await this.isBlockDir(dir)) {
      const W = `xfs.DirBlock(${d.ino})`;
      const { b, byte } = await this.readMapped(dir, 0, this.sb.dirBlkFsbs, W);
      const { end } = dataBlockBounds(this.sb, b, byte, d.ino, true, W);
      const { at, count } = blockLeafEntries(b, end);
      return this.searchLeafEntries(dir, b, at, count, byte, hash, name, W, () => null);
    }
    const leafBlk = this.leafBlock();
    const maps = await this.mappings(dir);
    if (findMapping(maps, leafBlk) < 0) return this.scan(dir, name); // no index block: linear fallback
    // Descend the da-btree from its root at the first leaf-space block; leaf and node forms share this.
    let blk = leafBlk;
    let expect = -1;
    const visited = new Set<number>();
    for (let hops = 0; ; hops++) {
      if (visited.has(blk) || hops > DA_NODE_MAXDEPTH + 1) throw new CorruptError(`xfs.DirNode(${d.ino})`, `da-btree loop or too deep at block ${blk}`);
      visited.add(blk);
      this.ctx.budget.chargeNode();
      const W = `xfs.DirNode(${d.ino}:${blk})`;
      const { b, byte } = await this.readMapped(dir, blk, this.sb.dirBlkFsbs, W);
      const h = daHeader(this.sb, b, byte, d.ino, W);
      const max = Math.floor((b.length - h.ents) / 8);
      bound(h.count, 0, max, `${W}.count`, byte);
      if (isLeafMagic(h.magic)) {
        if (expect > 0) throw new CorruptError(`${W}.level`, `leaf where the parent expects level ${expect}`, byte);
        return this.searchLeafEntries(dir, b, h.ents, h.count, byte, hash, name, W, async () => {
          // Equal hashes may continue in the next leaf (xfs_dir2_leafn_lookup_for_entry).
          return h.forw === 0 ? null : this.leafChain(dir, h.forw, hash, name, visited);
        });
      }
      if (h.magic !== DA_NODE_MAGIC && h.magic !== DA3_NODE_MAGIC) throw new CorruptError(`${W}.magic`, 'not a da node', byte);
      bound(h.level, 1, Math.min(DA_NODE_MAXDEPTH, this.ctx.limits.treeDepth), `${W}.level`, byte);
      if (expect >= 0 && h.level !== expect) throw new CorruptError(`${W}.level`, `level ${h.level} where the parent expects ${expect}`, byte);
      if (h.count === 0) throw new CorruptError(`${W}.count`, 'empty da node', byte);
      // btree[i] = {hashval, before}: the first entry whose hashval ≥ hash leads to the name.
      let pick = -1;
      let prev = 0;
      for (let i = 0; i < h.count; i++) {
        const hv = u32be(b, h.ents + i * 8, W);
        if (hv < prev) throw new CorruptError(`${W}.hashval`, `entry ${i} out of order`, byte + h.ents + i * 8);
        prev = hv;
        if (pick < 0 && hv >= hash) pick = i;
      }
      if (pick < 0) pick = h.count - 1;
      const before = u32be(b, h.ents + pick * 8 + 4, W);
      if (before < leafBlk) throw new CorruptError(`${W}.before`, `child block ${before} is outside leaf space`, byte);
      blk = before;
      expect = h.level - 1;
    }
  }

  /** Follows leafn `forw` siblings while the hash run continues. */
  private async leafChain(dir: XfsNode, start: number, hash: number, name: Uint8Array, visited: Set<number>): Promise<bigint | null> {
    let blk = start;
    const leafBlk = this.leafBlock();
    for (;;) {
      if (blk < leafBlk || visited.has(blk)) throw new CorruptError(`xfs.DirLeaf(${dir.dinode.ino})`, `sibling block ${blk} loops or leaves leaf space`);
      visited.add(blk);
      this.ctx.budget.chargeNode();
      const W = `xfs.DirLeaf(${dir.dinode.ino}:${blk})`;
      const { b, byte } = await this.readMapped(dir, blk, this.sb.dirBlkFsbs, W);
      const h = daHeader(this.sb, b, byte, dir.dinode.ino, W);
      if (!isLeafMagic(h.magic)) throw new CorruptError(`${W}.magic`, 'sibling is not a leaf', byte);
      bound(h.count, 0, Math.floor((b.length - h.ents) / 8), `${W}.count`, byte);
      if (h.count === 0 || u32be(b, h.ents, W) !== hash) return null;
      let more = false;
      const found = await this.searchLeafEntries(dir, b, h.ents, h.count, byte, hash, name, W, async () => {
        more = true;
        return null;
      });
      if (found !== null || !more || h.forw === 0) return found;
      blk = h.forw;
    }
  }

  /**
   * Binary-searches `count` (hashval, address) leaf entries at `at` for `hash`, then checks each
   * candidate's data entry name. `atEnd` continues the search when the hash run reaches the last entry.
   */
  private async searchLeafEntries(
    dir: XfsNode,
    b: Uint8Array,
    at: number,
    count: number,
    byte: number,
    hash: number,
    name: Uint8Array,
    W: string,
    atEnd: () => Promise<bigint | null> | null,
  ): Promise<bigint | null> {
    let prev = 0;
    for (let i = 0; i < count; i++) {
      const hv = u32be(b, at + i * 8, W);
      if (hv < prev) throw new CorruptError(`${W}.hashval`, `leaf entry ${i} out of order`, byte + at + i * 8);
      prev = hv;
    }
    let lo = 0;
    let hi = count;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (u32be(b, at + mid * 8, W) < hash) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < count && u32be(b, at + i * 8, W) === hash; i++) {
      const address = u32be(b, at + i * 8 + 4, W);
      if (address === 0) continue; // XFS_DIR2_NULL_DATAPTR: a stale entry
      const e = await this.entryAt(dir, address);
      if (bytesEqual(e.name, name)) return e.ino;
    }
    if (count > 0 && u32be(b, at + (count - 1) * 8, W) === hash) return atEnd();
    return null;
  }

  /** The data entry a leaf address (8-byte units in data space) points at. */
  private async entryAt(dir: XfsNode, address: number): Promise<XfsDirEntry> {
    const d = dir.dinode;
    const pos = address * 8;
    if (pos >= DIR2_LEAF_OFFSET) throw new CorruptError(`xfs.DirLeaf(${d.ino})`, `address ${address} is outside data space`);
    const dirBlk = Math.floor(pos / this.sb.dirBlkSize);
    const off = pos - dirBlk * this.sb.dirBlkSize;
    const db = dirBlk * this.sb.dirBlkFsbs;
    const single = await this.isBlockDir(dir);
    if (single && db !== 0) throw new CorruptError(`xfs.DirBlock(${d.ino})`, `address ${address} outside the block`);
    const W = `xfs.DirData(${d.ino}:${db})`;
    const { b, byte } = await this.readMapped(dir, db, this.sb.dirBlkFsbs, W);
    const { start, end } = dataBlockBounds(this.sb, b, byte, d.ino, single, W);
    if (off < start || off >= end || off % 8 !== 0) throw new CorruptError(W, `leaf address ${address} points outside the entries`, byte + off);
    const { entry } = dataEntryAt(this.sb, b, off, end, byte, W);
    if (!entry) throw new CorruptError(W, `leaf address ${address} points at a free region`, byte + off);
    return entry;
  }

  private async scan(dir: XfsNode, name: Uint8Array): Promise<bigint | null> {
    for await (const e of this.entries(dir)) if (bytesEqual(e.name, name)) return e.ino;
    return null;
  }

  async read(fileNode: FsNode, offset: number, length: number): Promise<Uint8Array> {
    const file = this.asXfs(fileNode);
    if (file.kind === 'dir') throw new IsADirectoryError(String(file.id));
    if (file.kind !== 'file') throw new CorruptError('xfs.Read', `inode ${file.id} is not a regular file`);
    bound(offset, 0, Number.MAX_SAFE_INTEGER, 'xfs.Read.offset');
    bound(length, 0, Number.MAX_SAFE_INTEGER, 'xfs.Read.length');
    if (offset >= file.size) return new Uint8Array(0);
    const len = Math.min(length, file.size - offset);
    if (len > this.ctx.limits.allocBytes) throw new LimitExceededError('allocBytes', `read of ${len} bytes`, this.ctx.limits.allocBytes);
    const out = new Uint8Array(len);
    const maps = await this.mappings(file);
    const bs = this.sb.blockSize;
    const end = offset + len;
    // Physically contiguous pieces become one source read; holes and unwritten extents stay zero.
    const runs: { dst: number; phys: number; n: number }[] = [];
    for (let i = firstMappingFrom(maps, Math.floor(offset / bs)); i < maps.length; i++) {
      const m = maps[i] as Mapping;
      const mStart = m.fileBlock * bs;
      if (mStart >= end) break;
      if (m.unwritten) continue;
      const s = Math.max(offset, mStart);
      const e = Math.min(end, mStart + m.count * bs);
      if (e <= s) continue;
      const phys = m.byte + (s - mStart);
      const last = runs[runs.length - 1];
      if (last && last.phys + last.n === phys && last.dst + last.n === s - offset) last.n += e - s;
      else runs.push({ dst: s - offset, phys, n: e - s });
    }
    for (const r of runs) {
      this.ctx.budget.check();
      out.set(await this.source.read(r.phys, r.n), r.dst);
    }
    return out;
  }

  async *extents(fileNode: FsNode): AsyncIterable<Extent> {
    const file = this.asXfs(fileNode);
    if (file.kind !== 'file') throw new CorruptError('xfs.Extents', `inode ${file.id} is not a regular file`);
    const maps = await this.mappings(file);
    const bs = this.sb.blockSize;
    let pos = 0;
    for (const m of maps) {
      const start = m.fileBlock * bs;
      if (start >= file.size) break;
      if (start > pos) yield { logical: pos, length: start - pos, physical: null };
      const length = Math.min(m.count * bs, file.size - start);
      yield { logical: start, length, physical: m.unwritten ? null : m.byte };
      pos = start + length;
    }
    if (pos < file.size) yield { logical: pos, length: file.size - pos, physical: null };
  }

  async readlink(linkNode: FsNode): Promise<Uint8Array> {
    const link = this.asXfs(linkNode);
    const d = link.dinode;
    const W = `xfs.Symlink(${d.ino})`;
    if (link.kind !== 'symlink') throw new CorruptError(W, 'not a symlink');
    bound(d.size, 1, SYMLINK_MAXLEN, `${W}.di_size`, d.forkOffset);
    if (d.format === DinodeFormat.Local) {
      return new Uint8Array(slice(d.dataFork, 0, d.size, W));
    }
    // Remote: one buffer per extent, each led by an xfs_dsymlink_hdr on v5 (xfs_symlink_remote.c).
    const maps = await this.mappings(link);
    const out = new Uint8Array(d.size);
    let got = 0;
    let nextBlock = 0;
    for (const m of maps) {
      if (got >= d.size) break;
      if (m.fileBlock !== nextBlock || m.unwritten) throw new CorruptError(W, `remote symlink block ${m.fileBlock} is not contiguous with ${nextBlock}`);
      const bytes = m.count * this.sb.blockSize;
      if (bytes > SYMLINK_MAXLEN + this.sb.blockSize) throw new CorruptError(W, `extent of ${m.count} blocks for a ${d.size}-byte target`);
      const b = await this.cache.read(m.byte, bytes);
      let data = b;
      if (this.sb.hasCrc) {
        const sl_magic = u32be(b, 0, W);
        const sl_offset = u32be(b, 4, W);
        const sl_bytes = u32be(b, 8, W);
        const sl_crc = u32le(b, 12, W);
        const sl_uuid = slice(b, 16, 16, W);
        const sl_owner = u64be(b, 32, W);
        const sl_blkno = u64be(b, 40, W);
        if (sl_magic !== SYMLINK_MAGIC) throw new CorruptError(`${W}.sl_magic`, `bad magic 0x${sl_magic.toString(16)}`, m.byte);
        const want = xfsCksum(b, b.length, 12);
        if (want !== sl_crc) throw new CorruptError(`${W}.sl_crc`, `checksum 0x${sl_crc.toString(16)} != computed 0x${want.toString(16)}`, m.byte + 12);
        if (sl_offset !== got) throw new CorruptError(`${W}.sl_offset`, `${sl_offset} where ${got} bytes were read`, m.byte + 4);
        bound(sl_bytes, 1, Math.min(bytes - SYMLINK_HDR, d.size - got), `${W}.sl_bytes`, m.byte + 8);
        if (!bytesEqual(sl_uuid, this.sb.metaUuid)) throw new CorruptError(`${W}.sl_uuid`, 'block belongs to another filesystem', m.byte + 16);
        if (sl_owner !== d.ino) throw new CorruptError(`${W}.sl_owner`, `block owned by inode ${sl_owner}`, m.byte + 32);
        if (sl_blkno !== BigInt(m.byte / 512)) throw new CorruptError(`${W}.sl_blkno`, `block claims daddr ${sl_blkno}`, m.byte + 40);
        data = b.subarray(SYMLINK_HDR, SYMLINK_HDR + sl_bytes);
      }
      const n = Math.min(data.length, d.size - got);
      out.set(data.subarray(0, n), got);
      got += n;
      nextBlock = m.fileBlock + m.count;
    }
    if (got !== d.size) throw new CorruptError(W, `remote symlink has ${got} of ${d.size} bytes`);
    return out;
  }
}

export const xfs: FilesystemDriver = {
  id: 'xfs',
  async probe(src: ByteSource, ctx: Context): Promise<ProbeResult | null> {
    const sb = await readSuperblock(src, ctx);
    return sb ? { type: 'xfs', label: sb.label, uuid: sb.uuid } : null;
  },
  async open(src: ByteSource, ctx: Context): Promise<Volume> {
    const sb = await readSuperblock(src, ctx);
    if (!sb) throw new UnsupportedError(`${src.name ?? 'source'}: not an XFS filesystem`);
    const vol = new XfsVolume(src, ctx, sb);
    const root = await vol.root();
    if (root.kind !== 'dir') throw new CorruptError('xfs.RootInode', `root inode ${sb.rootIno} is not a directory`);
    return vol;
  },
};
