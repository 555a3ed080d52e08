/**
 * MS-DOS partition table (MBR): four primary entries at 446 of sector 0, the extended/logical chain
 * (EBRs), and the nested Solaris VTOC / BSD disklabel inside primaries or logicals. 512-byte sectors.
 * Numbering follows Linux (block/partitions/msdos.c): primaries 1–4, logicals from 5 in chain order.
 */
import { bound, hex, u16le, u32le, u8 } from '../io/bytes.ts';
import { BlockCache, type ByteSource } from '../io/source.ts';
import type { Context } from '../limits.ts';
import { readDisklabel } from './bsd.ts';
import { makePartition, overlaps, placeExtent, type Extent } from './extent.ts';
import type { Partition, PartitionScheme, PartitionTable } from './types.ts';
import { readVtoc } from './vtoc.ts';

const SECTOR = 512;
const ENTRY_TABLE = 446;
const ENTRY_SIZE = 16;
const SIGNATURE = 0xaa55;
const EXTENDED_TYPES = new Set([0x05, 0x0f, 0x85]);
const BSD_TYPES = new Set([0xa5, 0xa6, 0xa9]);
const SOLARIS_TYPES = new Set([0xbf, 0x82]);
const GPT_PROTECTIVE = 0xee;

export const MBR_TYPES: ReadonlyMap<number, string> = new Map([
  [0x01, 'FAT12'],
  [0x04, 'FAT16 <32M'],
  [0x05, 'Extended'],
  [0x06, 'FAT16'],
  [0x07, 'HPFS/NTFS/exFAT'],
  [0x0b, 'W95 FAT32'],
  [0x0c, 'W95 FAT32 (LBA)'],
  [0x0e, 'W95 FAT16 (LBA)'],
  [0x0f, "W95 Ext'd (LBA)"],
  [0x17, 'Hidden HPFS/NTFS'],
  [0x82, 'Linux swap / Solaris'],
  [0x83, 'Linux'],
  [0x85, 'Linux extended'],
  [0x8e, 'Linux LVM'],
  [0x96, 'ISO9660'],
  [0xa5, 'FreeBSD'],
  [0xa6, 'OpenBSD'],
  [0xa9, 'NetBSD'],
  [0xbe, 'Solaris boot'],
  [0xbf, 'Solaris'],
  [0xee, 'GPT'],
  [0xef, 'EFI (FAT-12/16/32)'],
  [0xfd, 'Linux raid autodetect'],
]);

/** One 16-byte partition record (CHS fields are ignored: LBA is authoritative). */
export interface MbrEntry {
  readonly status: number;
  readonly type: number;
  readonly lbaStart: number;
  readonly sectors: number;
}

export function decodeMbrEntry(sector: Uint8Array, index: number): MbrEntry {
  const o = ENTRY_TABLE + ENTRY_SIZE * bound(index, 0, 3, 'mbr.entry');
  return {
    status: u8(sector, o, 'mbr.status'),
    type: u8(sector, o + 4, 'mbr.type'),
    lbaStart: u32le(sector, o + 8, 'mbr.lba_start'),
    sectors: u32le(sector, o + 12, 'mbr.sectors'),
  };
}

export function hasBootSignature(sector: Uint8Array): boolean {
  return sector.length >= SECTOR && u16le(sector, 510, 'mbr.signature') === SIGNATURE;
}

export function isEmptyEntry(e: MbrEntry): boolean {
  return e.type === 0 || e.sectors === 0;
}

/**
 * A FAT/NTFS/exFAT boot sector (BPB) also ends in 55AA: a jump (EB xx 90 or E9) plus an OEM or
 * filesystem-type string, or a sane BPB (bytes per sector, sectors per cluster, reserved, FAT count).
 */
export function looksLikeBootSector(b: Uint8Array): boolean {
  const j = u8(b, 0);
  if (!((j === 0xeb && u8(b, 2) === 0x90) || j === 0xe9)) return false;
  const text = (o: number, n: number) => String.fromCharCode(...b.subarray(o, o + n));
  if (text(3, 8) === 'NTFS    ' || text(3, 8) === 'EXFAT   ') return true;
  if (text(0x36, 3) === 'FAT' || text(0x52, 3) === 'FAT') return true;
  const bps = u16le(b, 11);
  const spc = u8(b, 13);
  const media = u8(b, 21);
  return [512, 1024, 2048, 4096].includes(bps) && spc > 0 && (spc & (spc - 1)) === 0 && u16le(b, 14) > 0 && [1, 2].includes(u8(b, 16)) && (media === 0xf0 || media >= 0xf8);
}

export type MbrDecision = { kind: 'none' } | { kind: 'gpt' } | { kind: 'mbr'; entries: readonly MbrEntry[] };

/**
 * Decides what sector 0 is: no table (no 55AA, an impossible boot flag as Linux checks, or a FAT/NTFS
 * boot sector whose "entries" are empty or implausible), a protective MBR (0xEE: defer to GPT), or an MBR.
 */
export function classifySector0(b: Uint8Array, diskSectors: number): MbrDecision {
  if (!hasBootSignature(b)) return { kind: 'none' };
  const entries = [0, 1, 2, 3].map((i) => decodeMbrEntry(b, i));
  if (entries.some((e) => e.status !== 0x00 && e.status !== 0x80)) return { kind: 'none' };
  if (entries.some((e) => e.type === GPT_PROTECTIVE)) return { kind: 'gpt' };
  if (looksLikeBootSector(b)) {
    const used = entries.filter((e) => !isEmptyEntry(e));
    const outside = used.some((e) => e.lbaStart === 0 || e.lbaStart + e.sectors > diskSectors);
    const ext = used.map((e) => ({ start: e.lbaStart, size: e.sectors }));
    const overlap = ext.some((a, i) => ext.some((c, k) => k > i && overlaps(a, c)));
    if (used.length === 0 || outside || overlap) return { kind: 'none' };
  }
  return { kind: 'mbr', entries };
}

interface Scan {
  readonly disk: ByteSource;
  readonly cache: ByteSource;
  readonly ctx: Context;
  readonly warnings: string[];
  readonly out: Partition[];
}

/** Adds a data partition and, for 0xBF/0x82 and 0xA5/0xA6/0xA9, the label nested in it (depth 2). */
async function addPartition(s: Scan, e: MbrEntry, ext: Extent, number: number, bootable: boolean): Promise<void> {
  const path = String(number);
  const base = {
    scheme: 'mbr' as const,
    number,
    path,
    type: `0x${e.type.toString(16).padStart(2, '0')}`,
    ...(MBR_TYPES.has(e.type) ? { typeName: MBR_TYPES.get(e.type) as string } : {}),
    start: ext.start,
    size: ext.size,
    bootable,
  };
  let nested: Partition[] | null = null;
  try {
    if (SOLARIS_TYPES.has(e.type)) nested = await readVtoc(s.disk, s.cache, ext.start, ext.size, path, s.ctx, s.warnings);
    else if (BSD_TYPES.has(e.type)) nested = await readDisklabel(s.disk, s.cache, ext.start, ext.size, path, s.ctx, s.warnings);
  } catch (err) {
    // A bad nested label loses only its own slices; the fdisk partition itself stays listed.
    s.warnings.push(`partition ${path}: nested label ignored: ${err instanceof Error ? err.message : String(err)}`);
  }
  s.out.push(makePartition(s.disk, nested ? { ...base, container: true } : base));
  if (nested) s.out.push(...nested);
}

/**
 * Walks the EBR chain of the extended partition `ext` (absolute bytes). Each EBR's data entries are
 * relative to that EBR, its link entry relative to the extended partition's start (Linux
 * msdos.c parse_extended). Stops with a warning on: a missing signature, a link outside the extended
 * partition or already visited (loop), an overlap with earlier logicals/EBRs, or the partitionEntries limit.
 */
async function walkExtended(s: Scan, ext: Extent, nextNumber: { n: number }): Promise<void> {
  const extStart = ext.start / SECTOR;
  const visited = new Set<number>();
  const taken: Extent[] = [];
  let ebr = extStart;
  for (;;) {
    s.ctx.budget.chargeNode();
    const at = ebr * SECTOR;
    if (visited.has(ebr)) {
      s.warnings.push(`extended partition: EBR chain loops back to sector ${ebr}; stopped`);
      return;
    }
    visited.add(ebr);
    const ebrExt = { start: at, size: SECTOR };
    if (taken.some((t) => overlaps(t, ebrExt))) {
      s.warnings.push(`extended partition: EBR at sector ${ebr} lies inside an earlier logical partition; stopped`);
      return;
    }
    taken.push(ebrExt);
    const b = await s.cache.read(at, SECTOR);
    if (!hasBootSignature(b)) {
      s.warnings.push(`extended partition: EBR at sector ${ebr} has no 55AA signature; stopped`);
      return;
    }
    const entries = [0, 1, 2, 3].map((i) => decodeMbrEntry(b, i));
    let link: MbrEntry | undefined;
    for (const e of entries) {
      if (isEmptyEntry(e)) continue;
      if (EXTENDED_TYPES.has(e.type)) {
        link ??= e;
        continue;
      }
      if (nextNumber.n - 5 >= s.ctx.limits.partitionEntries) {
        s.warnings.push(`extended partition: more than ${s.ctx.limits.partitionEntries} logical partitions (limit partitionEntries); stopped`);
        return;
      }
      const what = `logical partition ${nextNumber.n}`;
      const place = placeExtent(at + e.lbaStart * SECTOR, e.sectors * SECTOR, ext.start, ext.size, what, s.warnings);
      if (!place) continue;
      if (taken.some((t) => overlaps(t, place))) {
        s.warnings.push(`${what}: overlaps an earlier logical partition or EBR; stopped`);
        return;
      }
      taken.push(place);
      await addPartition(s, e, place, nextNumber.n++, e.status === 0x80);
    }
    if (!link) return;
    const next = extStart + link.lbaStart;
    if (next * SECTOR >= ext.start + ext.size) {
      s.warnings.push(`extended partition: EBR link to sector ${next} lies outside the extended partition; stopped`);
      return;
    }
    ebr = next;
  }
}

export const mbrScheme: PartitionScheme = {
  id: 'mbr',
  async scan(src: ByteSource, ctx: Context): Promise<PartitionTable | null> {
    if (src.size < SECTOR) return null;
    const cache = new BlockCache(src, ctx.budget);
    const sector0 = await cache.read(0, SECTOR);
    const diskSectors = Math.floor(src.size / SECTOR);
    const decision = classifySector0(sector0, diskSectors);
    if (decision.kind !== 'mbr') return null;
    const s: Scan = { disk: src, cache, ctx, warnings: [], out: [] };
    const placed: { e: MbrEntry; ext: Extent; n: number }[] = [];
    decision.entries.forEach((e, i) => {
      if (isEmptyEntry(e)) return;
      const ext = placeExtent(e.lbaStart * SECTOR, e.sectors * SECTOR, 0, diskSectors * SECTOR, `partition ${i + 1}`, s.warnings);
      if (ext) placed.push({ e, ext, n: i + 1 });
    });
    // Overlapping primaries are kept (reads are clamped anyway) but reported; a hybrid ISO's
    // partition 1 at sector 0 covering the whole image legitimately contains the others.
    for (const [i, a] of placed.entries()) {
      for (const c of placed.slice(i + 1)) {
        if (overlaps(a.ext, c.ext) && a.e.lbaStart !== 0 && c.e.lbaStart !== 0) {
          s.warnings.push(`partitions ${a.n} and ${c.n} overlap`);
        }
      }
    }
    const logicalNumber = { n: 5 };
    for (const { e, ext, n } of placed) {
      if (EXTENDED_TYPES.has(e.type)) {
        s.out.push(
          makePartition(src, {
            scheme: 'mbr',
            number: n,
            path: String(n),
            type: `0x${e.type.toString(16).padStart(2, '0')}`,
            typeName: MBR_TYPES.get(e.type) as string,
            start: ext.start,
            size: ext.size,
            bootable: e.status === 0x80,
            container: true,
          }),
        );
        await walkExtended(s, ext, logicalNumber);
      } else {
        await addPartition(s, e, ext, n, e.status === 0x80);
      }
    }
    const id = `0x${hex(sector0.subarray(440, 444).slice().reverse())}`;
    return { scheme: 'mbr', partitions: s.out, warnings: s.warnings, id };
  },
};
