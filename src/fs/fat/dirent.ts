/**
 * FAT directory entries (Microsoft FAT spec 1.03 §6) and VFAT long names (§7): a run of LFN entries
 * (ordinals N|0x40, N−1 … 1, each carrying the checksum of the 8.3 name that follows) before the short
 * entry. A broken run (wrong order, wrong checksum) falls back to the 8.3 name, as Windows and Linux do.
 */
import { u16le, u32le, u8 } from '../../io/bytes.ts';

export const ATTR_READ_ONLY = 0x01;
export const ATTR_HIDDEN = 0x02;
export const ATTR_SYSTEM = 0x04;
export const ATTR_VOLUME_ID = 0x08;
export const ATTR_DIRECTORY = 0x10;
export const ATTR_LONG_NAME = 0x0f;

/** Code page 437, bytes 0x80–0xFF (Linux vfat's default `codepage=437`) for 8.3 names. */
const CP437_HIGH =
  'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0';

export function cp437(bytes: Uint8Array): string {
  let s = '';
  for (const c of bytes) s += c < 0x80 ? String.fromCharCode(c) : (CP437_HIGH[c - 0x80] ?? '\ufffd');
  return s;
}

/** §7.2 ChkSum(): rotate right by one and add each of the 11 name bytes (8-bit arithmetic). */
export function shortNameChecksum(name11: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) !== 0 ? 0x80 : 0) + (sum >> 1) + (name11[i] as number)) & 0xff;
  return sum;
}

export interface FatDirent {
  /** The long name when a valid LFN run precedes the entry, else the 8.3 name. */
  readonly name: string;
  readonly shortName: string;
  readonly attr: number;
  readonly firstCluster: number;
  readonly size: number;
  readonly mtime: number;
  /** Byte offset of the short entry in the volume. */
  readonly at: number;
}

/** The 8.3 name with the NT lower-case flags (DIR_NTRes bit 3: base, bit 4: extension). */
export function shortName(e: Uint8Array): string {
  const raw = e.slice(0, 11);
  if (raw[0] === 0x05) raw[0] = 0xe5; // §6.1: 0x05 stands for a leading 0xE5 (KANJI lead byte)
  const nt = u8(e, 12);
  let base = cp437(raw.subarray(0, 8)).replace(/ +$/, '');
  let ext = cp437(raw.subarray(8, 11)).replace(/ +$/, '');
  if (nt & 0x08) base = base.toLowerCase();
  if (nt & 0x10) ext = ext.toLowerCase();
  return ext ? `${base}.${ext}` : base;
}

/** §6.1 DIR_WrtDate/DIR_WrtTime, local time stored; read as UTC. */
function fatTime(date: number, time: number): number {
  const y = 1980 + Math.floor(date / 512);
  const mo = Math.floor(date / 32) % 16;
  const d = date % 32;
  if (mo < 1 || mo > 12 || d < 1) return 0;
  return Math.floor(Date.UTC(y, mo - 1, d, Math.floor(time / 2048), Math.floor(time / 32) % 64, (time % 32) * 2) / 1000);
}

/**
 * Assembles long names across the entries of one directory. Feed entries in order; `entry()` returns
 * a decoded entry for each short entry that names a file or directory, null otherwise.
 */
export class DirentDecoder {
  private units: number[][] = [];
  private expect = 0;
  private checksum = -1;
  /** The volume label entry seen (root directory only). */
  label: string | null = null;

  private reset(): void {
    this.units = [];
    this.expect = 0;
    this.checksum = -1;
  }

  entry(e: Uint8Array, at: number): FatDirent | null {
    const first = e[0] as number;
    if (first === 0xe5) {
      this.reset();
      return null;
    }
    const attr = u8(e, 11);
    if ((attr & 0x3f) === ATTR_LONG_NAME) {
      this.lfn(e);
      return null;
    }
    if (attr & ATTR_VOLUME_ID) {
      this.reset();
      if (!(attr & ATTR_DIRECTORY)) this.label = cp437(e.subarray(0, 11)).replace(/ +$/, '');
      return null;
    }
    const sn = shortName(e);
    let name = sn;
    if (this.units.length > 0 && this.expect === 0 && this.checksum === shortNameChecksum(e.subarray(0, 11))) {
      const u: number[] = [];
      for (const part of this.units) u.push(...part);
      let end = u.indexOf(0);
      if (end < 0) end = u.length;
      const long = String.fromCharCode(...u.slice(0, end));
      if (long.length > 0) name = long;
    }
    this.reset();
    if (sn === '.' || sn === '..') return null;
    const hi = u16le(e, 20);
    const lo = u16le(e, 26);
    return {
      name,
      shortName: sn,
      attr,
      firstCluster: hi * 65536 + lo,
      size: u32le(e, 28),
      mtime: fatTime(u16le(e, 24), u16le(e, 22)),
      at,
    };
  }

  private lfn(e: Uint8Array): void {
    const ord = e[0] as number;
    const seq = ord % 64;
    const chk = e[13] as number;
    const units: number[] = [];
    for (const [o, n] of [[1, 5], [14, 6], [28, 2]] as const) for (let i = 0; i < n; i++) units.push(u16le(e, o + 2 * i));
    if (ord & 0x40) {
      // §7: the last (highest) ordinal comes first; at most 20 entries (255 characters).
      if (seq < 1 || seq > 20) {
        this.reset();
        return;
      }
      this.units = new Array<number[]>(seq);
      this.units[seq - 1] = units;
      this.expect = seq - 1;
      this.checksum = chk;
      return;
    }
    if (this.checksum < 0 || seq !== this.expect || seq < 1 || chk !== this.checksum) {
      this.reset();
      return;
    }
    this.units[seq - 1] = units;
    this.expect = seq - 1;
  }
}

/** Case folding for lookups as Linux vfat does: per code point, simple (one-to-one) lower-casing. */
export function foldName(s: string): string {
  let out = '';
  for (const ch of s) {
    const l = ch.toLowerCase();
    out += [...l].length === 1 ? l : ch;
  }
  return out;
}
