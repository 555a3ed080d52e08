/**
 * Hostile squashfs: real images patched in memory must fail fast with a typed error naming the
 * structure; the go-diskfs corpus and byte-mutated images may only yield typed errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { createContext } from '../../../src/limits.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { isTsgrubError } from '../../../src/errors.ts';
import { squashfs } from '../../../src/fs/squashfs/index.ts';
import type { SqNode } from '../../../src/fs/squashfs/inode.ts';
import { decodeSuperblock } from '../../../src/fs/squashfs/superblock.ts';
import { SHARED } from '../../helpers/fixtures.ts';
import { codecs, walk } from './walk.ts';
import { expectError, imageCopy, lightWalk, mutate, src } from './patched.ts';

const KERNEL = '/boot/vmlinuz-6.1.0-tsgrub';

async function vfsOf(b: Uint8Array, limits = {}): Promise<Vfs> {
  const ctx = createContext(limits, codecs);
  return new Vfs(await squashfs.open(src(b), ctx), ctx);
}

/** Byte offset of a stream position in an image whose metadata is stored uncompressed (squashfs-none). */
function at(pos: { block: number; offset: number }): number {
  return pos.block + 2 + pos.offset;
}

function inodeAt(b: Uint8Array, node: SqNode): number {
  const sb = decodeSuperblock(b, b.length);
  const [blk, off] = node.ref.split(':').map(Number) as [number, number];
  return sb.inodeTableStart + blk + 2 + off;
}

test('superblock: bad version, block_log mismatch, bytes_used past the image', async () => {
  let b = imageCopy('squashfs-gzip');
  new DataView(b.buffer).setUint16(28, 3, true);
  await expectError(() => vfsOf(b), 'Unsupported', /version-3\.0/);
  b = imageCopy('squashfs-gzip');
  new DataView(b.buffer).setUint16(22, 16, true);
  await expectError(() => vfsOf(b), 'Corrupt', /block_size/);
  b = imageCopy('squashfs-gzip');
  new DataView(b.buffer).setBigUint64(40, BigInt(b.length + 1), true);
  await expectError(() => vfsOf(b), 'Corrupt', /bytes_used/);
});

test('metadata block whose length exceeds 8 KiB', async () => {
  const b = imageCopy('squashfs-gzip');
  const sb = decodeSuperblock(b, b.length);
  // The block that holds the root inode.
  new DataView(b.buffer).setUint16(sb.inodeTableStart + sb.rootBlock, 0x3000, true);
  await expectError(async () => (await vfsOf(b)).readdir('/'), 'Corrupt', /MetadataBlock\.length/);
});

test('directory header count 0xFFFF', async () => {
  const b = imageCopy('squashfs-none');
  const vfs = await vfsOf(b);
  const root = (await vfs.volume.root()) as SqNode;
  const sb = decodeSuperblock(b, b.length);
  new DataView(b.buffer).setUint32(at({ block: sb.directoryTableStart + (root.dirStartBlock as number), offset: root.dirOffset as number }), 0xffff, true);
  await expectError(async () => (await vfsOf(b)).readdir('/'), 'Corrupt', /header\.count/);
  await expectError(async () => (await vfsOf(b)).stat('/etc/hostname'), 'Corrupt', /header\.count/);
});

test('a directory containing itself', async () => {
  const b = imageCopy('squashfs-none');
  const vfs = await vfsOf(b);
  const root = (await vfs.volume.root()) as SqNode;
  const sb = decodeSuperblock(b, b.length);
  const hdr = at({ block: sb.directoryTableStart + (root.dirStartBlock as number), offset: root.dirOffset as number });
  const v = new DataView(b.buffer);
  const delta = (root.id as number) - v.getUint32(hdr + 8, true);
  v.setInt16(hdr + 12 + 2, delta, true); // first entry's inode_number delta
  await expectError(async () => (await vfsOf(b)).readdir('/'), 'Corrupt', /squashfs\.Dir\.entry/);
});

test('fragment index past the fragment table', async () => {
  for (const path of ['/etc/twelve', '/etc/hostname']) {
    const b = imageCopy('squashfs-none');
    const node = (await (await vfsOf(b)).stat(path)) as SqNode;
    assert.notEqual(node.fragment, 0xffffffff, 'small files live in a fragment');
    // squashfs_reg_inode.fragment at 16+4; squashfs_lreg_inode (hard-linked file) at 16+28.
    const field = node.inodeType === 2 ? 20 : 44;
    new DataView(b.buffer).setUint32(inodeAt(b, node) + field, 1000, true);
    await expectError(async () => (await vfsOf(b)).readFile(path), 'Corrupt', /Inode\.fragment/);
  }
});

test('a file block list whose blocks run past the image', async () => {
  const b = imageCopy('squashfs-none');
  const node = (await (await vfsOf(b)).stat(KERNEL)) as SqNode;
  const sb = decodeSuperblock(b, b.length);
  new DataView(b.buffer).setUint32(inodeAt(b, node) + 16, sb.bytesUsed - 100, true); // start_block
  await expectError(async () => (await vfsOf(b)).readFile(KERNEL), 'Corrupt', /block_list/);
  const c = imageCopy('squashfs-none');
  new DataView(c.buffer).setUint32(at(node.blockListPos as { block: number; offset: number }), 0x00ffffff, true);
  await expectError(async () => (await vfsOf(c)).readFile(KERNEL), 'Corrupt', /block_list/);
});

test('a compressed data block that inflates beyond the block size (bomb)', async () => {
  const b = imageCopy('squashfs-none');
  const node = (await (await vfsOf(b)).stat(KERNEL)) as SqNode;
  const bomb = deflateSync(new Uint8Array(4 << 20), { level: 9 });
  b.set(bomb, node.startBlock as number);
  new DataView(b.buffer).setUint32(at(node.blockListPos as { block: number; offset: number }), bomb.length, true); // compressed bit clear
  await expectError(async () => (await vfsOf(b)).readFile(KERNEL), 'LimitExceeded', /codecOutput/);
});

test('a tiny metadata budget stops a full walk', async () => {
  const b = imageCopy('squashfs-none'); // uncompressed metadata: ~30 KB of it
  await expectError(async () => walk(await vfsOf(b, { metadataBytes: 4_000 })), 'LimitExceeded', /metadataBytes/);
});

test('corpus: go-diskfs squashfs images open and walk or fail typed', async (t) => {
  const dir = join(SHARED, 'corpus/go-diskfs');
  if (!existsSync(dir)) return t.skip('../shared/corpus/go-diskfs absent');
  const files = readdirSync(dir).filter((f) => f.endsWith('.sqs'));
  assert.ok(files.length > 0);
  for (const f of files) {
    const b = new Uint8Array(readFileSync(join(dir, f)));
    const w = await walk(await vfsOf(b));
    // dir_read.sqs: a flat directory of files (listed by unsquashfs as file_001 …).
    assert.ok(w.files.size > 0, f);
  }
});

test('mutation: random bytes in metadata give typed errors or data, never crashes or hangs', async () => {
  for (const name of ['squashfs-gzip', 'squashfs-none', 'squashfs-zstd']) {
    const base = imageCopy(name);
    const sb = decodeSuperblock(base, base.length);
    for (let seed = 1; seed <= 40; seed++) {
      const b = mutate(base, seed * 7919, sb.inodeTableStart, sb.bytesUsed, 1 + (seed % 4));
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
