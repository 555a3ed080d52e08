/**
 * VHDX (Microsoft [MS-VHDX] v20160714): file type identifier, the two headers (CRC-32C, the valid
 * one with the higher SequenceNumber wins), the region table (CRC-32C), the metadata region (block
 * size, virtual disk size, logical sector size, has-parent) and the BAT with its interleaved sector
 * bitmap entries. The log is never replayed: a non-zero LogGuid is refused. Differencing VHDX
 * (HasParent) is refused.
 */
import { CorruptError, UnsupportedError } from '../errors.ts';
import { bound, guidString, slice, toSafe, u16le, u32le, u64le } from '../io/bytes.ts';
import { crc32c } from '../io/checksum.ts';
import { BlockCache, type ByteSource } from '../io/source.ts';
import type { Context } from '../limits.ts';
import { type BlockMap, MappedSource, type Run } from './mapped.ts';
import type { ContainerFormat } from './types.ts';

const KiB = 1024;
const MiB = 1024 * 1024;
const latin1 = new TextDecoder('latin1');

const REGION_BAT = '2dc27766-f623-4200-9d64-115e9bfd4a08';
const REGION_METADATA = '8b7ca206-4790-4b9a-b8fe-575f050f886e';
const META_FILE_PARAMETERS = 'caa16737-fa36-4d43-b3b6-33f0aa44e76b';
const META_VIRTUAL_DISK_SIZE = '2fa54224-cd1b-4876-b211-5dbed83bf4b8';
const META_VIRTUAL_DISK_ID = 'beca12ab-b2e6-4523-93ef-c309e000c746';
const META_LOGICAL_SECTOR = '8141bf1d-a96f-4709-ba47-f233a8faab5f';
const META_PHYSICAL_SECTOR = 'cda348c7-445d-4471-9cc9-e9885251c556';
const META_PARENT_LOCATOR = 'a8d35f2d-b30b-454d-abf7-d3d84834ab0c';
const KNOWN_META = [META_FILE_PARAMETERS, META_VIRTUAL_DISK_SIZE, META_VIRTUAL_DISK_ID, META_LOGICAL_SECTOR, META_PHYSICAL_SECTOR, META_PARENT_LOCATOR];

/** BAT entry states ([MS-VHDX] §2.5.1.1). */
const PAYLOAD_NOT_PRESENT = 0;
const PAYLOAD_UNDEFINED = 1;
const PAYLOAD_ZERO = 2;
const PAYLOAD_UNMAPPED = 3;
const PAYLOAD_FULLY_PRESENT = 6;
const PAYLOAD_PARTIALLY_PRESENT = 7;

/** [MS-VHDX] checksums: CRC-32C over the structure with its 4-byte checksum field taken as zero. */
function checksumCrc32c(b: Uint8Array, checksumAt: number): boolean {
  const copy = b.slice();
  copy.fill(0, checksumAt, checksumAt + 4);
  return crc32c(copy) === u32le(b, checksumAt, 'vhdx.Checksum');
}

export interface VhdxHeader {
  readonly sequenceNumber: bigint;
  readonly logGuid: string;
  readonly version: number;
  readonly at: number;
}

/** VHDX header ([MS-VHDX] §2.2.2): 4 KiB, CRC-32C over the whole 4 KiB with the checksum zeroed. */
export function decodeVhdxHeader(b: Uint8Array, at: number): VhdxHeader | null {
  const W = 'vhdx.Header';
  if (latin1.decode(slice(b, 0, 4, W)) !== 'head') return null;
  if (!checksumCrc32c(slice(b, 0, 4 * KiB, W), 4)) return null;
  return {
    sequenceNumber: u64le(b, 8, W),
    logGuid: guidString(slice(b, 48, 16, W)),
    version: u16le(b, 66, W),
    at,
  };
}

interface Region {
  readonly guid: string;
  readonly offset: number;
  readonly length: number;
  readonly required: boolean;
}

/** Region table ([MS-VHDX] §2.2.3): 64 KiB, CRC-32C, EntryCount ≤ 2047 entries of 32 bytes. */
export function decodeRegionTable(b: Uint8Array, at: number, fileSize: number): Region[] | null {
  const W = 'vhdx.RegionTable';
  if (latin1.decode(slice(b, 0, 4, W)) !== 'regi') return null;
  if (!checksumCrc32c(slice(b, 0, 64 * KiB, W), 4)) return null;
  const count = bound(u32le(b, 8, W), 0, 2047, 'vhdx.RegionEntryCount', at + 8);
  const regions: Region[] = [];
  for (let i = 0; i < count; i++) {
    const o = 16 + i * 32;
    const offset = toSafe(u64le(b, o + 16, W), 'vhdx.RegionOffset');
    const length = u32le(b, o + 24, W);
    if (offset % MiB !== 0 || offset < MiB || length % MiB !== 0 || offset + length > fileSize) {
      throw new CorruptError('vhdx.RegionEntry', `region ${offset}+${length} is unaligned or outside the ${fileSize}-byte file`, at + o);
    }
    regions.push({ guid: guidString(slice(b, o, 16, W)), offset, length, required: u32le(b, o + 28, W) % 2 === 1 });
  }
  return regions;
}

interface Metadata {
  blockSize: number;
  hasParent: boolean;
  virtualDiskSize: number;
  logicalSectorSize: number;
}

/** Metadata region ([MS-VHDX] §2.6): table header, entries, then the items we need. */
export function decodeMetadata(region: Uint8Array, at: number): Metadata {
  const W = 'vhdx.Metadata';
  if (latin1.decode(slice(region, 0, 8, W)) !== 'metadata') throw new CorruptError(W, 'bad signature', at);
  const count = bound(u16le(region, 10, W), 0, 2047, 'vhdx.MetadataEntryCount', at + 10);
  const items = new Map<string, Uint8Array>();
  const unknownRequired: string[] = [];
  for (let i = 0; i < count; i++) {
    const o = 32 + i * 32;
    const id = guidString(slice(region, o, 16, W));
    const offset = u32le(region, o + 16, W);
    const length = u32le(region, o + 20, W);
    const flags = u32le(region, o + 24, W);
    if (length === 0) continue;
    if (offset < 64 * KiB || offset + length > region.length) {
      throw new CorruptError('vhdx.MetadataEntry', `item ${id} at ${offset}+${length} outside the metadata region`, at + o);
    }
    const required = Math.floor(flags / 4) % 2 === 1;
    if (!KNOWN_META.includes(id)) {
      if (required) unknownRequired.push(`metadata item ${id}`);
      continue;
    }
    items.set(id, slice(region, offset, length, W));
  }
  if (unknownRequired.length) throw new UnsupportedError('vhdx', unknownRequired);
  const item = (id: string, n: number, name: string): Uint8Array => {
    const v = items.get(id);
    if (!v || v.length < n) throw new CorruptError('vhdx.Metadata', `missing or short ${name}`, at);
    return v;
  };
  const fp = item(META_FILE_PARAMETERS, 8, 'File Parameters');
  const blockSize = u32le(fp, 0, W);
  if (blockSize < MiB || blockSize > 256 * MiB || !Number.isInteger(Math.log2(blockSize))) {
    throw new CorruptError('vhdx.BlockSize', `${blockSize} is not a power of two in [1 MiB, 256 MiB]`, at);
  }
  const hasParent = Math.floor(u32le(fp, 4, W) / 2) % 2 === 1;
  const virtualDiskSize = toSafe(u64le(item(META_VIRTUAL_DISK_SIZE, 8, 'Virtual Disk Size'), 0, W), 'vhdx.VirtualDiskSize');
  const logicalSectorSize = u32le(item(META_LOGICAL_SECTOR, 4, 'Logical Sector Size'), 0, W);
  if (logicalSectorSize !== 512 && logicalSectorSize !== 4096) {
    throw new CorruptError('vhdx.LogicalSectorSize', `${logicalSectorSize} is neither 512 nor 4096`, at);
  }
  if (virtualDiskSize % logicalSectorSize !== 0) throw new CorruptError('vhdx.VirtualDiskSize', `${virtualDiskSize} is not a multiple of the sector size`, at);
  return { blockSize, hasParent, virtualDiskSize, logicalSectorSize };
}

class VhdxMap implements BlockMap {
  constructor(
    private readonly file: ByteSource,
    private readonly md: Metadata,
    private readonly bat: Uint8Array,
    private readonly batOffset: number,
    private readonly chunkRatio: number,
  ) {}

  async lookup(offset: number, maxLength: number): Promise<Run> {
    const bs = this.md.blockSize;
    const block = Math.floor(offset / bs);
    const inBlock = offset - block * bs;
    const left = Math.min(maxLength, bs - inBlock);
    // One sector bitmap entry follows every chunkRatio payload entries (§2.5).
    const index = block + Math.floor(block / this.chunkRatio);
    const e = u64le(this.bat, index * 8, 'vhdx.BAT');
    const state = Number(e & 7n);
    const where = this.batOffset + index * 8;
    switch (state) {
      case PAYLOAD_NOT_PRESENT:
      case PAYLOAD_UNDEFINED:
      case PAYLOAD_ZERO:
      case PAYLOAD_UNMAPPED:
        return { kind: 'zero', length: left };
      case PAYLOAD_FULLY_PRESENT: {
        const at = Number(e >> 20n) * MiB;
        if (!Number.isSafeInteger(at) || at < MiB || at + bs > this.file.size) {
          throw new CorruptError('vhdx.BATEntry', `block ${block} at ${at} lies outside the ${this.file.size}-byte file`, where);
        }
        // Merge following blocks that are stored right after this one.
        let length = left;
        let next = block + 1;
        while (inBlock + length === (next - block) * bs && length < maxLength && next * bs < this.md.virtualDiskSize) {
          const ni = next + Math.floor(next / this.chunkRatio);
          const ne = u64le(this.bat, ni * 8, 'vhdx.BAT');
          if (Number(ne & 7n) !== PAYLOAD_FULLY_PRESENT || Number(ne >> 20n) * MiB !== at + (next - block) * bs) break;
          if (at + (next - block + 1) * bs > this.file.size) break;
          length = Math.min(maxLength, length + bs);
          next++;
        }
        return { kind: 'data', source: this.file, offset: at + inBlock, length };
      }
      case PAYLOAD_PARTIALLY_PRESENT:
        throw new CorruptError('vhdx.BATEntry', `block ${block} is partially present in a disk without a parent`, where);
      default:
        throw new CorruptError('vhdx.BATEntry', `block ${block} has reserved state ${state}`, where);
    }
  }
}

async function probe(src: ByteSource): Promise<boolean> {
  if (src.size < 1 * MiB) return false;
  return latin1.decode(await src.read(0, 8)) === 'vhdxfile';
}

async function open(src: ByteSource, ctx: Context): Promise<ByteSource> {
  const meta = new BlockCache(src, ctx.budget);
  if (src.size < 1 * MiB || latin1.decode(await meta.read(0, 8)) !== 'vhdxfile') throw new CorruptError('vhdx.FileIdentifier', 'bad signature', 0);
  const headers: VhdxHeader[] = [];
  for (const at of [64 * KiB, 128 * KiB]) {
    const h = decodeVhdxHeader(await meta.read(at, 4 * KiB), at);
    if (h) headers.push(h);
  }
  if (headers.length === 0) throw new CorruptError('vhdx.Header', 'neither header is valid', 64 * KiB);
  const header = headers.reduce((a, b) => (b.sequenceNumber > a.sequenceNumber ? b : a));
  if (header.version !== 1) throw new UnsupportedError('vhdx', [`header version ${header.version}`]);
  if (header.logGuid !== '00000000-0000-0000-0000-000000000000') {
    throw new UnsupportedError('vhdx', ['log needs replay (LogGuid is set: the image was not closed cleanly)']);
  }
  let regions: Region[] | null = null;
  for (const at of [192 * KiB, 256 * KiB]) {
    regions = decodeRegionTable(await meta.read(at, 64 * KiB), at, src.size);
    if (regions) break;
  }
  if (!regions) throw new CorruptError('vhdx.RegionTable', 'neither region table is valid', 192 * KiB);
  const unknown = regions.filter((r) => r.required && r.guid !== REGION_BAT && r.guid !== REGION_METADATA).map((r) => `region ${r.guid}`);
  if (unknown.length) throw new UnsupportedError('vhdx', unknown);
  const batRegion = regions.find((r) => r.guid === REGION_BAT);
  const mdRegion = regions.find((r) => r.guid === REGION_METADATA);
  if (!batRegion || !mdRegion) throw new CorruptError('vhdx.RegionTable', 'BAT or metadata region missing', 192 * KiB);
  const md = decodeMetadata(await meta.read(mdRegion.offset, mdRegion.length), mdRegion.offset);
  if (md.hasParent) throw new UnsupportedError('vhdx', ['differencing disk (HasParent)']);
  // §2.5: chunk ratio = 2^23 * LogicalSectorSize / BlockSize payload blocks per sector bitmap block.
  const chunkRatio = (2 ** 23 * md.logicalSectorSize) / md.blockSize;
  const payloadBlocks = Math.ceil(md.virtualDiskSize / md.blockSize);
  const entries = payloadBlocks === 0 ? 0 : payloadBlocks + Math.floor((payloadBlocks - 1) / chunkRatio);
  if (entries * 8 > batRegion.length) {
    throw new CorruptError('vhdx.BAT', `${entries} entries do not fit a ${batRegion.length}-byte region`, batRegion.offset);
  }
  const bat = await meta.read(batRegion.offset, entries * 8);
  return new MappedSource(md.virtualDiskSize, new VhdxMap(src, md, bat, batRegion.offset, chunkRatio), null, ctx, 'vhdx');
}

export const vhdx: ContainerFormat = Object.freeze({ id: 'vhdx' as const, probe, open });
