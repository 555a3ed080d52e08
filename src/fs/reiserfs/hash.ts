/**
 * The three directory name hashes (kernel fs/reiserfs/hashes.c): keyed_hash ("tea"), yura_hash
 * ("rupasov") and r5_hash, selected by the superblock's s_hash_function_code. All three take the name
 * as `signed char`, so bytes ≥ 0x80 are sign-extended before use, exactly as the kernel does; that
 * matters for non-ASCII names. Arithmetic is 32-bit (Math.imul and `>>> 0`): these are hash values,
 * not sizes, so 32-bit wrap-around is the specified behaviour.
 */
import { R5_HASH, TEA_HASH, YURA_HASH } from './superblock.ts';

export type NameHash = (name: Uint8Array) => number;

function sc(b: number): number {
  return b >= 0x80 ? b - 0x100 : b;
}

/** r5_hash: stops at the first NUL, like the kernel's `while (*msg)`. */
export function r5Hash(name: Uint8Array): number {
  let a = 0;
  for (const byte of name) {
    if (byte === 0) break;
    const c = sc(byte);
    a = (a + (c << 4)) >>> 0;
    a = (a + (c >> 4)) >>> 0;
    a = Math.imul(a, 11) >>> 0;
  }
  return a;
}

const DELTA = 0x9e3779b9;

/** keyed_hash: TEA in a Davis–Meyer construction over 16-byte blocks, padded with the length. */
export function teaHash(name: Uint8Array): number {
  let h0 = 0x9464a485;
  let h1 = 0x542e1a94;
  let len = name.length;
  let p = 0;
  const m = (i: number): number => sc(name[p + i] as number) >>> 0;
  const word = (i: number): number => (m(i) | (m(i + 1) << 8) | (m(i + 2) << 16) | (m(i + 3) << 24)) >>> 0;
  let pad = (len | (len << 8)) >>> 0;
  pad = (pad | (pad << 16)) >>> 0;

  const core = (rounds: number, a: number, b: number, c: number, d: number): void => {
    let sum = 0;
    let b0 = h0;
    let b1 = h1;
    for (let n = rounds; n > 0; n--) {
      sum = (sum + DELTA) >>> 0;
      b0 = (b0 + ((((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >>> 5) + b)) >>> 0)) >>> 0;
      b1 = (b1 + ((((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >>> 5) + d)) >>> 0)) >>> 0;
    }
    h0 = (h0 + b0) >>> 0;
    h1 = (h1 + b1) >>> 0;
  };

  while (len >= 16) {
    core(6, word(0), word(4), word(8), word(12));
    len -= 16;
    p += 16;
  }
  let a: number;
  let b: number;
  let c: number;
  let d: number;
  const tail = (start: number, init: number): number => {
    let v = init;
    for (let i = start; i < len; i++) v = ((v << 8) | m(i)) >>> 0;
    return v;
  };
  if (len >= 12) {
    a = word(0);
    b = word(4);
    c = word(8);
    d = tail(12, pad);
  } else if (len >= 8) {
    a = word(0);
    b = word(4);
    d = pad;
    c = tail(8, pad);
  } else if (len >= 4) {
    a = word(0);
    c = d = pad;
    b = tail(4, pad);
  } else {
    b = c = d = pad;
    a = tail(0, pad);
  }
  core(10, a, b, c, d);
  return (h0 ^ h1) >>> 0;
}

/** yura_hash: a decimal-positional sum; `pow` is a C int that wraps, so Math.imul throughout. */
export function yuraHash(name: Uint8Array): number {
  const len = name.length;
  const msg = (i: number): number => sc(name[i] as number);
  const powFrom = (i: number): number => {
    let pow = 1;
    for (let j = i; j < len - 1; j++) pow = Math.imul(pow, 10);
    return pow;
  };
  let pow = 1;
  for (let i = 1; i < len; i++) pow = Math.imul(pow, 10);
  let a = len === 1 ? (msg(0) - 48) >>> 0 : Math.imul(msg(0) - 48, pow) >>> 0;
  let i = 1;
  for (; i < len; i++) a = (a + Math.imul(msg(i) - 48, powFrom(i))) >>> 0;
  // '0' - 48 is zero: the kernel's loop up to 40 adds nothing.
  if (i < 40) i = 40;
  for (; i < 256; i++) a = (a + Math.imul(i, powFrom(i))) >>> 0;
  return (a << 7) >>> 0;
}

/** The hash for s_hash_function_code, or null when unset/unknown (lookups then scan linearly). */
export function hashFor(code: number): NameHash | null {
  switch (code) {
    case TEA_HASH:
      return teaHash;
    case YURA_HASH:
      return yuraHash;
    case R5_HASH:
      return r5Hash;
    default:
      return null;
  }
}

/** reiserfs.h GET_HASH_VALUE: bits 7..30 of the hash; the low 7 bits are the generation number. */
export function hashValue(h: NameHash, name: Uint8Array): number {
  // A 0 hash value would sort before "." and ".."; the kernel (get_third_component) uses 128 instead.
  const v = h(name) & 0x7fffff80;
  return v === 0 ? 128 : v;
}
