/**
 * Microsoft Virtual Hard Disk Image Format Specification 1.0 (2006): fixed disks (footer at the
 * end), dynamic disks (footer copy at 0, dynamic disk header, BAT, per-block sector bitmaps) and
 * differencing disks (unallocated sectors from the parent named by the W2ru/W2ku locators or the
 * parent Unicode name, under backing.ts's rules). The visible size follows qemu's vpc driver.
 */
import { CorruptError, UnsupportedError } from '../errors.ts';
import { bound, slice, toSafe, u16be, u32be, u64be, u8 } from '../io/bytes.ts';
import { BlockCache, type ByteSource, SliceSource } from '../io/source.ts';
import type { Context } from '../limits.ts';
import { backingNameProblem, openBacking } from './backing.ts';
import { type BlockMap, MappedSource, type Run, TableCache } from './mapped.ts';
import type { ContainerFormat, ContainerOptions } from './types.ts';

const FOOTER_COOKIE = 'conectix';
const DYNAMIC_COOKIE = 'cxsparse';
const DISK_FIXED = 2;
const DISK_DYNAMIC = 3;
const DISK_DIFFERENCING = 4;
const BAT_UNUSED = 0xffffffff;
const latin1 = new TextDecoder('latin1');
const utf16be = new TextDecoder('utf-16be');
const utf16le = new TextDecoder('utf-16le');

/** Spec "Checksum": one's complement of the byte sum with the checksum field taken as zero. */
function vhdChecksum(b: Uint8Array, checksumAt: number): number {
  let sum = 0;
  for (let i = 0; i < b.length; i++) if (i < checksumAt || i >= checksumAt + 4) sum += b[i] as number;
  return (0xffffffff - (sum % 2 ** 32)) >>> 0;
}

export interface VhdFooter {
  readonly dataOffset: bigint;
  readonly currentSize: number;
  readonly creatorApp: string;
  readonly cylinders: number;
  readonly heads: number;
  readonly sectorsPerTrack: number;
  readonly diskType: number;
}

/** Hard Disk Footer (spec §"Hard Disk Footer Format"), big-endian. */
export function decodeVhdFooter(b: Uint8Array, at: number): VhdFooter {
  const W = 'vhd.Footer';
  if (latin1.decode(slice(b, 0, 8, W)) !== FOOTER_COOKIE) throw new CorruptError(W, 'bad cookie', at);
  const checksum = u32be(b, 64, W);
  if (vhdChecksum(slice(b, 0, 512, W), 64) !== checksum) throw new CorruptError('vhd.FooterChecksum', 'checksum mismatch', at + 64);
  const version = u32be(b, 12, W);
  if (Math.floor(version / 65536) !== 1) throw new UnsupportedError('vhd', [`file format version ${version.toString(16)}`]);
  const diskType = u32be(b, 60, W);
  if (diskType !== DISK_FIXED && diskType !== DISK_DYNAMIC && diskType !== DISK_DIFFERENCING) {
    throw new UnsupportedError('vhd', [`disk type ${diskType}`]);
  }
  return {
    dataOffset: u64be(b, 16, W),
    currentSize: toSafe(u64be(b, 48, W), 'vhd.CurrentSize'),
    creatorApp: latin1.decode(slice(b, 28, 4, W)),
    cylinders: u16be(b, 56, W),
    heads: u8(b, 58, W),
    sectorsPerTrack: u8(b, 59, W),
    diskType,
  };
}

/**
 * The disk size as qemu's vpc driver sees it: Virtual PC and old qemu ('vpc ', 'qemu') size the
 * disk by its CHS geometry, everyone else by current_size; the maximal geometry means current_size.
 */
export function vhdVisibleSize(f: VhdFooter): number {
  const chs = f.cylinders * f.heads * f.sectorsPerTrack * 512;
  const maxGeometry = f.cylinders === 65535 && f.heads === 16 && f.sectorsPerTrack === 255;
  if ((f.creatorApp === 'vpc ' || f.creatorApp === 'qemu') && !maxGeometry) return chs;
  return f.currentSize;
}

interface ParentLocator {
  readonly code: string;
  readonly length: number;
  readonly offset: number;
}

export interface VhdDynamicHeader {
  readonly tableOffset: number;
  readonly maxTableEntries: number;
  readonly blockSize: number;
  readonly parentName: string;
  readonly locators: readonly ParentLocator[];
}

/** Dynamic Disk Header (spec §"Dynamic Disk Header Format"), 1024 bytes, big-endian. */
export function decodeVhdDynamicHeader(b: Uint8Array, at: number, fileSize: number): VhdDynamicHeader {
  const W = 'vhd.DynamicHeader';
  if (latin1.decode(slice(b, 0, 8, W)) !== DYNAMIC_COOKIE) throw new CorruptError(W, 'bad cookie', at);
  if (vhdChecksum(slice(b, 0, 1024, W), 36) !== u32be(b, 36, W)) throw new CorruptError('vhd.DynamicHeaderChecksum', 'checksum mismatch', at + 36);
  const table_offset = toSafe(u64be(b, 16, W), 'vhd.TableOffset');
  const max_table_entries = u32be(b, 28, W);
  const block_size = u32be(b, 32, W);
  if (block_size < 512 || block_size > 2 ** 28 || !Number.isInteger(Math.log2(block_size))) {
    throw new CorruptError('vhd.BlockSize', `${block_size} is not a power of two in [512, 256 MiB]`, at + 32);
  }
  if (table_offset % 512 !== 0 || table_offset + max_table_entries * 4 > fileSize) {
    throw new CorruptError('vhd.TableOffset', `BAT ${table_offset}+${max_table_entries * 4} is unaligned or outside the ${fileSize}-byte file`, at + 16);
  }
  const nameBytes = slice(b, 64, 512, W);
  let end = 0;
  while (end + 1 < nameBytes.length && (nameBytes[end] !== 0 || nameBytes[end + 1] !== 0)) end += 2;
  const locators: ParentLocator[] = [];
  for (let i = 0; i < 8; i++) {
    const o = 576 + i * 24;
    const code = latin1.decode(slice(b, o, 4, W));
    if (u32be(b, o, W) === 0) continue;
    locators.push({ code, length: u32be(b, o + 8, W), offset: toSafe(u64be(b, o + 16, W), 'vhd.ParentLocator') });
  }
  return {
    tableOffset: table_offset,
    maxTableEntries: max_table_entries,
    blockSize: block_size,
    parentName: utf16be.decode(nameBytes.subarray(0, end)),
    locators,
  };
}

class VhdMap implements BlockMap {
  private readonly bitmapBytes: number;
  private readonly bitmaps: TableCache;

  constructor(
    private readonly file: ByteSource,
    private readonly dyn: VhdDynamicHeader,
    private readonly bat: Uint8Array,
    meta: ByteSource,
    private readonly ctx: Context,
  ) {
    // The sector bitmap is padded to a 512-byte sector boundary (spec "Block Allocation Table").
    this.bitmapBytes = Math.ceil(dyn.blockSize / 512 / 8 / 512) * 512;
    this.bitmaps = new TableCache(meta, this.bitmapBytes, ctx);
  }

  async lookup(offset: number, maxLength: number): Promise<Run> {
    const bs = this.dyn.blockSize;
    const block = Math.floor(offset / bs);
    const inBlock = offset - block * bs;
    const left = Math.min(maxLength, bs - inBlock);
    const entry = u32be(this.bat, block * 4, 'vhd.BAT');
    if (entry === BAT_UNUSED) return { kind: 'backing', length: left };
    const start = entry * 512;
    if (start + this.bitmapBytes + bs > this.file.size) {
      throw new CorruptError('vhd.BATEntry', `block ${block} at sector ${entry} lies outside the ${this.file.size}-byte file`, this.dyn.tableOffset + block * 4);
    }
    this.ctx.budget.chargeNode();
    const bitmap = await this.bitmaps.get(start, this.bitmapBytes);
    // Bit order: sector 0 is the most significant bit of byte 0. A clear bit is not in this file.
    const bit = (s: number): boolean => ((bitmap[Math.floor(s / 8)] as number) & (0x80 >> (s % 8))) !== 0;
    const first = Math.floor(inBlock / 512);
    const present = bit(first);
    let end = (first + 1) * 512;
    const limit = inBlock + left;
    while (end < limit && bit(end / 512) === present) end += 512;
    const length = Math.min(left, end - inBlock);
    if (!present) return { kind: 'backing', length };
    return { kind: 'data', source: this.file, offset: start + this.bitmapBytes + inBlock, length };
  }
}

/** A parent locator's file name: W2ru is ".\name" relative to the child; W2ku is absolute. */
function locatorNames(file: Uint8Array, dyn: VhdDynamicHeader): string[] {
  const names: string[] = [];
  for (const loc of dyn.locators) {
    if (loc.code !== 'W2ru' && loc.code !== 'W2ku') continue;
    if (loc.length === 0 || loc.length > 4096) continue;
    let s = utf16le.decode(file.subarray(0, loc.length)).replace(/\0+$/, '');
    if (loc.code === 'W2ru' && s.startsWith('.\\')) s = s.slice(2);
    names.push(s);
  }
  return names;
}

async function parentSource(src: ByteSource, meta: ByteSource, dyn: VhdDynamicHeader, ctx: Context, opts: ContainerOptions): Promise<ByteSource> {
  const candidates: string[] = [];
  for (const loc of dyn.locators) {
    if ((loc.code !== 'W2ru' && loc.code !== 'W2ku') || loc.length === 0 || loc.length > 4096) continue;
    if (loc.offset + loc.length > src.size) throw new CorruptError('vhd.ParentLocator', `${loc.code} data outside the file`, loc.offset);
    candidates.push(...locatorNames(await meta.read(loc.offset, loc.length), { ...dyn, locators: [loc] }));
  }
  candidates.push(dyn.parentName);
  // First name that is a bare file name; otherwise let openBacking refuse the first one with its reason.
  const name = candidates.find((n) => n && backingNameProblem(n) === null) ?? candidates.find((n) => n) ?? '';
  return openBacking('vhd', name, ctx, opts);
}

async function readFooter(src: ByteSource): Promise<{ footer: VhdFooter; at: number } | null> {
  if (src.size < 512) return null;
  const tail = await src.read(src.size - 512, 512);
  if (latin1.decode(tail.subarray(0, 8)) === FOOTER_COOKIE) return { footer: decodeVhdFooter(tail, src.size - 512), at: src.size - 512 };
  // Dynamic disks keep a copy of the footer at offset 0 (spec "Dynamic Disk Header").
  const head = await src.read(0, 512);
  if (latin1.decode(head.subarray(0, 8)) === FOOTER_COOKIE) return { footer: decodeVhdFooter(head, 0), at: 0 };
  return null;
}

async function probe(src: ByteSource): Promise<boolean> {
  if (src.size < 512) return false;
  const head = await src.read(0, 8);
  if (latin1.decode(head) === FOOTER_COOKIE) return true;
  return latin1.decode(await src.read(src.size - 512, 8)) === FOOTER_COOKIE;
}

async function open(src: ByteSource, ctx: Context, opts: ContainerOptions): Promise<ByteSource> {
  const found = await readFooter(src);
  if (!found) throw new CorruptError('vhd.Footer', 'no footer at the end or start of the file');
  const { footer } = found;
  const size = vhdVisibleSize(footer);
  if (footer.diskType === DISK_FIXED) {
    if (size > src.size - 512) throw new CorruptError('vhd.CurrentSize', `${size} bytes do not fit a ${src.size}-byte fixed disk`, 48);
    return new SliceSource(src, 0, size, 'vhd');
  }
  const meta = new BlockCache(src, ctx.budget);
  const dynAt = bound(Number(footer.dataOffset), 512, src.size - 1024, 'vhd.DataOffset', found.at + 16);
  const dyn = decodeVhdDynamicHeader(await meta.read(dynAt, 1024), dynAt, src.size);
  const blocks = Math.ceil(size / dyn.blockSize);
  if (dyn.maxTableEntries < blocks) throw new CorruptError('vhd.MaxTableEntries', `${dyn.maxTableEntries} entries cannot map ${size} bytes`, dynAt + 28);
  const bat = await meta.read(dyn.tableOffset, blocks * 4);
  const parent = footer.diskType === DISK_DIFFERENCING ? await parentSource(src, meta, dyn, ctx, opts) : null;
  return new MappedSource(size, new VhdMap(src, dyn, bat, meta, ctx), parent, ctx, 'vhd');
}

export const vhd: ContainerFormat = Object.freeze({ id: 'vhd' as const, probe, open });
