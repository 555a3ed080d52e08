/**
 * Hostile XFS images: real fixtures patched in memory (checksums recomputed where the format has
 * them, as an attacker would) must fail fast with a typed error naming the structure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { MemorySource, type ByteSource } from '../../../src/io/source.ts';
import { createContext } from '../../../src/limits.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { isTsgrubError, type TsgrubError } from '../../../src/errors.ts';
import { xfs } from '../../../src/fs/xfs/index.ts';
import { decodeSuperblock, type Superblock } from '../../../src/fs/xfs/superblock.ts';
import { fsbToByte, inodeByteOffset } from '../../../src/fs/xfs/inode.ts';
import { extentList } from '../../../src/fs/xfs/bmap.ts';
import { xfsCksum } from '../../../src/fs/xfs/cksum.ts';
import { fixture } from '../../helpers/fixtures.ts';

const images = new Map<string, Uint8Array>();
function image(name: string): Uint8Array {
  let b = images.get(name);
  if (!b) {
    b = new Uint8Array(readFileSync(fixture(name)));
    images.set(name, b);
  }
  return b;
}

/** A copy-on-write view of an image: patches are applied over the shared original bytes. */
class Patched implements ByteSource {
  readonly size: number;
  readonly patches: { at: number; bytes: Uint8Array }[] = [];
  constructor(readonly base: Uint8Array) {
    this.size = base.length;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = await new MemorySource(this.base).read(offset, length);
    for (const p of this.patches) {
      const s = Math.max(offset, p.at);
      const e = Math.min(offset + length, p.at + p.bytes.length);
      if (s < e) out.set(p.bytes.subarray(s - p.at, e - p.at), s - offset);
    }
    return out;
  }
  /** Copies `len` bytes at `at`, lets `edit` change them, optionally restamps a CRC at `crcOff`. */
  patch(at: number, len: number, edit: (b: Uint8Array, v: DataView) => void, crcOff?: number): void {
    const b = this.base.slice(at, at + len);
    edit(b, new DataView(b.buffer));
    if (crcOff !== undefined) new DataView(b.buffer).setUint32(crcOff, xfsCksum(b, len, crcOff), true);
    this.patches.push({ at, bytes: b });
  }
}

function sbOf(img: Uint8Array): Superblock {
  return decodeSuperblock(img.subarray(0, 4096), img.length);
}

async function inoOf(name: string, path: string): Promise<bigint> {
  const ctx = createContext();
  const vfs = new Vfs(await xfs.open(new MemorySource(image(name)), ctx), ctx);
  return BigInt((await vfs.lstat(path)).id);
}

async function expectError(src: ByteSource, action: (vfs: Vfs) => Promise<unknown>, code: string, kind: RegExp): Promise<TsgrubError> {
  const t0 = Date.now();
  let err: unknown;
  try {
    const ctx = createContext();
    await action(new Vfs(await xfs.open(src, ctx), ctx));
  } catch (e) {
    err = e;
  }
  assert.ok(isTsgrubError(err), `typed error expected, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.match(String(err.data.kind ?? (err.data.features as string[] | undefined)?.join(',') ?? err.data.limit), kind, err.message);
  assert.ok(Date.now() - t0 < 2000, 'fails fast');
  return err;
}

const SB_CRC = 224;
const INODE_CRC = 100;

test('superblock: agblklog = 32 (XSA-443)', async () => {
  const src = new Patched(image('xfs5'));
  src.patch(0, 512, (b) => (b[124] = 32), SB_CRC);
  await expectError(src, async () => {}, 'Corrupt', /sb_agblklog/);
});

test('superblock: agblocks larger than 2^agblklog', async () => {
  const img = image('xfs5');
  const sb = sbOf(img);
  const src = new Patched(img);
  src.patch(0, 512, (_b, v) => v.setUint32(84, 2 ** sb.agBlkLog + 1), SB_CRC);
  await expectError(src, async () => {}, 'Corrupt', /sb_agblocks/);
});

test('superblock: inode size not a power of two', async () => {
  const src = new Patched(image('xfs4'));
  src.patch(0, 512, (_b, v) => v.setUint16(104, 300));
  await expectError(src, async () => {}, 'Corrupt', /sb_inodesize/);
});

test('superblock: bad CRC, unknown and needsrepair incompat features', async () => {
  let src = new Patched(image('xfs5'));
  src.patch(0, 512, (b) => (b[108] ^= 1)); // label byte, checksum left stale
  await expectError(src, async () => {}, 'Corrupt', /sb_crc/);
  src = new Patched(image('xfs5'));
  src.patch(0, 512, (_b, v) => v.setUint32(216, v.getUint32(216) | 0x80000000), SB_CRC);
  await expectError(src, async () => {}, 'Unsupported', /incompat-0x80000000/);
  src = new Patched(image('xfs5'));
  src.patch(0, 512, (_b, v) => v.setUint32(216, v.getUint32(216) | 0x10), SB_CRC);
  await expectError(src, async () => {}, 'Unsupported', /needsrepair/);
});

test('inode: checksum mismatch', async () => {
  const img = image('xfs5');
  const sb = sbOf(img);
  const at = inodeByteOffset(sb, await inoOf('xfs5', '/etc'));
  const src = new Patched(img);
  src.patch(at, sb.inodeSize, (b) => (b[3] ^= 1));
  await expectError(src, (vfs) => vfs.readdir('/etc'), 'Corrupt', /di_crc/);
});

test('bmbt root with level 20', async () => {
  const img = image('xfs5');
  const sb = sbOf(img);
  const at = inodeByteOffset(sb, await inoOf('xfs5', '/dir-node'));
  const src = new Patched(img);
  src.patch(at, sb.inodeSize, (_b, v) => v.setUint16(176, 20), INODE_CRC);
  await expectError(src, (vfs) => vfs.readdir('/dir-node'), 'Corrupt', /bmdr\.bb_level/);
});

test('bmbt child whose level is not parent - 1', async () => {
  for (const name of ['xfs5-mount', 'xfs4']) {
    const img = image(name);
    const sb = sbOf(img);
    const path = name === 'xfs4' ? '/dir-node' : '/frag.bin';
    const at = inodeByteOffset(sb, await inoOf(name, path));
    const core = sb.hasCrc ? 176 : 100;
    const v = new DataView(img.buffer, img.byteOffset + at, sb.inodeSize);
    assert.equal(v.getUint16(core), 1, `${path} has a level-1 bmbt root`);
    const forkoff = v.getUint8(82);
    const forkSize = forkoff ? forkoff * 8 : sb.inodeSize - core;
    const maxrecs = Math.floor((forkSize - 4) / 16);
    const ptr = v.getBigUint64(core + 4 + maxrecs * 8);
    const child = fsbToByte(sb, ptr, 1, 'test');
    const src = new Patched(img);
    src.patch(child, sb.blockSize, (_b, dv) => dv.setUint16(4, 1), sb.hasCrc ? 64 : undefined);
    await expectError(src, (vfs) => (path === '/frag.bin' ? vfs.readFile(path) : vfs.readdir(path)), 'Corrupt', /bb_level/);
  }
});

test('short-form directory whose count overruns the fork', async () => {
  for (const name of ['xfs5', 'xfs4']) {
    const img = image(name);
    const sb = sbOf(img);
    const at = inodeByteOffset(sb, await inoOf(name, '/etc'));
    const core = sb.hasCrc ? 176 : 100;
    const src = new Patched(img);
    src.patch(at, sb.inodeSize, (b) => (b[core] = 200), sb.hasCrc ? INODE_CRC : undefined);
    await expectError(src, (vfs) => vfs.readdir('/etc'), 'Corrupt', /DirShortform/);
    await expectError(src, (vfs) => vfs.readFile('/etc/hostname'), 'Corrupt', /DirShortform/);
  }
});

test('extent pointing past the AGs / sb_dblocks', async () => {
  const img = image('xfs5');
  const sb = sbOf(img);
  const path = '/boot/vmlinuz-6.1.0-tsgrub';
  const at = inodeByteOffset(sb, await inoOf('xfs5', path));
  for (const startblock of [BigInt(sb.agCount) << BigInt(sb.agBlkLog), (BigInt(sb.agCount - 1) << BigInt(sb.agBlkLog)) + BigInt(sb.agBlocks - 1)]) {
    const src = new Patched(img);
    src.patch(at, sb.inodeSize, (_b, v) => {
      const l0 = v.getBigUint64(176);
      const l1 = v.getBigUint64(184);
      v.setBigUint64(176, (l0 & ~((1n << 9n) - 1n)) | (startblock >> 43n));
      v.setBigUint64(184, ((startblock & ((1n << 43n) - 1n)) << 21n) | (l1 & ((1n << 21n) - 1n)));
    }, INODE_CRC);
    await expectError(src, (vfs) => vfs.readFile(path), 'Corrupt', /startblock/);
  }
});

test('directory data entry with namelen 0', async () => {
  for (const name of ['xfs5', 'xfs4']) {
    const img = image(name);
    const sb = sbOf(img);
    const at = inodeByteOffset(sb, await inoOf(name, '/dir-many'));
    const core = sb.hasCrc ? 176 : 100;
    const v = new DataView(img.buffer, img.byteOffset + at, sb.inodeSize);
    const maps = extentList(sb, img.subarray(at + core, at + sb.inodeSize), v.getUint32(76), 'test');
    const first = maps[0];
    assert.ok(first && first.fileBlock === 0);
    const hdr = sb.hasCrc ? 64 : 16;
    const src = new Patched(img);
    src.patch(first.byte, sb.dirBlkSize, (b) => (b[hdr + 8] = 0), sb.hasCrc ? 4 : undefined);
    await expectError(src, (vfs) => vfs.readdir('/dir-many'), 'Corrupt', /namelen/);
  }
});

test('a tiny metadata budget stops a big directory walk', async () => {
  const ctx = createContext({ metadataBytes: 64 * 1024 });
  const vfs = new Vfs(await xfs.open(new MemorySource(image('xfs5')), ctx), ctx);
  await assert.rejects(vfs.readdir('/dir-node'), (e: unknown) => isTsgrubError(e) && e.code === 'LimitExceeded');
});

test('probe says "not mine" for a non-XFS source', async () => {
  const ctx = createContext();
  assert.equal(await xfs.probe(new MemorySource(new Uint8Array(4096)), ctx), null);
  assert.equal(await xfs.probe(new MemorySource(new Uint8Array(100)), ctx), null);
});
