/**
 * System Use Sharing Protocol (SUSP 1.12) and Rock Ridge (RRIP 1.12) entries of one directory record.
 * XSA-497 is the checklist: every entry length has a lower bound (≥ 4, so the walk progresses) and an
 * upper bound (inside its area); NM needs ≥ 5 bytes; a CE window must lie inside its sector and the
 * image; CE hops are bounded and never revisit an area.
 */
import { CorruptError, LimitExceededError } from '../../errors.ts';
import { u8 } from '../../io/bytes.ts';
import type { ByteSource } from '../../io/source.ts';
import type { Context } from '../../limits.ts';
import { SECTOR } from './descriptors.ts';
import { bothEndian32 } from './record.ts';

/** Continuation areas one record may chain through; real writers use one at most. */
export const MAX_CE_HOPS = 16;

export interface RockRidge {
  /** SP seen (only meaningful on the root's "." record): SUSP is in use, skipping `skip` bytes. */
  sp: { skip: number } | null;
  /** ER seen: the extension identifier (RRIP_1991A, IEEE_P1282, IEEE_1282). */
  er: string | null;
  /** Any Rock Ridge entry seen (PX, NM, SL, TF, CL, PL, RE, …). */
  rr: boolean;
  name: Uint8Array | null;
  nameIsDot: boolean;
  mode: number | null;
  nlink: number | null;
  uid: number | null;
  gid: number | null;
  mtime: number | null;
  symlink: Uint8Array | null;
  childLink: number | null;
  parentLink: number | null;
  relocated: boolean;
  zisofs: boolean;
}

function empty(): RockRidge {
  return {
    sp: null, er: null, rr: false, name: null, nameIsDot: false, mode: null, nlink: null, uid: null, gid: null,
    mtime: null, symlink: null, childLink: null, parentLink: null, relocated: false, zisofs: false,
  };
}

const SLASH = 0x2f;

class Builder {
  readonly out = empty();
  private nameParts: number[] = [];
  private nameDone = false;
  private link: number[] = [];
  private linkStarted = false;
  private linkDone = false;
  /** Whether the next SL component starts a new path component (needs a '/'). */
  private linkNeedSlash = false;
  constructor(private readonly ctx: Context) {}

  finish(): RockRidge {
    if (this.nameParts.length > 0) this.out.name = Uint8Array.from(this.nameParts);
    if (this.linkStarted) this.out.symlink = Uint8Array.from(this.link);
    return this.out;
  }

  nm(e: Uint8Array, at: number): void {
    // RRIP §4.1.4: flags, then name content; len 5 is an empty piece (legal with a flag set).
    if (e.length < 5) throw new CorruptError('iso9660.SUSP.NM', `NM entry length ${e.length} < 5`, at);
    const flags = u8(e, 4);
    this.out.rr = true;
    if (flags & 0x06) {
      this.out.nameIsDot = true;
      return;
    }
    if (this.nameDone) return; // a second, unrelated NM: keep the first complete name
    for (let i = 5; i < e.length; i++) this.nameParts.push(e[i] as number);
    if (this.nameParts.length > 4 * this.ctx.limits.nameBytes + 1024) {
      throw new LimitExceededError('nameBytes', `Rock Ridge name of ${this.nameParts.length} bytes`, this.ctx.limits.nameBytes);
    }
    if (!(flags & 0x01)) this.nameDone = true;
  }

  sl(e: Uint8Array, at: number): void {
    // RRIP §4.1.3: flags (bit 0: continues in the next SL), then component records.
    if (e.length < 5) throw new CorruptError('iso9660.SUSP.SL', `SL entry length ${e.length} < 5`, at);
    this.out.rr = true;
    if (this.linkDone) return;
    this.linkStarted = true;
    const flags = u8(e, 4);
    let off = 5;
    while (off < e.length) {
      if (off + 2 > e.length) throw new CorruptError('iso9660.SUSP.SL', 'component header crosses the entry end', at + off);
      const cflags = u8(e, off);
      const clen = u8(e, off + 1);
      if (off + 2 + clen > e.length) throw new CorruptError('iso9660.SUSP.SL', `component of ${clen} bytes crosses the entry end`, at + off);
      const content = e.subarray(off + 2, off + 2 + clen);
      if (cflags & 0x08) {
        // ROOT: the path is absolute.
        this.link.length = 0;
        this.link.push(SLASH);
        this.linkNeedSlash = false;
      } else {
        if (this.linkNeedSlash) this.link.push(SLASH);
        if (cflags & 0x02) this.link.push(0x2e);
        else if (cflags & 0x04) this.link.push(0x2e, 0x2e);
        else for (const c of content) this.link.push(c);
        // Component CONTINUE (bit 0): the next component is more of this same name.
        this.linkNeedSlash = !(cflags & 0x01);
      }
      if (this.link.length > this.ctx.limits.pathBytes) {
        throw new LimitExceededError('pathBytes', `Rock Ridge symlink of ${this.link.length} bytes`, this.ctx.limits.pathBytes);
      }
      off += 2 + clen;
    }
    if (!(flags & 0x01)) this.linkDone = true;
  }
}

/** RRIP §4.1.6 TF: a flags byte, then timestamps in a fixed order, 7 bytes each (17 with LONG_FORM). */
function decodeTF(e: Uint8Array, at: number): number | null {
  if (e.length < 5) throw new CorruptError('iso9660.SUSP.TF', `TF entry length ${e.length} < 5`, at);
  const flags = u8(e, 4);
  const size = flags & 0x80 ? 17 : 7;
  let off = 5;
  // order: CREATION(1), MODIFY(2), ACCESS(4), ATTRIBUTES(8), ...
  if (flags & 0x01) off += size;
  if (!(flags & 0x02)) return null;
  if (off + size > e.length) throw new CorruptError('iso9660.SUSP.TF', 'modify time crosses the entry end', at);
  if (size === 7) {
    const y = (e[off] as number) + 1900;
    const mo = e[off + 1] as number;
    const d = e[off + 2] as number;
    let tz = e[off + 6] as number;
    if (tz > 127) tz -= 256;
    if (mo < 1 || mo > 12 || d < 1 || d > 31) return null;
    return Math.floor(Date.UTC(y, mo - 1, d, e[off + 3] as number, e[off + 4] as number, e[off + 5] as number) / 1000) - tz * 900;
  }
  const s = String.fromCharCode(...e.subarray(off, off + 14));
  if (!/^[0-9]{14}$/.test(s)) return null;
  let tz = e[off + 16] as number;
  if (tz > 127) tz -= 256;
  const t = Date.UTC(+s.slice(0, 4), +s.slice(4, 6) - 1, +s.slice(6, 8), +s.slice(8, 10), +s.slice(10, 12), +s.slice(12, 14));
  return Math.floor(t / 1000) - tz * 900;
}

/**
 * Walks the SUSP entries of `area` (the system use area after the SP skip bytes) and of its CE
 * continuation areas. `at` is the area's image offset, for messages. `meta` reads metadata (BlockCache).
 */
export async function parseSystemUse(area: Uint8Array, at: number, meta: ByteSource, ctx: Context): Promise<RockRidge> {
  const b = new Builder(ctx);
  const visited = new Set<number>();
  let cur: Uint8Array | null = area;
  let curAt = at;
  let hops = 0;
  while (cur) {
    let next: { block: number; offset: number; length: number; at: number } | null = null;
    let off = 0;
    // Fewer than 4 bytes left is padding (SUSP §5.1 entries have a 4-byte header).
    while (off + 4 <= cur.length) {
      const sig = String.fromCharCode(cur[off] as number, cur[off + 1] as number);
      const len = cur[off + 2] as number;
      const where = curAt + off;
      if (len < 4) throw new CorruptError('iso9660.SUSP', `${JSON.stringify(sig)} entry length ${len} < 4`, where);
      if (len > cur.length - off) throw new CorruptError('iso9660.SUSP', `${JSON.stringify(sig)} entry length ${len} exceeds the ${cur.length - off} bytes left`, where);
      const e = cur.subarray(off, off + len);
      off += len;
      switch (sig) {
        case 'SP':
          // SUSP §5.3: check bytes BE EF, then LEN_SKP.
          if (len >= 7 && e[4] === 0xbe && e[5] === 0xef) b.out.sp = { skip: e[6] as number };
          break;
        case 'CE':
          // SUSP §5.1: block, offset, length of the continuation area (both-endian).
          if (len < 28) throw new CorruptError('iso9660.SUSP.CE', `CE entry length ${len} < 28`, where);
          next = {
            block: bothEndian32(e, 4, 'iso9660.SUSP.CE', where),
            offset: bothEndian32(e, 12, 'iso9660.SUSP.CE', where),
            length: bothEndian32(e, 20, 'iso9660.SUSP.CE', where),
            at: where,
          };
          break;
        case 'ST':
          off = cur.length; // SUSP §5.4: stop
          break;
        case 'ER': {
          // SUSP §5.5: LEN_ID at 4, LEN_DES 5, LEN_SRC 6, EXT_VER 7, identifier at 8.
          if (len < 8) throw new CorruptError('iso9660.SUSP.ER', `ER entry length ${len} < 8`, where);
          const idLen = e[4] as number;
          if (8 + idLen > len) throw new CorruptError('iso9660.SUSP.ER', `identifier of ${idLen} bytes crosses the entry end`, where);
          b.out.er = String.fromCharCode(...e.subarray(8, 8 + idLen));
          break;
        }
        case 'PX':
          // RRIP §4.1.1: mode, links, uid, gid (both-endian 32-bit each), optional serial.
          if (len < 36) throw new CorruptError('iso9660.SUSP.PX', `PX entry length ${len} < 36`, where);
          b.out.rr = true;
          b.out.mode = bothEndian32(e, 4, 'iso9660.SUSP.PX', where);
          b.out.nlink = bothEndian32(e, 12, 'iso9660.SUSP.PX', where);
          b.out.uid = bothEndian32(e, 20, 'iso9660.SUSP.PX', where);
          b.out.gid = bothEndian32(e, 28, 'iso9660.SUSP.PX', where);
          break;
        case 'NM':
          b.nm(e, where);
          break;
        case 'SL':
          b.sl(e, where);
          break;
        case 'TF': {
          b.out.rr = true;
          const t = decodeTF(e, where);
          if (t !== null) b.out.mtime = t;
          break;
        }
        case 'CL':
          if (len < 12) throw new CorruptError('iso9660.SUSP.CL', `CL entry length ${len} < 12`, where);
          b.out.rr = true;
          b.out.childLink = bothEndian32(e, 4, 'iso9660.SUSP.CL', where);
          break;
        case 'PL':
          if (len < 12) throw new CorruptError('iso9660.SUSP.PL', `PL entry length ${len} < 12`, where);
          b.out.rr = true;
          b.out.parentLink = bothEndian32(e, 4, 'iso9660.SUSP.PL', where);
          break;
        case 'RE':
          b.out.rr = true;
          b.out.relocated = true;
          break;
        case 'ZF':
          b.out.zisofs = true;
          break;
        default:
          break; // RR, PN, SF, PD, AA, AL …: not needed to read files
      }
    }
    cur = null;
    if (next) {
      if (++hops > MAX_CE_HOPS) throw new LimitExceededError('iso9660.ceHops', `more than ${MAX_CE_HOPS} SUSP continuation areas`, MAX_CE_HOPS);
      // The window must lie inside its sector (XSA-497: it escaped the one-sector buffer) and the image.
      if (next.offset >= SECTOR || next.length > SECTOR - next.offset || next.length === 0) {
        throw new CorruptError('iso9660.SUSP.CE', `continuation window ${next.offset}+${next.length} outside its ${SECTOR}-byte block`, next.at);
      }
      const start = next.block * SECTOR + next.offset;
      if (!Number.isSafeInteger(start) || start + next.length > meta.size) {
        throw new CorruptError('iso9660.SUSP.CE', `continuation block ${next.block} outside the image`, next.at);
      }
      if (visited.has(start)) throw new CorruptError('iso9660.SUSP.CE', `continuation area at ${start} revisited`, next.at);
      visited.add(start);
      cur = await meta.read(start, next.length);
      curAt = start;
    }
  }
  return b.finish();
}
