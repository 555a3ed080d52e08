/**
 * Hostile UFS images: real fixtures patched in memory. Each must fail fast with a typed error that
 * names the structure (never a hang, a crash, or wrong data).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture } from '../../helpers/fixtures.ts';
import { isTsgrubError, type TsgrubError } from '../../../src/errors.ts';
import { MemorySource } from '../../../src/io/source.ts';
import { createContext } from '../../../src/limits.ts';
import { ufs } from '../../../src/fs/ufs/index.ts';
import { decodeSuperblock, inodeByteOffset, type Superblock } from '../../../src/fs/ufs/superblock.ts';
import type { UfsNode } from '../../../src/fs/ufs/inode.ts';
import { imageBytes, openBytes, walk } from './helpers.ts';

const SB = 8192;

interface Img {
  bytes: Uint8Array;
  view: DataView;
  sb: Superblock;
}

function load(name: string): Img {
  const bytes = imageBytes(fixture(name));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { bytes, view, sb: decodeSuperblock(bytes.subarray(SB, SB + 1376), SB) };
}

/** Byte offset of inode `ino`'s dinode and of its first directory/data block (UFS1 LE layout). */
function inodeAt(img: Img, ino: number): number {
  return inodeByteOffset(img.sb, ino);
}
function db(img: Img, ino: number, i: number): number {
  return img.view.getInt32(inodeAt(img, ino) + 40 + 4 * i, true);
}

async function expectTyped(fn: () => Promise<unknown>, code: string, kind?: RegExp): Promise<TsgrubError> {
  const t0 = Date.now();
  try {
    await fn();
  } catch (e) {
    assert.ok(isTsgrubError(e), `untyped error: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (kind) assert.match(String(e.data.kind ?? e.data.limit), kind, e.message);
    assert.ok(Date.now() - t0 < 2000, 'took too long');
    return e;
  }
  assert.fail(`expected a ${code} error`);
}

/** Patches the first entry ('.') of the root directory of ufs1-le. */
function rootDirEntry(img: Img): number {
  return db(img, 2, 0) * img.sb.fsize;
}

test('d_reclen 0 (libfsimage loops forever) is Corrupt', async () => {
  const img = load('ufs1-le');
  img.view.setUint16(rootDirEntry(img) + 4, 0, true);
  const { vfs } = await openBytes(img.bytes);
  await expectTyped(() => vfs.readdir('/'), 'Corrupt', /ufs\.Direct/);
  await expectTyped(() => vfs.stat('/boot'), 'Corrupt', /ufs\.Direct/);
});

test('d_reclen past the 512-byte directory chunk is Corrupt', async () => {
  const img = load('ufs1-le');
  img.view.setUint16(rootDirEntry(img) + 4, 1024, true);
  const { vfs } = await openBytes(img.bytes);
  await expectTyped(() => vfs.readdir('/'), 'Corrupt', /ufs\.Direct/);
});

test('d_namlen larger than d_reclen is Corrupt', async () => {
  const img = load('ufs1-le');
  const at = rootDirEntry(img);
  assert.equal(img.view.getUint16(at + 4, true), 12); // '.' is a 12-byte record
  img.bytes[at + 7] = 200;
  const { vfs } = await openBytes(img.bytes);
  await expectTyped(() => vfs.readdir('/'), 'Corrupt', /ufs\.Direct/);
});

test('directory entry with an inode number out of range is Corrupt', async () => {
  const img = load('ufs1-le');
  const at = rootDirEntry(img);
  const next = at + img.view.getUint16(at + 4, true) + img.view.getUint16(at + 12 + 4, true); // third entry
  img.view.setUint32(next, 0xfffffff0, true);
  const { vfs } = await openBytes(img.bytes);
  await expectTyped(() => vfs.readdir('/'), 'Corrupt', /ufs\.Direct/);
});

test('symlink size 2^32-1 (CVE-2025-0677 analogue) is refused before any read', async () => {
  const img = load('ufs1-le');
  const { vfs } = await openBytes(img.bytes);
  const ino = (await vfs.lstat('/vmlinuz')).id as number;
  img.view.setBigUint64(inodeAt(img, ino) + 8, 0xffffffffn, true);
  const reopened = await openBytes(img.bytes);
  await expectTyped(() => reopened.vfs.readlink('/vmlinuz'), 'LimitExceeded', /pathBytes/);
  await expectTyped(() => reopened.vfs.stat('/vmlinuz'), 'LimitExceeded', /pathBytes/);
  // The driver bounds it itself too, not only the vfs.
  const node = (await reopened.vfs.lstat('/vmlinuz')) as UfsNode;
  await expectTyped(() => reopened.vfs.volume.readlink(node), 'LimitExceeded', /pathBytes/);
  // 2^64-1 does not even fit a safe integer.
  img.view.setBigUint64(inodeAt(img, ino) + 8, 0xffffffffffffffffn, true);
  const again = await openBytes(img.bytes);
  await expectTyped(() => again.vfs.lstat('/vmlinuz'), 'Corrupt', /di_size/);
});

test('an indirect block pointing to itself is a cycle, at every level', async () => {
  const img = load('ufs1-le');
  const { vfs } = await openBytes(img.bytes);
  const path = '/boot/vmlinuz-6.1.0-tsgrub';
  const ino = (await vfs.stat(path)).id as number;
  const inode = inodeAt(img, ino);
  const ib0 = img.view.getInt32(inode + 88, true);
  assert.ok(ib0 > 0, 'the kernel uses its single indirect block');
  const { bsize, fsize, nindir } = img.sb;
  // Every pointer of the single indirect block now names the block itself ...
  for (let i = 0; i < nindir; i++) img.view.setInt32(ib0 * fsize + 4 * i, ib0, true);
  // ... and the triple indirect pointer names it too, with a size reaching the triple range.
  img.view.setInt32(inode + 88 + 8, ib0, true);
  const tripleStart = (12 + nindir + nindir * nindir) * bsize;
  img.view.setBigUint64(inode + 8, BigInt(tripleStart + 3 * bsize), true);
  const bad = await openBytes(img.bytes, { fileBytes: 2 ** 52 });
  const node = await bad.vfs.stat(path);
  await expectTyped(() => bad.vfs.volume.read(node, 12 * bsize, 100), 'Corrupt', /ufs\.IndirectCycle/);
  await expectTyped(() => bad.vfs.volume.read(node, tripleStart + bsize, 100), 'Corrupt', /ufs\.IndirectCycle/);
  // The direct blocks are still fine.
  assert.equal((await bad.vfs.volume.read(node, 0, 4096)).length, 4096);
});

test('a stretch of consecutive data pointers that passes through its own indirect block is a cycle', async () => {
  const img = load('ufs1-le');
  const { vfs } = await openBytes(img.bytes);
  const path = '/boot/vmlinuz-6.1.0-tsgrub';
  const ino = (await vfs.stat(path)).id as number;
  const ib0 = img.view.getInt32(inodeAt(img, ino) + 88, true);
  assert.ok(ib0 > 0, 'the kernel uses its single indirect block');
  const { bsize, fsize } = img.sb;
  const step = bsize / fsize;
  // Pointers 0–3 of the single indirect block: ib0 − 2·step … ib0 + step, consecutive blocks on
  // disk, the third being the indirect block itself (the file would read its own map as data).
  for (let i = 0; i < 4; i++) img.view.setInt32(ib0 * fsize + 4 * i, ib0 + (i - 2) * step, true);
  const bad = await openBytes(img.bytes);
  const node = await bad.vfs.stat(path);
  await expectTyped(() => bad.vfs.volume.read(node, 12 * bsize, 4 * bsize), 'Corrupt', /ufs\.IndirectCycle/);
  await expectTyped(async () => {
    for await (const _ of bad.vfs.volume.extents?.(node) ?? []) {
      // The map is refused before its runs reach the copy.
    }
  }, 'Corrupt', /ufs\.IndirectCycle/);
  // The same stretch shifted one block on, clear of the indirect block, reads (as whatever it holds).
  for (let i = 0; i < 4; i++) img.view.setInt32(ib0 * fsize + 4 * i, ib0 + (i + 1) * step, true);
  const ok = await openBytes(img.bytes);
  assert.equal((await ok.vfs.volume.read(await ok.vfs.stat(path), 12 * bsize, 4 * bsize)).length, 4 * bsize);
});

test('a double indirect chain through the same block is bounded by the file size', async () => {
  const img = load('ufs1-le');
  const { vfs } = await openBytes(img.bytes);
  const path = '/boot/initrd.img-6.1.0-tsgrub';
  const ino = (await vfs.stat(path)).id as number;
  const inode = inodeAt(img, ino);
  const ib0 = img.view.getInt32(inode + 88, true);
  // ib[1] → ib0 (as a level-2 block), whose entries are data pointers read as level-1 blocks:
  // each is a different block, so no cycle, but the walk stays bounded by the declared size.
  img.view.setInt32(inode + 88 + 4, ib0, true);
  const { bsize, nindir } = img.sb;
  img.view.setBigUint64(inode + 8, BigInt((12 + nindir + 4) * bsize), true);
  const bad = await openBytes(img.bytes);
  const node = await bad.vfs.stat(path);
  const t0 = Date.now();
  try {
    const data = await bad.vfs.readFile(node);
    assert.equal(data.length, node.size);
  } catch (e) {
    assert.ok(isTsgrubError(e), String(e));
  }
  assert.ok(Date.now() - t0 < 2000);
});

test('fs_bsize not a power of two is Corrupt at open; probe does not claim it', async () => {
  const img = load('ufs1-le');
  img.view.setInt32(SB + 48, 12288, true);
  await expectTyped(() => ufs.open(new MemorySource(img.bytes), createContext()), 'Corrupt', /fs_bsize/);
  await expectTyped(() => ufs.probe(new MemorySource(img.bytes), createContext()), 'Corrupt', /fs_bsize/);
});

test('fs_ncg huge is Corrupt', async () => {
  for (const name of ['ufs1-le', 'ufs2-le']) {
    const img = load(name);
    img.view.setUint32(SB + 44, 0xffffffff, true);
    await expectTyped(() => ufs.open(new MemorySource(img.bytes), createContext()), 'Corrupt', /fs_ncg/);
  }
});

test('fs_ipg pushing the inode table past the group is Corrupt', async () => {
  const img = load('ufs2-le');
  img.view.setUint32(SB + 184, 2 ** 30, true);
  await expectTyped(() => ufs.open(new MemorySource(img.bytes), createContext()), 'Corrupt', /fs_i/);
});

test('a UFS2 superblock whose fs_sblockloc disagrees is not found', async () => {
  const img = load('ufs2-le');
  img.view.setBigInt64(SB + 1000, 65536n, true);
  assert.equal(await ufs.probe(new MemorySource(img.bytes), createContext()), null);
  await expectTyped(() => ufs.open(new MemorySource(img.bytes), createContext()), 'Unsupported');
});

test('metadata budget bounds a full walk', async () => {
  const img = load('ufs2-le');
  const { vfs } = await openBytes(img.bytes, { metadataBytes: 64 * 1024 });
  await expectTyped(() => walk(vfs), 'LimitExceeded', /metadataBytes/);
});

test('random byte corruption of the metadata area yields only typed errors', async () => {
  const base = load('ufs1-le');
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const metaEnd = (base.sb.iblkno + (base.sb.ipg / base.sb.inopb) * base.sb.frag) * base.sb.fsize + 64 * 1024;
  for (let round = 0; round < 40; round++) {
    const bytes = base.bytes.slice();
    for (let k = 0; k < 64; k++) bytes[8192 + Math.floor(rnd() * (metaEnd - 8192))] = Math.floor(rnd() * 256);
    try {
      const { vfs } = await openBytes(bytes);
      for (const { node } of await walk(vfs)) if (node.kind === 'file') await vfs.readFile(node);
    } catch (e) {
      assert.ok(isTsgrubError(e), `round ${round}: ${String(e)}`);
    }
  }
});

for (const name of ['ufs2-le', 'ufs2-be']) {
  test(`${name}: an indirect block pointer outside the filesystem is Corrupt, named with its exact value`, async () => {
    const img = load(name);
    const le = name.endsWith('-le');
    const { vfs } = await openBytes(img.bytes);
    const path = '/boot/vmlinuz-6.1.0-tsgrub';
    const ino = (await vfs.stat(path)).id as number;
    // UFS2 dinode: di_ib[0] at 208 (after 12 eight-byte di_db pointers from 112).
    const ib0 = Number(img.view.getBigInt64(inodeAt(img, ino) + 208, le));
    assert.ok(ib0 > 0, 'the kernel uses its single indirect block');
    const at = ib0 * img.sb.fsize + 8 * 5;
    // Pointer 5: 2^31 (its low word negative as an int32), then 2^32 + 7 (a high word of 1).
    for (const [value, text] of [[2n ** 31n, '2147483648'], [2n ** 32n + 7n, '4294967303']] as const) {
      const bytes = img.bytes.slice();
      new DataView(bytes.buffer).setBigUint64(at, value, le);
      const bad = await openBytes(bytes);
      const node = await bad.vfs.stat(path);
      const e = await expectTyped(() => bad.vfs.volume.read(node, 12 * img.sb.bsize, 100), 'Corrupt', /ufs\.IndirectBlock/);
      assert.match(e.message, new RegExp(`pointer 5 = ${text} outside the filesystem`));
    }
    // Untouched, the same range reads.
    assert.equal((await vfs.volume.read(await vfs.stat(path), 12 * img.sb.bsize, 100)).length, 100);
  });
}
