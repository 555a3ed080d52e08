/**
 * A mounted UFS: inode loading, the block map (direct, single/double/triple indirect, fs.h
 * lblkno/blkoff arithmetic), directory walking, symlinks, and file reads that merge physically
 * contiguous blocks into one source read.
 */
import { CorruptError, InvalidArgumentError, IsADirectoryError, LimitExceededError } from '../../errors.ts';
import { i32be, i32le, i64be, i64le, u32be, u32le, u32leWords } from '../../io/bytes.ts';
import { BlockCache, type ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import type { DirEntry, Extent, FsNode, Volume } from '../types.ts';
import { DIRBLKSIZ, decodeDirChunk, type RawDirect } from './dir.ts';
import { decodeDinode, type UfsNode } from './inode.ts';
import { NDADDR, NIADDR, inodeByteOffset, type Superblock } from './superblock.ts';

/** dinode.h UFS_ROOTINO. */
export const UFS_ROOTINO = 2;

/** One logical block of a file: where it lives (a fragment address, 0 = hole). */
interface Run {
  logical: number;
  length: number;
  physical: number | null;
}

/**
 * An indirect block's pointers, each checked against the filesystem's size. A plain function (the
 * caller is async), so that V8 optimizes the loop over its 2,048–4,096 pointers while it runs.
 */
function decodePointers(sb: Superblock, raw: Uint8Array, at: number): number[] {
  const words = sb.ptrSize === 8 && sb.littleEndian ? u32leWords(raw, sb.nindir * 2) : null;
  if (words !== null) {
    const ptrs = decodePointers64(words, sb.size);
    if (ptrs !== null) return ptrs;
  }
  const ptrs: number[] = new Array(sb.nindir);
  for (let i = 0; i < sb.nindir; i++) {
    let v: number;
    if (sb.ptrSize === 8) {
      // Two exact 32-bit halves (no BigInt per pointer: an indirect block holds 4096 of them).
      const o = i * 8;
      const hi = sb.littleEndian ? i32le(raw, o + 4, 'ufs.IndirectBlock') : i32be(raw, o, 'ufs.IndirectBlock');
      const lo = sb.littleEndian ? u32le(raw, o, 'ufs.IndirectBlock') : u32be(raw, o + 4, 'ufs.IndirectBlock');
      v = hi === 0 ? lo : hi * 0x100000000 + lo;
      if (hi < 0 || hi >= 0x200000 || v >= sb.size) {
        const b = sb.littleEndian ? i64le(raw, o, 'ufs.IndirectBlock') : i64be(raw, o, 'ufs.IndirectBlock');
        throw new CorruptError('ufs.IndirectBlock', `pointer ${i} = ${b} outside the filesystem`, at + o);
      }
    } else {
      v = sb.littleEndian ? i32le(raw, i * 4, 'ufs.IndirectBlock') : i32be(raw, i * 4, 'ufs.IndirectBlock');
      if (v < 0 || v >= sb.size) throw new CorruptError('ufs.IndirectBlock', `pointer ${i} = ${v} outside the filesystem`, at + i * 4);
    }
    ptrs[i] = v;
  }
  return ptrs;
}

/**
 * UFS2 pointers of a little-endian indirect block on a little-endian host, read as 32-bit words (no
 * call per field: this runs once per indirect block, in unoptimized code, 4,096 pointers a block).
 * Null when one lies outside the filesystem: decodePointers then finds it and names it.
 */
function decodePointers64(words: Uint32Array, size: number): number[] | null {
  const n = words.length >>> 1;
  const ptrs: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const lo = words[2 * i] as number;
    const hi = words[2 * i + 1] as number;
    // A zero high word keeps the pointer out of double arithmetic (stored unboxed below 2^31).
    const v = hi === 0 ? lo : hi * 0x100000000 + lo;
    // hi ≥ 2^31 (negative as the signed field) is over the bound as well.
    if (hi >= 0x200000 || v >= size) return null;
    ptrs[i] = v;
  }
  return ptrs;
}

export class UfsVolume implements Volume {
  readonly type: string;
  readonly label?: string;
  readonly uuid?: string;
  private readonly cache: BlockCache;
  private readonly indirect = new Map<number, readonly number[]>();
  /**
   * Where the last `walk` that found a data pointer took it from: the pointer array (the inode's
   * direct blocks or a single indirect block), its index, and the indirect blocks above it.
   */
  private found: { ptrs: readonly number[]; index: number; a: number; b: number; c: number } = { ptrs: [], index: 0, a: 0, b: 0, c: 0 };
  private readonly maxIndirect: number;
  private readonly maxIno: number;
  /** Logical blocks reachable at each indirection level (NINDIR^level). */
  private readonly span: readonly number[];
  /** Largest file the block map can address, in bytes. */
  private readonly maxFileBytes: number;

  constructor(
    readonly source: ByteSource,
    readonly sb: Superblock,
    private readonly ctx: Context,
  ) {
    this.type = sb.version === 2 ? 'ufs2' : 'ufs1';
    if (sb.volname) this.label = sb.volname;
    // fs_id[0], fs_id[1] (read in the filesystem's byte order) as 16 hex digits, as libblkid's
    // superblocks/ufs.c prints them ("%08x%08x"), for UFS1 and UFS2 alike; absent when zero.
    if (sb.id[0] !== 0 || sb.id[1] !== 0) {
      this.uuid = sb.id[0].toString(16).padStart(8, '0') + sb.id[1].toString(16).padStart(8, '0');
    }
    this.cache = new BlockCache(source, ctx.budget, sb.bsize);
    this.maxIndirect = Math.max(16, Math.min(256, Math.floor((4 << 20) / sb.bsize)));
    this.maxIno = sb.ncg * sb.ipg;
    const n = sb.nindir;
    this.span = [1, n, n * n, n * n * n];
    const blocks = NDADDR + n + n * n + n * n * n;
    this.maxFileBytes = Math.min(Number.MAX_SAFE_INTEGER, blocks * sb.bsize);
  }

  async root(): Promise<FsNode> {
    const node = await this.inode(UFS_ROOTINO);
    if (node.kind !== 'dir') throw new CorruptError('ufs.RootInode', `root inode has mode ${node.mode.toString(8)}`);
    return node;
  }

  /** Loads and validates inode `ino` (2 ≤ ino < fs_ncg × fs_ipg). */
  async inode(ino: number): Promise<UfsNode> {
    if (!Number.isSafeInteger(ino) || ino < UFS_ROOTINO || ino >= this.maxIno) {
      throw new CorruptError('ufs.InodeNumber', `inode ${ino} out of range [${UFS_ROOTINO}, ${this.maxIno})`);
    }
    this.ctx.budget.chargeNode();
    const off = inodeByteOffset(this.sb, ino);
    const raw = await this.cache.read(off, this.sb.inodeSize);
    const node = decodeDinode(this.sb, raw, ino, off);
    if (node.mode === 0) throw new CorruptError('ufs.Inode', `inode ${ino} is referenced but unallocated (mode 0)`, off);
    if (node.size > this.maxFileBytes) throw new CorruptError('ufs.Inode', `inode ${ino} size ${node.size} exceeds what the block map addresses`, off);
    return node;
  }

  /** Reads an indirect block's pointers (cached: the BlockCache charges every call, this does once). */
  private async indirectBlock(frag: number): Promise<readonly number[]> {
    const hit = this.indirect.get(frag);
    if (hit) {
      this.indirect.delete(frag);
      this.indirect.set(frag, hit);
      return hit;
    }
    this.checkExtent(frag, this.sb.bsize, 'ufs.IndirectBlock');
    this.ctx.budget.chargeNode();
    const at = frag * this.sb.fsize;
    const raw = await this.cache.read(at, this.sb.bsize);
    const ptrs = decodePointers(this.sb, raw, at);
    this.indirect.set(frag, ptrs);
    while (this.indirect.size > this.maxIndirect) this.indirect.delete(this.indirect.keys().next().value as number);
    return ptrs;
  }

  /** `bytes` starting at fragment `frag` must lie inside the filesystem. */
  private checkExtent(frag: number, bytes: number, what: string, id?: number | string): void {
    const frags = Math.ceil(bytes / this.sb.fsize);
    if (frag <= 0 || frag + frags > this.sb.size) {
      // The structure's name is built only here: data blocks are checked once per block.
      throw new CorruptError(id === undefined ? what : `${what}(${id})`, `fragment ${frag}+${frags} outside the filesystem (${this.sb.size} frags)`);
    }
  }


  /**
   * fs.h/ufs_bmap.c: logical block → fragment address (0 = hole), walked without I/O: the answer, or
   * the indirect block that must be read first (then walk again). The level of each indirect block
   * is fixed by the logical block number, so the walk descends exactly `level` times; a pointer that
   * repeats one of its ancestors is a cycle and is rejected rather than read as data.
   */
  private walk(node: UfsNode, lbn: number): number | { read: number } {
    if (lbn < NDADDR) {
      this.found = { ptrs: node.db, index: lbn, a: 0, b: 0, c: 0 };
      return node.db[lbn] as number;
    }
    let rel = lbn - NDADDR;
    for (let level = 1; level <= NIADDR; level++) {
      const span = this.span[level] as number;
      if (rel < span) {
        let ptr = node.ib[level - 1] as number;
        // The indirect blocks above (at most NIADDR = 3), compared one by one: nothing allocated.
        let a = 0;
        let b = 0;
        let c = 0;
        for (let l = level; l >= 1; l--) {
          if (ptr === 0) return 0;
          if (ptr === a || ptr === b || ptr === c) {
            throw new CorruptError('ufs.IndirectCycle', `inode ${node.id}: indirect block ${ptr} refers to itself through its chain`);
          }
          if (a === 0) a = ptr;
          else if (b === 0) b = ptr;
          else c = ptr;
          const ptrs = this.indirect.get(ptr);
          if (!ptrs) return { read: ptr };
          const below = this.span[l - 1] as number;
          const idx = Math.floor(rel / below);
          rel %= below;
          ptr = ptrs[idx] as number;
          if (l === 1) this.found = { ptrs, index: idx, a, b, c };
        }
        if (ptr !== 0 && (ptr === a || ptr === b || ptr === c)) {
          throw new CorruptError('ufs.IndirectCycle', `inode ${node.id}: data block ${ptr} is one of its own indirect blocks`);
        }
        return ptr;
      }
      rel -= span;
    }
    throw new CorruptError('ufs.BlockMap', `inode ${node.id}: logical block ${lbn} beyond triple indirection`);
  }

  /** `walk`, reading the indirect blocks it needs (at most one per level). */
  async bmap(node: UfsNode, lbn: number): Promise<number> {
    for (let i = 0; i <= NIADDR; i++) {
      const r = this.walk(node, lbn);
      if (typeof r === 'number') return r;
      await this.indirectBlock(r.read);
    }
    throw new CorruptError('ufs.BlockMap', `inode ${node.id}: logical block ${lbn}: its indirect blocks do not stay cached`);
  }

  /** The file's bytes [offset, end) as runs of contiguous physical bytes or holes. */
  private async mapRange(node: UfsNode, offset: number, end: number): Promise<Run[]> {
    const runs: Run[] = [];
    let pos = offset;
    // mapCached maps as far as the cached indirect blocks reach; this loop reads the next one. The
    // block loop lives in a plain method because V8 optimizes a running loop only there.
    for (let reads = 0; ; reads++) {
      const r = this.mapCached(node, pos, end, runs);
      if (typeof r === 'number') return runs;
      if (reads > 3 * Math.ceil((end - offset) / this.sb.bsize) + NIADDR) {
        throw new CorruptError('ufs.BlockMap', `inode ${node.id}: its indirect blocks do not stay cached`);
      }
      pos = r.pos;
      await this.indirectBlock(r.read);
    }
  }

  /**
   * Appends the runs of [pos, end) to `runs` while `walk` needs no read; returns `end` when done, or
   * where it stopped and the indirect block to read first.
   */
  private mapCached(node: UfsNode, pos: number, end: number, runs: Run[]): number | { pos: number; read: number } {
    const { bsize, fsize } = this.sb;
    while (pos < end) {
      const lbn = Math.floor(pos / bsize);
      const inBlock = pos - lbn * bsize;
      let n = Math.min(bsize - inBlock, end - pos);
      const frag = this.walk(node, lbn);
      if (typeof frag !== 'number') return { pos, read: frag.read };
      let physical: number | null = null;
      if (frag !== 0) {
        if (inBlock === 0) {
          // The pointers after this one in the same array that continue it on disk: one stretch,
          // checked at once (a file written in order is mostly such stretches).
          const { ptrs, index, a, b, c } = this.found;
          const step = bsize / fsize;
          const want = Math.ceil((end - pos) / bsize);
          let k = 1;
          while (k < want && index + k < ptrs.length && ptrs[index + k] === frag + k * step) k++;
          if (k > 1) {
            // As walk does for each block: a data block must not be one of its own indirect blocks.
            for (const up of [a, b, c]) {
              if (up > frag && up < frag + k * step && (up - frag) % step === 0) {
                throw new CorruptError('ufs.IndirectCycle', `inode ${node.id}: data block ${up} is one of its own indirect blocks`);
              }
            }
            n = Math.min(k * bsize, end - pos);
          }
        }
        // The tail of a small file may be a fragment run shorter than bsize: check only what is used.
        this.checkExtent(frag, inBlock + n, 'ufs.DataBlock', node.id);
        physical = frag * fsize + inBlock;
      }
      const last = runs[runs.length - 1];
      if (last && ((physical === null && last.physical === null) || (physical !== null && last.physical !== null && last.physical + last.length === physical))) {
        last.length += n;
      } else {
        runs.push({ logical: pos, length: n, physical });
      }
      pos += n; // n >= 1
    }
    return end;
  }

  async read(file: FsNode, offset: number, length: number): Promise<Uint8Array> {
    const node = file as UfsNode;
    if (node.kind === 'dir') throw new IsADirectoryError(String(node.id));
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new InvalidArgumentError(`read(${offset}, ${length})`);
    }
    const end = Math.min(node.size, offset + length);
    if (end <= offset) return new Uint8Array(0);
    if (end - offset > this.ctx.limits.allocBytes) {
      throw new LimitExceededError('allocBytes', `read of ${end - offset} bytes`, this.ctx.limits.allocBytes);
    }
    const out = new Uint8Array(end - offset);
    for (const run of await this.mapRange(node, offset, end)) {
      if (run.physical === null) continue; // holes stay zero
      this.ctx.budget.check();
      out.set(await this.source.read(run.physical, run.length), run.logical - offset);
    }
    return out;
  }

  async *extents(file: FsNode): AsyncIterable<Extent> {
    const node = file as UfsNode;
    const step = 16 << 20;
    for (let pos = 0; pos < node.size; pos += step) {
      for (const r of await this.mapRange(node, pos, Math.min(node.size, pos + step))) yield r;
    }
  }

  /** A directory's live entries, chunk by chunk (read as metadata through the block cache). */
  private async *entries(dir: UfsNode): AsyncGenerator<RawDirect> {
    if (dir.kind !== 'dir') throw new CorruptError('ufs.NotADirectory', `inode ${dir.id} is not a directory`);
    const { bsize, fsize } = this.sb;
    if (dir.size % DIRBLKSIZ !== 0) throw new CorruptError('ufs.Directory', `inode ${dir.id}: size ${dir.size} not a multiple of ${DIRBLKSIZ}`);
    let count = 0;
    for (let pos = 0; pos < dir.size; pos += bsize) {
      const lbn = pos / bsize;
      const n = Math.min(bsize, dir.size - pos);
      const frag = await this.bmap(dir, lbn);
      if (frag === 0) throw new CorruptError('ufs.Directory', `inode ${dir.id}: hole at directory block ${lbn}`);
      this.checkExtent(frag, n, 'ufs.Directory', dir.id);
      const blk = await this.cache.read(frag * fsize, n);
      for (let c = 0; c < n; c += DIRBLKSIZ) {
        const chunk = blk.subarray(c, c + DIRBLKSIZ);
        for (const e of decodeDirChunk(chunk, this.sb.flavour, this.sb.littleEndian, frag * fsize + c, this.maxIno)) {
          if (++count > this.ctx.limits.dirEntries) {
            throw new LimitExceededError('dirEntries', `directory ${dir.id} has more than ${this.ctx.limits.dirEntries} entries`, this.ctx.limits.dirEntries);
          }
          yield e;
        }
      }
    }
  }

  async *readdir(dir: FsNode): AsyncIterable<DirEntry> {
    for await (const e of this.entries(dir as UfsNode)) yield { name: e.name, kind: e.kind };
  }

  async lookup(dir: FsNode, name: Uint8Array): Promise<FsNode | null> {
    for await (const e of this.entries(dir as UfsNode)) {
      if (e.name.length === name.length && e.name.every((b, i) => b === name[i])) return this.inode(e.ino);
    }
    return null;
  }

  /**
   * Fast symlinks keep the target in the block-pointer area: 4.4BSD when size < fs_maxsymlinklen,
   * Solaris (and old BSD) when di_blocks == 0 (illumos ufs_readlink / FreeBSD ufs_readlink).
   * The declared size is bounded before anything is read (CVE-2025-0677: GRUB's size + 1 overflow).
   */
  async readlink(link: FsNode): Promise<Uint8Array> {
    const node = link as UfsNode;
    if (node.kind !== 'symlink') throw new CorruptError('ufs.NotASymlink', `inode ${node.id} is not a symlink`);
    const max = this.ctx.limits.pathBytes;
    if (node.size > max) throw new LimitExceededError('pathBytes', `symlink ${node.id} target of ${node.size} bytes`, max);
    const area = node.shortlink.length;
    const fast = (this.sb.maxsymlinklen > 0 && node.size < this.sb.maxsymlinklen) || (node.blocks === 0 && node.size <= area);
    if (fast) {
      if (node.size > area) throw new CorruptError('ufs.Symlink', `fast symlink ${node.id} of ${node.size} bytes exceeds the ${area}-byte area`);
      return node.shortlink.slice(0, node.size);
    }
    const runs = await this.mapRange(node, 0, node.size);
    const out = new Uint8Array(node.size);
    for (const r of runs) {
      if (r.physical === null) throw new CorruptError('ufs.Symlink', `slow symlink ${node.id} has a hole`);
      out.set(await this.cache.read(r.physical, r.length), r.logical);
    }
    return out;
  }
}
