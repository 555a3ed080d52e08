/**
 * BSD disklabel (`struct disklabel`, FreeBSD/NetBSD sys/disklabel.h; little-endian on x86) in an
 * fdisk 0xA5/0xA6/0xA9 slice or at the start of a disk. The label sits at LABELSECTOR 1 (byte 512) of
 * the slice; some ports use LABELOFFSET 64 within sector 0, which is tried second.
 */
import { CorruptError } from '../errors.ts';
import { bound, u16le, u32le, u8 } from '../io/bytes.ts';
import type { ByteSource } from '../io/source.ts';
import type { Context } from '../limits.ts';
import { makePartition, placeExtent, wholeDiskScheme } from './extent.ts';
import type { Partition, PartitionScheme } from './types.ts';

const SECTOR = 512;
const DISKMAGIC = 0x82564557;
/** NetBSD MAXPARTITIONS on i386 (the largest in use); 148 + 22·16 = 500 bytes still fits one sector. */
const MAXPARTITIONS = 22;
const LABEL_OFFSETS = [512, 64] as const;
/** Raw partitions by convention: 'c' (FreeBSD RAW_PART) is the slice, 'd' (NetBSD/i386) the disk. */
const RAW_PARTS = new Set([2, 3]);
const FS_UNUSED = 0;

/** p_fstype names (fstypenames[] in sys/disklabel.h; 0–13 agree across the BSDs). */
export const BSD_FSTYPES: ReadonlyMap<number, string> = new Map([
  [0, 'unused'],
  [1, 'swap'],
  [2, 'Version 6'],
  [3, 'Version 7'],
  [4, 'System V'],
  [5, '4.1BSD'],
  [6, 'Eighth Edition'],
  [7, '4.2BSD'],
  [8, 'MSDOS'],
  [9, '4.4LFS'],
  [10, 'unknown'],
  [11, 'HPFS'],
  [12, 'ISO9660'],
  [13, 'boot'],
  [17, 'ext2fs'],
  [18, 'NTFS'],
  [27, 'ZFS'],
]);

export interface BsdPartition {
  readonly p_size: number;
  readonly p_offset: number;
  readonly p_fsize: number;
  readonly p_fstype: number;
  readonly p_frag: number;
  readonly p_cpg: number;
}

export interface Disklabel {
  readonly d_magic: number;
  readonly d_secsize: number;
  readonly d_secperunit: number;
  readonly d_magic2: number;
  readonly d_checksum: number;
  readonly d_npartitions: number;
  readonly d_partitions: readonly BsdPartition[];
}

/**
 * Decodes and validates a disklabel at `at` within `b` (`offset` = its disk byte position, for
 * messages). Null when neither magic is there; both magics, d_npartitions ≤ 22 and the checksum
 * (XOR of the u16 words from d_magic to the end of d_partitions[d_npartitions] is 0) are required.
 */
export function decodeDisklabel(b: Uint8Array, at: number, offset: number): Disklabel | null {
  if (at + 148 > b.length) return null;
  const d_magic = u32le(b, at, 'bsd.d_magic');
  const d_magic2 = u32le(b, at + 132, 'bsd.d_magic2');
  if (d_magic !== DISKMAGIC && d_magic2 !== DISKMAGIC) return null;
  if (d_magic !== DISKMAGIC || d_magic2 !== DISKMAGIC) throw new CorruptError('bsd.d_magic2', 'only one of the two label magics is present', offset);
  const d_npartitions = bound(u16le(b, at + 138, 'bsd.d_npartitions'), 0, MAXPARTITIONS, 'bsd.d_npartitions', offset + 138);
  const end = at + 148 + 16 * d_npartitions;
  if (end > b.length) throw new CorruptError('bsd.d_partitions', 'partition table runs past the sector', offset);
  let x = 0;
  for (let i = at; i < end; i += 2) x ^= u16le(b, i, 'bsd.disklabel');
  if (x !== 0) throw new CorruptError('bsd.d_checksum', `label checksum mismatch (xor 0x${x.toString(16)})`, offset + 136);
  const d_secsize = u32le(b, at + 40, 'bsd.d_secsize');
  const d_partitions: BsdPartition[] = [];
  for (let i = 0; i < d_npartitions; i++) {
    const o = at + 148 + 16 * i;
    d_partitions.push({
      p_size: u32le(b, o, 'bsd.p_size'),
      p_offset: u32le(b, o + 4, 'bsd.p_offset'),
      p_fsize: u32le(b, o + 8, 'bsd.p_fsize'),
      p_fstype: u8(b, o + 12, 'bsd.p_fstype'),
      p_frag: u8(b, o + 13, 'bsd.p_frag'),
      p_cpg: u16le(b, o + 14, 'bsd.p_cpg'),
    });
  }
  return {
    d_magic,
    d_secsize,
    d_secperunit: u32le(b, at + 60, 'bsd.d_secperunit'),
    d_magic2,
    d_checksum: u16le(b, at + 136, 'bsd.d_checksum'),
    d_npartitions,
    d_partitions,
  };
}

function partitionLetter(i: number): string {
  return String.fromCharCode(0x61 + i);
}

/**
 * Reads the disklabel of the slice [base, base + limit) of `disk`. Null when there is none.
 * p_offset is absolute (in disk sectors) as FreeBSD and util-linux fdisk write it. A label whose
 * in-use partitions all start below the slice start is taken to be slice-relative (some writers do
 * that); the choice is made once per label, never per entry.
 * Raw entries are not listed as filesystems, as Linux skips them: p_fstype unused, or an entry that
 * covers exactly the slice ('c') or starts at disk sector 0 ('d').
 */
export async function readDisklabel(
  disk: ByteSource,
  cache: ByteSource,
  base: number,
  limit: number,
  parent: string | undefined,
  ctx: Context,
  warnings: string[],
): Promise<Partition[] | null> {
  if (limit < 2 * SECTOR) return null;
  ctx.budget.chargeNode();
  const sec = await cache.read(base, 2 * SECTOR);
  let label: Disklabel | null = null;
  let at = 0;
  for (const off of LABEL_OFFSETS) {
    label = decodeDisklabel(sec, off, base + off);
    if (label) {
      at = base + off;
      break;
    }
  }
  if (!label) return null;
  if (label.d_secsize !== SECTOR && label.d_secsize !== 0) {
    warnings.push(`bsd label at ${at}: d_secsize ${label.d_secsize} is not 512; offsets read as 512-byte sectors`);
  }
  if (label.d_npartitions > ctx.limits.partitionEntries) {
    warnings.push(`bsd label at ${at}: ${label.d_npartitions} partitions exceed limit partitionEntries; none listed`);
    return [];
  }
  const sliceStart = base / SECTOR;
  const sliceSectors = Math.floor(limit / SECTOR);
  const isRaw = (p: BsdPartition, i: number): boolean =>
    p.p_fstype === FS_UNUSED ||
    (p.p_offset === sliceStart && p.p_size === sliceSectors) ||
    (RAW_PARTS.has(i) && p.p_offset === 0 && sliceStart > 0);
  const used = label.d_partitions.filter((p, i) => p.p_size > 0 && !isRaw(p, i));
  const relative = sliceStart > 0 && used.length > 0 && used.every((p) => p.p_offset < sliceStart);
  if (relative) warnings.push(`bsd label at ${at}: offsets are below the slice start; read as slice-relative`);
  const out: Partition[] = [];
  label.d_partitions.forEach((p, i) => {
    if (p.p_size === 0 || isRaw(p, i)) return;
    const path = `${parent ?? ''}${partitionLetter(i)}`;
    const startByte = relative ? base + p.p_offset * SECTOR : p.p_offset * SECTOR;
    const ext = placeExtent(startByte, p.p_size * SECTOR, base, limit, `bsd partition ${path}`, warnings);
    if (!ext) return;
    const name = BSD_FSTYPES.get(p.p_fstype);
    out.push(
      makePartition(disk, {
        scheme: 'bsd',
        number: i,
        path,
        type: name ?? `fstype ${p.p_fstype}`,
        typeName: `BSD ${name ?? 'unknown'}`,
        start: ext.start,
        size: ext.size,
        ...(parent === undefined ? {} : { parent }),
      }),
    );
  });
  return out;
}

/** A disklabel at the start of the whole disk (no fdisk table: a "dangerously dedicated" disk). */
export const bsdScheme: PartitionScheme = wholeDiskScheme('bsd', readDisklabel);
