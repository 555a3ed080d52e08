/**
 * XFS metadata checksums (xfs_cksum.h xfs_start_cksum_safe / xfs_end_cksum): CRC-32C over the
 * buffer with the 4-byte checksum field taken as zero, stored little-endian. Computed in three
 * pieces so the caller's buffer (possibly shared with the block cache) is never modified.
 */
import { crc32cRaw } from '../../io/checksum.ts';

const ZERO4 = new Uint8Array(4);

export function xfsCksum(b: Uint8Array, length: number, cksumOffset: number): number {
  let c = crc32cRaw(0xffffffff, b.subarray(0, cksumOffset));
  c = crc32cRaw(c, ZERO4);
  c = crc32cRaw(c, b.subarray(cksumOffset + 4, length));
  return (c ^ 0xffffffff) >>> 0;
}
