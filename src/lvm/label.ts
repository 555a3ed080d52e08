/**
 * LVM2 on-disk label and metadata areas (lib/format_text/layout.h, lib/label/label.c):
 * `label_header` ("LABELONE", in one of the first four sectors, CRC), `pv_header` (uuid, device
 * size, data and metadata area lists), `mda_header` (" LVM2 x[5A%r0N*>", CRC) and its raw location
 * ring buffer, from which the current metadata text is read (wrapping past the end of the area).
 */
import { CorruptError, LimitExceededError } from '../errors.ts';
import { bound, cString, slice, toSafe, u32le, u64le } from '../io/bytes.ts';
import { crc32 } from '../io/checksum.ts';
import type { ByteSource } from '../io/source.ts';
import type { Context } from '../limits.ts';

const LABEL_ID = 'LABELONE';
const LABEL_TYPE = 'LVM2 001';
const MDA_MAGIC = ' LVM2 x[5A%r0N*>';
const MDA_HEADER_SIZE = 512;
const INITIAL_CRC = 0xf597a6cf;
const RAW_LOCN_IGNORED = 1;
const MAX_AREAS = 16;
const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8');

/** LVM's calc_crc: reflected CRC-32 (0xEDB88320) from INITIAL_CRC, no final inversion. */
export function lvmCrc(data: Uint8Array): number {
  return (~crc32(data, ~INITIAL_CRC >>> 0) >>> 0) >>> 0;
}

export interface DiskLocation {
  readonly offset: number;
  readonly size: number;
}

export interface PvLabel {
  /** Sector of the label (0..3). */
  readonly sector: number;
  /** 32-character PV uuid without dashes. */
  readonly uuid: string;
  readonly deviceSize: number;
  readonly dataAreas: DiskLocation[];
  readonly metadataAreas: DiskLocation[];
}

/** Decodes label_header + pv_header from the sector that carries "LABELONE". */
export function decodeLabel(sector: Uint8Array, index: number): PvLabel {
  const at = index * 512;
  const W = 'lvm.LabelHeader';
  const sector_xl = toSafe(u64le(sector, 8, W), W);
  if (sector_xl !== index) throw new CorruptError(W, `label says sector ${sector_xl}, found in sector ${index}`, at + 8);
  if (lvmCrc(slice(sector, 20, 512 - 20, W)) !== u32le(sector, 16, W)) throw new CorruptError('lvm.LabelCrc', 'checksum mismatch', at + 16);
  const offset_xl = bound(u32le(sector, 20, W), 32, 512 - 40, 'lvm.LabelOffset', at + 20);
  if (latin1.decode(slice(sector, 24, 8, W)) !== LABEL_TYPE) throw new CorruptError(W, 'label type is not "LVM2 001"', at + 24);
  const P = 'lvm.PvHeader';
  const uuid = cString(sector, offset_xl, 32, P);
  if (!/^[A-Za-z0-9!#]{32}$/.test(uuid)) throw new CorruptError(P, 'malformed PV uuid', at + offset_xl);
  const deviceSize = toSafe(u64le(sector, offset_xl + 32, P), P);
  let o = offset_xl + 40;
  const list = (what: string): DiskLocation[] => {
    const out: DiskLocation[] = [];
    for (;;) {
      const offset = toSafe(u64le(sector, o, P), what);
      const size = toSafe(u64le(sector, o + 8, P), what);
      o += 16;
      if (offset === 0) return out;
      if (out.length >= MAX_AREAS) throw new CorruptError(what, `more than ${MAX_AREAS} areas`, at + o);
      out.push({ offset, size });
    }
  };
  const dataAreas = list('lvm.DataAreas');
  const metadataAreas = list('lvm.MetadataAreas');
  return { sector: index, uuid, deviceSize, dataAreas, metadataAreas };
}

/** Finds the label in the first four sectors; null when the device is not a PV. */
export async function readLabel(src: ByteSource): Promise<PvLabel | null> {
  if (src.size < 4 * 512) return null;
  const head = await src.read(0, 4 * 512);
  for (let s = 0; s < 4; s++) {
    if (latin1.decode(head.subarray(s * 512, s * 512 + 8)) === LABEL_ID) return decodeLabel(head.subarray(s * 512, (s + 1) * 512), s);
  }
  return null;
}

/**
 * Reads the committed metadata text of one metadata area: checks the mda_header, takes the first
 * raw location (the current one), reads it with ring-buffer wrap-around and checks its CRC.
 * Returns null for an area that holds no metadata (or is marked ignored).
 */
export async function readMetadataText(src: ByteSource, area: DiskLocation, ctx: Context): Promise<string | null> {
  const W = 'lvm.MdaHeader';
  if (area.size < MDA_HEADER_SIZE * 2 || area.offset + area.size > src.size) {
    throw new CorruptError(W, `metadata area ${area.offset}+${area.size} outside the ${src.size}-byte PV`, area.offset);
  }
  ctx.budget.chargeMetadata(MDA_HEADER_SIZE);
  const h = await src.read(area.offset, MDA_HEADER_SIZE);
  if (lvmCrc(h.subarray(4)) !== u32le(h, 0, W)) throw new CorruptError('lvm.MdaHeaderCrc', 'checksum mismatch', area.offset);
  if (latin1.decode(slice(h, 4, 16, W)) !== MDA_MAGIC) throw new CorruptError(W, 'bad magic', area.offset + 4);
  const start = toSafe(u64le(h, 24, W), W);
  const size = toSafe(u64le(h, 32, W), W);
  if (start !== area.offset || size !== area.size) throw new CorruptError(W, `header says ${start}+${size}, PV header says ${area.offset}+${area.size}`, area.offset + 24);
  const offset = toSafe(u64le(h, 40, W), 'lvm.RawLocn');
  const length = toSafe(u64le(h, 48, W), 'lvm.RawLocn');
  const checksum = u32le(h, 56, W);
  const flags = u32le(h, 60, W);
  if (offset === 0 || flags % 2 === RAW_LOCN_IGNORED) return null;
  bound(offset, MDA_HEADER_SIZE, size - 1, 'lvm.RawLocnOffset', area.offset + 40);
  bound(length, 1, size - MDA_HEADER_SIZE, 'lvm.RawLocnSize', area.offset + 48);
  if (length > ctx.limits.allocBytes) throw new LimitExceededError('allocBytes', `LVM metadata of ${length} bytes`, ctx.limits.allocBytes);
  // The text area is a ring buffer after the header: a record may wrap to offset MDA_HEADER_SIZE.
  const first = Math.min(length, size - offset);
  ctx.budget.chargeMetadata(length);
  const text = new Uint8Array(length);
  text.set(await src.read(area.offset + offset, first), 0);
  if (first < length) text.set(await src.read(area.offset + MDA_HEADER_SIZE, length - first), first);
  if (lvmCrc(text) !== checksum) throw new CorruptError('lvm.MetadataCrc', 'checksum of the metadata text does not match', area.offset + 56);
  let end = text.length;
  while (end > 0 && text[end - 1] === 0) end--;
  return utf8.decode(text.subarray(0, end));
}
