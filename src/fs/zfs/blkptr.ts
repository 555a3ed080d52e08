/**
 * Block pointers (OpenZFS include/sys/spa.h, "blkptr_t"): three DVAs, the properties word
 * (sizes, compression, checksum, type, level, byte order), births, fill and the 256-bit checksum.
 * Embedded block pointers (BP_EMBEDDED, include/sys/spa.h and module/zfs/blkptr.c) carry up to
 * 112 bytes of payload in place of the DVAs and checksum.
 */
import { CorruptError, UnsupportedError } from '../../errors.ts';
import { u64be, u64le } from '../../io/bytes.ts';

export const BLKPTR_SIZE = 128;

export interface Dva {
  readonly vdev: number;
  /** Allocated size in bytes. */
  readonly asize: number;
  /** Byte offset within the top-level vdev's allocatable space (physical = offset + 4 MiB). */
  readonly offset: number;
  readonly gang: boolean;
}

export interface BlockPtr {
  readonly dvas: readonly Dva[];
  readonly lsize: number;
  readonly psize: number;
  readonly compress: number;
  readonly checksum: number;
  readonly type: number;
  readonly level: number;
  /** Data in the block is little-endian. */
  readonly le: boolean;
  readonly encrypted: boolean;
  readonly embedded: boolean;
  readonly hole: boolean;
  readonly birth: bigint;
  readonly fill: bigint;
  readonly cksum: readonly [bigint, bigint, bigint, bigint];
  /** Embedded payload (psize bytes) when `embedded`. */
  readonly payload?: Uint8Array;
  /** Where it was read, for messages. */
  readonly at: number;
}

const SECTOR = 512;

function bits(v: bigint, lo: number, len: number): number {
  return Number((v >> BigInt(lo)) & ((1n << BigInt(len)) - 1n));
}

/**
 * Decodes the blkptr at `off` in `b`, whose fields are in byte order `le` (the byte order of the
 * block holding it). `at` is a position for messages.
 */
export function decodeBlkptr(b: Uint8Array, off: number, le: boolean, at = off): BlockPtr {
  const w = (i: number): bigint => (le ? u64le(b, off + i * 8, 'zfs.blkptr') : u64be(b, off + i * 8, 'zfs.blkptr'));
  const prop = w(6);
  const embedded = bits(prop, 39, 1) === 1;
  const level = bits(prop, 56, 5);
  const type = bits(prop, 48, 8);
  const blkLe = bits(prop, 63, 1) === 1;
  const compress = bits(prop, 32, 7);
  const birth = w(10);
  if (embedded) {
    const etype = bits(prop, 40, 8);
    if (etype !== 0) throw new UnsupportedError(`zfs embedded block pointer type ${etype}`);
    const lsize = bits(prop, 0, 25) + 1;
    const psize = bits(prop, 25, 7) + 1;
    if (psize > 112) throw new CorruptError('zfs.blkptr', `embedded payload of ${psize} bytes`, at);
    // The payload fills the words other than blk_prop (6) and blk_birth (10), each word's bytes
    // taken from the least significant up (module/zfs/blkptr.c decode_embedded_bp_compressed).
    const payload = new Uint8Array(psize);
    const words = [0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 14, 15];
    for (let i = 0; i < psize; i++) {
      const word = w(words[Math.floor(i / 8)] as number);
      payload[i] = Number((word >> BigInt((i % 8) * 8)) & 0xffn);
    }
    return {
      dvas: [], lsize, psize, compress, checksum: 2, type, level, le: blkLe, encrypted: false, embedded: true,
      hole: false, birth, fill: 1n, cksum: [0n, 0n, 0n, 0n], payload, at,
    };
  }
  const dvas: Dva[] = [];
  let hole = true;
  for (let i = 0; i < 3; i++) {
    const w0 = w(i * 2);
    const w1 = w(i * 2 + 1);
    if (w0 === 0n && w1 === 0n) continue;
    if (i === 0) hole = false;
    const asize = bits(w0, 0, 24) * SECTOR;
    const offset = Number(w1 & ((1n << 63n) - 1n)) * SECTOR;
    if (!Number.isSafeInteger(offset)) throw new CorruptError('zfs.dva', `offset ${w1} too large`, at);
    dvas.push({ vdev: bits(w0, 32, 32), asize, offset, gang: (w1 >> 63n) === 1n });
  }
  return {
    dvas,
    lsize: (bits(prop, 0, 16) + 1) * SECTOR,
    psize: (bits(prop, 16, 16) + 1) * SECTOR,
    compress,
    checksum: bits(prop, 40, 8),
    type,
    level,
    le: blkLe,
    encrypted: bits(prop, 61, 1) === 1,
    embedded: false,
    hole: hole || birth === 0n,
    birth,
    fill: w(11),
    cksum: [w(12), w(13), w(14), w(15)],
    at,
  };
}
