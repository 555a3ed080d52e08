/**
 * LZO1X decoder ("safe" flavour: every input read, output write and look-behind is checked).
 * Written from the stream description in the Linux kernel's Documentation/staging/lzo.rst
 * ("LZO stream format as understood by Linux's LZO decompressor"). Plain LZO1X only: the lzo-rle
 * variant (first byte 17 followed by a version byte) is not recognised.
 *
 * Instruction set, with `state` = literals copied after the previous instruction (0..3, or 4
 * after a long literal run):
 *   0000LLLL state 0   : literal run of 3 + L bytes (L = 0: 18 + 255·zeros + next byte)
 *   0000DDSS state 1..3: 2-byte match, distance (H << 2) + D + 1
 *   0000DDSS state 4   : 3-byte match, distance (H << 2) + D + 2049
 *   0001HLLL           : match of 2 + L bytes (L = 0: 9 + 255·zeros + byte), distance
 *                        16384 + (H << 14) + (LE16 >> 2); distance 16384 ends the stream
 *   001LLLLL           : match of 2 + L bytes (L = 0: 33 + …), distance (LE16 >> 2) + 1
 *   01LDDDSS           : match of 3 + L bytes, distance (H << 3) + D + 1
 *   1LLDDDSS           : match of 5 + L bytes, distance (H << 3) + D + 1
 * Every match is followed by SS (0..3) literals. Values stay far below 2^31, so bit operators on
 * them are exact.
 */
import { CorruptError, LimitExceededError } from '../errors.ts';

const KIND = 'lzo';

class LzoReader {
  ip = 0;
  op = 0;
  buf: Uint8Array;
  constructor(
    readonly input: Uint8Array,
    readonly maxOutput: number,
  ) {
    // Start small and grow: the cap bounds memory, not the (untrusted) input's promise.
    this.buf = new Uint8Array(Math.min(maxOutput, Math.max(4096, input.length * 4)));
  }

  fail(detail: string): never {
    throw new CorruptError(KIND, detail, this.ip);
  }

  byte(): number {
    if (this.ip >= this.input.length) this.fail('input ends inside an instruction');
    return this.input[this.ip++] as number;
  }

  /** Length with zero-byte extension: `base` + 255 per zero byte + the first non-zero byte. */
  extended(base: number): number {
    let zeros = 0;
    for (;;) {
      const b = this.byte(); // each iteration consumes a byte, so the loop ends with the input
      if (b !== 0) return base + zeros * 255 + b;
      zeros++;
    }
  }

  private ensure(n: number): void {
    const need = this.op + n;
    if (need <= this.buf.length) return;
    if (need > this.maxOutput) {
      throw new LimitExceededError('codecOutput', `lzo output exceeds ${this.maxOutput} bytes`, this.maxOutput);
    }
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(Math.min(size, this.maxOutput));
    next.set(this.buf.subarray(0, this.op));
    this.buf = next;
  }

  literals(n: number): void {
    if (n > this.input.length - this.ip) this.fail(`literal run of ${n} bytes past the end of input`);
    this.ensure(n);
    this.buf.set(this.input.subarray(this.ip, this.ip + n), this.op);
    this.ip += n;
    this.op += n;
  }

  match(distance: number, n: number): void {
    if (distance < 1 || distance > this.op) this.fail(`match distance ${distance} before the start of output (at ${this.op})`);
    this.ensure(n);
    const b = this.buf;
    let src = this.op - distance;
    if (distance >= n) {
      b.copyWithin(this.op, src, src + n);
      this.op += n;
      return;
    }
    // Overlapping copy repeats the last `distance` bytes: byte by byte.
    for (let i = 0; i < n; i++) b[this.op++] = b[src++] as number;
  }
}

/** Decodes one LZO1X block; the result is at most `maxOutput` bytes (LimitExceeded past that). */
export function lzo1xDecode(input: Uint8Array, maxOutput: number): Uint8Array {
  const r = new LzoReader(input, maxOutput);
  let state = 0;
  let t: number;
  if (input.length === 0) r.fail('empty input');
  const first = input[0] as number;
  if (first > 17) {
    r.ip = 1;
    const n = first - 17;
    r.literals(n);
    state = n < 4 ? n : 4;
  }
  for (;;) {
    t = r.byte();
    if (t < 16) {
      if (state === 0) {
        const n = t === 0 ? r.extended(18) : t + 3;
        r.literals(n);
        state = 4;
        continue;
      }
      const h = r.byte();
      if (state === 4) r.match((h << 2) + (t >> 2) + 2049, 3);
      else r.match((h << 2) + (t >> 2) + 1, 2);
      state = t & 3;
    } else if (t < 32) {
      const len = (t & 7) === 0 ? r.extended(9) : (t & 7) + 2;
      const lo = r.byte();
      const hi = r.byte();
      const d16 = lo | (hi << 8);
      const distance = 16384 + ((t & 8) << 11) + (d16 >> 2);
      if (distance === 16384) {
        // End of stream marker (always encoded with length 3).
        if (r.ip !== input.length) r.fail(`${input.length - r.ip} bytes of input after the end marker`);
        return r.buf.slice(0, r.op);
      }
      r.match(distance, len);
      state = lo & 3;
    } else if (t < 64) {
      const len = (t & 31) === 0 ? r.extended(33) : (t & 31) + 2;
      const lo = r.byte();
      const hi = r.byte();
      r.match(((lo | (hi << 8)) >> 2) + 1, len);
      state = lo & 3;
    } else {
      const h = r.byte();
      const len = t < 128 ? 3 + ((t >> 5) & 1) : 5 + ((t >> 5) & 3);
      r.match((h << 3) + ((t >> 2) & 7) + 1, len);
      state = t & 3;
    }
    if (state > 0) r.literals(state);
  }
}
