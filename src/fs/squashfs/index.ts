/**
 * squashfs 4.0 driver (`squashfs`): probe and open. See README.md for what is supported.
 */
import { CorruptError, InvalidArgumentError, IsADirectoryError, LimitExceededError, NotADirectoryError, UnsupportedError } from '../../errors.ts';
import { bound, u32le, u64le } from '../../io/bytes.ts';
import { BlockCache, type ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import type { DirEntry, Extent, FilesystemDriver, FsNode, ProbeResult, Volume } from '../types.ts';
import { decompress } from './compress.ts';
import { compareNames, lookupStart, walkListing } from './dir.ts';
import { INVALID_FRAG, kindOfType, readInode, type SqNode } from './inode.ts';
import { MetadataReader } from './metadata.ts';
import { decodeSuperblock, hasMagic, METADATA_SIZE, SUPERBLOCK_SIZE, type Superblock } from './superblock.ts';

/** Bit 24 of a data block or fragment size: stored uncompressed (SQUASHFS_COMPRESSED_BIT_BLOCK). */
const UNCOMPRESSED_BIT = 0x1000000;
const SIZE_MASK = 0xffffff;
/** Largest single source read when merging contiguous data blocks. */
const MAX_RUN = 8 << 20;

interface BlockMap {
  /** Absolute byte offset of each block (sparse blocks: the position they would have had). */
  readonly start: Float64Array;
  /** Stored size of each block; 0 = sparse (zeros). */
  readonly stored: Uint32Array;
  readonly uncompressed: Uint8Array;
}

interface Fragment {
  readonly start: number;
  readonly size: number;
  readonly uncompressed: boolean;
}

class SquashfsVolume implements Volume {
  readonly type = 'squashfs';
  private readonly meta: MetadataReader;
  private readonly blockMaps = new WeakMap<SqNode, BlockMap>();
  private readonly fragments = new Map<number, Uint8Array>();
  private rootNode: SqNode | undefined;

  constructor(
    readonly source: ByteSource,
    private readonly ctx: Context,
    readonly sb: Superblock,
    private readonly cache: BlockCache,
    private readonly ids: readonly number[],
  ) {
    this.meta = new MetadataReader(cache, ctx, sb.compressor);
  }

  async root(): Promise<FsNode> {
    if (!this.rootNode) {
      const n = await readInode(this.meta, this.sb, this.sb.rootBlock, this.sb.rootOffset, this.ids);
      if (n.kind !== 'dir') throw new CorruptError('squashfs.Superblock.root_inode', `root inode is a ${n.kind}`);
      this.rootNode = n;
    }
    return this.rootNode;
  }

  private asDir(dir: FsNode): SqNode {
    if (dir.kind !== 'dir') throw new NotADirectoryError(String(dir.id));
    return dir as SqNode;
  }

  async lookup(dirNode: FsNode, name: Uint8Array): Promise<FsNode | null> {
    const dir = this.asDir(dirNode);
    const { pos, remaining } = await lookupStart(this.meta, this.sb, dir, name);
    for await (const e of walkListing(this.meta, this.sb, this.ctx, dir, pos, remaining)) {
      const c = compareNames(e.name, name);
      if (c === 0) {
        this.ctx.budget.chargeNode();
        const node = await readInode(this.meta, this.sb, e.inodeBlock, e.inodeOffset, this.ids);
        if (node.id !== e.inodeNumber) {
          throw new CorruptError('squashfs.Dir.entry', `entry ${JSON.stringify(new TextDecoder().decode(name))} names inode ${e.inodeNumber} but points at inode ${node.id}`);
        }
        if (kindOfType(e.type) !== node.kind) throw new CorruptError('squashfs.Dir.entry.type', `entry type ${e.type} disagrees with inode type ${node.inodeType}`);
        return node;
      }
      if (c > 0) break; // sorted: the name is absent
    }
    return null;
  }

  async *readdir(dirNode: FsNode): AsyncIterable<DirEntry> {
    const dir = this.asDir(dirNode);
    const pos = { block: this.sb.directoryTableStart + (dir.dirStartBlock as number), offset: dir.dirOffset as number };
    for await (const e of walkListing(this.meta, this.sb, this.ctx, dir, pos, dir.dirSize as number)) {
      yield { name: e.name, kind: kindOfType(e.type) };
    }
  }

  async readlink(link: FsNode): Promise<Uint8Array> {
    const n = link as SqNode;
    if (link.kind !== 'symlink' || !n.target) throw new CorruptError('NotASymlink', `inode ${link.id} is not a symlink`);
    return n.target.slice();
  }

  /** The file's block list, read once (4 bytes per block, charged as metadata). */
  private async blockMap(f: SqNode): Promise<BlockMap> {
    const have = this.blockMaps.get(f);
    if (have) return have;
    const n = f.blockCount as number;
    if (n * 4 > this.ctx.limits.allocBytes) throw new LimitExceededError('allocBytes', `block list of ${n} blocks for inode ${f.id}`, this.ctx.limits.allocBytes);
    const raw = await this.meta.read({ ...(f.blockListPos as { block: number; offset: number }) }, n * 4, this.sb.directoryTableStart, 'squashfs.Inode.block_list');
    const start = new Float64Array(n);
    const stored = new Uint32Array(n);
    const uncompressed = new Uint8Array(n);
    let at = f.startBlock as number;
    for (let i = 0; i < n; i++) {
      const v = u32le(raw, i * 4, 'squashfs.Inode.block_list');
      const size = v & SIZE_MASK;
      if (size > this.sb.blockSize) throw new CorruptError('squashfs.Inode.block_list', `block ${i} of inode ${f.id} stores ${size} bytes, more than the block size`);
      start[i] = at;
      stored[i] = size;
      uncompressed[i] = (v & UNCOMPRESSED_BIT) !== 0 ? 1 : 0;
      at += size;
      if (at > this.sb.bytesUsed) throw new CorruptError('squashfs.Inode.block_list', `blocks of inode ${f.id} run past bytes_used (${at} > ${this.sb.bytesUsed})`);
    }
    const map = { start, stored, uncompressed };
    this.blockMaps.set(f, map);
    return map;
  }

  private async fragmentEntry(index: number): Promise<Fragment> {
    const W = 'squashfs.FragmentTable';
    const tableStart = this.sb.fragmentTableStart;
    if (tableStart === null) throw new CorruptError(W, 'no fragment table');
    bound(index, 0, this.sb.fragments - 1, `${W}.index`);
    const slot = Math.floor(index / 512);
    const ptrAt = tableStart + slot * 8;
    if (ptrAt + 8 > this.sb.bytesUsed) throw new CorruptError(W, `index slot ${slot} past bytes_used`, ptrAt);
    const ptr = u64le(await this.cache.read(ptrAt, 8), 0, W);
    if (ptr >= BigInt(tableStart)) throw new CorruptError(W, `metadata block ${ptr} is not before the table index`, ptrAt);
    const e = await this.meta.read({ block: Number(ptr), offset: (index % 512) * 16 }, 16, tableStart, W);
    const start = u64le(e, 0, W);
    const v = u32le(e, 8, W);
    const size = v & SIZE_MASK;
    if (size === 0 || size > this.sb.blockSize) throw new CorruptError(`${W}.size`, `fragment ${index} stores ${size} bytes`, ptrAt);
    if (start + BigInt(size) > BigInt(this.sb.bytesUsed)) throw new CorruptError(`${W}.start_block`, `fragment ${index} at ${start} runs past bytes_used`, ptrAt);
    return { start: Number(start), size, uncompressed: (v & UNCOMPRESSED_BIT) !== 0 };
  }

  private async fragmentData(index: number): Promise<Uint8Array> {
    const hit = this.fragments.get(index);
    if (hit) return hit;
    const fr = await this.fragmentEntry(index);
    const raw = await this.source.read(fr.start, fr.size);
    const data = fr.uncompressed ? raw : await decompress(this.ctx, this.sb.compressor, raw, this.sb.blockSize, 'squashfs.Fragment', fr.start);
    this.fragments.set(index, data);
    if (this.fragments.size > 8) this.fragments.delete(this.fragments.keys().next().value as number);
    return data;
  }

  async read(file: FsNode, offset: number, length: number): Promise<Uint8Array> {
    if (file.kind === 'dir') throw new IsADirectoryError(String(file.id));
    if (file.kind !== 'file') throw new CorruptError('NotAFile', `inode ${file.id} is not a regular file`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new InvalidArgumentError(`bad read range ${offset}+${length}`);
    }
    const f = file as SqNode;
    const end = Math.min(f.size, offset + length);
    if (end <= offset) return new Uint8Array(0);
    if (end - offset > this.ctx.limits.allocBytes) throw new LimitExceededError('allocBytes', `read of ${end - offset} bytes`, this.ctx.limits.allocBytes);
    const out = new Uint8Array(end - offset);
    const bs = this.sb.blockSize;
    const nBlocks = f.blockCount as number;
    const map = nBlocks > 0 ? await this.blockMap(f) : null;
    let bi = Math.floor(offset / bs);
    const last = Math.floor((end - 1) / bs);
    while (bi <= last) {
      this.ctx.budget.check();
      if (bi >= nBlocks) {
        // The tail lives in a fragment.
        if (f.fragment === INVALID_FRAG || f.fragment === undefined) throw new CorruptError('squashfs.Inode', `inode ${f.id}: block ${bi} beyond its ${nBlocks} blocks`);
        const frag = await this.fragmentData(f.fragment);
        const tailLen = f.size - nBlocks * bs;
        const fo = f.fragOffset as number;
        if (fo + tailLen > frag.length) throw new CorruptError('squashfs.Inode.offset', `tail of inode ${f.id} (${fo}+${tailLen}) lies outside fragment ${f.fragment} of ${frag.length} bytes`);
        this.copyBlock(out, offset, end, bi, frag.subarray(fo, fo + tailLen));
        bi++;
        continue;
      }
      const m = map as BlockMap;
      if (m.stored[bi] === 0) {
        bi++; // sparse block: zeros already
        continue;
      }
      // A run of stored blocks (consecutive on disk by construction): one source read.
      let runEnd = bi;
      let bytes = m.stored[bi] as number;
      while (runEnd + 1 <= last && runEnd + 1 < nBlocks && (m.stored[runEnd + 1] as number) > 0 && bytes + (m.stored[runEnd + 1] as number) <= MAX_RUN) {
        runEnd++;
        bytes += m.stored[runEnd] as number;
      }
      const base = m.start[bi] as number;
      const raw = await this.source.read(base, bytes);
      for (let k = bi; k <= runEnd; k++) {
        const expect = Math.min(bs, f.size - k * bs);
        const rel = (m.start[k] as number) - base;
        const stored = raw.subarray(rel, rel + (m.stored[k] as number));
        let data: Uint8Array;
        if (m.uncompressed[k]) data = stored;
        else data = await decompress(this.ctx, this.sb.compressor, stored, bs, 'squashfs.DataBlock', m.start[k] as number);
        if (data.length !== expect) {
          throw new CorruptError('squashfs.DataBlock', `block ${k} of inode ${f.id} holds ${data.length} bytes, expected ${expect}`, m.start[k]);
        }
        this.copyBlock(out, offset, end, k, data);
      }
      bi = runEnd + 1;
    }
    return out;
  }

  private copyBlock(out: Uint8Array, offset: number, end: number, bi: number, data: Uint8Array): void {
    const bs = this.sb.blockSize;
    const bStart = bi * bs;
    const from = Math.max(offset, bStart);
    const to = Math.min(end, bStart + data.length);
    if (to > from) out.set(data.subarray(from - bStart, to - bStart), from - offset);
  }

  /** Extents only for files stored entirely uncompressed without fragments (else data must be decoded). */
  async *extents(file: FsNode): AsyncIterable<Extent> {
    const f = file as SqNode;
    // Files that must be decoded cannot be mapped: say so (the copy then reads them), never yield
    // nothing, which would mean "all holes" (src/fs/types.ts).
    if (file.kind !== 'file') throw new UnsupportedError('squashfs extents', ['not a regular file']);
    const bs = this.sb.blockSize;
    const n = f.blockCount as number;
    if (f.fragment !== INVALID_FRAG) throw new UnsupportedError('squashfs extents', ['fragment']);
    const map = n > 0 ? await this.blockMap(f) : null;
    if (map && map.uncompressed.some((u, i) => u === 0 && map.stored[i] !== 0)) throw new UnsupportedError('squashfs extents', ['compressed blocks']);
    for (let i = 0; i < n; i++) {
      const m = map as BlockMap;
      const len = Math.min(bs, f.size - i * bs);
      yield { logical: i * bs, length: len, physical: m.stored[i] === 0 ? null : (m.start[i] as number) };
    }
  }
}

async function readIds(cache: BlockCache, ctx: Context, sb: Superblock): Promise<number[]> {
  const W = 'squashfs.IdTable';
  const meta = new MetadataReader(cache, ctx, sb.compressor);
  const slots = Math.ceil(sb.noIds / 2048);
  if (sb.idTableStart + slots * 8 > sb.bytesUsed) throw new CorruptError(W, `index of ${slots} slots runs past bytes_used`, sb.idTableStart);
  const index = await cache.read(sb.idTableStart, slots * 8);
  const ids: number[] = [];
  for (let s = 0; s < slots; s++) {
    const ptr = u64le(index, s * 8, W);
    if (ptr >= BigInt(sb.idTableStart)) throw new CorruptError(W, `metadata block ${ptr} is not before the table index`, sb.idTableStart + s * 8);
    const n = Math.min(2048, sb.noIds - s * 2048);
    const raw = await meta.read({ block: Number(ptr), offset: 0 }, n * 4, sb.idTableStart, W);
    for (let i = 0; i < n; i++) ids.push(u32le(raw, i * 4, W));
  }
  return ids;
}

export const squashfs: FilesystemDriver = {
  id: 'squashfs',
  async probe(src: ByteSource, _ctx: Context): Promise<ProbeResult | null> {
    if (src.size < SUPERBLOCK_SIZE) return null;
    const b = await src.read(0, SUPERBLOCK_SIZE);
    if (!hasMagic(b)) return null;
    decodeSuperblock(b, src.size);
    return { type: 'squashfs' };
  },
  async open(src: ByteSource, ctx: Context): Promise<Volume> {
    if (src.size < SUPERBLOCK_SIZE) throw new CorruptError('squashfs.Superblock', `image of ${src.size} bytes is too small`);
    const cache = new BlockCache(src, ctx.budget, METADATA_SIZE);
    const sb = decodeSuperblock(await cache.read(0, SUPERBLOCK_SIZE), src.size);
    // Compressor options (flag 0x400) only tune the compressor; decoding needs none of them.
    const ids = await readIds(cache, ctx, sb);
    return new SquashfsVolume(src, ctx, sb, cache, ids);
  },
};
