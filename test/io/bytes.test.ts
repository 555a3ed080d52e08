/**
 * The field readers assemble bytes by hand (no DataView per call): they must agree with DataView on
 * every width and byte order, including values with the top bit set, and refuse reads past the end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { i32be, i32le, u16be, u16le, u32be, u32le, u32leWords, u64be, u64beSafe, u64le, u64leSafe } from '../../src/io/bytes.ts';
import { CorruptError } from '../../src/errors.ts';

function* cases(): Generator<Uint8Array> {
  yield new Uint8Array(8);
  yield new Uint8Array(8).fill(0xff);
  yield Uint8Array.from([0x80, 0, 0, 0x80, 0, 0, 0x1f, 0]);
  yield Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0]); // 2^53 - 1 (LE)
  let x = 0x9e3779b9;
  for (let i = 0; i < 2000; i++) {
    const b = new Uint8Array(8);
    for (let k = 0; k < 8; k++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      b[k] = x >>> 24;
    }
    yield b;
  }
}

test('8/16/32-bit readers equal DataView on 2,000 random and edge values, both byte orders', () => {
  for (const b of cases()) {
    const v = new DataView(b.buffer);
    for (const off of [0, 1, 4]) {
      assert.equal(u16le(b, off), v.getUint16(off, true));
      assert.equal(u16be(b, off), v.getUint16(off, false));
      assert.equal(u32le(b, off), v.getUint32(off, true));
      assert.equal(u32be(b, off), v.getUint32(off, false));
      assert.equal(i32le(b, off), v.getInt32(off, true));
      assert.equal(i32be(b, off), v.getInt32(off, false));
    }
  }
});

test('u64*Safe are exact up to 2^53−1 and refuse anything larger', () => {
  for (const b of cases()) {
    for (const [safe, big] of [
      [u64leSafe, u64le],
      [u64beSafe, u64be],
    ] as const) {
      const exact = big(b, 0);
      if (exact <= BigInt(Number.MAX_SAFE_INTEGER)) assert.equal(BigInt(safe(b, 0)), exact);
      else assert.throws(() => safe(b, 0, 'test.Field'), (e: unknown) => e instanceof CorruptError && /exceeds 2\^53/.test(e.message));
    }
  }
  assert.equal(u64leSafe(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0]), 0), Number.MAX_SAFE_INTEGER);
  assert.throws(() => u64leSafe(Uint8Array.from([0, 0, 0, 0, 0, 0, 0x20, 0]), 0), CorruptError);
});

test('a read past the end is a CorruptError naming the structure', () => {
  const b = new Uint8Array(6);
  for (const f of [u16le, u32le, u32be, i32le]) assert.throws(() => f(b, 5, 'ext.Thing'), (e: unknown) => e instanceof CorruptError && /ext\.Thing/.test(e.message));
  assert.throws(() => u64leSafe(b, 0, 'x.Y'), CorruptError);
  assert.throws(() => u32le(b, -1), CorruptError);
  assert.throws(() => u32le(b, 1.5), CorruptError);
});

test('u32leWords: a view equal to u32le word by word where aligned and long enough, else null', () => {
  const buf = new Uint8Array(64);
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 37 + 200) & 0xff;
  const littleHost = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
  const words = u32leWords(buf.subarray(8), 10);
  if (!littleHost) {
    assert.equal(words, null);
    return;
  }
  assert.ok(words);
  assert.equal(words.length, 10);
  for (let k = 0; k < 10; k++) assert.equal(words[k], u32le(buf, 8 + 4 * k));
  // A view, not a copy.
  buf[8] ^= 0xff;
  assert.equal(words[0], u32le(buf, 8));
  assert.equal(u32leWords(buf.subarray(2), 4), null, 'unaligned');
  assert.equal(u32leWords(buf.subarray(8), 15), null, 'past the end');
  assert.equal(u32leWords(buf.subarray(8), 14)?.length, 14);
});
