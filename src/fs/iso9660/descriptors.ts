/**
 * ISO 9660 volume descriptor set (ECMA-119 §8): starts at sector 16, one 2048-byte descriptor per
 * sector, ends at the terminator (type 255). We read a bounded number of them.
 */
import { CorruptError, UnsupportedError } from '../../errors.ts';
import { cString, slice, u8 } from '../../io/bytes.ts';
import type { ByteSource } from '../../io/source.ts';
import { bothEndian16, bothEndian32 } from './record.ts';

export const SECTOR = 2048;
/** ECMA-119 §6.2.1: the system area is sectors 0–15; descriptors follow. */
export const FIRST_DESCRIPTOR = 16;
/** Real images carry 2–5 descriptors; a few dozen is generous, and keeps a hostile set bounded. */
export const MAX_DESCRIPTORS = 64;

const CD001 = [0x43, 0x44, 0x30, 0x30, 0x31];

export interface VolumeDescriptorInfo {
  /** Primary (type 1) descriptor sector. */
  readonly pvd: PrimaryDescriptor;
  /** Supplementary descriptor that is Joliet (escape %/@, %/C, %/E), if any. */
  readonly joliet: PrimaryDescriptor | null;
  /** Boot record (type 0, "EL TORITO SPECIFICATION"): catalog sector. */
  readonly bootCatalog: number | null;
}

export interface PrimaryDescriptor {
  readonly sector: number;
  readonly volumeId: string;
  readonly volumeSpaceSize: number;
  readonly logicalBlockSize: number;
  /** The 34-byte root directory record (ECMA-119 §8.4.18). */
  readonly rootRecord: Uint8Array;
  /** 17-byte dec-datetime fields (§8.4.26.1). */
  readonly creationDate: Uint8Array;
  readonly modificationDate: Uint8Array;
}

export function isDescriptorMagic(b: Uint8Array): boolean {
  for (let i = 0; i < 5; i++) if (b[1 + i] !== CD001[i]) return false;
  return b[6] === 1;
}

/** Decodes a primary or supplementary volume descriptor (raw fields by ECMA-119 §8.4 offsets). */
function decodePrimary(b: Uint8Array, sector: number, joliet: boolean): PrimaryDescriptor {
  const at = sector * SECTOR;
  const what = joliet ? 'iso9660.SupplementaryVolumeDescriptor' : 'iso9660.PrimaryVolumeDescriptor';
  const volume_space_size = bothEndian32(b, 80, what, at);
  const logical_block_size = bothEndian16(b, 128, what, at);
  if (logical_block_size !== SECTOR) {
    throw new UnsupportedError('iso9660', [`logical block size ${logical_block_size}`]);
  }
  const volumeId = joliet ? decodeUcs2(slice(b, 40, 32, what)).replace(/[\s\0]+$/, '') : cString(b, 40, 32, what).replace(/\s+$/, '');
  return {
    sector,
    volumeId,
    volumeSpaceSize: volume_space_size,
    logicalBlockSize: logical_block_size,
    rootRecord: slice(b, 156, 34, what),
    creationDate: slice(b, 813, 17, what),
    modificationDate: slice(b, 830, 17, what),
  };
}

export function decodeUcs2(b: Uint8Array): string {
  // Joliet names are UCS-2 big-endian; decoding as UTF-16BE also accepts surrogate pairs (as Linux does).
  const n = b.length - (b.length % 2);
  const units: number[] = [];
  for (let i = 0; i < n; i += 2) units.push(((b[i] as number) * 256) + (b[i + 1] as number));
  return String.fromCharCode(...units);
}

/** Reads the descriptor set; null when sector 16 is not an ISO 9660 descriptor. */
export async function readDescriptors(src: ByteSource): Promise<VolumeDescriptorInfo | null> {
  if (src.size < (FIRST_DESCRIPTOR + 1) * SECTOR) return null;
  let pvd: PrimaryDescriptor | null = null;
  let joliet: PrimaryDescriptor | null = null;
  let bootCatalog: number | null = null;
  for (let i = 0; i < MAX_DESCRIPTORS; i++) {
    const sector = FIRST_DESCRIPTOR + i;
    if ((sector + 1) * SECTOR > src.size) {
      if (pvd) throw new CorruptError('iso9660.VolumeDescriptorSet', 'no terminator before the end of the image', sector * SECTOR);
      return null;
    }
    const b = await src.read(sector * SECTOR, SECTOR);
    if (!isDescriptorMagic(b)) {
      if (i === 0) return null;
      throw new CorruptError('iso9660.VolumeDescriptor', 'bad standard identifier in the descriptor set', sector * SECTOR);
    }
    const type = u8(b, 0);
    if (type === 255) {
      if (!pvd) throw new CorruptError('iso9660.VolumeDescriptorSet', 'terminator before any primary descriptor', sector * SECTOR);
      return { pvd, joliet, bootCatalog };
    }
    if (type === 1 && !pvd) pvd = decodePrimary(b, sector, false);
    else if (type === 2 && !joliet && isJolietEscape(b)) joliet = decodePrimary(b, sector, true);
    else if (type === 0 && cString(b, 7, 32) === 'EL TORITO SPECIFICATION') {
      // El Torito §2.0: boot catalog pointer, little-endian, at byte 71.
      bootCatalog = new DataView(b.buffer, b.byteOffset + 71, 4).getUint32(0, true);
    }
  }
  throw new CorruptError('iso9660.VolumeDescriptorSet', `more than ${MAX_DESCRIPTORS} descriptors without a terminator`, FIRST_DESCRIPTOR * SECTOR);
}

/** Joliet: escape sequences %/@ (level 1), %/C (2), %/E (3) at byte 88 of an SVD. */
function isJolietEscape(b: Uint8Array): boolean {
  return b[88] === 0x25 && b[89] === 0x2f && (b[90] === 0x40 || b[90] === 0x43 || b[90] === 0x45);
}
