/**
 * The pool layer: vdev labels and uberblocks (OpenZFS include/sys/vdev_impl.h, uberblock_impl.h;
 * ZFS On-Disk Specification §1), the vdev tree (disk/file leaves, mirror, raidz1–3 with every child
 * present) and `readBlock`: DVA selection with fallback to the other copies and mirror sides when a
 * checksum fails, gang blocks, embedded data, holes, checksum verification and decompression.
 */
import { lz4BlockDecode } from '../../codec/lz4.ts';
import { lzjbDecompress } from '../../codec/lzjb.ts';
import { zleDecompress } from '../../codec/zle.ts';
import { CorruptError, LimitExceededError, UnsupportedError, isTsgrubError } from '../../errors.ts';
import { u32be, u64be, u64le } from '../../io/bytes.ts';
import { BlockCache, type ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import { BLKPTR_SIZE, decodeBlkptr, type BlockPtr, type Dva } from './blkptr.ts';
import { fletcher2, fletcher4, sha256Words, type Cksum } from './checksum.ts';
import { decodeNvlist, nvList, nvLists, nvNum, nvStr, nvU64, type NvList } from './nvlist.ts';

export const LABEL_SIZE = 256 * 1024;
const NVLIST_OFF = 16 * 1024;
const NVLIST_SIZE = 112 * 1024;
const UB_RING_OFF = 128 * 1024;
const UB_RING_SIZE = 128 * 1024;
/** Allocatable space starts after the two front labels and the 3.5 MiB boot block area. */
export const VDEV_START = 4 * 1024 * 1024;
const ECK_MAGIC = 0x0210da7ab10c7a11n;
const UB_MAGIC = 0x00bab10cn;
/** SPA_MAXBLOCKSIZE: no logical block is larger (threat-model: decompression ≤ 16 MiB/record). */
export const MAX_BLOCK = 16 * 1024 * 1024;
const GANG_SIZE = 512;

export const SPA_VERSION_MAX_LEGACY = 28;
export const SPA_VERSION_FEATURES = 5000;

export interface Uberblock {
  readonly le: boolean;
  readonly version: number;
  readonly txg: bigint;
  readonly guidSum: bigint;
  readonly timestamp: bigint;
  readonly rootbp: BlockPtr;
  readonly at: number;
}

interface Leaf {
  readonly guid: bigint;
  readonly meta: ByteSource;
  readonly raw: ByteSource;
}

export interface VdevNode {
  readonly type: string;
  readonly id: number;
  readonly guid: bigint;
  readonly ashift: number;
  readonly nparity: number;
  readonly children: readonly VdevNode[];
}

export interface LabelInfo {
  readonly config: NvList;
  readonly uberblocks: Uberblock[];
}

/**
 * Verifies an embedded checksum (zio_eck_t at the end of `buf`: magic, then the SHA-256 of the
 * buffer in which those 32 checksum bytes hold the verifier `[offset, 0, 0, 0]`). Returns the byte
 * order it was written in, or null when the magic or checksum does not match.
 */
export function verifyEmbedded(buf: Uint8Array, verifier: readonly bigint[]): boolean | null {
  const tail = buf.length - 40;
  let le: boolean;
  if (u64le(buf, tail) === ECK_MAGIC) le = true;
  else if (u64be(buf, tail) === ECK_MAGIC) le = false;
  else return null;
  const stored = [0, 1, 2, 3].map((i) => (le ? u64le(buf, tail + 8 + i * 8) : u64be(buf, tail + 8 + i * 8)));
  const copy = buf.slice();
  const dv = new DataView(copy.buffer);
  for (let i = 0; i < 4; i++) dv.setBigUint64(tail + 8 + i * 8, verifier[i] ?? 0n, le);
  const got = sha256Words(copy);
  return got.every((w, i) => w === stored[i]) ? le : null;
}

function decodeUberblock(b: Uint8Array, at: number): Uberblock | null {
  let le: boolean;
  if (u64le(b, 0) === UB_MAGIC) le = true;
  else if (u64be(b, 0) === UB_MAGIC) le = false;
  else return null;
  const w = (o: number) => (le ? u64le(b, o, 'zfs.uberblock') : u64be(b, o, 'zfs.uberblock'));
  const version = w(8);
  if (version > 0xffffn) return null;
  return { le, version: Number(version), txg: w(16), guidSum: w(24), timestamp: w(32), rootbp: decodeBlkptr(b, 40, le, at + 40), at };
}

/** Reads the four labels of one device: configs (checksummed) and every valid uberblock. */
export async function readLabels(src: ByteSource, meta: ByteSource): Promise<LabelInfo | null> {
  const psize = Math.floor(src.size / LABEL_SIZE) * LABEL_SIZE;
  if (psize < 4 * LABEL_SIZE) return null;
  const offsets = [0, LABEL_SIZE, psize - 2 * LABEL_SIZE, psize - LABEL_SIZE];
  let config: NvList | null = null;
  let configTxg = -1n;
  const ubs: Uberblock[] = [];
  for (const lo of offsets) {
    let cfg: NvList | null = null;
    try {
      const nv = await meta.read(lo + NVLIST_OFF, NVLIST_SIZE);
      if (verifyEmbedded(nv, [BigInt(lo + NVLIST_OFF)]) === null) continue;
      cfg = decodeNvlist(nv.subarray(0, NVLIST_SIZE - 40), lo + NVLIST_OFF);
    } catch (e) {
      if (isTsgrubError(e) && e.code !== 'LimitExceeded') continue;
      throw e;
    }
    const txg = nvU64(cfg, 'txg') ?? 0n;
    if (config === null || txg > configTxg) {
      config = cfg;
      configTxg = txg;
    }
    const tree = nvList(cfg, 'vdev_tree');
    const ashift = Math.min(Math.max((tree && nvNum(tree, 'ashift')) ?? 9, 10), 13);
    const slot = 2 ** ashift;
    const ring = await meta.read(lo + UB_RING_OFF, UB_RING_SIZE);
    for (let o = 0; o + slot <= UB_RING_SIZE; o += slot) {
      const s = ring.subarray(o, o + slot);
      const at = lo + UB_RING_OFF + o;
      if (u64le(s, 0) !== UB_MAGIC && u64be(s, 0) !== UB_MAGIC) continue;
      // Uberblocks are self-checksummed (ZIO_CHECKSUM_LABEL, verifier = their own offset).
      if (verifyEmbedded(s, [BigInt(at)]) === null) continue;
      try {
        const ub = decodeUberblock(s, at);
        if (ub) ubs.push(ub);
      } catch (e) {
        if (!isTsgrubError(e) || e.code === 'LimitExceeded') throw e;
      }
    }
  }
  if (!config) return null;
  return { config, uberblocks: ubs };
}

function parseVdev(nv: NvList, depth: number): VdevNode {
  if (depth > 8) throw new CorruptError('zfs.vdev_tree', 'nested deeper than 8 levels');
  const kids = nvLists(nv, 'children');
  if (kids.length > 256) throw new CorruptError('zfs.vdev_tree', `${kids.length} children`);
  return {
    type: nvStr(nv, 'type') ?? 'missing',
    id: nvNum(nv, 'id') ?? 0,
    guid: nvU64(nv, 'guid') ?? 0n,
    ashift: nvNum(nv, 'ashift') ?? 9,
    nparity: nvNum(nv, 'nparity') ?? 1,
    children: kids.map((k) => parseVdev(k, depth + 1)),
  };
}

function findLeafPath(nv: NvList, guid: bigint, depth = 0): NvList | null {
  if (depth > 8) return null;
  if (nvU64(nv, 'guid') === guid && nvLists(nv, 'children').length === 0) return nv;
  for (const k of nvLists(nv, 'children')) {
    const f = findLeafPath(k, guid, depth + 1);
    if (f) return f;
  }
  return null;
}

interface Candidate {
  read(): Promise<Uint8Array>;
}

export class Pool {
  readonly name: string;
  readonly guid: bigint;
  readonly config: NvList;
  readonly physPath: string;
  readonly version: number;
  ub!: Uberblock;
  private readonly tops = new Map<number, VdevNode>();
  private readonly leaves = new Map<bigint, Leaf>();
  private readonly blockCache = new Map<string, Uint8Array>();
  private blockCacheBytes = 0;
  /** Uberblocks by preference (txg, then timestamp), for fallback when a root does not read. */
  readonly uberblocks: Uberblock[];

  private constructor(readonly ctx: Context, config: NvList, uberblocks: Uberblock[]) {
    this.config = config;
    this.name = nvStr(config, 'name') ?? '';
    this.guid = nvU64(config, 'pool_guid') ?? 0n;
    this.version = nvNum(config, 'version') ?? 0;
    const tree = nvList(config, 'vdev_tree');
    const leafGuid = nvU64(config, 'guid') ?? 0n;
    const path = tree ? findLeafPath(tree, leafGuid) : null;
    this.physPath = (path && nvStr(path, 'phys_path')) ?? '';
    this.uberblocks = uberblocks.sort((a, b) => (a.txg !== b.txg ? (b.txg > a.txg ? 1 : -1) : b.timestamp > a.timestamp ? 1 : b.timestamp < a.timestamp ? -1 : 0));
  }

  /** Opens a pool from its device(s): every source is one leaf vdev of the same pool. */
  static async open(sources: readonly ByteSource[], ctx: Context): Promise<Pool> {
    let pool: Pool | null = null;
    const all: { src: ByteSource; meta: ByteSource; info: LabelInfo }[] = [];
    for (const src of sources) {
      const meta = new BlockCache(src, ctx.budget, 4096);
      const info = await readLabels(src, meta);
      if (info) all.push({ src, meta, info });
    }
    if (all.length === 0) throw new CorruptError('zfs.label', 'no vdev label with a valid checksum');
    const first = all[0]!;
    const pguid = nvU64(first.info.config, 'pool_guid');
    const ubs: Uberblock[] = [];
    for (const a of all) {
      if (nvU64(a.info.config, 'pool_guid') !== pguid) continue;
      ubs.push(...a.info.uberblocks);
    }
    pool = new Pool(ctx, first.info.config, ubs);
    for (const a of all) {
      if (nvU64(a.info.config, 'pool_guid') !== pguid) continue;
      const tree = nvList(a.info.config, 'vdev_tree');
      if (!tree) continue;
      const top = parseVdev(tree, 0);
      if (!pool.tops.has(top.id)) pool.tops.set(top.id, top);
      const g = nvU64(a.info.config, 'guid');
      if (g !== undefined) pool.leaves.set(g, { guid: g, meta: a.meta, raw: a.src });
    }
    if (pool.uberblocks.length === 0) throw new CorruptError('zfs.uberblock', 'no uberblock with a valid magic and checksum');
    const pv = pool.uberblocks[0]!.version;
    if (pv > SPA_VERSION_MAX_LEGACY && pv !== SPA_VERSION_FEATURES) throw new UnsupportedError(`zfs pool version ${pv}`);
    if (pool.version > SPA_VERSION_MAX_LEGACY && pool.version !== SPA_VERSION_FEATURES) throw new UnsupportedError(`zfs pool version ${pool.version}`);
    return pool;
  }

  /** Read candidates for `size` bytes at `offset` of a vdev: one per mirror side (depth-first). */
  private candidates(v: VdevNode, offset: number, size: number, metadata: boolean, out: Candidate[], depth = 0): void {
    if (depth > 8) throw new CorruptError('zfs.vdev', 'vdev tree too deep');
    switch (v.type) {
      case 'disk':
      case 'file': {
        const leaf = this.leaves.get(v.guid);
        if (!leaf) return;
        const src = metadata ? leaf.meta : leaf.raw;
        out.push({ read: () => src.read(VDEV_START + offset, size) });
        return;
      }
      case 'mirror':
      case 'replacing':
      case 'spare':
        for (const c of v.children) this.candidates(c, offset, size, metadata, out, depth + 1);
        return;
      case 'raidz':
        out.push({ read: () => this.readRaidz(v, offset, size, metadata, depth) });
        return;
      default:
        throw new UnsupportedError(`zfs vdev type ${v.type}`);
    }
  }

  /**
   * RAID-Z without reconstruction (vdev_raidz_map_alloc in module/zfs/vdev_raidz.c): the block is
   * cut into sectors spread over the columns after the parity columns, starting at column
   * `(offset >> ashift) % children`; columns wrapping past the last child move one row down.
   */
  private async readRaidz(v: VdevNode, offset: number, size: number, metadata: boolean, depth: number): Promise<Uint8Array> {
    const dcols = v.children.length;
    const nparity = v.nparity;
    if (nparity < 1 || nparity > 3 || dcols <= nparity) throw new CorruptError('zfs.raidz', `${dcols} children with parity ${nparity}`);
    const unit = 2 ** v.ashift;
    const b = Math.floor(offset / unit);
    const s = Math.ceil(size / unit);
    const f = b % dcols;
    const o = Math.floor(b / dcols) * unit;
    const q = Math.floor(s / (dcols - nparity));
    const r = s - q * (dcols - nparity);
    const bc = r === 0 ? 0 : r + nparity;
    const acols = q === 0 ? bc : dcols;
    const cols: { dev: number; off: number; size: number }[] = [];
    for (let c = 0; c < acols; c++) {
      let col = f + c;
      let coff = o;
      if (col >= dcols) {
        col -= dcols;
        coff += unit;
      }
      cols.push({ dev: col, off: coff, size: (c < bc ? q + 1 : q) * unit });
    }
    // raidz1 swaps the parity and first data column on every other megabyte (the "RAIDZ1 shuffle").
    if (nparity === 1 && cols.length > 1 && Math.floor(offset / 2 ** 20) % 2 === 1) {
      const c0 = cols[0]!;
      const c1 = cols[1]!;
      cols[0] = { dev: c1.dev, off: c1.off, size: c0.size };
      cols[1] = { dev: c0.dev, off: c0.off, size: c1.size };
    }
    const out = new Uint8Array(s * unit);
    let pos = 0;
    for (let c = nparity; c < cols.length; c++) {
      const col = cols[c]!;
      if (col.size === 0) continue;
      const child = v.children[col.dev]!;
      const cands: Candidate[] = [];
      this.candidates(child, col.off, col.size, metadata, cands, depth + 1);
      if (cands.length === 0) throw new UnsupportedError(`zfs raidz: child ${col.dev} (${child.type}) is not in the image set; parity reconstruction`);
      out.set(await cands[0]!.read(), pos);
      pos += col.size;
    }
    return out.subarray(0, size);
  }

  private dvaCandidates(dva: Dva, size: number, metadata: boolean): Candidate[] {
    const top = this.tops.get(dva.vdev);
    const out: Candidate[] = [];
    if (!top) return out;
    this.candidates(top, dva.offset, size, metadata, out);
    return out;
  }

  /** Verifies `data` (psize bytes) against the block pointer's checksum. */
  verify(bp: BlockPtr, data: Uint8Array): boolean {
    let got: Cksum;
    switch (bp.checksum) {
      case 2: // off
      case 10: // noparity
        return true;
      case 6: // fletcher2
      case 5: // zilog
        got = fletcher2(data, bp.le);
        break;
      case 7: // fletcher4
      case 9: // zilog2
        got = fletcher4(data, bp.le);
        break;
      case 8: // sha256
      case 3: // label (only in embedded checksums)
      case 4:
        got = sha256Words(data);
        break;
      case 11:
        throw new UnsupportedError('zfs checksum sha512');
      case 12:
        throw new UnsupportedError('zfs checksum skein');
      case 13:
        throw new UnsupportedError('zfs checksum edonr');
      case 14:
        throw new UnsupportedError('zfs checksum blake3');
      default:
        throw new CorruptError('zfs.blkptr', `checksum type ${bp.checksum}`, bp.at);
    }
    return got.every((w, i) => w === bp.cksum[i]);
  }

  /** Decompresses a block's physical bytes to exactly its logical size (≤ 16 MiB). */
  decompress(bp: BlockPtr, raw: Uint8Array): Uint8Array {
    const lsize = bp.lsize;
    if (lsize > MAX_BLOCK) throw new CorruptError('zfs.blkptr', `logical size ${lsize} exceeds 16 MiB`, bp.at);
    const pad = (b: Uint8Array): Uint8Array => {
      if (b.length === lsize) return b;
      const out = new Uint8Array(lsize);
      out.set(b.subarray(0, lsize));
      return out;
    };
    const c = bp.compress;
    if (c === 2 || c === 0 || (bp.psize === lsize && !bp.embedded && c !== 4)) return pad(raw);
    if (c === 1 || c === 3) return lzjbDecompress(raw, lsize);
    if (c === 4) return new Uint8Array(lsize);
    if (c >= 5 && c <= 13) {
      const zlib = this.ctx.codecs.zlib;
      if (!zlib) throw new UnsupportedError('zfs gzip compression (no zlib codec)');
      return pad(zlib(raw, lsize));
    }
    if (c === 14) return zleDecompress(raw, lsize);
    if (c === 15) {
      const n = u32be(raw, 0, 'zfs.lz4');
      if (n > raw.length - 4) throw new CorruptError('zfs.lz4', `compressed length ${n} exceeds the ${raw.length}-byte block`, bp.at);
      return pad(lz4BlockDecode(raw.subarray(4, 4 + n), lsize));
    }
    if (c === 16) {
      const zstd = this.ctx.codecs.zstd;
      if (!zstd) throw new UnsupportedError('zfs zstd compression (no zstd codec)');
      const n = u32be(raw, 0, 'zfs.zstd');
      if (n > raw.length - 8) throw new CorruptError('zfs.zstd', `compressed length ${n} exceeds the ${raw.length}-byte block`, bp.at);
      return pad(zstd(raw.subarray(8, 8 + n), lsize));
    }
    throw new UnsupportedError(`zfs compression ${c}`);
  }

  /** Physical bytes of a gang block: its header's children, concatenated (each verified). */
  private async readGang(bp: BlockPtr, dva: Dva, metadata: boolean, depth: number): Promise<Uint8Array> {
    if (depth > 4) throw new CorruptError('zfs.gang', 'gang blocks nested too deep', bp.at);
    let lastErr: unknown = null;
    for (const cand of this.dvaCandidates(dva, GANG_SIZE, true)) {
      let hdr: Uint8Array;
      try {
        hdr = await cand.read();
      } catch (e) {
        if (!isTsgrubError(e) || e.code === 'LimitExceeded') throw e;
        lastErr = e;
        continue;
      }
      // Gang header checksum: embedded SHA-256, verifier = (vdev, offset, birth, 0).
      const le = verifyEmbedded(hdr, [BigInt(dva.vdev), BigInt(dva.offset), bp.birth, 0n]);
      if (le === null) {
        lastErr = new CorruptError('zfs.gang', 'gang header checksum mismatch', bp.at);
        continue;
      }
      const out = new Uint8Array(bp.psize);
      let pos = 0;
      for (let i = 0; i < 3 && pos < bp.psize; i++) {
        const child = decodeBlkptr(hdr, i * BLKPTR_SIZE, le);
        if (child.hole) continue;
        const data = await this.readPhysical(child, metadata, depth + 1);
        const n = Math.min(data.length, bp.psize - pos);
        out.set(data.subarray(0, n), pos);
        pos += n;
      }
      if (pos !== bp.psize) {
        lastErr = new CorruptError('zfs.gang', `gang members hold ${pos} of ${bp.psize} bytes`, bp.at);
        continue;
      }
      return out;
    }
    throw lastErr ?? new CorruptError('zfs.gang', 'gang header unreadable', bp.at);
  }

  /** The verified physical (still compressed) bytes of a block, trying every copy. */
  async readPhysical(bp: BlockPtr, metadata: boolean, depth = 0): Promise<Uint8Array> {
    if (bp.encrypted) throw new UnsupportedError('zfs encrypted dataset (native encryption)');
    if (bp.psize > MAX_BLOCK) throw new CorruptError('zfs.blkptr', `physical size ${bp.psize} exceeds 16 MiB`, bp.at);
    let lastErr: unknown = null;
    let tried = 0;
    for (const dva of bp.dvas) {
      if (dva.gang) {
        tried++;
        try {
          const data = await this.readGang(bp, dva, metadata, depth);
          if (this.verify(bp, data)) return data;
          lastErr = new CorruptError('zfs.checksum', `gang block checksum mismatch (type ${bp.type}, level ${bp.level})`, bp.at);
        } catch (e) {
          if (!isTsgrubError(e) || e.code === 'LimitExceeded' || e.code === 'Unsupported') throw e;
          lastErr = e;
        }
        continue;
      }
      for (const cand of this.dvaCandidates(dva, bp.psize, metadata)) {
        tried++;
        try {
          const data = await cand.read();
          if (this.verify(bp, data)) return data;
          lastErr = new CorruptError('zfs.checksum', `checksum mismatch at vdev ${dva.vdev} offset ${dva.offset} (type ${bp.type}, level ${bp.level})`, bp.at);
        } catch (e) {
          if (!isTsgrubError(e) || e.code === 'LimitExceeded' || e.code === 'Unsupported') throw e;
          lastErr = e;
        }
      }
    }
    if (tried === 0) throw new CorruptError('zfs.dva', `no readable copy: vdev(s) ${bp.dvas.map((d) => d.vdev).join(',')} not present`, bp.at);
    throw lastErr;
  }

  /** The logical bytes of a block (lsize), verified. Metadata blocks are cached. */
  async readBlock(bp: BlockPtr, metadata = true): Promise<Uint8Array> {
    this.ctx.budget.check();
    if (bp.lsize > MAX_BLOCK) throw new CorruptError('zfs.blkptr', `logical size ${bp.lsize} exceeds 16 MiB`, bp.at);
    if (bp.embedded) return this.decompress(bp, bp.payload ?? new Uint8Array(0));
    if (bp.hole) return new Uint8Array(bp.lsize);
    const d0 = bp.dvas[0]!;
    const key = `${d0.vdev}:${d0.offset}:${bp.birth}:${bp.lsize}`;
    if (metadata) {
      const hit = this.blockCache.get(key);
      if (hit) {
        this.blockCache.delete(key);
        this.blockCache.set(key, hit);
        return hit;
      }
    }
    const data = this.decompress(bp, await this.readPhysical(bp, metadata));
    if (metadata) {
      this.blockCache.set(key, data);
      this.blockCacheBytes += data.length;
      const max = Math.max(1 << 20, Math.floor(this.ctx.limits.cacheBytes / 2));
      while (this.blockCacheBytes > max && this.blockCache.size > 1) {
        const [k, v] = this.blockCache.entries().next().value as [string, Uint8Array];
        this.blockCache.delete(k);
        this.blockCacheBytes -= v.length;
      }
    }
    return data;
  }

  /**
   * Data blocks in one go: consecutive blocks stored back to back on one plain device are fetched with
   * a single source read, then each is verified and decompressed; any that fails is re-read alone
   * through `readBlock` (which tries the other copies).
   */
  async readDataBlocks(bps: readonly BlockPtr[]): Promise<Uint8Array[]> {
    const out: Uint8Array[] = new Array(bps.length);
    let i = 0;
    while (i < bps.length) {
      const bp = bps[i]!;
      const leaf = this.directLeaf(bp);
      if (!leaf) {
        out[i] = await this.readBlock(bp, false);
        i++;
        continue;
      }
      let j = i + 1;
      let end = bp.dvas[0]!.offset + bp.psize;
      let total = bp.psize;
      while (j < bps.length) {
        const n = bps[j]!;
        const l2 = this.directLeaf(n);
        if (l2 !== leaf || n.dvas[0]!.offset !== end || total + n.psize > 4 * 1024 * 1024) break;
        end += n.psize;
        total += n.psize;
        j++;
      }
      if (total > this.ctx.limits.allocBytes) throw new LimitExceededError('allocBytes', `data read of ${total} bytes`, this.ctx.limits.allocBytes);
      const start = bp.dvas[0]!.offset;
      let span: Uint8Array | null = null;
      try {
        span = await leaf.raw.read(VDEV_START + start, total);
      } catch (e) {
        if (!isTsgrubError(e) || e.code === 'LimitExceeded') throw e;
      }
      for (let k = i; k < j; k++) {
        const b = bps[k]!;
        const o = b.dvas[0]!.offset - start;
        const raw = span?.subarray(o, o + b.psize);
        out[k] = raw && this.verify(b, raw) ? this.decompress(b, raw) : await this.readBlock(b, false);
      }
      i = j;
    }
    return out;
  }

  /** The leaf a block's first copy lives on when it is a plain (non-gang) block on a disk/file top vdev. */
  private directLeaf(bp: BlockPtr): Leaf | null {
    if (bp.embedded || bp.hole || bp.encrypted) return null;
    const d = bp.dvas[0]!;
    if (d.gang) return null;
    const top = this.tops.get(d.vdev);
    if (!top) return null;
    let v: VdevNode | undefined = top;
    if (v.type === 'mirror') v = v.children.find((c) => (c.type === 'disk' || c.type === 'file') && this.leaves.has(c.guid));
    if (!v || (v.type !== 'disk' && v.type !== 'file')) return null;
    return this.leaves.get(v.guid) ?? null;
  }
}
