/**
 * ISO 9660 directory records (ECMA-119 §9.1) and both-endian fields (§7.2.3, §7.3.3): the two
 * copies must agree, a mismatch is corruption (a hostile image could show each reader a different value).
 */
import { CorruptError } from '../../errors.ts';
import { slice, u16be, u16le, u32be, u32le, u8 } from '../../io/bytes.ts';

export function bothEndian32(b: Uint8Array, off: number, what: string, at?: number): number {
  const le = u32le(b, off, what);
  const be = u32be(b, off + 4, what);
  if (le !== be) throw new CorruptError(what, `both-endian field at +${off}: LE ${le} != BE ${be}`, at);
  return le;
}

export function bothEndian16(b: Uint8Array, off: number, what: string, at?: number): number {
  const le = u16le(b, off, what);
  const be = u16be(b, off + 2, what);
  if (le !== be) throw new CorruptError(what, `both-endian field at +${off}: LE ${le} != BE ${be}`, at);
  return le;
}

/** ECMA-119 §9.1.6 file flags. */
export const FLAG_HIDDEN = 0x01;
export const FLAG_DIRECTORY = 0x02;
export const FLAG_ASSOCIATED = 0x04;
export const FLAG_MULTI_EXTENT = 0x80;

/** The fixed part of a directory record is 33 bytes, then the identifier (§9.1). */
export const RECORD_HEADER = 33;

export interface DirectoryRecord {
  /** Byte offset of the record in the image (for messages). */
  readonly at: number;
  readonly length: number;
  readonly extentLba: number;
  readonly dataLength: number;
  readonly flags: number;
  readonly fileUnitSize: number;
  readonly interleaveGap: number;
  /** Raw file identifier bytes (§9.1.11). */
  readonly identifier: Uint8Array;
  /** Recording date (§9.1.5), seconds since the epoch. */
  readonly mtime: number;
  /** System use area (§9.1.13), where SUSP entries live. */
  readonly systemUse: Uint8Array;
}

/**
 * Decodes the record at `off` of `b` (a sector-aligned directory buffer); `at` is b's image offset.
 * The caller guarantees `length` ≥ 1 and that the record does not cross a sector.
 */
export function decodeRecord(b: Uint8Array, off: number, at: number): DirectoryRecord {
  const what = 'iso9660.DirectoryRecord';
  const where = at + off;
  const length_of_directory_record = u8(b, off, what);
  const file_identifier_length = u8(b, off + 32, what);
  // XSA-497: the record must hold its fixed header and its identifier before anything is read from it.
  if (length_of_directory_record < RECORD_HEADER + 1 || RECORD_HEADER + file_identifier_length > length_of_directory_record) {
    throw new CorruptError(what, `record length ${length_of_directory_record} cannot hold a ${file_identifier_length}-byte identifier`, where);
  }
  const rec = slice(b, off, length_of_directory_record, what);
  const extent = bothEndian32(rec, 2, what, where);
  const data_length = bothEndian32(rec, 10, what, where);
  const file_flags = u8(rec, 25, what);
  const file_unit_size = u8(rec, 26, what);
  const interleave_gap_size = u8(rec, 27, what);
  const identifier = slice(rec, 33, file_identifier_length, what);
  // §9.1.12: a padding byte follows an even-length identifier.
  const suStart = RECORD_HEADER + file_identifier_length + (file_identifier_length % 2 === 0 ? 1 : 0);
  const systemUse = suStart <= length_of_directory_record ? rec.subarray(suStart) : new Uint8Array(0);
  return {
    at: where,
    length: length_of_directory_record,
    extentLba: extent,
    dataLength: data_length,
    flags: file_flags,
    fileUnitSize: file_unit_size,
    interleaveGap: interleave_gap_size,
    identifier,
    mtime: recordingDate(rec, 18),
    systemUse,
  };
}

/** §9.1.5: years since 1900, month, day, hour, minute, second, GMT offset in 15-minute units. */
export function recordingDate(b: Uint8Array, off: number): number {
  const y = u8(b, off) + 1900;
  const mo = u8(b, off + 1);
  const d = u8(b, off + 2);
  const h = u8(b, off + 3);
  const mi = u8(b, off + 4);
  const s = u8(b, off + 5);
  let tz = u8(b, off + 6);
  if (tz > 127) tz -= 256;
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return 0;
  return Math.floor(Date.UTC(y, mo - 1, d, h, mi, s) / 1000) - tz * 15 * 60;
}

/** §8.4.26.1 17-byte "YYYYMMDDHHMMSScc" + offset, as GRUB prints a volume UUID: YYYY-MM-DD-HH-mm-ss-cc. */
export function decDatetimeUuid(b: Uint8Array): string | undefined {
  const digits = String.fromCharCode(...b.subarray(0, 16));
  if (!/^[0-9]{16}$/.test(digits) || /^0+$/.test(digits)) return undefined;
  const p = (i: number, n: number) => digits.slice(i, i + n);
  return `${p(0, 4)}-${p(4, 2)}-${p(6, 2)}-${p(8, 2)}-${p(10, 2)}-${p(12, 2)}-${p(14, 2)}`;
}
