/**
 * Hostile EROFS: real mkfs.erofs images patched in memory (superblock checksum restamped, as an
 * attacker would) must fail fast with a typed error naming the structure; mutated images may only
 * yield typed errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemorySource } from '../../../src/io/source.ts';
import { createContext } from '../../../src/limits.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { isTsgrubError } from '../../../src/errors.ts';
import { crc32cRaw } from '../../../src/io/checksum.ts';
import { erofs } from '../../../src/fs/erofs/index.ts';
import type { ErNode } from '../../../src/fs/erofs/inode.ts';
import { codecs } from '../squashfs/walk.ts';
import { expectError, imageCopy, lightWalk, mutate } from '../squashfs/patched.ts';

async function vfsOf(b: Uint8Array): Promise<Vfs> {
  const ctx = createContext({}, codecs);
  return new Vfs(await erofs.open(new MemorySource(b), ctx), ctx);
}

function restampSb(b: Uint8Array): void {
  const v = new DataView(b.buffer);
  v.setUint32(1028, 0, true);
  v.setUint32(1028, crc32cRaw(0xffffffff, b.subarray(1024, 4096)), true);
}

/** Byte offset of a flat directory's data block `i` (plain or inline). */
function dirData(node: ErNode, i: number): number {
  const bs = 4096;
  const nblocks = Math.ceil(node.size / bs);
  if (node.layout === 2 && i === nblocks - 1) return node.loc + node.inodeSize + node.xattrSize;
  return (node.iU + i) * bs;
}

test('superblock: checksum, unknown feature, label from volume_name', async () => {
  let b = imageCopy('erofs');
  b[1024 + 64] = 0x41; // volume_name, checksum left stale
  await expectError(() => vfsOf(b), 'Corrupt', /erofs\.Superblock\.checksum/);
  restampSb(b);
  assert.equal((await vfsOf(b)).volume.label, 'A');
  b.set(new TextEncoder().encode('tsgrub-erofs'), 1024 + 64);
  restampSb(b);
  assert.equal((await vfsOf(b)).volume.label, 'tsgrub-erofs');
  assert.equal((await erofs.probe(new MemorySource(b), createContext()))?.label, 'tsgrub-erofs');
  b = imageCopy('erofs');
  new DataView(b.buffer).setUint32(1024 + 80, 0x20, true);
  restampSb(b);
  await expectError(() => vfsOf(b), 'Unsupported', /fragments/);
  b = imageCopy('erofs');
  b[1024 + 12] = 13;
  restampSb(b);
  await expectError(() => vfsOf(b), 'Unsupported', /blkszbits-13/);
});

test('dirent nameoff out of order or outside the block', async () => {
  const base = imageCopy('erofs');
  const node = (await (await vfsOf(base)).stat('/dir-many')) as unknown as ErNode;
  const at = dirData(node, 0);
  let b = base.slice();
  const v = new DataView(b.buffer);
  const n0 = v.getUint16(at + 8, true);
  v.setUint16(at + 12 + 8, n0 - 1, true); // entry 1's name before entry 0's
  restampSb(b);
  await expectError(async () => (await vfsOf(b)).readdir('/dir-many'), 'Corrupt', /erofs\.Dirent\.nameoff/);
  b = base.slice();
  const count = new DataView(b.buffer).getUint16(at + 8, true) / 12;
  new DataView(b.buffer).setUint16(at + (count - 1) * 12 + 8, 0xfff0, true); // last name outside the block
  restampSb(b);
  await expectError(async () => (await vfsOf(b)).stat('/dir-many/file-001.txt'), 'Corrupt', /erofs\.Dirent\.nameoff/);
  b = base.slice();
  new DataView(b.buffer).setUint16(at + 8, 13, true); // first nameoff not a multiple of 12
  restampSb(b);
  await expectError(async () => (await vfsOf(b)).readdir('/dir-many'), 'Corrupt', /erofs\.Dirent\.nameoff/);
});

test('a directory containing itself', async () => {
  const b = imageCopy('erofs');
  const vfs = await vfsOf(b);
  const node = (await vfs.stat('/etc')) as unknown as ErNode;
  const at = dirData(node, 0);
  const v = new DataView(b.buffer);
  const count = v.getUint16(at + 8, true) / 12;
  // Find "hostname" and point it at /etc itself.
  for (let i = 0; i < count; i++) {
    const off = v.getUint16(at + i * 12 + 8, true);
    const next = i + 1 < count ? v.getUint16(at + (i + 1) * 12 + 8, true) : off + 8;
    if (new TextDecoder().decode(b.subarray(at + off, at + next)) === 'hostname') v.setBigUint64(at + i * 12, BigInt(node.nid), true);
  }
  restampSb(b);
  await expectError(async () => (await vfsOf(b)).readdir('/etc'), 'Corrupt', /erofs\.Dirent\.nid/);
});

test('chunk index out of range', async () => {
  const b = imageCopy('erofs-chunk');
  const node = (await (await vfsOf(b)).stat('/boot/vmlinuz-6.1.0-tsgrub')) as unknown as ErNode;
  const table = Math.ceil((node.loc + node.inodeSize + node.xattrSize) / 4) * 4;
  new DataView(b.buffer).setUint32(table + 4, 0x7ffffff0, true);
  restampSb(b); // metadata in block 0 is covered by the superblock checksum
  await expectError(async () => (await vfsOf(b)).readFile('/vmlinuz'), 'Corrupt', /erofs\.ChunkIndex\.blkaddr/);
});

test('inode with an unknown data layout; a huge size on a plain file', async () => {
  let b = imageCopy('erofs');
  const node = (await (await vfsOf(b)).stat('/boot/grub/grub.cfg')) as unknown as ErNode;
  new DataView(b.buffer).setUint16(node.loc, (7 << 1) | (node.inodeSize === 64 ? 1 : 0), true);
  restampSb(b);
  await expectError(async () => (await vfsOf(b)).stat('/boot/grub/grub.cfg'), 'Corrupt', /erofs\.Inode\.i_format/);
  b = imageCopy('erofs');
  const k = (await (await vfsOf(b)).stat('/boot/vmlinuz-6.1.0-tsgrub')) as unknown as ErNode;
  assert.equal(k.inodeSize, 32);
  new DataView(b.buffer).setUint32(k.loc + 8, 0xfffff000, true);
  restampSb(b);
  await expectError(async () => {
    const vfs = await vfsOf(b);
    return vfs.volume.read(await vfs.stat('/vmlinuz'), 0xfff00000, 4096);
  }, 'Corrupt', /raw_blkaddr/);
});

test('compressed pcluster that inflates beyond its extent (bomb) and a bogus lcluster type', async () => {
  const base = imageCopy('erofs-full');
  const node = (await (await vfsOf(base)).stat('/text.txt')) as unknown as ErNode;
  // Full indexes: entry lcn at round_up(inode end, 8) + 16 + 8 * lcn; entry 0 is a HEAD with blkaddr.
  const idx = Math.ceil((node.loc + node.inodeSize + node.xattrSize) / 8) * 8 + 16;
  const v = new DataView(base.buffer);
  assert.equal(v.getUint16(idx, true) & 3, 1, 'lcluster 0 is a HEAD');
  const pblk = v.getUint32(idx + 4, true);
  let b = base.slice();
  // An lz4 block of 512 KiB of zeros: a literal byte, then one long match (offset 1), right-aligned.
  const bomb: number[] = [0x1f, 0x00, 0x01, 0x00];
  let left = (1 << 19) - 1 - 4 - 15;
  bomb.push(0xff);
  left -= 255;
  while (left >= 255) {
    bomb.push(0xff);
    left -= 255;
  }
  bomb.push(left, 0x10, 0x00); // trailing 1-literal sequence
  const block = new Uint8Array(4096);
  block.set(bomb, 4096 - bomb.length);
  b.set(block, pblk * 4096);
  await expectError(async () => (await vfsOf(b)).readFile('/text.txt'), 'LimitExceeded', /codecOutput/);
  b = base.slice();
  new DataView(b.buffer).setUint16(idx, 3, true);
  await expectError(async () => (await vfsOf(b)).readFile('/text.txt'), 'Unsupported', /lcluster-type-3/);
});

test('mutation: random bytes in metadata give typed errors or data, never crashes or hangs', async () => {
  for (const name of ['erofs', 'erofs-lz4hc', 'erofs-ztail', 'erofs-chunk']) {
    const base = imageCopy(name);
    const metaStart = new DataView(base.buffer).getUint32(1024 + 40, true) * 4096;
    // Inodes and directories of the standard tree sit in the first ~200 KiB of the metadata area.
    const to = Math.min(base.length, metaStart + 64 * 1024);
    for (let seed = 1; seed <= 40; seed++) {
      const b = mutate(base, seed * 104729, metaStart, to, 1 + (seed % 4));
      if (seed % 2) restampSb(b); // half of them get past the superblock checksum
      const t0 = Date.now();
      try {
        await lightWalk(await vfsOf(b));
      } catch (e) {
        assert.ok(isTsgrubError(e), `${name} seed ${seed}: untyped ${String(e)}`);
      }
      assert.ok(Date.now() - t0 < 10_000, `${name} seed ${seed} is slow`);
    }
  }
});
