/**
 * LZJB decompressor (the original ZFS compressor; OpenZFS module/zfs/lzjb.c describes the format).
 * A copy-map byte announces the kind of the next 8 items: bit clear = one literal byte, bit set =
 * a 2-byte match: length (top 6 bits) + 3 and a 10-bit distance back into the output. ZFS records
 * carry no length: the caller passes the block's logical size, which the output must fill exactly.
 */
import { CorruptError } from '../errors.ts';

const MATCH_BITS = 6;
const MATCH_MIN = 3;
const OFFSET_MASK = (1 << (16 - MATCH_BITS)) - 1;

/** Decodes `input` into exactly `outputLength` bytes (ZFS' logical block size). */
export function lzjbDecompress(input: Uint8Array, outputLength: number): Uint8Array {
  const out = new Uint8Array(outputLength);
  let ip = 0;
  let op = 0;
  let copymask = 128;
  let copymap = 0;
  while (op < outputLength) {
    copymask *= 2;
    if (copymask === 256) {
      if (ip >= input.length) throw new CorruptError('lzjb', `input ends after ${op} of ${outputLength} bytes`, ip);
      copymask = 1;
      copymap = input[ip++] as number;
    }
    if ((copymap & copymask) !== 0) {
      if (ip + 2 > input.length) throw new CorruptError('lzjb', 'input ends inside a match', ip);
      const b0 = input[ip] as number;
      const b1 = input[ip + 1] as number;
      ip += 2;
      let mlen = (b0 >> (8 - MATCH_BITS)) + MATCH_MIN;
      const offset = ((b0 << 8) | b1) & OFFSET_MASK;
      let src = op - offset;
      if (src < 0) throw new CorruptError('lzjb', `match distance ${offset} before the start of output (at ${op})`, ip - 2);
      if (mlen > outputLength - op) mlen = outputLength - op;
      // Byte by byte: an overlapping match (distance < length) repeats the pattern, as in lzjb.c.
      while (mlen-- > 0) out[op++] = out[src++] as number;
    } else {
      if (ip >= input.length) throw new CorruptError('lzjb', `input ends after ${op} of ${outputLength} bytes`, ip);
      out[op++] = input[ip++] as number;
    }
  }
  return out;
}
