/**
 * The browser codec table: the portable codecs (zstd, lz4, lzo) plus zlib, raw deflate and gzip
 * through fflate's synchronous inflater (drivers decode synchronously, so DecompressionStream, which
 * is async only, does not fit the Decoder contract). fflate writes into a buffer we preallocate
 * at maxOutput + 1 bytes: it never grows it, so a deflate bomb costs CPU but no memory, and a
 * result that fills the spare byte means the output was longer than allowed. fflate does not check
 * zlib's Adler-32 nor gzip's CRC-32/ISIZE, so we do (RFC 1950 §2.2, RFC 1952 §2.3.1).
 */
import { gunzipSync, inflateSync } from 'fflate';
import { CorruptError, LimitExceededError } from '../errors.ts';
import { crc32 } from '../io/checksum.ts';
import { webCodecs } from '../codec/web.ts';
import type { CodecTable, Decoder } from '../codec/types.ts';

/** Adler-32 (RFC 1950 §8.2); 5552 is the largest run whose sums cannot overflow 2^53 before the modulo. */
export function adler32(data: Uint8Array): number {
  let a = 1;
  let b = 0;
  for (let i = 0; i < data.length; ) {
    const end = Math.min(i + 5552, data.length);
    for (; i < end; i++) {
      a += data[i] as number;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return b * 65536 + a;
}

function be32(b: Uint8Array, o: number): number {
  return (b[o] as number) * 0x1000000 + (b[o + 1] as number) * 0x10000 + (b[o + 2] as number) * 0x100 + (b[o + 3] as number);
}
function le32(b: Uint8Array, o: number): number {
  return (b[o + 3] as number) * 0x1000000 + (b[o + 2] as number) * 0x10000 + (b[o + 1] as number) * 0x100 + (b[o] as number);
}

/** Runs an fflate call into a preallocated buffer and maps its failures to typed errors. */
function bounded(kind: string, maxOutput: number, run: (out: Uint8Array) => Uint8Array): Uint8Array {
  if (!Number.isSafeInteger(maxOutput) || maxOutput < 0) throw new LimitExceededError('codecOutput', `${kind} output cap ${maxOutput}`);
  const out = new Uint8Array(maxOutput + 1);
  let res: Uint8Array;
  try {
    res = run(out);
  } catch (e) {
    // A stored block larger than the buffer makes TypedArray#set throw a RangeError: too much output.
    if (e instanceof RangeError) throw new LimitExceededError('codecOutput', `${kind} output exceeds ${maxOutput} bytes`, maxOutput);
    throw new CorruptError(kind, e instanceof Error ? e.message : String(e));
  }
  if (res.length > maxOutput) throw new LimitExceededError('codecOutput', `${kind} output exceeds ${maxOutput} bytes`, maxOutput);
  // Keep the spare capacity from pinning memory when the output is much shorter than allowed.
  return res.length * 2 < out.length ? res.slice() : res;
}

const deflate: Decoder = (input, maxOutput) => bounded('deflate', maxOutput, (out) => inflateSync(input, { out }));

/**
 * zlib (RFC 1950): header checked, deflate body inflated, Adler-32 verified. Filesystems store
 * streams padded to a sector, so the trailer is looked for where only zero padding follows it.
 */
const zlib: Decoder = (input, maxOutput) => {
  if (input.length < 6) throw new CorruptError('zlib', `stream of ${input.length} bytes is too short`);
  const cmf = input[0] as number;
  const flg = input[1] as number;
  if ((cmf & 0x0f) !== 8 || (cmf >> 4) > 7 || (cmf * 256 + flg) % 31 !== 0) throw new CorruptError('zlib', 'bad header', 0);
  if (flg & 0x20) throw new CorruptError('zlib', 'preset dictionary (FDICT) not supported', 1);
  const out = bounded('zlib', maxOutput, (buf) => inflateSync(input.subarray(2), { out: buf }));
  const want = adler32(out);
  let end = input.length;
  while (end > 6 && input[end - 1] === 0) end--;
  for (let p = Math.max(2, end - 4); p + 4 <= input.length; p++) {
    if (be32(input, p) === want) return out;
  }
  throw new CorruptError('zlib', 'Adler-32 mismatch');
};

/** gzip (RFC 1952): one member; CRC-32 and ISIZE (length mod 2^32) from the trailer verified. */
const gzip: Decoder = (input, maxOutput) => {
  if (input.length < 18) throw new CorruptError('gzip', `member of ${input.length} bytes is too short`);
  const out = bounded('gzip', maxOutput, (buf) => gunzipSync(input, { out: buf }));
  const t = input.length - 8;
  if (le32(input, t) !== crc32(out)) throw new CorruptError('gzip', 'CRC-32 mismatch', t);
  if (le32(input, t + 4) !== out.length % 2 ** 32) throw new CorruptError('gzip', 'ISIZE mismatch', t + 4);
  return out;
};

export const browserCodecs: CodecTable = Object.freeze({ ...webCodecs, zlib, deflate, gzip });
