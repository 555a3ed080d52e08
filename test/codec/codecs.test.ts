/**
 * Codec tests: round trips against real compressors (zstd, gzip, lz4 CLIs, node:zlib, liblzo2 via
 * python ctypes), bombs that must stop at maxOutput, truncated/garbage input → typed errors, and
 * mutation fuzzing where only TsgrubErrors may escape.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { TsgrubError } from '../../src/errors.ts';
import { lz4BlockDecode } from '../../src/codec/lz4.ts';
import { lzo1xDecode } from '../../src/codec/lzo.ts';
import { nodeCodecs } from '../../src/codec/node.ts';
import { webCodecs } from '../../src/codec/web.ts';
import type { Decoder } from '../../src/codec/types.ts';
import { zstdDecode } from '../../src/codec/zstd.ts';
import { hasTool, run } from '../helpers/fixtures.ts';

/** Deterministic mixed data: text-like runs and pseudo-random bytes (compressible, not trivially). */
function sample(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  const words = ['menuentry ', 'linux ', '/boot/vmlinuz ', 'root=/dev/xvda1 ', 'initrd ', '\n', '{', '}'];
  let i = 0;
  while (i < n) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    if (x % 4 === 0) {
      out[i++] = x & 0xff;
    } else {
      const w = words[x % words.length] as string;
      for (let k = 0; k < w.length && i < n; k++) out[i++] = w.charCodeAt(k);
    }
  }
  return out;
}

const SIZES = [0, 1, 17, 4096, 65536 + 123, 300_000];

function expectTyped(fn: () => unknown, code?: string, kind?: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TsgrubError, `untyped error escaped: ${String(e)}`);
    if (code) assert.equal(e.code, code, e.message);
    if (kind) assert.equal(e.data.kind, kind, e.message);
    return;
  }
  assert.fail('expected an error');
}

/** Mutates `base` `rounds` times (byte flips, truncation, insertion) and checks only typed errors escape. */
function fuzz(decode: Decoder, base: Uint8Array, rounds: number, maxOutput: number, seed: number): { ok: number; failed: number } {
  let x = seed;
  const rnd = (m: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % m;
  };
  let ok = 0;
  let failed = 0;
  for (let r = 0; r < rounds; r++) {
    let m = base.slice();
    const kind = rnd(4);
    if (kind === 0) m = m.subarray(0, rnd(m.length + 1));
    const flips = 1 + rnd(8);
    for (let k = 0; k < flips && m.length > 0; k++) m[rnd(m.length)] = rnd(256);
    if (kind === 3 && m.length > 0) {
      const at = rnd(m.length);
      const ins = new Uint8Array(m.length + 4);
      ins.set(m.subarray(0, at));
      ins.set([rnd(256), rnd(256), 0, 0xff], at);
      ins.set(m.subarray(at), at + 4);
      m = ins;
    }
    try {
      const out = decode(m, maxOutput);
      assert.ok(out.length <= maxOutput, 'output above the cap');
      ok++;
    } catch (e) {
      if (!(e instanceof TsgrubError)) throw new Error(`round ${r}: untyped ${String(e)}`);
      failed++;
    }
  }
  return { ok, failed };
}

describe('zlib family (node:zlib)', () => {
  it('round-trips node:zlib and gzip(1) output', (t) => {
    for (const n of SIZES) {
      const data = sample(n, n + 7);
      assert.deepEqual(nodeCodecs.zlib?.(deflateSync(data), n), data);
      assert.deepEqual(nodeCodecs.deflate?.(deflateRawSync(data), n), data);
      assert.deepEqual(nodeCodecs.gzip?.(gzipSync(data), n), data);
    }
    if (!hasTool('gzip')) return t.skip('gzip not installed');
    const data = sample(200_000, 3);
    assert.deepEqual(nodeCodecs.gzip?.(run('gzip', ['-9c'], { input: Buffer.from(data) }), data.length), data);
  });

  it('stops a 64 MiB zero bomb at maxOutput', () => {
    const bomb = deflateSync(new Uint8Array(64 << 20), { level: 9 });
    assert.ok(bomb.length < 70_000);
    expectTyped(() => nodeCodecs.zlib?.(bomb, 128 * 1024), 'LimitExceeded');
  });

  it('rejects truncated and garbage input with CorruptError', () => {
    const z = deflateSync(sample(10_000));
    expectTyped(() => nodeCodecs.zlib?.(z.subarray(0, z.length - 9), 20_000), 'Corrupt', 'zlib');
    expectTyped(() => nodeCodecs.zlib?.(new Uint8Array([1, 2, 3, 4, 5]), 20_000), 'Corrupt', 'zlib');
    const bad = Uint8Array.from(z);
    bad[bad.length - 1] ^= 1; // adler32
    expectTyped(() => nodeCodecs.zlib?.(bad, 20_000), 'Corrupt', 'zlib');
  });

  it('fuzz: 2000 mutated streams, only typed errors', () => {
    const r = fuzz(nodeCodecs.zlib as Decoder, deflateSync(sample(65536, 9)), 2000, 65536, 1);
    assert.ok(r.failed > 1500, `mutations mostly rejected (${r.failed})`);
  });
});

/** A zstd frame of `blocks` RLE blocks of 128 KiB each, optionally declaring a content size. */
function zstdRleBomb(blocks: number, declared: number | null): Uint8Array {
  const header = declared === null ? [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38 /* window 128 KiB */] : [0x28, 0xb5, 0x2f, 0xfd, 0xc0 /* FCS 8 bytes, window desc */, 0x38];
  const fcs: number[] = [];
  if (declared !== null) for (let i = 0; i < 8; i++) fcs.push(Math.floor(declared / 2 ** (8 * i)) % 256);
  const out = new Uint8Array(header.length + fcs.length + blocks * 4);
  out.set(header);
  out.set(fcs, header.length);
  let p = header.length + fcs.length;
  for (let b = 0; b < blocks; b++) {
    const last = b === blocks - 1 ? 1 : 0;
    const bh = last + (1 << 1) + 131072 * 8; // RLE block of 128 KiB
    out[p++] = bh % 256;
    out[p++] = Math.floor(bh / 256) % 256;
    out[p++] = Math.floor(bh / 65536) % 256;
    out[p++] = 0;
  }
  return out;
}

describe('zstd (fzstd with our caps)', () => {
  it('round-trips zstd(1) output at several levels', (t) => {
    if (!hasTool('zstd')) return t.skip('zstd not installed');
    for (const n of SIZES) {
      const data = sample(n, n + 11);
      for (const level of ['-1', '-19']) {
        const z = run('zstd', [level, '-c', '-q'], { input: Buffer.from(data) });
        assert.deepEqual(zstdDecode(z, n), data, `size ${n} level ${level}`);
      }
    }
    // Two concatenated frames and a trailing zero pad (as btrfs stores extents).
    const a = sample(5000, 1);
    const b = sample(7000, 2);
    const za = run('zstd', ['-c', '-q'], { input: Buffer.from(a) });
    const zb = run('zstd', ['-c', '-q'], { input: Buffer.from(b) });
    const both = new Uint8Array(za.length + zb.length + 100);
    both.set(za);
    both.set(zb, za.length);
    assert.deepEqual(zstdDecode(both, 12000), Uint8Array.from([...a, ...b]));
  });

  it('refuses a 64 KiB frame declaring 1 GiB before decoding', () => {
    const bomb = zstdRleBomb(16000, 2 ** 30);
    assert.ok(bomb.length < 65536);
    const t0 = Date.now();
    expectTyped(() => zstdDecode(bomb, 128 * 1024), 'LimitExceeded');
    assert.ok(Date.now() - t0 < 1000);
  });

  it('stops an undeclared 2 GiB RLE bomb at maxOutput', () => {
    const bomb = zstdRleBomb(16000, null);
    const t0 = Date.now();
    expectTyped(() => zstdDecode(bomb, 128 * 1024), 'LimitExceeded');
    assert.ok(Date.now() - t0 < 2000);
  });

  it('stops a real zstd(1) bomb (64 MiB of zeros) at maxOutput', (t) => {
    if (!hasTool('zstd')) return t.skip('zstd not installed');
    const z = run('zstd', ['-19', '-c', '-q'], { input: Buffer.alloc(64 << 20) });
    expectTyped(() => zstdDecode(z, 128 * 1024), 'LimitExceeded');
  });

  it('rejects truncated and garbage input with CorruptError kind zstd', (t) => {
    expectTyped(() => zstdDecode(new Uint8Array([1, 2, 3, 4, 5, 6]), 100), 'Corrupt', 'zstd');
    expectTyped(() => zstdDecode(new Uint8Array(0), 100), 'Corrupt', 'zstd');
    if (!hasTool('zstd')) return t.skip('zstd not installed');
    const z = run('zstd', ['-c', '-q'], { input: Buffer.from(sample(50_000)) });
    expectTyped(() => zstdDecode(z.subarray(0, z.length - 20), 50_000), 'Corrupt', 'zstd');
  });

  it('fuzz: 2000 mutated frames, only typed errors, output within the cap', (t) => {
    if (!hasTool('zstd')) return t.skip('zstd not installed');
    const z = run('zstd', ['-c', '-q'], { input: Buffer.from(sample(65536, 5)) });
    fuzz(zstdDecode, z, 2000, 65536, 2);
  });
});

/** Blocks of an lz4(1) frame (lz4 frame format: magic, FLG, BD, [content size], HC, blocks, end mark). */
function lz4FrameBlocks(frame: Uint8Array): { data: Uint8Array; compressed: boolean }[] {
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  assert.equal(dv.getUint32(0, true), 0x184d2204);
  const flg = frame[4] as number;
  let p = 7 + (flg & 8 ? 8 : 0) + (flg & 1 ? 4 : 0);
  const out: { data: Uint8Array; compressed: boolean }[] = [];
  for (;;) {
    const v = dv.getUint32(p, true);
    p += 4;
    if (v === 0) break;
    const len = v & 0x7fffffff;
    out.push({ data: frame.subarray(p, p + len), compressed: (v & 0x80000000) === 0 });
    p += len + (flg & 0x10 ? 4 : 0);
  }
  return out;
}

describe('lz4 block decoder', () => {
  it('round-trips the blocks of lz4(1) frames', (t) => {
    if (!hasTool('lz4')) return t.skip('lz4 not installed');
    for (const n of SIZES.filter((s) => s > 0)) {
      const data = sample(n, n + 3);
      const frame = run('lz4', ['-c', '-q', '-B4', '--no-frame-crc'], { input: Buffer.from(data) });
      const parts: Uint8Array[] = [];
      for (const b of lz4FrameBlocks(frame)) parts.push(b.compressed ? lz4BlockDecode(b.data, 64 * 1024) : b.data);
      assert.deepEqual(Uint8Array.from(parts.flatMap((p) => [...p])), data, `size ${n}`);
    }
  });

  it('bombs, truncation and bad offsets are typed errors', () => {
    // One literal, then a 65 KiB-long match of distance 1 repeated: output far over the cap.
    const seq: number[] = [];
    for (let i = 0; i < 100; i++) seq.push(0x1f, 0x41, 0x01, 0x00, ...new Array(256).fill(255), 0);
    seq.push(0x10, 0x41);
    expectTyped(() => lz4BlockDecode(Uint8Array.from(seq), 4096), 'LimitExceeded');
    expectTyped(() => lz4BlockDecode(Uint8Array.from([0x1f, 0x41, 0x05, 0x00, 0x00]), 4096), 'Corrupt', 'lz4'); // offset 5 > 1 byte of output
    expectTyped(() => lz4BlockDecode(Uint8Array.from([0xf0, 0xff]), 4096), 'Corrupt', 'lz4'); // length runs out
    expectTyped(() => lz4BlockDecode(Uint8Array.from([0x50, 1, 2]), 4096), 'Corrupt', 'lz4'); // literals past input
    expectTyped(() => lz4BlockDecode(Uint8Array.from([0x11, 0x41, 0x00, 0x00, 0x10, 0x41]), 4096), 'Corrupt', 'lz4'); // offset 0
  });

  it('fuzz: 3000 mutated blocks', (t) => {
    if (!hasTool('lz4')) return t.skip('lz4 not installed');
    const frame = run('lz4', ['-c', '-q', '-B4', '--no-frame-crc'], { input: Buffer.from(sample(60000, 8)) });
    const [block] = lz4FrameBlocks(frame);
    assert.ok(block?.compressed);
    fuzz(lz4BlockDecode, block.data, 3000, 65536, 3);
  });
});

/** LZO1X-1 compression by liblzo2 (the reference implementation) through python ctypes. */
function lzoCompress(data: Uint8Array): Uint8Array | null {
  const script = `
import ctypes, sys
l = ctypes.CDLL('liblzo2.so.2')
src = sys.stdin.buffer.read()
if l.__lzo_init_v2(1, -1, -1, -1, -1, -1, -1, -1, -1, -1) != 0: sys.exit(3)
dst = ctypes.create_string_buffer(len(src) + len(src) // 16 + 64 + 3)
dl = ctypes.c_size_t(0)
wrk = ctypes.create_string_buffer(1 << 17)
if l.lzo1x_1_compress(src, ctypes.c_size_t(len(src)), dst, ctypes.byref(dl), wrk) != 0: sys.exit(4)
sys.stdout.buffer.write(dst.raw[:dl.value])
`;
  const r = spawnSync('python3', ['-c', script], { input: data, maxBuffer: 64 << 20 });
  return r.status === 0 ? new Uint8Array(r.stdout) : null;
}

describe('lzo1x decoder', () => {
  const probe = lzoCompress(new Uint8Array([1, 2, 3]));

  it('round-trips liblzo2 lzo1x_1_compress output', (t) => {
    if (!probe) return t.skip('python3 + liblzo2.so.2 not available (btrfs-lzo images still test the decoder)');
    for (const n of [...SIZES.filter((s) => s > 0), 3, 4, 5, 238, 239, 270, 1 << 20]) {
      const data = sample(n, n + 5);
      const c = lzoCompress(data) as Uint8Array;
      assert.deepEqual(lzo1xDecode(c, n), data, `size ${n}`);
    }
    const zeros = new Uint8Array(200_000); // long overlapping matches and zero-extended lengths
    assert.deepEqual(lzo1xDecode(lzoCompress(zeros) as Uint8Array, zeros.length), zeros);
  });

  it('bombs, truncation and garbage are typed errors', (t) => {
    expectTyped(() => lzo1xDecode(new Uint8Array(0), 10), 'Corrupt', 'lzo');
    expectTyped(() => lzo1xDecode(Uint8Array.from([0x20, 0x00, 0x00]), 10), 'Corrupt', 'lzo'); // match before output start
    expectTyped(() => lzo1xDecode(Uint8Array.from([0x15, 1, 2]), 10), 'Corrupt', 'lzo'); // 4 literals, input short
    if (!probe) return t.skip('python3 + liblzo2.so.2 not available');
    const c = lzoCompress(new Uint8Array(1 << 20)) as Uint8Array;
    expectTyped(() => lzo1xDecode(c, 128 * 1024), 'LimitExceeded');
    expectTyped(() => lzo1xDecode(c.subarray(0, c.length - 3), 1 << 20), 'Corrupt', 'lzo');
    const trailing = new Uint8Array(c.length + 1);
    trailing.set(c);
    expectTyped(() => lzo1xDecode(trailing, 1 << 20), 'Corrupt', 'lzo');
  });

  it('fuzz: 3000 mutated blocks', (t) => {
    if (!probe) return t.skip('python3 + liblzo2.so.2 not available');
    fuzz(lzo1xDecode, lzoCompress(sample(65536, 4)) as Uint8Array, 3000, 65536, 4);
  });
});

describe('codec tables', () => {
  it('node has every codec; web has all but the zlib family', () => {
    for (const k of ['zlib', 'deflate', 'gzip', 'zstd', 'lz4', 'lzo'] as const) assert.equal(typeof nodeCodecs[k], 'function', k);
    assert.equal(webCodecs.zlib, undefined);
    assert.equal(webCodecs.zstd, zstdDecode);
  });
});
