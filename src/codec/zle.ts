/**
 * ZLE ("zero-length encoding", OpenZFS module/zfs/zle.c, level 64 as ZFS uses it): a byte n < 64
 * announces n+1 literal bytes; n ≥ 64 announces n+1−64 zero bytes. The output must fill exactly the
 * block's logical size, which the caller passes.
 */
import { CorruptError } from '../errors.ts';

export function zleDecompress(input: Uint8Array, outputLength: number, level = 64): Uint8Array {
  const out = new Uint8Array(outputLength);
  let ip = 0;
  let op = 0;
  while (ip < input.length && op < outputLength) {
    let len = 1 + (input[ip++] as number);
    if (len <= level) {
      if (len > input.length - ip || len > outputLength - op) throw new CorruptError('zle', `literal run of ${len} overruns`, ip - 1);
      out.set(input.subarray(ip, ip + len), op);
      ip += len;
      op += len;
    } else {
      len -= level;
      if (len > outputLength - op) throw new CorruptError('zle', `zero run of ${len} overruns the output`, ip - 1);
      op += len; // already zero
    }
  }
  if (op !== outputLength) throw new CorruptError('zle', `decoded ${op} of ${outputLength} bytes`, ip);
  return out;
}
