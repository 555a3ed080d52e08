/**
 * XDR-encoded nvlists (OpenZFS module/nvpair/nvpair.c, nvs_xdr_*): the vdev label config and the
 * MOS "config" object. Layout: a 4-byte stream header (encoding 1 = XDR, endian), then per list
 * `int32 version, uint32 nvflag`, then pairs `int32 encoded_size, int32 decoded_size, string name,
 * int32 type, int32 nelem, value`, ended by a pair whose sizes are 0. XDR is big-endian, 4-byte
 * aligned. Nested lists (types 19/20) follow inline. Everything is bounded: depth, pairs, lengths.
 */
import { CorruptError, UnsupportedError } from '../../errors.ts';

export type NvValue = bigint | string | boolean | Uint8Array | NvList | NvList[] | bigint[] | string[] | boolean[] | null;
export type NvList = Map<string, NvValue>;

const MAX_DEPTH = 16;
const MAX_PAIRS = 65536;

const enum T {
  BOOLEAN = 1, BYTE = 2, INT16 = 3, UINT16 = 4, INT32 = 5, UINT32 = 6, INT64 = 7, UINT64 = 8, STRING = 9,
  BYTE_ARRAY = 10, INT16_ARRAY = 11, UINT16_ARRAY = 12, INT32_ARRAY = 13, UINT32_ARRAY = 14, INT64_ARRAY = 15,
  UINT64_ARRAY = 16, STRING_ARRAY = 17, HRTIME = 18, NVLIST = 19, NVLIST_ARRAY = 20, BOOLEAN_VALUE = 21,
  INT8 = 22, UINT8 = 23, BOOLEAN_ARRAY = 24, INT8_ARRAY = 25, UINT8_ARRAY = 26, DOUBLE = 27,
}

class Reader {
  pos: number;
  pairs = 0;
  private readonly dv: DataView;
  constructor(readonly b: Uint8Array, start: number, readonly base: number) {
    this.pos = start;
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  fail(detail: string): never {
    throw new CorruptError('zfs.nvlist', detail, this.base + this.pos);
  }
  need(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0 || this.pos + n > this.b.length) this.fail(`${n} bytes past the end of a ${this.b.length}-byte list`);
  }
  u32(): number {
    this.need(4);
    const v = this.dv.getUint32(this.pos, false);
    this.pos += 4;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.dv.getInt32(this.pos, false);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.dv.getBigUint64(this.pos, false);
    this.pos += 8;
    return v;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += Math.ceil(n / 4) * 4;
    if (this.pos > this.b.length) this.fail('padding past the end');
    return v;
  }
  string(): string {
    const n = this.u32();
    return new TextDecoder().decode(this.bytes(n));
  }
  /** An element count that must fit the remaining bytes at `minSize` bytes each. */
  count(n: number, minSize: number): number {
    if (n < 0 || n * minSize > this.b.length - this.pos) this.fail(`element count ${n} exceeds the remaining bytes`);
    return n;
  }
}

function decodeList(r: Reader, depth: number): NvList {
  if (depth > MAX_DEPTH) r.fail(`nesting deeper than ${MAX_DEPTH}`);
  r.i32(); // nvl_version
  r.u32(); // nvl_nvflag
  const out: NvList = new Map();
  for (;;) {
    const start = r.pos;
    const encSize = r.i32();
    const decSize = r.i32();
    if (encSize === 0 && decSize === 0) return out;
    if (++r.pairs > MAX_PAIRS) r.fail(`more than ${MAX_PAIRS} pairs`);
    if (encSize < 8 || encSize > r.b.length - start) r.fail(`pair size ${encSize}`);
    const name = r.string();
    const type = r.i32();
    const nelem = r.i32();
    if (nelem < 0) r.fail(`negative element count ${nelem}`);
    r.count(nelem, 1); // every element takes at least one byte of what is left
    out.set(name, decodeValue(r, type, nelem, depth));
    // The nested lists are inside the pair's encoded size; skip any trailing bytes we did not parse.
    if (r.pos > start + encSize) r.fail(`pair ${name} overruns its encoded size ${encSize}`);
    r.pos = start + encSize;
  }
}

function decodeValue(r: Reader, type: number, nelem: number, depth: number): NvValue {
  switch (type) {
    case T.BOOLEAN:
      return true;
    case T.BYTE: case T.INT16: case T.UINT16: case T.INT32: case T.UINT32: case T.INT8: case T.UINT8:
      return BigInt(type === T.INT16 || type === T.INT32 || type === T.INT8 ? r.i32() : r.u32());
    case T.BOOLEAN_VALUE:
      return r.i32() !== 0;
    case T.INT64: case T.UINT64: case T.HRTIME:
      return r.u64();
    case T.DOUBLE:
      r.u64();
      return null;
    case T.STRING:
      return r.string();
    case T.BYTE_ARRAY: case T.UINT8_ARRAY: case T.INT8_ARRAY: {
      if (type === T.BYTE_ARRAY) return r.bytes(r.count(nelem, 1)); // xdr_opaque: no count prefix
      const n = r.count(r.u32(), 4);
      const a = new Uint8Array(n);
      for (let i = 0; i < n; i++) a[i] = r.u32() % 256;
      return a;
    }
    case T.INT16_ARRAY: case T.UINT16_ARRAY: case T.INT32_ARRAY: case T.UINT32_ARRAY: {
      const n = r.count(r.u32(), 4);
      const a: bigint[] = [];
      for (let i = 0; i < n; i++) a.push(BigInt(r.u32()));
      return a;
    }
    case T.BOOLEAN_ARRAY: {
      const n = r.count(r.u32(), 4);
      const a: boolean[] = [];
      for (let i = 0; i < n; i++) a.push(r.u32() !== 0);
      return a;
    }
    case T.INT64_ARRAY: case T.UINT64_ARRAY: {
      const n = r.count(r.u32(), 8);
      const a: bigint[] = [];
      for (let i = 0; i < n; i++) a.push(r.u64());
      return a;
    }
    case T.STRING_ARRAY: {
      const n = r.count(nelem, 4);
      const a: string[] = [];
      for (let i = 0; i < n; i++) a.push(r.string());
      return a;
    }
    case T.NVLIST:
      return decodeList(r, depth + 1);
    case T.NVLIST_ARRAY: {
      const n = r.count(nelem, 8);
      const a: NvList[] = [];
      for (let i = 0; i < n; i++) a.push(decodeList(r, depth + 1));
      return a;
    }
    default:
      return r.fail(`unknown pair type ${type}`);
  }
}

/**
 * Decodes a packed nvlist (stream header + list). `base` is the byte offset of `b` in its source,
 * for error messages.
 */
export function decodeNvlist(b: Uint8Array, base = 0): NvList {
  const r = new Reader(b, 0, base);
  r.need(4);
  const encoding = b[0] as number;
  if (encoding !== 1) throw new UnsupportedError(`zfs nvlist encoding ${encoding} (only XDR)`);
  r.pos = 4;
  return decodeList(r, 0);
}

export function nvU64(l: NvList, key: string): bigint | undefined {
  const v = l.get(key);
  return typeof v === 'bigint' ? v : undefined;
}
export function nvNum(l: NvList, key: string): number | undefined {
  const v = nvU64(l, key);
  return v !== undefined && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
}
export function nvStr(l: NvList, key: string): string | undefined {
  const v = l.get(key);
  return typeof v === 'string' ? v : undefined;
}
export function nvList(l: NvList, key: string): NvList | undefined {
  const v = l.get(key);
  return v instanceof Map ? v : undefined;
}
export function nvLists(l: NvList, key: string): NvList[] {
  const v = l.get(key);
  return Array.isArray(v) && v.every((x) => x instanceof Map) ? (v as NvList[]) : [];
}
