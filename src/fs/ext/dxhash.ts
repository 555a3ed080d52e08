/**
 * Directory-index name hashes (kernel fs/ext4/hash.c, ext4.wiki "Hash Tree Directories"): legacy,
 * half-MD4 and TEA, each in signed and unsigned flavours (s_flags picks which one `char` meant on the
 * machine that made the filesystem). These are 32-bit word computations on hash state, not on
 * offsets, so the 32-bit operators are exactly what the algorithm specifies.
 */

export const DX_HASH_LEGACY = 0;
export const DX_HASH_HALF_MD4 = 1;
export const DX_HASH_TEA = 2;
export const DX_HASH_LEGACY_UNSIGNED = 3;
export const DX_HASH_HALF_MD4_UNSIGNED = 4;
export const DX_HASH_TEA_UNSIGNED = 5;

function charAt(name: Uint8Array, i: number, signed: boolean): number {
  const c = name[i] as number;
  return signed && c >= 128 ? c - 256 : c;
}

function dxHackHash(name: Uint8Array, signed: boolean): number {
  let hash0 = 0x12a3fe2d;
  let hash1 = 0x37abe8f9;
  for (let i = 0; i < name.length; i++) {
    let hash = (hash1 + ((hash0 ^ Math.imul(charAt(name, i, signed), 7152373)) >>> 0)) >>> 0;
    if (hash & 0x80000000) hash = (hash - 0x7fffffff) >>> 0;
    hash1 = hash0;
    hash0 = hash;
  }
  return (hash0 << 1) >>> 0;
}

/** str2hashbuf_{signed,unsigned}: packs up to num*4 name bytes into num words, padded with the length. */
function str2hashbuf(name: Uint8Array, start: number, num: number, signed: boolean): number[] {
  let len = name.length - start;
  let pad = (len | (len << 8)) >>> 0;
  pad = (pad | (pad << 16)) >>> 0;
  let val = pad;
  const out: number[] = [];
  if (len > num * 4) len = num * 4;
  for (let i = 0; i < len; i++) {
    val = (charAt(name, start + i, signed) + Math.imul(val, 256)) >>> 0;
    if (i % 4 === 3) {
      out.push(val);
      val = pad;
    }
  }
  if (out.length < num) out.push(val);
  while (out.length < num) out.push(pad);
  return out;
}

const rol = (x: number, s: number) => ((x << s) | (x >>> (32 - s))) >>> 0;
const F = (x: number, y: number, z: number) => (z ^ (x & (y ^ z))) >>> 0;
const G = (x: number, y: number, z: number) => (((x & y) >>> 0) + (((x ^ y) & z) >>> 0)) >>> 0;
const H = (x: number, y: number, z: number) => (x ^ y ^ z) >>> 0;
const K2 = 0o13240474631;
const K3 = 0o15666365641;

function halfMd4(buf: number[], inp: number[]): void {
  let [a, b, c, d] = buf as [number, number, number, number];
  const x = (i: number) => inp[i] as number;
  const R = (f: typeof F, p: number, q: number, r: number, s: number, v: number, k: number, sh: number) => rol((p + f(q, r, s) + v + k) >>> 0, sh);
  a = R(F, a, b, c, d, x(0), 0, 3); d = R(F, d, a, b, c, x(1), 0, 7); c = R(F, c, d, a, b, x(2), 0, 11); b = R(F, b, c, d, a, x(3), 0, 19);
  a = R(F, a, b, c, d, x(4), 0, 3); d = R(F, d, a, b, c, x(5), 0, 7); c = R(F, c, d, a, b, x(6), 0, 11); b = R(F, b, c, d, a, x(7), 0, 19);
  a = R(G, a, b, c, d, x(1), K2, 3); d = R(G, d, a, b, c, x(3), K2, 5); c = R(G, c, d, a, b, x(5), K2, 9); b = R(G, b, c, d, a, x(7), K2, 13);
  a = R(G, a, b, c, d, x(0), K2, 3); d = R(G, d, a, b, c, x(2), K2, 5); c = R(G, c, d, a, b, x(4), K2, 9); b = R(G, b, c, d, a, x(6), K2, 13);
  a = R(H, a, b, c, d, x(3), K3, 3); d = R(H, d, a, b, c, x(7), K3, 9); c = R(H, c, d, a, b, x(2), K3, 11); b = R(H, b, c, d, a, x(6), K3, 15);
  a = R(H, a, b, c, d, x(1), K3, 3); d = R(H, d, a, b, c, x(5), K3, 9); c = R(H, c, d, a, b, x(0), K3, 11); b = R(H, b, c, d, a, x(4), K3, 15);
  buf[0] = ((buf[0] as number) + a) >>> 0;
  buf[1] = ((buf[1] as number) + b) >>> 0;
  buf[2] = ((buf[2] as number) + c) >>> 0;
  buf[3] = ((buf[3] as number) + d) >>> 0;
}

function tea(buf: number[], inp: number[]): void {
  let sum = 0;
  let b0 = buf[0] as number;
  let b1 = buf[1] as number;
  const [a, b, c, d] = inp as [number, number, number, number];
  for (let n = 0; n < 16; n++) {
    sum = (sum + 0x9e3779b9) >>> 0;
    b0 = (b0 + ((((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >>> 5) + b)) >>> 0)) >>> 0;
    b1 = (b1 + ((((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >>> 5) + d)) >>> 0)) >>> 0;
  }
  buf[0] = ((buf[0] as number) + b0) >>> 0;
  buf[1] = ((buf[1] as number) + b1) >>> 0;
}

/** The major hash of `name` (bit 0 cleared), or null for an unknown hash version. */
export function dxHash(name: Uint8Array, version: number, seed: readonly number[]): number | null {
  const buf = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
  if (seed.some((s) => s !== 0)) for (let i = 0; i < 4; i++) buf[i] = seed[i] as number;
  let hash: number;
  switch (version) {
    case DX_HASH_LEGACY:
    case DX_HASH_LEGACY_UNSIGNED:
      hash = dxHackHash(name, version === DX_HASH_LEGACY);
      break;
    case DX_HASH_HALF_MD4:
    case DX_HASH_HALF_MD4_UNSIGNED:
      for (let p = 0; p < name.length; p += 32) halfMd4(buf, str2hashbuf(name, p, 8, version === DX_HASH_HALF_MD4));
      hash = buf[1] as number;
      break;
    case DX_HASH_TEA:
    case DX_HASH_TEA_UNSIGNED:
      for (let p = 0; p < name.length; p += 16) tea(buf, str2hashbuf(name, p, 4, version === DX_HASH_TEA));
      hash = buf[0] as number;
      break;
    default:
      return null;
  }
  hash = (hash & ~1) >>> 0;
  // EXT4_HTREE_EOF_32BIT << 1 is reserved.
  if (hash === 0xfffffffe) hash = 0xfffffffc;
  return hash;
}
