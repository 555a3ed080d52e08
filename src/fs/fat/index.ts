/**
 * FAT12/16/32 driver with VFAT long names (Microsoft FAT spec 1.03). Cluster chains are walked with a
 * visited set and a length bound; runs of consecutive clusters become single source reads. See README.md.
 */
import { CorruptError, LimitExceededError, UnsupportedError } from '../../errors.ts';
import { decodeUtf8, textEncoder, u16le, u32le, u32leWords } from '../../io/bytes.ts';
import { BlockCache, type ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import type { DirEntry, Extent, FilesystemDriver, FsNode, ProbeResult, Volume } from '../types.ts';
import { decodeBpb, serialString, type Bpb } from './bpb.ts';
import { ATTR_DIRECTORY, DirentDecoder, foldName, type FatDirent } from './dirent.ts';

/** §6: a directory holds at most 65536 entries (2 MiB); a longer chain has no end marker we trust. */
export const MAX_DIR_ENTRIES = 65536;
/** Entries scanned for the volume label when probing (the label entry is normally the first). */
const LABEL_SCAN_ENTRIES = 512;

export interface FatNode extends FsNode {
  readonly firstCluster: number;
  /** FAT12/16 fixed root directory. */
  readonly fixedRoot: boolean;
  /** First clusters of the directories above (cycle detection). */
  readonly ancestors: readonly number[];
  readonly shortName: string;
}

interface Run {
  readonly cluster: number;
  count: number;
}

/**
 * Bytes of FAT decoded per metadata read in chain walks, as a readahead: one sector (128 FAT32
 * entries) after a jump, doubling while the chain keeps reading the FAT in order, up to 64 KiB. A
 * contiguous 100 MiB file of 512-byte clusters then costs ~20 reads instead of 1,600 (each an await),
 * and a chain that jumps around a large FAT never reads (or charges) more than a sector per jump.
 */
const FAT_WINDOW = 512;
const FAT_WINDOW_MAX = 64 << 10;

/**
 * FAT32 stretch scan: from entry index k of `words` (the entry of cluster `end`), while each entry
 * links to the next cluster, moves `end` on, up to cluster `last`; returns the last cluster linked.
 * A function of its own: V8 optimizes this tiny loop while it runs (on-stack replacement) within a few
 * thousand entries, where inside walkWindow its first 400,000 ran unoptimized (a cold 200,000-cluster
 * chain took 11–13 ms, 1–2 ms once optimized).
 */
function stretchEnd(words: Uint32Array, k: number, end: number, last: number): number {
  const lim = words.length;
  while (end < last && k < lim && ((words[k] as number) & 0x0fffffff) === end + 1) {
    end++;
    k++;
  }
  return end;
}

/**
 * Clusters seen in one chain walk: a Set for short chains, a bitmap over 2..maxCluster (at most
 * 32 MiB for 2^28 clusters, in practice clusterCount / 8 bytes) once a chain is long, so a 100 MiB
 * file of 512-byte clusters costs 40 KiB instead of a 200,000-entry Set. Cluster c is bit c & 31 of
 * word c >>> 5 (0 ≤ c ≤ maxCluster < 2^28, so 32-bit bit operations are exact).
 */
export class VisitedClusters {
  private small: Set<number> | null = new Set();
  /** The bitmap, once in use (walkWindow tests and sets bits in it directly). */
  bits: Uint32Array | null = null;
  /** `long`: the chain is known to be long (a big file), so the bitmap is used from the start. */
  constructor(
    private readonly maxCluster: number,
    long = false,
  ) {
    if (long) {
      this.bits = new Uint32Array((maxCluster >>> 5) + 1);
      this.small = null;
    }
  }
  /** Adds c; false when it was already there. */
  add(c: number): boolean {
    const bits = this.bits;
    if (bits !== null) {
      const i = c >>> 5;
      const m = 1 << (c & 31);
      if (((bits[i] as number) & m) !== 0) return false;
      bits[i] = (bits[i] as number) | m;
      return true;
    }
    const small = this.small as Set<number>;
    if (small.has(c)) return false;
    small.add(c);
    if (small.size > 4096) {
      const b = new Uint32Array((this.maxCluster >>> 5) + 1);
      for (const x of small) b[x >>> 5] = (b[x >>> 5] as number) | (1 << (x & 31));
      this.bits = b;
      this.small = null;
    }
    return true;
  }
  /**
   * Adds every cluster of lo..hi (lo ≤ hi ≤ maxCluster); false when one of them was already there
   * (then what was added is unspecified: the walk fails anyway). 32 clusters a step in the bitmap.
   */
  addRange(lo: number, hi: number): boolean {
    let c = lo;
    // While still a Set: one by one (add() moves to the bitmap once the chain is long).
    for (; c <= hi && this.bits === null; c++) if (!this.add(c)) return false;
    const bits = this.bits as Uint32Array;
    while (c <= hi) {
      const i = c >>> 5;
      const from = c & 31;
      const to = Math.min(31, hi - (c - from)); // last bit of this word inside the range
      // Bits from..to set: (2^(to+1) − 1) − (2^from − 1), as 32-bit patterns.
      const m = ((to === 31 ? -1 : (1 << (to + 1)) - 1) & ~((1 << from) - 1)) | 0;
      const w = bits[i] as number;
      if ((w & m) !== 0) return false;
      bits[i] = w | m;
      c = (i + 1) << 5;
    }
    return true;
  }
}

/** A chain walk in progress (FatVolume.walkWindow). */
interface ChainWalk {
  readonly runs: Run[];
  readonly visited: VisitedClusters;
  /** The cluster the walk is at. */
  cur: number;
  /** Whether `cur` has been checked and counted (then its FAT entry is what the walk needs next). */
  counted: boolean;
  /** cur's FAT entry when the caller read it (outside the window; FAT12 always). */
  next: number | null;
  n: number;
  readonly need: number | null;
  readonly max: number;
  readonly at: number | string;
  done: boolean;
}

export class FatVolume implements Volume {
  readonly type = 'fat';
  label: string | undefined;
  readonly uuid: string | undefined;
  private readonly meta: BlockCache;
  private readonly chains = new Map<number, Run[]>();
  /** The FAT sector last decoded by a chain walk (a copy from the metadata cache). */
  private fatWindow: { start: number; data: Uint8Array } | null = null;
  private readonly rootNode: FatNode;

  constructor(
    readonly source: ByteSource,
    private readonly ctx: Context,
    readonly bpb: Bpb,
  ) {
    this.meta = new BlockCache(source, ctx.budget, 4096);
    this.uuid = bpb.volumeId !== null ? serialString(bpb.volumeId) : undefined;
    this.label = bpb.volumeLabel ?? undefined;
    const fixed = bpb.type !== 'fat32';
    this.rootNode = {
      kind: 'dir', size: 0, id: 'root', firstCluster: fixed ? 0 : bpb.rootCluster, fixedRoot: fixed, ancestors: [], shortName: '',
    };
  }

  get fatType(): Bpb['type'] {
    return this.bpb.type;
  }

  async root(): Promise<FatNode> {
    return this.rootNode;
  }

  /** §4: the FAT entry of cluster n (FAT12 entries are 12 bits packed in pairs over 3 bytes). */
  private async fatEntry(n: number): Promise<number> {
    const { bpb } = this;
    if (bpb.type === 'fat12') {
      const off = bpb.fatOffset + n + Math.floor(n / 2);
      const v = u16le(await this.meta.read(off, 2), 0, 'fat.FAT');
      return n % 2 === 1 ? Math.floor(v / 16) : v % 4096;
    }
    const v = this.fatEntryCached(n);
    if (v !== null) return v;
    // Load the FAT sector holding entry n (through the metadata cache), then decode from it.
    const off = bpb.fatOffset + n * (bpb.type === 'fat16' ? 2 : 4);
    const start = off - (off % FAT_WINDOW);
    const prev = this.fatWindow;
    const size = prev && prev.start + prev.data.length === start ? Math.min(prev.data.length * 2, FAT_WINDOW_MAX) : FAT_WINDOW;
    // Read past the block cache (charged to the metadata budget all the same): a chain walk reads
    // each FAT sector once, and filling the cache's LRU with 4 KiB blocks it never asks for again
    // cost more than the reads (a 200,000-cluster chain: ≈ 3 ms of a 10 ms walk).
    const length = Math.max(0, Math.min(size, this.source.size - start));
    this.ctx.budget.chargeMetadata(length);
    this.fatWindow = { start, data: await this.source.read(start, length) };
    const loaded = this.fatEntryCached(n);
    if (loaded === null) throw new CorruptError('fat.FAT', `entry of cluster ${n} lies outside the image`, off);
    return loaded;
  }

  /**
   * FAT16/32 entry n from the FAT window last loaded, or null when it lies elsewhere: a chain walk
   * decodes a whole window per metadata read instead of one read and one await per cluster.
   */
  private fatEntryCached(n: number): number | null {
    const w = this.fatWindow;
    const { bpb } = this;
    if (w === null || bpb.type === 'fat12') return null;
    if (bpb.type === 'fat16') {
      const o = bpb.fatOffset + n * 2 - w.start;
      return o >= 0 && o + 2 <= w.data.length ? u16le(w.data, o, 'fat.FAT') : null;
    }
    const o = bpb.fatOffset + n * 4 - w.start;
    // FAT32 entries are 28 bits; the top 4 are reserved (§4.1).
    return o >= 0 && o + 4 <= w.data.length ? u32le(w.data, o, 'fat.FAT') % 0x10000000 : null;
  }

  /** Entries at or above this end a chain (EOC); one below it marks a bad cluster. */
  private get endMark(): number {
    const t = this.bpb.type;
    return t === 'fat12' ? 0xff8 : t === 'fat16' ? 0xfff8 : 0x0ffffff8;
  }

  /**
   * The chain from `first` as runs of consecutive clusters. `need` clusters for a file (a longer chain
   * is fine, a shorter one is corrupt); for a directory (need = null) up to EOC, bounded by `max`.
   */
  private async chain(first: number, need: number | null, max: number, at: number | string): Promise<Run[]> {
    const cached = this.chains.get(first);
    if (cached && need === null) return cached;
    const walk: ChainWalk = { runs: [], visited: new VisitedClusters(this.bpb.maxCluster, need !== null && need > 4096), cur: first, counted: false, next: null, n: 0, need, max, at, done: false };
    // The walk itself is synchronous (walkWindow), over the FAT window already loaded; this loop only
    // loads the next window. V8 optimizes a long loop while it runs (OSR) in a plain function, never
    // in an async one: a 200,000-cluster chain walks ~3× faster this way.
    for (;;) {
      this.walkWindow(walk);
      if (walk.done) break;
      // cur's entry lies outside the window: read it (FAT16/32: loading the window that holds it).
      walk.next = await this.fatEntry(walk.cur);
    }
    const { runs } = walk;
    if (need === null) {
      if (this.chains.size > 256) this.chains.clear();
      this.chains.set(first, runs);
    }
    return runs;
  }

  /**
   * Follows the chain from `w.cur` for as long as the entries lie in the FAT window loaded (or the
   * chain ends); `w.done` when it has ended. Every cluster is checked before it is counted.
   */
  private walkWindow(w: ChainWalk): void {
    const { maxCluster } = this.bpb;
    const endMark = this.endMark;
    const { runs, visited, need, max, at } = w;
    // The FAT window and the visited bitmap, read inline: in the loop below a call per cluster
    // costs more than the cluster (200,000 of them for 100 MiB in 512-byte clusters).
    const win = this.fatWindow;
    const width = this.bpb.type === 'fat32' ? 4 : this.bpb.type === 'fat16' ? 2 : 0;
    const data = win !== null && width !== 0 ? win.data : null;
    const base = win !== null ? this.bpb.fatOffset - win.start : 0;
    const bits = visited.bits;
    // The window as 32-bit words, for the stretch scan below (FAT32, little-endian host, aligned).
    const words = width === 4 && data !== null && (base & 3) === 0 ? u32leWords(data, data.length >>> 2) : null;
    let last = runs.length ? (runs[runs.length - 1] as Run) : null;
    let cur = w.cur;
    let n = w.n;
    let counted = w.counted;
    try {
      for (;;) {
        if (!counted) {
          if (cur < 2 || cur > maxCluster) throw new CorruptError('fat.ClusterChain', `cluster ${cur} of entry ${at} outside 2..${maxCluster}`);
          // 2 ≤ cur ≤ maxCluster < 2^28: 32-bit bit operations are exact.
          if (bits !== null) {
            const m = 1 << (cur & 31);
            const b = bits[cur >>> 5] as number;
            if ((b & m) !== 0) throw new CorruptError('fat.ClusterChain', `cluster chain of entry ${at} loops at cluster ${cur}`);
            bits[cur >>> 5] = b | m;
          } else if (!visited.add(cur)) throw new CorruptError('fat.ClusterChain', `cluster chain of entry ${at} loops at cluster ${cur}`);
          n++;
          if ((n & 4095) === 0) this.ctx.budget.check();
          if (last !== null && last.cluster + last.count === cur) last.count++;
          else {
            last = { cluster: cur, count: 1 };
            runs.push(last);
          }
          counted = true;
          if (need !== null && n >= need) {
            w.done = true;
            return;
          }
        }
        let next: number;
        if (w.next !== null) {
          next = w.next;
          w.next = null;
        } else {
          // cur's entry in the window (FAT32 entries are 28 bits; the top 4 are reserved, §4.1).
          const o = base + cur * width;
          if (data === null || o < 0 || o + width > data.length) return; // elsewhere: the caller reads it
          next =
            width === 4
              ? (data[o] as number) | ((data[o + 1] as number) << 8) | ((data[o + 2] as number) << 16) | (((data[o + 3] as number) & 0x0f) << 24)
              : (data[o] as number) | ((data[o + 1] as number) << 8);
        }
        if (next >= endMark) {
          if (need !== null) throw new CorruptError('fat.ClusterChain', `chain of entry ${at} ends after ${n} of ${need} clusters`);
          w.done = true;
          return;
        }
        if (n >= max) {
          throw new CorruptError('fat.Directory', `directory of entry ${at} runs past ${max} clusters without an end marker`);
        }
        if (next === endMark - 1) throw new CorruptError('fat.ClusterChain', `chain of entry ${at} reaches bad cluster marker at ${cur}`);
        if (next === cur + 1 && data !== null && last !== null && need !== null) {
          // A stretch of consecutive clusters (what a file usually is): find where it ends in the
          // window, then check and count the stretch at once instead of cluster by cluster.
          let end = next; // last cluster of the stretch
          const room = need - n; // clusters the file still needs (≥ 1 here)
          let o = base + end * width;
          if (words !== null && o >= 0) {
            // FAT32 on a little-endian host: compare whole entries (28 bits) word by word.
            end = stretchEnd(words, o >>> 2, end, Math.min(maxCluster, next - 1 + room));
            o = base + end * width; // where the byte loop below would go on (it stops at once)
          }
          while (end - next + 1 < room && end < maxCluster && o >= 0 && o + width <= data.length) {
            const e =
              width === 4
                ? (data[o] as number) | ((data[o + 1] as number) << 8) | ((data[o + 2] as number) << 16) | (((data[o + 3] as number) & 0x0f) << 24)
                : (data[o] as number) | ((data[o + 1] as number) << 8);
            if (e !== end + 1) break;
            end++;
            o += width;
          }
          if (end > maxCluster) throw new CorruptError('fat.ClusterChain', `cluster ${end} of entry ${at} outside 2..${maxCluster}`);
          if (!visited.addRange(next, end)) throw new CorruptError('fat.ClusterChain', `cluster chain of entry ${at} loops within clusters ${next}..${end}`);
          const count = end - next + 1;
          n += count;
          this.ctx.budget.check();
          last.count += count; // last ends at cur, and next = cur + 1
          cur = end;
          counted = true;
          if (n >= need) {
            w.done = true;
            return;
          }
          continue;
        }
        cur = next;
        counted = false;
      }
    } finally {
      w.cur = cur;
      w.n = n;
      w.counted = counted;
    }
  }

  private clusterOffset(c: number): number {
    return this.bpb.dataOffset + (c - 2) * this.bpb.clusterBytes;
  }

  /** Raw 32-byte entries of a directory, up to the end marker (§6: DIR_Name[0] == 0). */
  private async *rawEntries(dir: FatNode, maxEntries = MAX_DIR_ENTRIES): AsyncGenerator<[Uint8Array, number]> {
    if (dir.kind !== 'dir') throw new CorruptError('fat.Directory', `node ${dir.id} is not a directory`);
    const areas: [number, number][] = [];
    if (dir.fixedRoot) {
      areas.push([this.bpb.rootDirOffset, this.bpb.rootDirBytes]);
    } else {
      const cb = this.bpb.clusterBytes;
      const maxClusters = Math.max(1, Math.ceil((MAX_DIR_ENTRIES * 32) / cb));
      for (const r of await this.chain(dir.firstCluster, null, maxClusters, dir.id)) areas.push([this.clusterOffset(r.cluster), r.count * cb]);
    }
    let count = 0;
    const chunk = 64 * 1024;
    for (const [start, len] of areas) {
      for (let o = 0; o < len; o += chunk) {
        this.ctx.budget.chargeNode();
        const n = Math.min(chunk, len - o);
        const buf = await this.meta.read(start + o, n);
        for (let i = 0; i + 32 <= n; i += 32) {
          if (buf[i] === 0) return;
          if (++count > maxEntries) return;
          yield [buf.subarray(i, i + 32), start + o + i];
        }
      }
    }
  }

  private async *dirents(dir: FatNode): AsyncGenerator<FatDirent> {
    const dec = new DirentDecoder();
    for await (const [e, at] of this.rawEntries(dir)) {
      const d = dec.entry(e, at);
      if (d) yield d;
    }
  }

  private toNode(dir: FatNode, d: FatDirent): FatNode {
    const isDir = (d.attr & ATTR_DIRECTORY) !== 0;
    if (isDir) {
      const self = dir.fixedRoot ? 0 : dir.firstCluster;
      if (d.firstCluster === self || (d.firstCluster === 0 && !dir.fixedRoot) || dir.ancestors.includes(d.firstCluster) || d.firstCluster === this.bpb.rootCluster) {
        throw new CorruptError('fat.DirectoryCycle', `directory entry ${d.shortName} points back at cluster ${d.firstCluster}`, d.at);
      }
    }
    return {
      kind: isDir ? 'dir' : 'file',
      size: isDir ? 0 : d.size,
      id: d.at,
      mtime: d.mtime,
      firstCluster: d.firstCluster,
      fixedRoot: false,
      ancestors: isDir ? [...dir.ancestors, dir.fixedRoot ? 0 : dir.firstCluster] : [],
      shortName: d.shortName,
    };
  }

  async *readdir(dir: FsNode): AsyncIterable<DirEntry> {
    for await (const d of this.dirents(dir as FatNode)) {
      yield { name: textEncoder.encode(d.name), kind: d.attr & ATTR_DIRECTORY ? 'dir' : 'file' };
    }
  }

  /** Case-insensitive match on the long or the 8.3 name, as Linux vfat looks names up. */
  async lookup(dir: FsNode, name: Uint8Array): Promise<FatNode | null> {
    const want = foldName(decodeUtf8(name));
    for await (const d of this.dirents(dir as FatNode)) {
      if (foldName(d.name) === want || foldName(d.shortName) === want) return this.toNode(dir as FatNode, d);
    }
    return null;
  }

  async readlink(link: FsNode): Promise<Uint8Array> {
    throw new CorruptError('NotASymlink', `FAT has no symlinks (node ${link.id})`);
  }

  private async fileRuns(n: FatNode): Promise<Run[]> {
    if (n.kind !== 'file') throw new CorruptError('NotAFile', `node ${n.id} is not a regular file`);
    if (n.size === 0) return [];
    const need = Math.ceil(n.size / this.bpb.clusterBytes);
    if (need > this.bpb.clusterCount) throw new CorruptError('fat.FileSize', `size ${n.size} of entry ${n.id} exceeds the volume`);
    if (need > Math.ceil(this.ctx.limits.fileBytes / this.bpb.clusterBytes) + 1) {
      throw new LimitExceededError('fileBytes', `file of ${n.size} bytes`, this.ctx.limits.fileBytes);
    }
    return this.chain(n.firstCluster, need, need, n.id);
  }

  async *extents(file: FsNode): AsyncIterable<Extent> {
    const n = file as FatNode;
    let logical = 0;
    for (const r of await this.fileRuns(n)) {
      const length = Math.min(r.count * this.bpb.clusterBytes, n.size - logical);
      yield { logical, length, physical: this.clusterOffset(r.cluster) };
      logical += length;
    }
  }

  async read(file: FsNode, offset: number, length: number): Promise<Uint8Array> {
    const n = file as FatNode;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new CorruptError('fat.Read', `bad read range ${offset}+${length}`);
    }
    const runs = await this.fileRuns(n);
    const end = Math.min(n.size, offset + length);
    if (end <= offset) return new Uint8Array(0);
    if (end - offset > this.ctx.limits.allocBytes) throw new LimitExceededError('allocBytes', `read of ${end - offset} bytes`, this.ctx.limits.allocBytes);
    const out = new Uint8Array(end - offset);
    let logical = 0;
    for (const r of runs) {
      const len = r.count * this.bpb.clusterBytes;
      const a = Math.max(offset, logical);
      const b = Math.min(end, logical + len);
      if (a < b) out.set(await this.source.read(this.clusterOffset(r.cluster) + (a - logical), b - a), a - offset);
      logical += len;
      if (logical >= end) break;
    }
    return out;
  }

  /** The label from the root's volume-label entry (what Linux/blkid report), else the BPB's. */
  async readLabel(maxEntries = LABEL_SCAN_ENTRIES): Promise<string | undefined> {
    const dec = new DirentDecoder();
    for await (const [e, at] of this.rawEntries(this.rootNode, maxEntries)) {
      dec.entry(e, at);
      if (dec.label !== null) return dec.label || undefined;
    }
    return this.bpb.volumeLabel ?? undefined;
  }
}

async function readBpb(src: ByteSource): Promise<Bpb | null> {
  if (src.size < 512) return null;
  const b = await src.read(0, 512);
  return decodeBpb(b, src.size);
}

async function probe(src: ByteSource, ctx: Context): Promise<ProbeResult | null> {
  const bpb = await readBpb(src);
  if (!bpb) return null;
  const v = new FatVolume(src, ctx, bpb);
  const label = await v.readLabel();
  return { type: bpb.type, ...(label ? { label } : {}), ...(v.uuid ? { uuid: v.uuid } : {}) };
}

async function open(src: ByteSource, ctx: Context): Promise<FatVolume> {
  const bpb = await readBpb(src);
  if (!bpb) throw new UnsupportedError(`${src.name ?? 'source'}: not a FAT filesystem`);
  const v = new FatVolume(src, ctx, bpb);
  v.label = await v.readLabel();
  return v;
}

export const fat: FilesystemDriver = {
  id: 'fat',
  probe: (src, ctx) => probe(src, ctx),
  open: (src, ctx) => open(src, ctx),
};
