/**
 * VMware Virtual Disk Format 5.0 (VMDK): hosted sparse extents (KDMV header, grain directory and
 * grain tables, zeroed-grain GTEs), streamOptimized extents (footer header, compressed grains with
 * grain markers, zlib), and text descriptors naming FLAT/VMFS, SPARSE and ZERO extents in the same
 * folder. A delta disk's parent (parentFileNameHint) is opened under backing.ts's rules.
 */
import { CorruptError, LimitExceededError, UnsupportedError } from '../errors.ts';
import { bound, toSafe, u16le, u32le, u64le, u8 } from '../io/bytes.ts';
import { BlockCache, type ByteSource, SliceSource } from '../io/source.ts';
import type { Context } from '../limits.ts';
import { openBacking, resolveBackingFile } from './backing.ts';
import { type BlockMap, MappedSource, type Run, TableCache } from './mapped.ts';
import type { ContainerFormat, ContainerOptions } from './types.ts';

const SPARSE_MAGIC = 0x564d444b; // "KDMV"
const GD_AT_END = 0xffffffffffffffffn;
const FLAG_ZERO_GRAIN = 4;
const FLAG_COMPRESSED = 0x10000;
const FLAG_MARKERS = 0x20000;
const MARKER_FOOTER = 3;
const DESCRIPTOR_SIGNATURE = '# Disk DescriptorFile';
const MAX_DESCRIPTOR = 64 * 1024;
const MAX_EXTENTS = 1024;
const latin1 = new TextDecoder('latin1');

export interface SparseExtentHeader {
  readonly version: number;
  readonly flags: number;
  readonly capacity: number;
  readonly grainSize: number;
  readonly descriptorOffset: number;
  readonly descriptorSize: number;
  readonly numGTEsPerGT: number;
  readonly gdOffset: bigint;
  readonly compressAlgorithm: number;
}

/** SparseExtentHeader (VMDK spec, "Hosted Sparse Extent Header"), little-endian, packed. */
export function decodeSparseHeader(b: Uint8Array, at: number): SparseExtentHeader {
  const W = 'vmdk.SparseExtentHeader';
  if (u32le(b, 0, W) !== SPARSE_MAGIC) throw new CorruptError(W, 'bad magic', at);
  const version = u32le(b, 4, W);
  if (version < 1 || version > 3) throw new UnsupportedError('vmdk', [`sparse extent version ${version}`]);
  const flags = u32le(b, 8, W);
  const capacity = toSafe(u64le(b, 12, W), 'vmdk.Capacity');
  const grainSize = bound(toSafe(u64le(b, 20, W), 'vmdk.GrainSize'), 1, 65536, 'vmdk.GrainSize', at + 20);
  if (!Number.isInteger(Math.log2(grainSize))) throw new CorruptError('vmdk.GrainSize', `${grainSize} is not a power of two`, at + 20);
  return {
    version,
    flags,
    capacity: bound(capacity, 0, 2 ** 53 / 512 - 1, 'vmdk.Capacity', at + 12),
    grainSize,
    descriptorOffset: toSafe(u64le(b, 28, W), 'vmdk.DescriptorOffset'),
    descriptorSize: toSafe(u64le(b, 36, W), 'vmdk.DescriptorSize'),
    numGTEsPerGT: bound(u32le(b, 44, W), 1, 65536, 'vmdk.NumGTEsPerGT', at + 44),
    gdOffset: u64le(b, 56, W),
    compressAlgorithm: u16le(b, 77, W),
  };
}

/** Checks a newline-detection test bytes (spec: detects FTP text-mode corruption). */
function checkLineChars(b: Uint8Array, at: number, flags: number): void {
  if (flags % 2 === 0) return;
  if (u8(b, 73) !== 0x0a || u8(b, 74) !== 0x20 || u8(b, 75) !== 0x0d || u8(b, 76) !== 0x0a) {
    throw new CorruptError('vmdk.SparseExtentHeader', 'newline test bytes damaged (text-mode transfer?)', at + 73);
  }
}

class SparseExtentMap implements BlockMap {
  private readonly grainBytes: number;
  private readonly tables: TableCache;

  constructor(
    private readonly file: ByteSource,
    private readonly h: SparseExtentHeader,
    private readonly gd: Uint8Array,
    private readonly gdAt: number,
    meta: ByteSource,
    private readonly ctx: Context,
    private readonly keyPrefix: string,
  ) {
    this.grainBytes = h.grainSize * 512;
    this.tables = new TableCache(meta, h.numGTEsPerGT * 4, ctx);
  }

  async lookup(offset: number, maxLength: number): Promise<Run> {
    const gb = this.grainBytes;
    const grain = Math.floor(offset / gb);
    const inGrain = offset - grain * gb;
    const left = Math.min(maxLength, gb - inGrain);
    const n = this.h.numGTEsPerGT;
    const gdIndex = Math.floor(grain / n);
    const gtIndex = grain - gdIndex * n;
    const gde = u32le(this.gd, gdIndex * 4, 'vmdk.GrainDirectory');
    if (gde === 0) return { kind: 'backing', length: Math.min(maxLength, n * gb - (offset % (n * gb))) };
    const gtAt = gde * 512;
    if (gtAt + n * 4 > this.file.size) {
      throw new CorruptError('vmdk.GrainDirectoryEntry', `grain table at sector ${gde} lies outside the ${this.file.size}-byte file`, this.gdAt + gdIndex * 4);
    }
    this.ctx.budget.chargeNode();
    const gt = await this.tables.get(gtAt, n * 4);
    const run = this.entry(gt, gtIndex, gtAt, grain, inGrain, left);
    if (run.kind !== 'data') return run;
    let length = run.length;
    let next = gtIndex + 1;
    while (length < maxLength && next < n && inGrain + length === (next - gtIndex) * gb) {
      const r = this.entry(gt, next, gtAt, grain + next - gtIndex, 0, Math.min(gb, maxLength - length));
      if (r.kind !== 'data' || r.offset !== run.offset + length) break;
      length += r.length;
      next++;
    }
    return { ...run, length };
  }

  private entry(gt: Uint8Array, index: number, gtAt: number, grain: number, inGrain: number, length: number): Run {
    const gte = u32le(gt, index * 4, 'vmdk.GrainTable');
    const where = gtAt + index * 4;
    if (gte === 0) return { kind: 'backing', length };
    if (gte === 1 && (this.h.flags & FLAG_ZERO_GRAIN) !== 0) return { kind: 'zero', length };
    const at = gte * 512;
    if ((this.h.flags & FLAG_COMPRESSED) !== 0) {
      const load = () => this.inflate(at, grain, where);
      return { kind: 'decoded', key: `${this.keyPrefix}${at}`, load, skip: inGrain, length };
    }
    const need = Math.min(this.grainBytes, this.h.capacity * 512 - grain * this.grainBytes);
    if (at + need > this.file.size) {
      throw new CorruptError('vmdk.GrainTableEntry', `grain at sector ${gte} lies outside the ${this.file.size}-byte file`, where);
    }
    return { kind: 'data', source: this.file, offset: at + inGrain, length };
  }

  /** A compressed grain: marker {u64 lba, u32 size} then a zlib stream (streamOptimized). */
  private async inflate(at: number, grain: number, where: number): Promise<Uint8Array> {
    if (at + 12 > this.file.size) throw new CorruptError('vmdk.GrainMarker', `grain at ${at} lies outside the file`, where);
    const marker = await this.file.read(at, 12);
    const lba = u64le(marker, 0, 'vmdk.GrainMarker');
    const size = u32le(marker, 8, 'vmdk.GrainMarker');
    if (lba !== BigInt(grain * this.h.grainSize)) throw new CorruptError('vmdk.GrainMarker', `marker names sector ${lba}, expected ${grain * this.h.grainSize}`, at);
    if (size === 0 || at + 12 + size > this.file.size || size > this.grainBytes * 2 + 1024) {
      throw new CorruptError('vmdk.GrainMarker', `compressed size ${size} is out of range`, at + 8);
    }
    const codec = this.ctx.codecs.zlib;
    if (!codec) throw new UnsupportedError('vmdk', ['compressed grains (no zlib codec)']);
    const data = await this.file.read(at + 12, size);
    this.ctx.budget.check();
    const out = codec(data, this.grainBytes);
    if (out.length === this.grainBytes) return out;
    const full = new Uint8Array(this.grainBytes); // a short last grain: the rest reads as zeros
    full.set(out);
    return full;
  }
}

interface OpenedSparse {
  readonly map: SparseExtentMap;
  readonly size: number;
  readonly descriptor: Descriptor | null;
}

async function openSparseExtent(src: ByteSource, ctx: Context, keyPrefix: string): Promise<OpenedSparse> {
  const meta = new BlockCache(src, ctx.budget);
  if (src.size < 512) throw new CorruptError('vmdk.SparseExtentHeader', 'file shorter than one sector', 0);
  const first = await meta.read(0, 512);
  let h = decodeSparseHeader(first, 0);
  checkLineChars(first, 0, h.flags);
  if (h.gdOffset === GD_AT_END) {
    // streamOptimized: the real header is the footer, 1024 bytes before the end, after a footer marker.
    if (src.size < 1536) throw new CorruptError('vmdk.Footer', 'file too short for a footer', 0);
    const tail = await meta.read(src.size - 1536, 1536);
    if (u64le(tail, 0) !== 0n || u32le(tail, 8) !== 0 || u32le(tail, 12) !== MARKER_FOOTER) {
      throw new CorruptError('vmdk.FooterMarker', 'no footer marker before the footer', src.size - 1536);
    }
    h = decodeSparseHeader(tail.subarray(512, 1024), src.size - 1024);
    if (h.gdOffset === GD_AT_END) throw new CorruptError('vmdk.Footer', 'footer has no grain directory either', src.size - 1024);
  }
  if ((h.flags & FLAG_COMPRESSED) !== 0) {
    if (h.compressAlgorithm !== 1) throw new UnsupportedError('vmdk', [`compression algorithm ${h.compressAlgorithm}`]);
    if ((h.flags & FLAG_MARKERS) === 0) throw new UnsupportedError('vmdk', ['compressed grains without markers']);
  }
  const gdAt = toSafe(h.gdOffset, 'vmdk.GdOffset') * 512;
  const gdEntries = Math.ceil(h.capacity / (h.grainSize * h.numGTEsPerGT));
  if (gdEntries * 4 > ctx.limits.allocBytes) throw new LimitExceededError('allocBytes', `vmdk grain directory of ${gdEntries} entries`, ctx.limits.allocBytes);
  if (gdAt < 512 || gdAt + gdEntries * 4 > src.size) {
    throw new CorruptError('vmdk.GdOffset', `grain directory ${gdAt}+${gdEntries * 4} lies outside the ${src.size}-byte file`, 56);
  }
  const gd = await meta.read(gdAt, gdEntries * 4);
  let descriptor: Descriptor | null = null;
  if (h.descriptorOffset > 0 && h.descriptorSize > 0) {
    const at = h.descriptorOffset * 512;
    const len = Math.min(h.descriptorSize * 512, MAX_DESCRIPTOR);
    if (at + len > src.size) throw new CorruptError('vmdk.DescriptorOffset', `embedded descriptor ${at}+${len} outside the file`, 28);
    descriptor = parseDescriptor(await meta.read(at, len));
  }
  return { map: new SparseExtentMap(src, h, gd, gdAt, meta, ctx, keyPrefix), size: h.capacity * 512, descriptor };
}

export interface DescriptorExtent {
  readonly access: string;
  readonly sectors: number;
  readonly type: string;
  readonly file: string | null;
  readonly offset: number;
}

export interface Descriptor {
  readonly fields: Map<string, string>;
  readonly extents: DescriptorExtent[];
}

/** The text descriptor (spec "The Descriptor File"): `key = "value"` lines and extent lines. */
export function parseDescriptor(bytes: Uint8Array): Descriptor {
  const nul = bytes.indexOf(0);
  const text = latin1.decode(nul >= 0 ? bytes.subarray(0, nul) : bytes);
  const fields = new Map<string, string>();
  const extents: DescriptorExtent[] = [];
  const lines = text.split(/\r?\n/);
  bound(lines.length, 0, 10000, 'vmdk.DescriptorLines');
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const ext = /^(RW|RDONLY|NOACCESS)\s+(\d{1,16})\s+([A-Z]+)(?:\s+"([^"]*)"(?:\s+(\d{1,16}))?)?\s*$/.exec(line);
    if (ext) {
      if (extents.length >= MAX_EXTENTS) throw new LimitExceededError('vmdkExtents', 'too many extents', MAX_EXTENTS);
      extents.push({
        access: ext[1] as string,
        sectors: bound(Number(ext[2]), 0, 2 ** 53 / 512 - 1, 'vmdk.ExtentSize'),
        type: ext[3] as string,
        file: ext[4] ?? null,
        offset: bound(Number(ext[5] ?? '0'), 0, 2 ** 53 / 512 - 1, 'vmdk.ExtentOffset'),
      });
      continue;
    }
    const kv = /^([A-Za-z0-9_.]+)\s*=\s*(?:"([^"]*)"|(\S*))\s*$/.exec(line);
    if (kv) fields.set(kv[1] as string, kv[2] ?? kv[3] ?? '');
  }
  return { fields, extents };
}

/** The parent of a delta disk, when the descriptor names one (parentCID ffffffff = none). */
function parentName(d: Descriptor | null): string | null {
  if (!d) return null;
  const cid = d.fields.get('parentCID');
  if (cid === undefined || cid.toLowerCase() === 'ffffffff') return null;
  return d.fields.get('parentFileNameHint') ?? null;
}

/** Extents laid end to end; each one is a flat window, a sparse map, or zeros. */
class ExtentListMap implements BlockMap {
  constructor(private readonly parts: { start: number; size: number; flat?: ByteSource; sparse?: SparseExtentMap }[]) {}

  async lookup(offset: number, maxLength: number): Promise<Run> {
    // Extent counts are small (≤ MAX_EXTENTS); a linear scan is bounded.
    const p = this.parts.find((x) => offset >= x.start && offset < x.start + x.size);
    if (!p) throw new CorruptError('vmdk.Extents', `no extent covers virtual ${offset}`);
    const inPart = offset - p.start;
    const left = Math.min(maxLength, p.size - inPart);
    if (p.flat) return { kind: 'data', source: p.flat, offset: inPart, length: left };
    if (p.sparse) return p.sparse.lookup(inPart, left);
    return { kind: 'zero', length: left };
  }
}

async function probe(src: ByteSource): Promise<boolean> {
  if (src.size < 512) return false;
  const b = await src.read(0, Math.min(src.size, DESCRIPTOR_SIGNATURE.length));
  if (u32le(b, 0) === SPARSE_MAGIC) return true;
  return src.size <= MAX_DESCRIPTOR && latin1.decode(b) === DESCRIPTOR_SIGNATURE;
}

async function open(src: ByteSource, ctx: Context, opts: ContainerOptions): Promise<ByteSource> {
  const magic = u32le(await src.read(0, 4), 0, 'vmdk.Magic');
  if (magic === SPARSE_MAGIC) {
    const sparse = await openSparseExtent(src, ctx, 's');
    const parent = parentName(sparse.descriptor);
    const backing = parent === null ? null : await openBacking('vmdk', parent, ctx, opts);
    return new MappedSource(sparse.size, sparse.map, backing, ctx, 'vmdk');
  }
  if (src.size > MAX_DESCRIPTOR) throw new CorruptError('vmdk.Descriptor', `descriptor file of ${src.size} bytes`);
  const d = parseDescriptor(await src.read(0, src.size));
  if (d.extents.length === 0) throw new CorruptError('vmdk.Descriptor', 'no extents');
  const parts: { start: number; size: number; flat?: ByteSource; sparse?: SparseExtentMap }[] = [];
  let start = 0;
  for (const [i, e] of d.extents.entries()) {
    const size = e.sectors * 512;
    if (e.type === 'ZERO') {
      parts.push({ start, size });
    } else if (e.type === 'FLAT' || e.type === 'VMFS') {
      if (e.file === null) throw new CorruptError('vmdk.Extent', `${e.type} extent without a file name`);
      const file = await resolveBackingFile('vmdk', e.file, ctx, opts);
      const at = e.offset * 512;
      if (at + size > file.size) throw new CorruptError('vmdk.Extent', `extent ${e.file} ${at}+${size} is larger than its ${file.size}-byte file`);
      parts.push({ start, size, flat: new SliceSource(file, at, size, e.file) });
    } else if (e.type === 'SPARSE' || e.type === 'VMFSSPARSE') {
      if (e.file === null) throw new CorruptError('vmdk.Extent', `${e.type} extent without a file name`);
      const file = await resolveBackingFile('vmdk', e.file, ctx, opts);
      const sparse = await openSparseExtent(file, ctx, `e${i}:`);
      if (sparse.size < size) throw new CorruptError('vmdk.Extent', `sparse extent ${e.file} holds ${sparse.size} of ${size} bytes`);
      parts.push({ start, size, sparse: sparse.map });
    } else {
      throw new UnsupportedError('vmdk', [`${e.type} extents`]);
    }
    start = start + size;
    if (!Number.isSafeInteger(start)) throw new CorruptError('vmdk.Extents', 'total size overflows');
  }
  const parent = parentName(d);
  const backing = parent === null ? null : await openBacking('vmdk', parent, ctx, opts);
  return new MappedSource(start, new ExtentListMap(parts), backing, ctx, 'vmdk');
}

export const vmdk: ContainerFormat = Object.freeze({ id: 'vmdk' as const, probe, open });
