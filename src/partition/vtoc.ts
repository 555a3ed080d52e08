/**
 * Solaris x86 VTOC: illumos `struct dk_label` with `_SUNOS_VTOC_16` (sys/dklabel.h, sys/vtoc.h),
 * little-endian, in sector 1 (DK_LABEL_LOC) of an fdisk 0xBF (or old 0x82) partition, or of the
 * whole disk as GRUB's sunpc map reads it. Layout: /work/shared/docs/fs-images.md §3.3.
 */
import { CorruptError, UnsupportedError } from '../errors.ts';
import { bound, cString, u16le, u32le } from '../io/bytes.ts';
import type { ByteSource } from '../io/source.ts';
import type { Context } from '../limits.ts';
import { makePartition, placeExtent, wholeDiskScheme } from './extent.ts';
import type { Partition, PartitionScheme } from './types.ts';

const DK_LABEL_LOC = 1;
const SECTOR = 512;
const VTOC_SANE = 0x600ddeee;
const DKL_MAGIC = 0xdabe;
const V_VERSION = 1;
/** V_NUMPAR with _SUNOS_VTOC_16 (x86). */
const V_NUMPAR = 16;

/** p_tag values (sys/vtoc.h V_*). */
export const VTOC_TAGS: ReadonlyMap<number, string> = new Map([
  [0x00, 'unassigned'],
  [0x01, 'boot'],
  [0x02, 'root'],
  [0x03, 'swap'],
  [0x04, 'usr'],
  [0x05, 'backup'],
  [0x06, 'stand'],
  [0x07, 'var'],
  [0x08, 'home'],
  [0x09, 'altsctr'],
  [0x0a, 'cache'],
  [0x0b, 'reserved'],
  [0x0c, 'system'],
  [0x18, 'BIOS_boot'],
]);

export interface DkPartition {
  readonly p_tag: number;
  readonly p_flag: number;
  readonly p_start: number;
  readonly p_size: number;
}

export interface DkLabel {
  readonly v_sanity: number;
  readonly v_version: number;
  readonly v_volume: string;
  readonly v_sectorsz: number;
  readonly v_nparts: number;
  readonly v_part: readonly DkPartition[];
  readonly dkl_magic: number;
}

/** True when the 512 bytes carry both identifying words (magic at 508 and v_sanity at 12). */
export function isDkLabel(b: Uint8Array): boolean {
  return b.length >= SECTOR && u16le(b, 508, 'vtoc.dkl_magic') === DKL_MAGIC && u32le(b, 12, 'vtoc.v_sanity') === VTOC_SANE;
}

/**
 * Decodes and validates one dk_label. `offset` is its byte position in the disk (for messages).
 * The checksum is the XOR of all 256 little-endian u16 words being 0 (dkl_cksum makes it so).
 */
export function decodeDkLabel(b: Uint8Array, offset: number): DkLabel {
  if (!isDkLabel(b)) throw new CorruptError('vtoc.dkl_magic', 'no VTOC magic/sanity', offset);
  let x = 0;
  for (let i = 0; i < SECTOR; i += 2) x ^= u16le(b, i, 'vtoc.dk_label');
  if (x !== 0) throw new CorruptError('vtoc.dkl_cksum', `label checksum mismatch (xor 0x${x.toString(16)})`, offset + 510);
  const v_version = u32le(b, 16, 'vtoc.v_version');
  if (v_version !== V_VERSION) throw new UnsupportedError('Solaris VTOC', [`v_version ${v_version}`]);
  const v_sectorsz = u16le(b, 28, 'vtoc.v_sectorsz');
  // Old labels leave v_sectorsz 0; anything but 512 would change every p_start (not seen on x86).
  if (v_sectorsz !== 0 && v_sectorsz !== SECTOR) throw new UnsupportedError('Solaris VTOC', [`v_sectorsz ${v_sectorsz}`]);
  const v_nparts = bound(u16le(b, 30, 'vtoc.v_nparts'), 0, V_NUMPAR, 'vtoc.v_nparts', offset + 30);
  const v_part: DkPartition[] = [];
  for (let i = 0; i < v_nparts; i++) {
    const o = 72 + 12 * i;
    v_part.push({
      p_tag: u16le(b, o, 'vtoc.p_tag'),
      p_flag: u16le(b, o + 2, 'vtoc.p_flag'),
      p_start: u32le(b, o + 4, 'vtoc.p_start'),
      p_size: u32le(b, o + 8, 'vtoc.p_size'),
    });
  }
  return {
    v_sanity: VTOC_SANE,
    v_version,
    v_volume: cString(b, 20, 8, 'vtoc.v_volume'),
    v_sectorsz: SECTOR,
    v_nparts,
    v_part,
    dkl_magic: DKL_MAGIC,
  };
}

/**
 * Reads the VTOC of the container [base, base + limit) of `disk` (through `cache`). Returns null when
 * sector 1 holds no label; throws CorruptError/UnsupportedError for a label that is there but bad.
 * Slices (p_start relative to the container) become partitions "<parent>s<i>", clamped to the container.
 */
export async function readVtoc(
  disk: ByteSource,
  cache: ByteSource,
  base: number,
  limit: number,
  parent: string | undefined,
  ctx: Context,
  warnings: string[],
): Promise<Partition[] | null> {
  const at = base + DK_LABEL_LOC * SECTOR;
  if (limit < (DK_LABEL_LOC + 1) * SECTOR) return null;
  ctx.budget.chargeNode();
  const b = await cache.read(at, SECTOR);
  if (!isDkLabel(b)) return null;
  const label = decodeDkLabel(b, at);
  if (label.v_nparts > ctx.limits.partitionEntries) {
    warnings.push(`vtoc at ${at}: ${label.v_nparts} slices exceed limit partitionEntries; none listed`);
    return [];
  }
  const out: Partition[] = [];
  label.v_part.forEach((p, i) => {
    if (p.p_size === 0) return;
    const path = `${parent ?? ''}s${i}`;
    const ext = placeExtent(base + p.p_start * SECTOR, p.p_size * SECTOR, base, limit, `vtoc slice ${path}`, warnings);
    if (!ext) return;
    const tagName = VTOC_TAGS.get(p.p_tag);
    out.push(
      makePartition(disk, {
        scheme: 'vtoc',
        number: i,
        path,
        type: tagName ?? `tag 0x${p.p_tag.toString(16)}`,
        typeName: `Solaris ${tagName ?? 'unknown'}`,
        start: ext.start,
        size: ext.size,
        tag: p.p_tag,
        ...(parent === undefined ? {} : { parent }),
      }),
    );
  });
  return out;
}

/** Whole-disk VTOC (label at disk sector 1, no fdisk table), as GRUB's sunpc partition map reads it. */
export const vtocScheme: PartitionScheme = wholeDiskScheme('vtoc', readVtoc);
