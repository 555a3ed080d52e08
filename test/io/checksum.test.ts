/**
 * CRC-32C runs slicing-by-8: it must equal the bitwise definition on every length and alignment
 * (the tail loop, unaligned subarrays), chain like the kernel's crc32c_le, and give the standard
 * check values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32, crc32c, crc32cRaw } from '../../src/io/checksum.ts';

function bitwiseCrc32cRaw(seed: number, data: Uint8Array): number {
  let c = seed >>> 0;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return c >>> 0;
}

test('check values: CRC-32C("123456789") = 0xE3069283, CRC-32 = 0xCBF43926', () => {
  const s = new TextEncoder().encode('123456789');
  assert.equal(crc32c(s), 0xe3069283);
  assert.equal(crc32(s), 0xcbf43926);
});

test('crc32cRaw equals the bitwise definition on lengths 0–200 at every alignment, and chains', () => {
  const big = new Uint8Array(256 + 8);
  let x = 12345;
  for (let i = 0; i < big.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    big[i] = x >>> 16;
  }
  for (let len = 0; len <= 200; len++) {
    for (let off = 0; off < 8; off++) {
      const d = big.subarray(off, off + len);
      assert.equal(crc32cRaw(0xffffffff, d), bitwiseCrc32cRaw(0xffffffff, d), `len ${len} off ${off}`);
    }
  }
  const a = big.subarray(0, 77);
  const b = big.subarray(77, 250);
  assert.equal(crc32cRaw(crc32cRaw(0xffffffff, a), b), crc32cRaw(0xffffffff, big.subarray(0, 250)));
});
