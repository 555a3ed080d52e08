/**
 * Raw LZ4 block decoder (lz4 "Block format" description, lz4/doc/lz4_Block_format.md), every
 * step bounds-checked. A sequence is: token (literal length high nibble, match length low nibble,
 * 15 = extended by bytes of 255…), literals, 2-byte little-endian offset, match (length + 4).
 * The last sequence ends after its literals. Framing (lz4 frame, ZFS' length prefix) is the
 * caller's job.
 */
import { CorruptError, LimitExceededError } from '../errors.ts';

export function lz4BlockDecode(input: Uint8Array, maxOutput: number): Uint8Array {
  let buf = new Uint8Array(Math.min(maxOutput, Math.max(4096, input.length * 4)));
  let ip = 0;
  let op = 0;
  const fail = (detail: string): never => {
    throw new CorruptError('lz4', detail, ip);
  };
  const ensure = (n: number): void => {
    const need = op + n;
    if (need <= buf.length) return;
    if (need > maxOutput) throw new LimitExceededError('codecOutput', `lz4 output exceeds ${maxOutput} bytes`, maxOutput);
    let size = buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(Math.min(size, maxOutput));
    next.set(buf.subarray(0, op));
    buf = next;
  };
  const extend = (n: number): number => {
    if (n !== 15) return n;
    for (;;) {
      if (ip >= input.length) fail('input ends inside a length');
      const b = input[ip++] as number;
      n += b;
      if (b !== 255) return n;
    }
  };
  if (input.length === 0) fail('empty input');
  while (ip < input.length) {
    const token = input[ip++] as number;
    const lit = extend(token >> 4);
    if (lit > input.length - ip) fail(`${lit} literals past the end of input`);
    ensure(lit);
    buf.set(input.subarray(ip, ip + lit), op);
    ip += lit;
    op += lit;
    if (ip === input.length) break; // the last sequence has no match part
    if (ip + 2 > input.length) fail('input ends inside a match offset');
    const offset = (input[ip] as number) | ((input[ip + 1] as number) << 8);
    ip += 2;
    if (offset === 0 || offset > op) fail(`match offset ${offset} before the start of output (at ${op})`);
    const len = extend(token & 15) + 4;
    ensure(len);
    let src = op - offset;
    if (offset >= len) {
      buf.copyWithin(op, src, src + len);
      op += len;
    } else {
      for (let i = 0; i < len; i++) buf[op++] = buf[src++] as number;
    }
  }
  return buf.slice(0, op);
}
