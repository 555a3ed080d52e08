/**
 * qcow2 versions 2 and 3 (QEMU docs/interop/qcow2.txt): header and extensions, two-level L1/L2
 * cluster map (standard and extended L2 entries with subclusters), zero and unallocated clusters,
 * deflate/zstd compressed clusters, backing files. Refused: encryption, external data files,
 * unknown incompatible features. Refcounts and snapshots are not needed to read the active image.
 */
import { CorruptError, LimitExceededError, UnsupportedError } from '../errors.ts';
import { BlockCache, type ByteSource } from '../io/source.ts';
import { bound, cString, toSafe, u32be, u32le, u64be, u8 } from '../io/bytes.ts';
import type { Context } from '../limits.ts';
import { openBacking } from './backing.ts';
import { type BlockMap, MappedSource, type Run, TableCache } from './mapped.ts';
import type { ContainerFormat, ContainerOptions } from './types.ts';

const MAGIC = 0x514649fb; // "QFI\xfb"
const EXT_END = 0;
const EXT_BACKING_FORMAT = 0xe2792aca;
const EXT_FEATURE_NAMES = 0x6803f857;
const EXT_EXTERNAL_DATA = 0x44415441;
const EXT_CRYPTO = 0x0537be77;
/** qemu's QCOW_MAX_L1_SIZE (32 MiB of L1 entries). */
const MAX_L1_BYTES = 32 << 20;

/** Incompatible feature bits (spec "incompatible_features"). */
const INCOMPAT_NAMES = ['dirty', 'corrupt', 'external data file', 'compression type', 'extended L2 entries'];
const INCOMPAT_UNDERSTOOD = [0, 1, 3, 4];

/** Bits 9..55 of an L1/L2 entry (host cluster offset), extracted exactly with bigint. */
const OFFSET_MASK = 0x00fffffffffffe00n;

export interface Qcow2Header {
  readonly version: number;
  readonly backingFileOffset: number;
  readonly backingFileSize: number;
  readonly clusterBits: number;
  readonly size: number;
  readonly cryptMethod: number;
  readonly l1Size: number;
  readonly l1TableOffset: number;
  readonly incompatibleFeatures: bigint;
  readonly headerLength: number;
  readonly compressionType: number;
}

/** Decodes QCowHeader (all fields big-endian) and validates it against the file size. */
export function decodeQcow2Header(b: Uint8Array, fileSize: number): Qcow2Header {
  const W = 'qcow2.Header';
  if (u32be(b, 0, W) !== MAGIC) throw new CorruptError(W, 'bad magic', 0);
  const version = u32be(b, 4, W);
  if (version !== 2 && version !== 3) throw new UnsupportedError('qcow2', [`version ${version}`]);
  const backing_file_offset = toSafe(u64be(b, 8, W), W);
  const backing_file_size = u32be(b, 16, W);
  const cluster_bits = bound(u32be(b, 20, W), 9, 21, 'qcow2.ClusterBits', 20);
  const size = toSafe(u64be(b, 24, W), 'qcow2.Size');
  const crypt_method = u32be(b, 32, W);
  const l1_size = u32be(b, 36, W);
  const l1_table_offset = toSafe(u64be(b, 40, W), 'qcow2.L1TableOffset');
  let incompatible = 0n;
  let header_length = 72;
  let compression_type = 0;
  if (version === 3) {
    incompatible = u64be(b, 72, W);
    header_length = bound(u32be(b, 100, W), 104, 2 ** cluster_bits, 'qcow2.HeaderLength', 100);
    if (header_length % 8 !== 0 && header_length !== 104) throw new CorruptError('qcow2.HeaderLength', `${header_length} is not a multiple of 8`, 100);
    if (header_length > 104) compression_type = u8(b, 104, W);
  }
  const clusterSize = 2 ** cluster_bits;
  if (backing_file_offset !== 0) {
    bound(backing_file_size, 1, 1023, 'qcow2.BackingFileSize', 16);
    if (backing_file_offset + backing_file_size > Math.min(clusterSize, fileSize)) {
      throw new CorruptError('qcow2.BackingFileOffset', `name at ${backing_file_offset}+${backing_file_size} is outside the header cluster`, 8);
    }
  }
  // The L1 table must map the whole virtual disk (spec: l1_size) and lie aligned inside the file.
  const l2Entries = clusterSize / ((incompatible & 16n) !== 0n ? 16 : 8);
  const needed = Math.ceil(size / (clusterSize * l2Entries));
  if (l1_size < needed) throw new CorruptError('qcow2.L1Size', `${l1_size} entries cannot map ${size} bytes (need ${needed})`, 36);
  if (l1_size * 8 > MAX_L1_BYTES) throw new CorruptError('qcow2.L1Size', `${l1_size} entries exceed ${MAX_L1_BYTES} bytes`, 36);
  if (l1_size > 0) {
    if (l1_table_offset % clusterSize !== 0) throw new CorruptError('qcow2.L1TableOffset', `${l1_table_offset} is not cluster aligned`, 40);
    if (l1_table_offset === 0 || l1_table_offset + l1_size * 8 > fileSize) {
      throw new CorruptError('qcow2.L1TableOffset', `L1 table ${l1_table_offset}+${l1_size * 8} lies outside the ${fileSize}-byte file`, 40);
    }
  }
  return {
    version,
    backingFileOffset: backing_file_offset,
    backingFileSize: backing_file_size,
    clusterBits: cluster_bits,
    size,
    cryptMethod: crypt_method,
    l1Size: l1_size,
    l1TableOffset: l1_table_offset,
    incompatibleFeatures: incompatible,
    headerLength: header_length,
    compressionType: compression_type,
  };
}

interface Extensions {
  backingFormat: string | null;
  featureNames: Map<number, string>;
  externalData: boolean;
  crypto: boolean;
}

/** Walks the header extensions (spec "Header extensions"): type, length, data padded to 8 bytes. */
function decodeExtensions(b: Uint8Array, start: number, end: number): Extensions {
  const W = 'qcow2.HeaderExtension';
  const ext: Extensions = { backingFormat: null, featureNames: new Map(), externalData: false, crypto: false };
  let off = start;
  for (let n = 0; off + 8 <= end; n++) {
    bound(n, 0, 1024, 'qcow2.HeaderExtensionCount', off);
    const type = u32be(b, off, W);
    const len = u32be(b, off + 4, W);
    if (type === EXT_END) break;
    const data = off + 8;
    bound(len, 0, end - data, 'qcow2.HeaderExtensionLength', off + 4);
    if (type === EXT_BACKING_FORMAT) ext.backingFormat = cString(b, data, len, W);
    else if (type === EXT_EXTERNAL_DATA) ext.externalData = true;
    else if (type === EXT_CRYPTO) ext.crypto = true;
    else if (type === EXT_FEATURE_NAMES) {
      for (let k = 0; k + 48 <= len; k += 48) {
        if (u8(b, data + k, W) === 0) ext.featureNames.set(u8(b, data + k + 1, W), cString(b, data + k + 2, 46, W));
      }
    }
    off = data + Math.ceil(len / 8) * 8; // progress: at least 8 bytes per extension
  }
  return ext;
}

class Qcow2Map implements BlockMap {
  private readonly clusterSize: number;
  private readonly l2Entries: number;
  private readonly entryBytes: number;
  private readonly subclusterSize: number;
  private readonly tables: TableCache;

  constructor(
    private readonly file: ByteSource,
    private readonly h: Qcow2Header,
    private readonly l1: Uint8Array,
    meta: ByteSource,
    private readonly ctx: Context,
    private readonly extendedL2: boolean,
  ) {
    this.clusterSize = 2 ** h.clusterBits;
    this.entryBytes = extendedL2 ? 16 : 8;
    this.l2Entries = this.clusterSize / this.entryBytes;
    this.subclusterSize = extendedL2 ? this.clusterSize / 32 : this.clusterSize;
    this.tables = new TableCache(meta, this.clusterSize, ctx);
  }

  async lookup(offset: number, maxLength: number): Promise<Run> {
    const cs = this.clusterSize;
    const cluster = Math.floor(offset / cs);
    const inCluster = offset - cluster * cs;
    const l1Index = Math.floor(cluster / this.l2Entries);
    const l2Index = cluster - l1Index * this.l2Entries;
    const l1e = u64be(this.l1, l1Index * 8, 'qcow2.L1Table');
    const l2Offset = Number(l1e & OFFSET_MASK);
    // An L1 entry without an L2 table: the whole L2 range is unallocated.
    const l2Span = this.l2Entries * cs;
    if (l2Offset === 0) return { kind: 'backing', length: Math.min(maxLength, l2Span - (offset % l2Span)) };
    if (l2Offset % cs !== 0 || l2Offset + cs > this.file.size) {
      throw new CorruptError('qcow2.L1Entry', `L2 table at ${l2Offset} is unaligned or outside the ${this.file.size}-byte file`, this.h.l1TableOffset + l1Index * 8);
    }
    this.ctx.budget.chargeNode();
    const l2 = await this.tables.get(l2Offset, cs);
    const run = this.decodeEntry(l2, l2Index, l2Offset, cluster, inCluster, maxLength);
    if (run.kind !== 'data') return run;
    // Merge following clusters of the same L2 table that are physically contiguous (one big read).
    let length = run.length;
    let next = l2Index + 1;
    while (length < maxLength && next < this.l2Entries && inCluster + length === (next - l2Index) * cs) {
      const r = this.decodeEntry(l2, next, l2Offset, cluster + (next - l2Index), 0, maxLength - length);
      if (r.kind !== 'data' || r.offset !== run.offset + length) break;
      length += r.length;
      if (r.length < cs) break;
      next++;
    }
    return { ...run, length };
  }

  private decodeEntry(l2: Uint8Array, index: number, l2Offset: number, cluster: number, inCluster: number, maxLength: number): Run {
    const cs = this.clusterSize;
    const at = index * this.entryBytes;
    const where = l2Offset + at;
    const e = u64be(l2, at, 'qcow2.L2Table');
    const clusterLeft = Math.min(maxLength, cs - inCluster);
    if ((e & (1n << 62n)) !== 0n) return this.compressed(e, where, cluster, inCluster, clusterLeft);
    const host = Number(e & OFFSET_MASK);
    if (host % cs !== 0) throw new CorruptError('qcow2.L2Entry', `data cluster at ${host} is not cluster aligned`, where);
    // Only the part that is read must exist: qemu leaves the file short of a last cluster whose
    // trailing subclusters are unallocated.
    const inFile = (run: Run): Run => {
      if (run.kind === 'data' && run.offset + run.length > this.file.size) {
        throw new CorruptError('qcow2.L2Entry', `data cluster at ${host} lies outside the ${this.file.size}-byte file`, where);
      }
      return run;
    };
    if (!this.extendedL2) {
      // Bit 0 (v3): the cluster reads as zeros whatever its offset (spec "Standard Cluster Descriptor").
      if (this.h.version === 3 && (e & 1n) !== 0n) return { kind: 'zero', length: clusterLeft };
      if (host === 0) return { kind: 'backing', length: clusterLeft };
      return inFile({ kind: 'data', source: this.file, offset: host + inCluster, length: clusterLeft });
    }
    // Extended L2: 32 allocation bits then 32 "reads as zero" bits, one per subcluster.
    const bitmap = u64be(l2, at + 8, 'qcow2.L2Bitmap');
    const alloc = Number(bitmap & 0xffffffffn);
    const zero = Number(bitmap >> 32n);
    const sc = this.subclusterSize;
    const first = Math.floor(inCluster / sc);
    const state = (i: number): number => {
      const bit = 2 ** i;
      const z = Math.floor(zero / bit) % 2 === 1;
      const a = Math.floor(alloc / bit) % 2 === 1;
      if (z && a) throw new CorruptError('qcow2.L2Bitmap', `subcluster ${i} is both allocated and zero`, where + 8);
      return z ? 1 : a ? 2 : 0;
    };
    const s = state(first);
    let end = (first + 1) * sc;
    for (let i = first + 1; i < 32 && end - inCluster < clusterLeft && state(i) === s; i++) end += sc;
    const length = Math.min(clusterLeft, end - inCluster);
    if (s === 1) return { kind: 'zero', length };
    if (s === 0) return { kind: 'backing', length };
    if (host === 0) throw new CorruptError('qcow2.L2Entry', 'allocated subcluster without a host cluster', where);
    return inFile({ kind: 'data', source: this.file, offset: host + inCluster, length });
  }

  /** Compressed cluster descriptor: x = 62 - (cluster_bits - 8) offset bits, then sector count − 1. */
  private compressed(e: bigint, where: number, cluster: number, inCluster: number, length: number): Run {
    const x = BigInt(62 - (this.h.clusterBits - 8));
    const host = Number(e & ((1n << x) - 1n));
    const sectors = Number((e & ((1n << 62n) - 1n)) >> x) + 1;
    const end = Math.min(this.file.size, (Math.floor(host / 512) + sectors) * 512);
    if (host <= 0 || host >= this.file.size || end <= host) {
      throw new CorruptError('qcow2.CompressedCluster', `compressed data at ${host} lies outside the ${this.file.size}-byte file`, where);
    }
    const cs = this.clusterSize;
    const type = this.h.compressionType;
    const codec = type === 0 ? this.ctx.codecs.deflate : type === 1 ? this.ctx.codecs.zstd : undefined;
    const load = async (): Promise<Uint8Array> => {
      if (!codec) throw new UnsupportedError('qcow2', [`compression type ${type} (no codec)`]);
      let input = await this.file.read(host, end - host);
      // The sector-rounded range runs into the next compressed cluster; zstd gets exactly one frame.
      if (type === 1) input = input.subarray(0, zstdFrameLength(input, where));
      this.ctx.budget.check();
      const out = codec(input, cs);
      if (out.length !== cs) throw new CorruptError('qcow2.CompressedCluster', `cluster ${cluster} decoded to ${out.length} of ${cs} bytes`, where);
      return out;
    };
    return { kind: 'decoded', key: `q${host}`, load, skip: inCluster, length };
  }
}

/**
 * Length of the zstd frame at the start of `b` (RFC 8878 §3.1.1): frame header, then blocks until
 * the one flagged last, then the optional checksum. Only sizes are read; the codec validates the rest.
 */
export function zstdFrameLength(b: Uint8Array, where: number): number {
  const W = 'qcow2.ZstdFrame';
  if (u32le(b, 0, W) !== 0xfd2fb528) throw new CorruptError(W, 'bad frame magic', where);
  const fhd = u8(b, 4, W);
  const fcsFlag = Math.floor(fhd / 64);
  const single = Math.floor(fhd / 32) % 2;
  const checksum = Math.floor(fhd / 4) % 2;
  const dictFlag = fhd % 4;
  let p = 5 + (single ? 0 : 1) + [0, 1, 2, 4][dictFlag]! + (fcsFlag === 0 ? single : 2 ** fcsFlag);
  for (let n = 0; ; n++) {
    bound(n, 0, b.length, W, where);
    const bh = u8(b, p, W) + u8(b, p + 1, W) * 256 + u8(b, p + 2, W) * 65536;
    const last = bh % 2;
    const type = Math.floor(bh / 2) % 4;
    const size = Math.floor(bh / 8);
    p += 3 + (type === 1 ? 1 : size); // an RLE block stores one byte; progress is at least 3 bytes
    if (last) break;
  }
  p += checksum * 4;
  if (p > b.length) throw new CorruptError(W, `frame of ${p} bytes runs past the ${b.length}-byte compressed cluster`, where);
  return p;
}

async function probe(src: ByteSource): Promise<boolean> {
  if (src.size < 72) return false;
  return u32be(await src.read(0, 4), 0) === MAGIC;
}

async function open(src: ByteSource, ctx: Context, opts: ContainerOptions): Promise<ByteSource> {
  const meta = new BlockCache(src, ctx.budget);
  const head = await meta.read(0, Math.min(src.size, 4096));
  const h = decodeQcow2Header(head, src.size);
  const clusterSize = 2 ** h.clusterBits;
  // Extensions live between the header and the end of the first cluster.
  const extEnd = Math.min(clusterSize, src.size);
  const extBytes = extEnd > head.length ? await meta.read(0, extEnd) : head;
  const ext = decodeExtensions(extBytes, h.headerLength, extEnd);
  if (h.cryptMethod !== 0 || ext.crypto) throw new UnsupportedError('qcow2', [`encryption (crypt_method ${h.cryptMethod})`]);
  const bad: string[] = [];
  for (let bit = 0n; bit < 64n; bit++) {
    if ((h.incompatibleFeatures & (1n << bit)) === 0n) continue;
    const n = Number(bit);
    if (INCOMPAT_UNDERSTOOD.includes(n)) continue;
    bad.push(INCOMPAT_NAMES[n] ?? ext.featureNames.get(n) ?? `incompatible bit ${n}`);
  }
  if (ext.externalData && !bad.includes('external data file')) bad.push('external data file');
  if (bad.length) throw new UnsupportedError('qcow2', bad);
  if ((h.incompatibleFeatures & 8n) === 0n && h.compressionType !== 0) {
    throw new CorruptError('qcow2.CompressionType', `type ${h.compressionType} without the compression-type feature bit`, 104);
  }
  if (h.compressionType > 1) throw new UnsupportedError('qcow2', [`compression type ${h.compressionType}`]);
  const extendedL2 = (h.incompatibleFeatures & 16n) !== 0n;
  if (extendedL2 && h.clusterBits < 14) throw new CorruptError('qcow2.ClusterBits', 'extended L2 entries need clusters of 16 KiB or more', 20);
  if (h.l1Size * 8 > ctx.limits.allocBytes) throw new LimitExceededError('allocBytes', `qcow2 L1 table of ${h.l1Size * 8} bytes`, ctx.limits.allocBytes);
  const l1 = h.l1Size > 0 ? await meta.read(h.l1TableOffset, h.l1Size * 8) : new Uint8Array(0);

  let backing: ByteSource | null = null;
  if (h.backingFileOffset !== 0) {
    const name = cString(extBytes, h.backingFileOffset, h.backingFileSize, 'qcow2.BackingFileName');
    backing = await openBacking('qcow2', name, ctx, opts, ext.backingFormat === 'raw');
  }
  const map = new Qcow2Map(src, h, l1, meta, ctx, extendedL2);
  return new MappedSource(h.size, map, backing, ctx, 'qcow2');
}

export const qcow2: ContainerFormat = Object.freeze({ id: 'qcow2' as const, probe, open });
