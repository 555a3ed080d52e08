/**
 * Block checksums (OpenZFS module/zcommon/zfs_fletcher.c, module/zfs/sha256.c, zio_checksum.c).
 * Each returns the four 64-bit words of `zio_cksum_t` as bigints. Fletcher sums run over the data's
 * words in the byte order of the block (`le`), as ZFS' byteswapped variants do. SHA-256 is our own
 * (FIPS 180-4): core code may not use node:crypto. Its digest is stored as four big-endian words.
 */
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
  0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
  0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** SHA-256 digest (32 bytes). The 32-bit bit operations here are the algorithm's own modular words. */
export function sha256(data: Uint8Array): Uint8Array {
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  const total = Math.ceil((data.length + 9) / 64) * 64;
  const tail = new Uint8Array(total - Math.floor(data.length / 64) * 64);
  const fullBlocks = Math.floor(data.length / 64);
  tail.set(data.subarray(fullBlocks * 64));
  tail[data.length - fullBlocks * 64] = 0x80;
  const bits = data.length * 8;
  const tv = new DataView(tail.buffer);
  tv.setUint32(tail.length - 8, Math.floor(bits / 2 ** 32));
  tv.setUint32(tail.length - 4, bits % 2 ** 32);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const nblocks = total / 64;
  for (let blk = 0; blk < nblocks; blk++) {
    const inData = blk < fullBlocks;
    for (let i = 0; i < 16; i++) w[i] = inData ? dv.getUint32(blk * 64 + i * 4) : tv.getUint32((blk - fullBlocks) * 64 + i * 4);
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15] as number;
      const y = w[i - 2] as number;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = ((w[i - 16] as number) + s0 + (w[i - 7] as number) + s1) >>> 0;
    }
    let a = h[0] as number, b = h[1] as number, c = h[2] as number, d = h[3] as number;
    let e = h[4] as number, f = h[5] as number, g = h[6] as number, hh = h[7] as number;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + (K[i] as number) + (w[i] as number)) >>> 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] = (h[0] as number) + a; h[1] = (h[1] as number) + b; h[2] = (h[2] as number) + c; h[3] = (h[3] as number) + d;
    h[4] = (h[4] as number) + e; h[5] = (h[5] as number) + f; h[6] = (h[6] as number) + g; h[7] = (h[7] as number) + hh;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(i * 4, h[i] as number);
  return out;
}

export type Cksum = readonly [bigint, bigint, bigint, bigint];

/** zio_cksum_t of SHA-256: the digest as four big-endian 64-bit words. */
export function sha256Words(data: Uint8Array): Cksum {
  const d = new DataView(sha256(data).buffer);
  return [d.getBigUint64(0), d.getBigUint64(8), d.getBigUint64(16), d.getBigUint64(24)];
}

const TWO32 = 2 ** 32;

/**
 * A 64-bit accumulator as two exact 32-bit halves, so sums wrap at 2^64 like the C code without
 * bigint arithmetic per word.
 */
class Acc {
  hi = 0;
  lo = 0;
  addHalves(hi: number, lo: number): void {
    let l = this.lo + lo;
    let carry = 0;
    if (l >= TWO32) { carry = Math.floor(l / TWO32); l -= carry * TWO32; }
    this.lo = l;
    this.hi = (this.hi + hi + carry) % TWO32;
  }
  add(o: Acc): void {
    this.addHalves(o.hi, o.lo);
  }
  value(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }
}

/** fletcher_4: four 64-bit sums over 32-bit words (a += w, b += a, c += b, d += c). */
export function fletcher4(data: Uint8Array, le: boolean): Cksum {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const a = new Acc(), b = new Acc(), c = new Acc(), d = new Acc();
  const n = Math.floor(data.length / 4) * 4;
  for (let i = 0; i < n; i += 4) {
    a.addHalves(0, dv.getUint32(i, le));
    b.add(a);
    c.add(b);
    d.add(c);
  }
  return [a.value(), b.value(), c.value(), d.value()];
}

/** fletcher_2: two interleaved pairs of 64-bit sums over 64-bit words (a0 += w0, a1 += w1, b0 += a0, b1 += a1). */
export function fletcher2(data: Uint8Array, le: boolean): Cksum {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const a0 = new Acc(), a1 = new Acc(), b0 = new Acc(), b1 = new Acc();
  const n = Math.floor(data.length / 16) * 16;
  const word = (off: number, acc: Acc): void => {
    const lo = dv.getUint32(le ? off : off + 4, le);
    const hi = dv.getUint32(le ? off + 4 : off, le);
    acc.addHalves(hi, lo);
  };
  for (let i = 0; i < n; i += 16) {
    word(i, a0);
    word(i + 8, a1);
    b0.add(a0);
    b1.add(a1);
  }
  return [a0.value(), a1.value(), b0.value(), b1.value()];
}
