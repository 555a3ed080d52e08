/**
 * Bounds-checked field readers over Uint8Array. Every on-disk field is read through these, never by
 * raw indexing (which yields `undefined` past the end) or by ad-hoc shifts (which truncate to 32 bits
 * and sign-extend). A read past the end of the buffer is a CorruptError naming the structure.
 *
 * The 8/16/32-bit readers assemble bytes after the bounds check: exact for these widths (the 32-bit
 * ones end in `>>> 0` or `| 0` on purpose), and, unlike a DataView per call, they allocate nothing —
 * metadata parsing runs them millions of times on a large map (bench/README.md, "Mapping").
 */
import { CorruptError } from '../errors.ts';

function need(b: Uint8Array, off: number, n: number, what: string): void {
  if (!Number.isInteger(off) || off < 0 || off + n > b.length) {
    throw new CorruptError(what, `field at ${off}+${n} lies outside a ${b.length}-byte structure`);
  }
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

export function u8(b: Uint8Array, off: number, what = 'structure'): number {
  need(b, off, 1, what);
  return b[off] as number;
}
export function u16le(b: Uint8Array, off: number, what = 'structure'): number {
  need(b, off, 2, what);
  return (b[off] as number) | ((b[off + 1] as number) << 8);
}
export function u16be(b: Uint8Array, off: number, what = 'structure'): number {
  need(b, off, 2, what);
  return ((b[off] as number) << 8) | (b[off + 1] as number);
}
export function u32le(b: Uint8Array, off: number, what = 'structure'): number {
  need(b, off, 4, what);
  return ((b[off] as number) | ((b[off + 1] as number) << 8) | ((b[off + 2] as number) << 16) | ((b[off + 3] as number) << 24)) >>> 0;
}
export function u32be(b: Uint8Array, off: number, what = 'structure'): number {
  need(b, off, 4, what);
  return (((b[off] as number) << 24) | ((b[off + 1] as number) << 16) | ((b[off + 2] as number) << 8) | (b[off + 3] as number)) >>> 0;
}
export function i32le(b: Uint8Array, off: number, what = 'structure'): number {
  need(b, off, 4, what);
  return (b[off] as number) | ((b[off + 1] as number) << 8) | ((b[off + 2] as number) << 16) | ((b[off + 3] as number) << 24);
}
export function i32be(b: Uint8Array, off: number, what = 'structure'): number {
  need(b, off, 4, what);
  return ((b[off] as number) << 24) | ((b[off + 1] as number) << 16) | ((b[off + 2] as number) << 8) | (b[off + 3] as number);
}
/** Exact 64-bit value. */
export function u64le(b: Uint8Array, off: number, what = 'structure'): bigint {
  need(b, off, 8, what);
  return view(b).getBigUint64(off, true);
}
export function u64be(b: Uint8Array, off: number, what = 'structure'): bigint {
  need(b, off, 8, what);
  return view(b).getBigUint64(off, false);
}
export function i64le(b: Uint8Array, off: number, what = 'structure'): bigint {
  need(b, off, 8, what);
  return view(b).getBigInt64(off, true);
}
export function i64be(b: Uint8Array, off: number, what = 'structure'): bigint {
  need(b, off, 8, what);
  return view(b).getBigInt64(off, false);
}

/**
 * A 64-bit field that must fit a JS number exactly (≤ 2^53−1); anything larger is corrupt for us.
 * Assembled from two exact 32-bit halves: hi·2^32 + lo is exact whenever hi < 2^21.
 */
export function u64leSafe(b: Uint8Array, off: number, what = 'structure'): number {
  need(b, off, 8, what);
  return joinSafe(u32le(b, off + 4, what), u32le(b, off, what), what);
}
export function u64beSafe(b: Uint8Array, off: number, what = 'structure'): number {
  need(b, off, 8, what);
  return joinSafe(u32be(b, off, what), u32be(b, off + 4, what), what);
}
function joinSafe(hi: number, lo: number, what: string): number {
  if (hi >= 0x200000) throw new CorruptError(what, `64-bit value ${(BigInt(hi) << 32n) | BigInt(lo)} exceeds 2^53`);
  return hi * 0x100000000 + lo;
}
export function toSafe(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < 0n) {
    throw new CorruptError(what, `64-bit value ${v} exceeds 2^53`);
  }
  return Number(v);
}

/** Sub-range of a buffer, checked (no silent clamping as `subarray` does). */
export function slice(b: Uint8Array, off: number, len: number, what = 'structure'): Uint8Array {
  need(b, off, len, what);
  return b.subarray(off, off + len);
}

/** 2^n for n up to 52, without 32-bit shift truncation. */
export function pow2(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 52) throw new RangeError(`pow2(${n})`);
  return 2 ** n;
}

/**
 * Checks a number read from an image before it is used as a length/count/offset/index/depth:
 * finite integer within [min, max]. Names what failed (the file-type `getSafeBound` pattern).
 */
export function bound(value: number, min: number, max: number, what: string, offset?: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new CorruptError(what, `value ${value} outside [${min}, ${max}]`, offset);
  }
  return value;
}

/** a*b, a+b that must stay exact integers (≤ 2^53); overflow is corruption of `what`. */
export function mulSafe(a: number, b: number, what: string): number {
  const r = a * b;
  if (!Number.isSafeInteger(r)) throw new CorruptError(what, `${a} * ${b} overflows`);
  return r;
}
export function addSafe(a: number, b: number, what: string): number {
  const r = a + b;
  if (!Number.isSafeInteger(r)) throw new CorruptError(what, `${a} + ${b} overflows`);
  return r;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
export const textEncoder = new TextEncoder();

/** Decodes (lossy) a NUL-terminated or fixed-size field. */
export function cString(b: Uint8Array, off: number, len: number, what = 'structure'): string {
  const s = slice(b, off, len, what);
  const nul = s.indexOf(0);
  return utf8.decode(nul >= 0 ? s.subarray(0, nul) : s);
}

export function decodeUtf8(b: Uint8Array): string {
  return utf8.decode(b);
}
/** Strict UTF-8 (pygrub decodes configs strictly); returns null on invalid input. */
export function decodeUtf8Strict(b: Uint8Array): string | null {
  try {
    return utf8Strict.decode(b);
  } catch {
    return null;
  }
}

export function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

/** RFC 4122 textual UUID from 16 bytes in on-disk (big-endian) order. */
export function uuidString(b: Uint8Array): string {
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
/** GUID in Microsoft mixed-endian order (GPT). */
export function guidString(b: Uint8Array): string {
  const r = (o: number, n: number) => hex(b.subarray(o, o + n).slice().reverse());
  return `${r(0, 4)}-${r(4, 2)}-${r(6, 2)}-${hex(b.subarray(8, 10))}-${hex(b.subarray(10, 16))}`;
}

/** Joins buffers into one (the only buffer itself when there is one). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Whether this host stores integers little-endian (typed-array views of little-endian structures are then exact). */
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * The first `count` little-endian 32-bit words of `b` as a view (no copy); null where the host is
 * big-endian, `b` is not 4-byte aligned in its buffer, or it holds fewer bytes (then read with u32le).
 * For the hot loops over on-disk arrays (indirect blocks, extent entries, FAT entries) that a boot runs
 * once, mostly unoptimized, where a call per field costs more than the field.
 */
export function u32leWords(b: Uint8Array, count: number): Uint32Array | null {
  return LITTLE_ENDIAN_HOST && (b.byteOffset & 3) === 0 && count >= 0 && count * 4 <= b.length ? new Uint32Array(b.buffer, b.byteOffset, count) : null;
}
