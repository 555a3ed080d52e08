/**
 * El Torito boot catalog ("El Torito" Bootable CD-ROM Format Specification 1.0, §2): validation entry,
 * initial/default entry, then section headers (0x90 more follow, 0x91 final) with their entries.
 */
import { CorruptError } from '../../errors.ts';
import { u16le, u32le, u8 } from '../../io/bytes.ts';
import type { ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import { SECTOR, readDescriptors } from './descriptors.ts';

/** Entries read from the catalog at most (4 sectors of 32-byte entries); real catalogs hold a handful. */
export const MAX_CATALOG_ENTRIES = 256;

export type ElToritoPlatform = 'x86' | 'ppc' | 'mac' | 'efi' | 'unknown';
export type ElToritoMedia = 'no-emulation' | '1.2M' | '1.44M' | '2.88M' | 'hard-disk' | 'unknown';

export interface ElToritoEntry {
  readonly platform: ElToritoPlatform;
  readonly platformId: number;
  readonly bootable: boolean;
  readonly mediaType: ElToritoMedia;
  readonly loadSegment: number;
  readonly systemType: number;
  /** Virtual (512-byte) sectors to load (§2.2 "Sector Count"). */
  readonly sectorCount: number;
  /** Start of the boot image in 2048-byte CD sectors. */
  readonly loadRba: number;
}

function platformName(id: number): ElToritoPlatform {
  switch (id) {
    case 0: return 'x86';
    case 1: return 'ppc';
    case 2: return 'mac';
    case 0xef: return 'efi';
    default: return 'unknown';
  }
}

function mediaName(m: number): ElToritoMedia {
  const names: readonly ElToritoMedia[] = ['no-emulation', '1.2M', '1.44M', '2.88M', 'hard-disk'];
  return names[m & 0x0f] ?? 'unknown';
}

function decodeEntry(e: Uint8Array, platformId: number, at: number): ElToritoEntry {
  const what = 'iso9660.ElToritoEntry';
  const boot_indicator = u8(e, 0, what);
  if (boot_indicator !== 0x88 && boot_indicator !== 0x00) {
    throw new CorruptError(what, `boot indicator 0x${boot_indicator.toString(16)}`, at);
  }
  return {
    platform: platformName(platformId),
    platformId,
    bootable: boot_indicator === 0x88,
    mediaType: mediaName(u8(e, 1, what)),
    loadSegment: u16le(e, 2, what),
    systemType: u8(e, 4, what),
    sectorCount: u16le(e, 6, what),
    loadRba: u32le(e, 8, what),
  };
}

/** Parses the catalog at `sector`. */
export async function readBootCatalog(src: ByteSource, sector: number, ctx: Context): Promise<ElToritoEntry[]> {
  const start = sector * SECTOR;
  if (!Number.isSafeInteger(start) || start + 64 > src.size) {
    throw new CorruptError('iso9660.ElToritoCatalog', `catalog sector ${sector} outside the image`);
  }
  const len = Math.min(MAX_CATALOG_ENTRIES * 32, src.size - start);
  ctx.budget.chargeMetadata(len);
  const cat = await src.read(start, len);
  const what = 'iso9660.ElToritoValidation';
  // §2.1 validation entry: header 01, key 55 AA, and the 16-bit words sum to zero.
  if (u8(cat, 0, what) !== 1 || cat[30] !== 0x55 || cat[31] !== 0xaa) {
    throw new CorruptError(what, 'bad header id or key bytes', start);
  }
  let sum = 0;
  for (let i = 0; i < 32; i += 2) sum = (sum + u16le(cat, i, what)) % 0x10000;
  if (sum !== 0) throw new CorruptError(what, `checksum words sum to 0x${sum.toString(16)}`, start);
  const out: ElToritoEntry[] = [];
  let platformId = u8(cat, 1, what);
  out.push(decodeEntry(cat.subarray(32, 64), platformId, start + 32));
  let off = 64;
  // §2.3–2.4: section headers; `remaining` entries belong to the current section.
  let remaining = 0;
  let final = false;
  while (off + 32 <= cat.length) {
    const e = cat.subarray(off, off + 32);
    const at = start + off;
    off += 32;
    const id = e[0] as number;
    if (remaining > 0) {
      remaining--;
      if (id === 0x44) continue; // §2.5 extension entry (continues the previous one's selection criteria)
      out.push(decodeEntry(e, platformId, at));
      continue;
    }
    if (final) break;
    if (id === 0x90 || id === 0x91) {
      platformId = u8(e, 1);
      remaining = u16le(e, 2);
      final = id === 0x91;
      continue;
    }
    break; // anything else ends the catalog (zero fill)
  }
  return out;
}

/** The El Torito entries of an ISO image, or null when it has no boot record. */
export async function readElTorito(src: ByteSource, ctx: Context): Promise<ElToritoEntry[] | null> {
  const d = await readDescriptors(src);
  if (!d || d.bootCatalog === null) return null;
  return readBootCatalog(src, d.bootCatalog, ctx);
}

