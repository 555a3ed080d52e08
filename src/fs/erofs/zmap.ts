/**
 * Compressed files: the logical-cluster ("lcluster") map of EROFS_INODE_COMPRESSED_FULL (8-byte
 * z_erofs_lcluster_index entries) and EROFS_INODE_COMPRESSED_COMPACT (2-byte and 4-byte packed
 * indexes), as the kernel's fs/erofs/zmap.c and erofs-utils lib/zmap.c (1.5) read them. Every
 * lcluster is HEAD (starts an extent at clusterofs), PLAIN (an uncompressed extent) or NONHEAD
 * (delta[0] back to its head, delta[1] forward to the next head). `mapExtent(la)` finds the extent
 * holding `la`: its logical start and length, its physical pcluster, and whether it is inline
 * (ztailpacking) or stored plain. Every walk is bounded: lookback strictly decreases the lcluster
 * number, lookahead strictly increases it, and both stay in [0, totalidx).
 */
import { CorruptError, UnsupportedError } from '../../errors.ts';
import { bound, u16le, u32le, u8 } from '../../io/bytes.ts';
import type { ByteSource } from '../../io/source.ts';
import { COMPRESSED_FULL, type ErNode } from './inode.ts';
import type { Superblock } from './superblock.ts';

const W = 'erofs.Zmap';
export const ADVISE_COMPACTED_2B = 0x1;
export const ADVISE_BIG_PCLUSTER_1 = 0x2;
export const ADVISE_BIG_PCLUSTER_2 = 0x4;
export const ADVISE_INLINE_PCLUSTER = 0x8;
const ADVISE_UNSUPPORTED: readonly [number, string][] = [
  [0x10, 'interlaced-pcluster'],
  [0x20, 'fragment-pcluster'],
];
const TYPE_PLAIN = 0;
const TYPE_HEAD = 1;
const TYPE_NONHEAD = 2;
/** delta[0] of the first NONHEAD lcluster of a big pcluster holds its block count (Z_EROFS_VLE_DI_D0_CBLKCNT). */
const D0_CBLKCNT = 0x800;

interface Recorder {
  lcn: number;
  type: number;
  headtype: number;
  clusterofs: number;
  delta0: number;
  delta1: number;
  pblk: number;
  compressedblks: number;
  nextpackoff: number;
}

export interface ZExtent {
  /** Logical start and length (decompressed). */
  readonly la: number;
  readonly llen: number;
  /** Byte offset and length of the stored (compressed or plain) data. */
  readonly pa: number;
  readonly plen: number;
  /** Stored uncompressed (PLAIN head): the bytes are the data. */
  readonly plain: boolean;
  /** Compression algorithm of HEAD extents (0 = lz4, 1 = lzma). */
  readonly algorithm: number;
}

export class ZMap {
  readonly advise: number;
  readonly algorithm: number;
  readonly lclusterBits: number;
  readonly totalIdx: number;
  private readonly base: number;
  private readonly compact: boolean;
  private idataSize = 0;
  private idataOff = -1;
  private tailHeadLcn = -1;

  private constructor(
    private readonly meta: ByteSource,
    private readonly sb: Superblock,
    private readonly inode: ErNode,
    header: Uint8Array,
    base: number,
  ) {
    // z_erofs_map_header: h_reserved1 (u16), h_idata_size (u16), h_advise (u16), h_algorithmtype (u8), h_clusterbits (u8)
    const h_idata_size = u16le(header, 2, W);
    const h_advise = u16le(header, 4, W);
    const h_algorithmtype = u8(header, 6, W);
    const h_clusterbits = u8(header, 7, W);
    if (h_clusterbits & 0x80) throw new UnsupportedError('erofs', ['fragment-inode']);
    for (const [bit, name] of ADVISE_UNSUPPORTED) if (h_advise & bit) throw new UnsupportedError('erofs', [name]);
    this.advise = h_advise;
    this.algorithm = h_algorithmtype & 15;
    if (this.algorithm > 1) throw new UnsupportedError('erofs', [`compression-${this.algorithm}`]);
    this.lclusterBits = sb.blkszBits + (h_clusterbits & 7);
    this.base = base;
    this.compact = inode.layout !== COMPRESSED_FULL;
    this.idataSize = h_idata_size;
    this.totalIdx = Math.ceil(inode.size / 2 ** this.lclusterBits);
    if (this.compact) {
      if (this.lclusterBits !== 12) throw new UnsupportedError('erofs', [`compact-lclusterbits-${this.lclusterBits}`]);
      if (!(h_advise & ADVISE_BIG_PCLUSTER_1) !== !(h_advise & ADVISE_BIG_PCLUSTER_2)) {
        throw new CorruptError(`${W}.h_advise`, `big pcluster head1/head2 disagree in inode ${inode.nid}`, base);
      }
    }
  }

  static async open(meta: ByteSource, sb: Superblock, inode: ErNode): Promise<ZMap> {
    const base = Math.ceil((inode.loc + inode.inodeSize + inode.xattrSize) / 8) * 8;
    if (base + 8 > meta.size) throw new CorruptError(`${W}.header`, `map header of inode ${inode.nid} past the image`, base);
    const z = new ZMap(meta, sb, inode, await meta.read(base, 8), base);
    if (z.advise & ADVISE_INLINE_PCLUSTER && inode.size > 0) {
      // Find the tail extent's head and where its inline data sits (z_erofs_fill_inode_lazy).
      const ext = await z.map(inode.size - 1, true);
      if (ext.plen === 0 || (ext.pa % sb.blockSize) + ext.plen > sb.blockSize) {
        throw new CorruptError(`${W}.h_idata_size`, `inline pcluster of ${ext.plen} bytes at ${ext.pa} crosses its block (inode ${inode.nid})`, base);
      }
    }
    return z;
  }

  private async loadCluster(m: Recorder, lcn: number, lookahead: boolean): Promise<void> {
    bound(lcn, 0, this.totalIdx - 1, `${W}.lcn`);
    if (this.compact) return this.loadCompact(m, lcn, lookahead);
    // Full indexes start 8 bytes after the map header (Z_EROFS_FULL_INDEX_ALIGN).
    const pos = this.base + 16 + lcn * 8;
    if (pos + 8 > this.meta.size) throw new CorruptError(`${W}.index`, `lcluster ${lcn} index past the image`, pos);
    const di = await this.meta.read(pos, 8);
    m.nextpackoff = pos + 8;
    m.lcn = lcn;
    const advise = u16le(di, 0, W);
    const type = advise & 3;
    if (type === TYPE_NONHEAD) {
      m.clusterofs = 2 ** this.lclusterBits;
      m.delta0 = u16le(di, 4, W);
      if (m.delta0 & D0_CBLKCNT) {
        if (!(this.advise & ADVISE_BIG_PCLUSTER_1)) throw new CorruptError(`${W}.delta`, `CBLKCNT without big pclusters at lcluster ${lcn}`, pos);
        m.compressedblks = m.delta0 & ~D0_CBLKCNT;
        m.delta0 = 1;
      }
      m.delta1 = u16le(di, 6, W);
    } else if (type === TYPE_PLAIN || type === TYPE_HEAD) {
      m.clusterofs = u16le(di, 2, W);
      m.pblk = u32le(di, 4, W);
    } else {
      throw new UnsupportedError('erofs', [`lcluster-type-${type}`]);
    }
    m.type = type;
  }

  private async loadCompact(m: Recorder, lcnIn: number, lookahead: boolean): Promise<void> {
    let lcn = lcnIn;
    m.lcn = lcn;
    const ebase = this.base + 8;
    // 4-byte entries up to 32-byte alignment, then 2-byte packs of 16, then 4-byte entries.
    let initial4b = Math.floor((32 - (ebase % 32)) / 4);
    if (initial4b === 8) initial4b = 0;
    const compacted2b = this.advise & ADVISE_COMPACTED_2B && initial4b < this.totalIdx ? Math.floor((this.totalIdx - initial4b) / 16) * 16 : 0;
    let pos = ebase;
    let shift: number;
    if (lcn < initial4b) shift = 2;
    else {
      pos += initial4b * 4;
      lcn -= initial4b;
      if (lcn < compacted2b) shift = 1;
      else {
        pos += compacted2b * 2;
        lcn -= compacted2b;
        shift = 2;
      }
    }
    pos += lcn * 2 ** shift;
    const vcnt = shift === 2 ? 2 : 16;
    const packSize = vcnt * 2 ** shift;
    const packStart = Math.floor(pos / packSize) * packSize;
    if (packStart + packSize > this.meta.size) throw new CorruptError(`${W}.index`, `lcluster ${lcnIn} pack past the image`, packStart);
    const pack = await this.meta.read(packStart, packSize);
    m.nextpackoff = packStart + packSize;
    const big = (this.advise & ADVISE_BIG_PCLUSTER_1) !== 0;
    const encodebits = ((packSize - 4) * 8) / vcnt;
    const lomask = 2 ** this.lclusterBits - 1;
    const decode = (i: number): { lo: number; type: number } => {
      const bitpos = encodebits * i;
      const v = u32le(pack, Math.floor(bitpos / 8), W) >>> (bitpos & 7);
      return { lo: v & lomask, type: (v >>> this.lclusterBits) & 3 };
    };
    let i = (pos - packStart) / 2 ** shift;
    let { lo, type } = decode(i);
    m.type = type;
    if (type === TYPE_NONHEAD) {
      m.clusterofs = 2 ** this.lclusterBits;
      if (lookahead) {
        // get_compacted_la_distance: NONHEADs to the end of the pack, plus the last one's stored delta[1].
        let d1 = 0;
        let j = i;
        let t: { lo: number; type: number } = { lo, type };
        let ended = false;
        do {
          t = decode(j);
          if (t.type !== TYPE_NONHEAD) {
            ended = true;
            break;
          }
          d1++;
        } while (++j < vcnt);
        if (!ended && !(t.lo & D0_CBLKCNT)) d1 += t.lo - 1;
        m.delta1 = d1;
      }
      if (lo & D0_CBLKCNT) {
        if (!big) throw new CorruptError(`${W}.delta`, `CBLKCNT without big pclusters at lcluster ${lcnIn}`, pos);
        m.compressedblks = lo & ~D0_CBLKCNT;
        m.delta0 = 1;
        return;
      }
      if (i + 1 !== vcnt) {
        m.delta0 = lo;
        return;
      }
      // The last lcluster of a pack stores delta[1]; delta[0] comes from the one before it.
      const prev = decode(i - 1);
      let plo = prev.lo;
      if (prev.type !== TYPE_NONHEAD) plo = 0;
      else if (plo & D0_CBLKCNT) plo = 1;
      m.delta0 = plo + 1;
      return;
    }
    if (type !== TYPE_PLAIN && type !== TYPE_HEAD) throw new UnsupportedError('erofs', [`lcluster-type-${type}`]);
    m.clusterofs = lo;
    m.delta0 = 0;
    // pblk: the pack's trailing base address plus the blocks of the pclusters before this one.
    let nblk: number;
    if (!big) {
      nblk = 1;
      while (i > 0) {
        --i;
        const d = decode(i);
        if (d.type === TYPE_NONHEAD) i -= d.lo;
        if (i >= 0) ++nblk;
      }
    } else {
      nblk = 0;
      while (i > 0) {
        --i;
        const d = decode(i);
        if (d.type === TYPE_NONHEAD) {
          if (d.lo & D0_CBLKCNT) {
            --i;
            nblk += d.lo & ~D0_CBLKCNT;
            continue;
          }
          if (d.lo === 1) throw new CorruptError(`${W}.delta`, `bad delta in pack of lcluster ${lcnIn}`, packStart);
          i -= d.lo - 2;
          continue;
        }
        ++nblk;
      }
    }
    m.pblk = u32le(pack, packSize - 4, W) + nblk;
  }

  /** Walks back from `m.lcn` by `distance` to the extent's head (iterative: each step goes back ≥ 1). */
  private async lookback(m: Recorder, distance: number): Promise<number> {
    let d = distance;
    for (;;) {
      if (d <= 0 || m.lcn < d) throw new CorruptError(`${W}.delta`, `bogus lookback distance ${d} at lcluster ${m.lcn} of inode ${this.inode.nid}`);
      const lcn = m.lcn - d;
      await this.loadCluster(m, lcn, false);
      if (m.type === TYPE_NONHEAD) {
        d = m.delta0;
        continue;
      }
      m.headtype = m.type;
      return lcn * 2 ** this.lclusterBits + m.clusterofs;
    }
  }

  private async compressedLen(m: Recorder): Promise<number> {
    const bs = this.sb.blockSize;
    if (m.headtype === TYPE_PLAIN || !(this.advise & ADVISE_BIG_PCLUSTER_1)) return 2 ** this.lclusterBits;
    if (m.compressedblks) return m.compressedblks * bs;
    const lcn = m.lcn + 1;
    if (lcn >= this.totalIdx) return 2 ** this.lclusterBits;
    await this.loadCluster(m, lcn, false);
    if (m.type === TYPE_PLAIN || m.type === TYPE_HEAD) return 2 ** this.lclusterBits;
    if (m.delta0 !== 1 || !m.compressedblks) throw new CorruptError(`${W}.delta`, `missing CBLKCNT at lcluster ${lcn} of inode ${this.inode.nid}`);
    return m.compressedblks * bs;
  }

  /** The full decompressed length of the extent whose head is `headLcn` and which starts at `la`. */
  private async decompressedLen(headLcn: number, la: number): Promise<number> {
    const m = newRecorder();
    let lcn = headLcn;
    const bits = this.lclusterBits;
    for (;;) {
      if (lcn * 2 ** bits >= this.inode.size) return this.inode.size - la;
      await this.loadCluster(m, lcn, true);
      if (m.type === TYPE_NONHEAD) {
        if (m.delta1 === 0) break;
      } else {
        if (lcn !== headLcn) break;
        m.delta1 = 1;
      }
      lcn += m.delta1; // ≥ 1: strictly forward
    }
    return lcn * 2 ** bits + m.clusterofs - la;
  }

  async mapExtent(la: number): Promise<ZExtent> {
    return this.map(la, false);
  }

  private async map(ofs: number, findTail: boolean): Promise<ZExtent> {
    const bits = this.lclusterBits;
    const m = newRecorder();
    const initialLcn = Math.floor(ofs / 2 ** bits);
    const endoff = ofs % 2 ** bits;
    await this.loadCluster(m, initialLcn, false);
    if (findTail && this.advise & ADVISE_INLINE_PCLUSTER) this.idataOff = m.nextpackoff;
    let mla: number;
    if ((m.type === TYPE_PLAIN || m.type === TYPE_HEAD) && endoff >= m.clusterofs) {
      m.headtype = m.type;
      mla = m.lcn * 2 ** bits + m.clusterofs;
    } else if (m.type === TYPE_PLAIN || m.type === TYPE_HEAD) {
      if (m.lcn === 0) throw new CorruptError(`${W}.clusterofs`, `lcluster 0 of inode ${this.inode.nid} starts after its own offset`);
      mla = await this.lookback(m, 1);
    } else {
      mla = await this.lookback(m, m.delta0);
    }
    const headLcn = m.lcn;
    if (findTail) this.tailHeadLcn = headLcn;
    let pa: number;
    let plen: number;
    if (this.advise & ADVISE_INLINE_PCLUSTER && headLcn === this.tailHeadLcn) {
      pa = this.idataOff;
      plen = this.idataSize;
    } else {
      pa = m.pblk * this.sb.blockSize;
      plen = await this.compressedLen(m);
    }
    if (!Number.isSafeInteger(pa) || pa + plen > this.meta.size) {
      throw new CorruptError(`${W}.blkaddr`, `pcluster ${pa}+${plen} of inode ${this.inode.nid} lies outside the image`);
    }
    const llen = await this.decompressedLen(headLcn, mla);
    if (mla > ofs || llen <= 0 || mla + llen <= ofs) {
      throw new CorruptError(`${W}.extent`, `extent ${mla}+${llen} does not hold offset ${ofs} of inode ${this.inode.nid}`);
    }
    return { la: mla, llen, pa, plen, plain: m.headtype === TYPE_PLAIN, algorithm: this.algorithm };
  }
}

function newRecorder(): Recorder {
  return { lcn: 0, type: 0, headtype: 0, clusterofs: 0, delta0: 0, delta1: 0, pblk: 0, compressedblks: 0, nextpackoff: 0 };
}
