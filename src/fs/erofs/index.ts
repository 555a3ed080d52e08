/**
 * EROFS driver (`erofs`): probe, open and the Volume. See README.md for what is supported.
 */
import { CorruptError, InvalidArgumentError, IsADirectoryError, LimitExceededError, NotADirectoryError, UnsupportedError } from '../../errors.ts';
import { bound, u16le, u32le } from '../../io/bytes.ts';
import { BlockCache, type ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import { compareNames } from '../squashfs/dir.ts';
import type { DirEntry, Extent, FilesystemDriver, FsNode, ProbeResult, Volume } from '../types.ts';
import { decodeDirBlock, type ErDirent } from './dir.ts';
import { kindOfFileType } from '../filetype.ts';
import { CHUNK_BASED, COMPRESSED_COMPACT, COMPRESSED_FULL, FLAT_INLINE, FLAT_PLAIN, readInode, type ErNode } from './inode.ts';
import { decodeSuperblock, EROFS_SUPER_OFFSET, hasMagic, type Superblock } from './superblock.ts';
import { ZMap, type ZExtent } from './zmap.ts';

const NULL_ADDR = 0xffffffff;
const CHUNK_FORMAT_INDEXES = 0x20;
const CHUNK_FORMAT_BLKBITS_MASK = 0x1f;
/** Largest single source read when merging contiguous extents. */
const MAX_RUN = 8 << 20;

class ErofsVolume implements Volume {
  readonly type = 'erofs';
  readonly label: string | undefined;
  readonly uuid: string | undefined;
  private readonly zmaps = new WeakMap<ErNode, ZMap>();
  private readonly decoded = new Map<string, Uint8Array>();
  private rootNode: ErNode | undefined;

  constructor(
    readonly source: ByteSource,
    private readonly ctx: Context,
    readonly sb: Superblock,
    private readonly meta: BlockCache,
  ) {
    this.label = sb.volumeName || undefined;
    this.uuid = sb.uuid;
  }

  private get maxNid(): number {
    return Math.floor((this.source.size - this.sb.metaBlkAddr * this.sb.blockSize) / 32) - 1;
  }

  private async inode(nid: number): Promise<ErNode> {
    this.ctx.budget.chargeNode();
    return readInode(this.meta, this.sb, nid);
  }

  async root(): Promise<FsNode> {
    if (!this.rootNode) {
      const n = await this.inode(this.sb.rootNid);
      if (n.kind !== 'dir') throw new CorruptError('erofs.Superblock.root_nid', `root inode ${n.nid} is a ${n.kind}`);
      this.rootNode = n;
    }
    return this.rootNode;
  }

  private asDir(d: FsNode): ErNode {
    if (d.kind !== 'dir') throw new NotADirectoryError(String(d.id));
    return d as ErNode;
  }

  private async dirBlock(dir: ErNode, i: number): Promise<ErDirent[]> {
    const bs = this.sb.blockSize;
    const len = Math.min(bs, dir.size - i * bs);
    const data = await this.readData(dir, i * bs, len, true);
    const ents = decodeDirBlock(data, dir.nid, i, this.maxNid);
    for (const e of ents) {
      const dot = e.name.length === 1 && e.name[0] === 0x2e;
      const dotdot = e.name.length === 2 && e.name[0] === 0x2e && e.name[1] === 0x2e;
      if (!dot && !dotdot && e.nid === dir.nid) throw new CorruptError('erofs.Dirent.nid', `directory ${dir.nid} contains itself`);
    }
    return ents;
  }

  private dirBlocks(dir: ErNode): number {
    const n = Math.ceil(dir.size / this.sb.blockSize);
    if (n > this.ctx.limits.dirEntries) throw new LimitExceededError('dirEntries', `directory ${dir.nid} of ${dir.size} bytes`, this.ctx.limits.dirEntries);
    return n;
  }

  async lookup(dirNode: FsNode, name: Uint8Array): Promise<FsNode | null> {
    const dir = this.asDir(dirNode);
    const n = this.dirBlocks(dir);
    // Binary search over blocks by their first name, then inside the block (namei.c erofs_find_target_block).
    let lo = 0;
    let hi = n - 1;
    let candidate: ErDirent[] | null = null;
    let steps = 0;
    while (lo <= hi) {
      if (++steps > 64) throw new CorruptError('erofs.Dirent', `lookup in directory ${dir.nid} does not converge`);
      const mid = lo + Math.floor((hi - lo) / 2);
      const ents = await this.dirBlock(dir, mid);
      const c = compareNames(name, (ents[0] as ErDirent).name);
      if (c === 0) return this.entryNode(ents[0] as ErDirent);
      if (c < 0) hi = mid - 1;
      else {
        candidate = ents;
        lo = mid + 1;
      }
    }
    if (!candidate) return null;
    let a = 0;
    let b = candidate.length - 1;
    while (a <= b) {
      const mid = a + Math.floor((b - a) / 2);
      const e = candidate[mid] as ErDirent;
      const c = compareNames(name, e.name);
      if (c === 0) return this.entryNode(e);
      if (c < 0) b = mid - 1;
      else a = mid + 1;
    }
    return null;
  }

  private async entryNode(e: ErDirent): Promise<FsNode> {
    const node = await this.inode(e.nid);
    const k = kindOfFileType(e.fileType);
    if (k !== 'unknown' && k !== node.kind) throw new CorruptError('erofs.Dirent.file_type', `file type ${e.fileType} disagrees with inode ${e.nid} (${node.kind})`);
    return node;
  }

  async *readdir(dirNode: FsNode): AsyncIterable<DirEntry> {
    const dir = this.asDir(dirNode);
    const n = this.dirBlocks(dir);
    for (let i = 0; i < n; i++) {
      for (const e of await this.dirBlock(dir, i)) yield { name: e.name, kind: kindOfFileType(e.fileType) };
    }
  }

  async readlink(link: FsNode): Promise<Uint8Array> {
    if (link.kind !== 'symlink') throw new CorruptError('NotASymlink', `inode ${link.id} is not a symlink`);
    bound(link.size, 0, this.ctx.limits.pathBytes, 'erofs.Inode.i_size');
    return this.readData(link as ErNode, 0, link.size, true);
  }

  async read(file: FsNode, offset: number, length: number): Promise<Uint8Array> {
    if (file.kind === 'dir') throw new IsADirectoryError(String(file.id));
    if (file.kind !== 'file') throw new CorruptError('NotAFile', `inode ${file.id} is not a regular file`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new InvalidArgumentError(`bad read range ${offset}+${length}`);
    }
    const end = Math.min(file.size, offset + length);
    if (end <= offset) return new Uint8Array(0);
    return this.readData(file as ErNode, offset, end - offset, false);
  }

  /** The uncompressed layouts as extents (physical byte offsets; null = hole). */
  private async *flatExtents(f: ErNode, from: number, to: number): AsyncGenerator<Extent> {
    const bs = this.sb.blockSize;
    const size = f.size;
    const imageEnd = this.sb.blocks * bs;
    if (f.layout === FLAT_PLAIN || f.layout === FLAT_INLINE) {
      const nblocks = Math.ceil(size / bs);
      const fullBlocks = f.layout === FLAT_INLINE ? nblocks - 1 : nblocks;
      const fullBytes = Math.min(size, fullBlocks * bs);
      if (fullBytes > 0) {
        const phys = f.iU * bs;
        if (phys + fullBytes > imageEnd) throw new CorruptError('erofs.Inode.raw_blkaddr', `data of inode ${f.nid} (${phys}+${fullBytes}) past the image`);
        if (from < fullBytes) yield { logical: 0, length: fullBytes, physical: phys };
      }
      if (f.layout === FLAT_INLINE && size > fullBytes) {
        const tail = size - fullBytes;
        const at = f.loc + f.inodeSize + f.xattrSize;
        if ((at % bs) + tail > bs) throw new CorruptError('erofs.Inode.inline', `inline tail of ${tail} bytes at ${at} crosses its block (inode ${f.nid})`);
        if (at + tail > imageEnd) throw new CorruptError('erofs.Inode.inline', `inline tail of inode ${f.nid} past the image`);
        yield { logical: fullBytes, length: tail, physical: at };
      }
      return;
    }
    if (f.layout !== CHUNK_BASED) throw new CorruptError('erofs.Inode', `layout ${f.layout} is not flat`);
    const fmt = f.iU;
    if (fmt & ~(CHUNK_FORMAT_INDEXES | CHUNK_FORMAT_BLKBITS_MASK)) throw new UnsupportedError('erofs', [`chunk-format-0x${fmt.toString(16)}`]);
    const chunkBits = this.sb.blkszBits + (fmt & CHUNK_FORMAT_BLKBITS_MASK);
    if (chunkBits > 40) throw new CorruptError('erofs.Inode.chunk_info', `chunk bits ${chunkBits}`);
    const chunkSize = 2 ** chunkBits;
    const count = Math.ceil(size / chunkSize);
    const unit = fmt & CHUNK_FORMAT_INDEXES ? 8 : 4;
    const table = Math.ceil((f.loc + f.inodeSize + f.xattrSize) / unit) * unit;
    if (table + count * unit > this.source.size) throw new CorruptError('erofs.ChunkIndex', `chunk table of inode ${f.nid} (${count} entries) past the image`, table);
    const first = Math.floor(from / chunkSize);
    const last = Math.min(count - 1, Math.floor((to - 1) / chunkSize));
    if (last < first) return;
    const raw = await this.meta.read(table + first * unit, (last - first + 1) * unit);
    for (let c = first; c <= last; c++) {
      const o = (c - first) * unit;
      // erofs_inode_chunk_index {advise u16, device_id u16, blkaddr u32}; the block map is bare u32s.
      const blkaddr = unit === 8 ? u32le(raw, o + 4, 'erofs.ChunkIndex') : u32le(raw, o, 'erofs.ChunkIndex');
      if (unit === 8 && u16le(raw, o + 2, 'erofs.ChunkIndex') !== 0) throw new UnsupportedError('erofs', ['chunk-device-id']);
      const logical = c * chunkSize;
      const length = Math.min(chunkSize, size - logical);
      if (blkaddr === NULL_ADDR) {
        yield { logical, length, physical: null };
        continue;
      }
      const phys = blkaddr * bs;
      if (phys + length > imageEnd) throw new CorruptError('erofs.ChunkIndex.blkaddr', `chunk ${c} of inode ${f.nid} at block ${blkaddr} lies outside the image`, table + c * unit);
      yield { logical, length, physical: phys };
    }
  }

  async *extents(file: FsNode): AsyncIterable<Extent> {
    const f = file as ErNode;
    if (file.kind !== 'file') throw new UnsupportedError('erofs extents', ['not a regular file']);
    if (f.layout === COMPRESSED_FULL || f.layout === COMPRESSED_COMPACT) throw new UnsupportedError('erofs extents', ['compressed']);
    yield* this.flatExtents(f, 0, f.size);
  }

  /** Bytes [offset, offset+length) of any inode's data, length ≤ size − offset. */
  private async readData(f: ErNode, offset: number, length: number, isMeta: boolean): Promise<Uint8Array> {
    if (offset + length > f.size) throw new CorruptError('erofs.Inode.i_size', `read past the end of inode ${f.nid}`);
    if (length > this.ctx.limits.allocBytes) throw new LimitExceededError('allocBytes', `read of ${length} bytes`, this.ctx.limits.allocBytes);
    const out = new Uint8Array(length);
    if (length === 0) return out;
    const end = offset + length;
    if (f.layout === COMPRESSED_FULL || f.layout === COMPRESSED_COMPACT) {
      await this.readCompressed(f, offset, end, out);
      return out;
    }
    const src: ByteSource = isMeta ? this.meta : this.source;
    // Merge physically contiguous extents into single reads.
    let run: { logical: number; physical: number; length: number } | null = null;
    const flush = async (): Promise<void> => {
      if (!run) return;
      const data = await src.read(run.physical, run.length);
      out.set(data, run.logical - offset);
      run = null;
    };
    for await (const e of this.flatExtents(f, offset, end)) {
      this.ctx.budget.check();
      const s = Math.max(offset, e.logical);
      const t = Math.min(end, e.logical + e.length);
      if (t <= s) continue;
      if (e.physical === null) {
        await flush();
        continue;
      }
      const phys = e.physical + (s - e.logical);
      const r = run as { logical: number; physical: number; length: number } | null;
      if (r && r.physical + r.length === phys && r.logical + r.length === s && r.length + (t - s) <= MAX_RUN) r.length += t - s;
      else {
        await flush();
        run = { logical: s, physical: phys, length: t - s };
      }
    }
    await flush();
    return out;
  }

  private async zmap(f: ErNode): Promise<ZMap> {
    let z = this.zmaps.get(f);
    if (!z) {
      z = await ZMap.open(this.meta, this.sb, f);
      this.zmaps.set(f, z);
    }
    return z;
  }

  private async readCompressed(f: ErNode, offset: number, end: number, out: Uint8Array): Promise<void> {
    const z = await this.zmap(f);
    let pos = offset;
    while (pos < end) {
      this.ctx.budget.check();
      const ext = await z.mapExtent(pos);
      const data = await this.decodeExtent(f, ext);
      const s = pos;
      const t = Math.min(end, ext.la + ext.llen);
      out.set(data.subarray(s - ext.la, t - ext.la), s - offset);
      if (t <= pos) throw new CorruptError('erofs.Zmap.extent', `no progress at ${pos} in inode ${f.nid}`);
      pos = t;
    }
  }

  private async decodeExtent(f: ErNode, ext: ZExtent): Promise<Uint8Array> {
    const key = `${f.nid}:${ext.la}`;
    const hit = this.decoded.get(key);
    if (hit) return hit;
    if (ext.llen > this.ctx.limits.allocBytes) throw new LimitExceededError('allocBytes', `extent of ${ext.llen} bytes`, this.ctx.limits.allocBytes);
    // Inline (ztailpacking) pclusters sit in metadata blocks; real pclusters are data.
    const inlineMeta = ext.plen < this.sb.blockSize;
    const input = await (inlineMeta ? this.meta : this.source).read(ext.pa, ext.plen);
    let data: Uint8Array;
    if (ext.plain) {
      // Stored uncompressed ("shifted"): the first llen bytes are the extent.
      if (ext.llen > ext.plen) throw new CorruptError('erofs.Zmap.plain', `plain extent of ${ext.llen} bytes in a ${ext.plen}-byte pcluster (inode ${f.nid})`, ext.pa);
      data = input.subarray(0, ext.llen);
    } else {
      if (ext.algorithm !== 0) throw new UnsupportedError('erofs', [`compression-${ext.algorithm}`]);
      const lz4 = this.ctx.codecs.lz4;
      if (!lz4) throw new UnsupportedError('erofs', ['codec-lz4']);
      // With the zero-padding feature the stream is right-aligned in its pcluster (z_erofs_fixup_insize).
      let start = 0;
      if (this.sb.zeroPadding) while (start < input.length && input[start] === 0) start++;
      if (start === input.length) throw new CorruptError('erofs.Pcluster', `all-zero pcluster (inode ${f.nid})`, ext.pa);
      try {
        data = lz4(input.subarray(start), ext.llen);
      } catch (e) {
        if (e instanceof LimitExceededError) throw new LimitExceededError('codecOutput', `pcluster at ${ext.pa} of inode ${f.nid} inflates beyond its ${ext.llen}-byte extent`, ext.llen);
        throw new CorruptError('erofs.Pcluster', `lz4 pcluster of inode ${f.nid} does not decode: ${e instanceof Error ? e.message : String(e)}`, ext.pa);
      }
      if (data.length !== ext.llen) throw new CorruptError('erofs.Pcluster', `pcluster decodes to ${data.length} bytes, extent is ${ext.llen} (inode ${f.nid})`, ext.pa);
    }
    this.decoded.set(key, data);
    if (this.decoded.size > 16) this.decoded.delete(this.decoded.keys().next().value as string);
    return data;
  }
}

export const erofs: FilesystemDriver = {
  id: 'erofs',
  async probe(src: ByteSource, _ctx: Context): Promise<ProbeResult | null> {
    if (src.size < 4096) return null;
    if (!hasMagic(await src.read(EROFS_SUPER_OFFSET, 4))) return null;
    const sb = decodeSuperblock(await src.read(0, 4096), src.size);
    return { type: 'erofs', ...(sb.volumeName ? { label: sb.volumeName } : {}), ...(sb.uuid ? { uuid: sb.uuid } : {}) };
  },
  async open(src: ByteSource, ctx: Context): Promise<Volume> {
    if (src.size < 4096) throw new CorruptError('erofs.Superblock', `image of ${src.size} bytes is too small`);
    const meta = new BlockCache(src, ctx.budget, 4096);
    const sb = decodeSuperblock(await meta.read(0, 4096), src.size);
    return new ErofsVolume(src, ctx, sb, meta);
  },
};
