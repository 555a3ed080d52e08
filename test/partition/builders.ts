/** In-memory disks for the hostile partition tests: sparse (only written sectors are stored). */
import { crc32 } from '../../src/io/checksum.ts';
import { checkRange, type ByteSource } from '../../src/io/source.ts';

/** A disk of any size whose unwritten bytes read as zeros; counts reads so tests can bound work. */
export class SparseDisk implements ByteSource {
  readonly name = 'sparse';
  readonly sectors = new Map<number, Uint8Array>();
  readCalls = 0;
  bytesRead = 0;
  constructor(readonly size: number) {}
  write(offset: number, data: Uint8Array): this {
    for (let i = 0; i < data.length; i++) {
      const o = offset + i;
      const s = Math.floor(o / 512);
      let sec = this.sectors.get(s);
      if (!sec) this.sectors.set(s, (sec = new Uint8Array(512)));
      sec[o - s * 512] = data[i] as number;
    }
    return this;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    this.readCalls++;
    this.bytesRead += length;
    const out = new Uint8Array(length);
    for (let s = Math.floor(offset / 512); s * 512 < offset + length; s++) {
      const sec = this.sectors.get(s);
      if (!sec) continue;
      for (let i = 0; i < 512; i++) {
        const o = s * 512 + i - offset;
        if (o >= 0 && o < length) out[o] = sec[i] as number;
      }
    }
    return out;
  }
}

export interface MbrRecord {
  status?: number;
  type: number;
  start: number;
  sectors: number;
}

/** A 512-byte MBR/EBR sector with up to four records and the 55AA signature. */
export function mbrSector(records: readonly MbrRecord[], diskId = 0): Uint8Array {
  const b = new Uint8Array(512);
  const v = new DataView(b.buffer);
  v.setUint32(440, diskId, true);
  records.forEach((r, i) => {
    const o = 446 + 16 * i;
    b[o] = r.status ?? 0;
    b[o + 4] = r.type;
    v.setUint32(o + 8, r.start, true);
    v.setUint32(o + 12, r.sectors, true);
  });
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

export interface GptSpec {
  sectorSize?: number;
  count?: number;
  entrySize?: number;
  entries?: { type: Uint8Array; first: bigint; last: bigint; attrs?: bigint; name?: string }[];
  /** Corrupt the primary header's CRC. */
  badPrimary?: boolean;
  /** Write the backup header and array at the end. */
  backup?: boolean;
  /** Override the entry array CRC. */
  arrayCrc?: number;
}

/** GUID bytes in GPT (mixed-endian) order from text. */
export function guidBytes(s: string): Uint8Array {
  const h = s.replace(/-/g, '');
  const b = Uint8Array.from(h.match(/../g)!.map((x) => parseInt(x, 16)));
  const sw = (o: number, n: number) => b.subarray(o, o + n).reverse();
  sw(0, 4);
  sw(4, 2);
  sw(6, 2);
  return b;
}

function header(ss: number, my: bigint, alt: bigint, first: bigint, last: bigint, entLba: bigint, count: number, size: number, arrCrc: number): Uint8Array {
  const h = new Uint8Array(ss);
  const v = new DataView(h.buffer);
  h.set(new TextEncoder().encode('EFI PART'), 0);
  v.setUint32(8, 0x10000, true);
  v.setUint32(12, 92, true);
  v.setBigUint64(24, my, true);
  v.setBigUint64(32, alt, true);
  v.setBigUint64(40, first, true);
  v.setBigUint64(48, last, true);
  h.set(guidBytes('11111111-2222-3333-4444-555555555555'), 56);
  v.setBigUint64(72, entLba, true);
  v.setUint32(80, count >>> 0, true);
  v.setUint32(84, size >>> 0, true);
  v.setUint32(88, arrCrc, true);
  v.setUint32(16, crc32(h.subarray(0, 92)), true);
  return h;
}

/** A protective MBR plus GPT (UEFI §5.3) on `disk`. */
export function writeGpt(disk: SparseDisk, spec: GptSpec = {}): void {
  const ss = spec.sectorSize ?? 512;
  const n = Math.floor(disk.size / ss);
  const count = spec.count ?? 128;
  const size = spec.entrySize ?? 128;
  const arr = new Uint8Array(Math.min(count * size, 128 * 128) || 0);
  const av = new DataView(arr.buffer);
  (spec.entries ?? []).forEach((e, i) => {
    const o = i * size;
    arr.set(e.type, o);
    arr.set(guidBytes(`00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`), o + 16);
    av.setBigUint64(o + 32, e.first, true);
    av.setBigUint64(o + 40, e.last, true);
    av.setBigUint64(o + 48, e.attrs ?? 0n, true);
    const name = e.name ?? '';
    for (let k = 0; k < name.length; k++) av.setUint16(o + 56 + 2 * k, name.charCodeAt(k), true);
  });
  const arrSectors = Math.ceil((128 * 128) / ss);
  const crc = spec.arrayCrc ?? crc32(arr);
  disk.write(0, mbrSector([{ type: 0xee, start: 1, sectors: Math.min(n - 1, 0xffffffff) }]));
  const first = BigInt(2 + arrSectors);
  const last = BigInt(n - 2 - arrSectors);
  const primary = header(ss, 1n, BigInt(n - 1), first, last, 2n, count, size, crc);
  if (spec.badPrimary) primary[16] = (primary[16] as number) ^ 0xff;
  disk.write(ss, primary);
  disk.write(2 * ss, arr);
  if (spec.backup) {
    const entLba = BigInt(n - 1 - arrSectors);
    disk.write(Number(entLba) * ss, arr);
    disk.write((n - 1) * ss, header(ss, BigInt(n - 1), 1n, first, last, entLba, count, size, crc));
  }
}

/** A Solaris x86 dk_label (fs-images.md §3.3) with a valid checksum unless told otherwise. */
export function dkLabel(slices: { i: number; tag: number; start: number; size: number }[], nparts = 16, badSum = false): Uint8Array {
  const b = new Uint8Array(512);
  const v = new DataView(b.buffer);
  v.setUint32(12, 0x600ddeee, true);
  v.setUint32(16, 1, true);
  v.setUint16(28, 512, true);
  v.setUint16(30, nparts, true);
  for (const s of slices) {
    v.setUint16(72 + 12 * s.i, s.tag, true);
    v.setUint32(72 + 12 * s.i + 4, s.start, true);
    v.setUint32(72 + 12 * s.i + 8, s.size, true);
  }
  v.setUint16(508, 0xdabe, true);
  let x = 0;
  for (let i = 0; i < 510; i += 2) x ^= v.getUint16(i, true);
  v.setUint16(510, badSum ? x ^ 1 : x, true);
  return b;
}

/** A BSD disklabel (struct disklabel) with valid magics and checksum. */
export function disklabel(parts: { i: number; offset: number; size: number; fstype: number }[], npartitions = 8): Uint8Array {
  const b = new Uint8Array(512);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0x82564557, true);
  v.setUint32(40, 512, true);
  v.setUint32(132, 0x82564557, true);
  v.setUint16(138, npartitions, true);
  for (const p of parts) {
    const o = 148 + 16 * p.i;
    v.setUint32(o, p.size, true);
    v.setUint32(o + 4, p.offset, true);
    b[o + 12] = p.fstype;
  }
  let x = 0;
  for (let i = 0; i < Math.min(512, 148 + 16 * npartitions); i += 2) x ^= v.getUint16(i, true);
  v.setUint16(136, x, true);
  return b;
}
