/**
 * squashfs 4.0 on real mksquashfs images (gzip, xz, lzo, lz4, zstd, uncompressed, a 2000-entry
 * directory with an index): every file's sha256 against the tree manifest, listings, symlinks and
 * bytes against unsquashfs (-lls, -cat), and grub-fstest where GRUB reads the compressor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { MemorySource } from '../../../src/io/source.ts';
import { createContext } from '../../../src/limits.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { nodeCodecs } from '../../../src/codec/node.ts';
import { isTsgrubError } from '../../../src/errors.ts';
import { squashfs } from '../../../src/fs/squashfs/index.ts';
import { erofs } from '../../../src/fs/erofs/index.ts';
import { fixture, hasTool, manifest, run, sha256 } from '../../helpers/fixtures.ts';
import { codecs, walk } from './walk.ts';

const IMAGES = ['squashfs-gzip', 'squashfs-xz', 'squashfs-lzo', 'squashfs-lz4', 'squashfs-zstd', 'squashfs-none'];
const KERNEL = 'boot/vmlinuz-6.1.0-tsgrub';

async function open(name: string, c = codecs): Promise<Vfs> {
  const ctx = createContext({}, c);
  return new Vfs(await squashfs.open(new MemorySource(new Uint8Array(readFileSync(fixture(name)))), ctx), ctx);
}

/** unsquashfs -lls: path → { kind, size, target } (paths without the leading slash; root omitted). */
function unsquashfsListing(img: string): Map<string, { kind: string; size: number; target?: string }> {
  const out = new Map<string, { kind: string; size: number; target?: string }>();
  for (const line of run('unsquashfs', ['-lls', '-d', '', img]).toString('utf8').split('\n')) {
    const m = /^([dl\-bcps])\S+\s+\S+\s+(\d+)\s+\S+\s+\S+\s+\/(.*)$/.exec(line);
    if (!m) continue;
    const [, t, size, rest] = m as unknown as [string, string, string, string];
    if (t === 'l') {
      const [p, target] = rest.split(' -> ') as [string, string];
      out.set(p, { kind: 'symlink', size: Number(size), target });
    } else out.set(rest, { kind: t === 'd' ? 'dir' : t === '-' ? 'file' : 'other', size: Number(size) });
  }
  return out;
}

for (const name of IMAGES) {
  test(`${name}: every file matches the manifest; probe`, async () => {
    const vfs = await open(name);
    const w = await walk(vfs);
    const m = manifest();
    assert.equal(w.files.size, m.size);
    for (const [p, h] of m) assert.equal(w.files.get(p), h, p);
    const probed = await squashfs.probe(new MemorySource(new Uint8Array(readFileSync(fixture(name)))), createContext());
    assert.deepEqual(probed, { type: 'squashfs' });
    // Hard link: one inode under two names; symlinks resolve.
    assert.equal((await vfs.stat('/etc/hostname')).id, (await vfs.stat('/etc/hostname.hardlink')).id);
    assert.notEqual((await vfs.stat('/etc/hostname')).id, (await vfs.stat('/etc/empty')).id);
    assert.equal(sha256(await vfs.readFile('/vmlinuz')), m.get(KERNEL));
    assert.equal(sha256(await vfs.readFile('/deep/d01/d02/d03/d04/d05/d06/d07/d08/d09/d10/d11/d12/up')), m.get('etc/hostname'));
    assert.equal(await vfs.exists('/boot/nope'), false);
  });

  test(`${name}: listing, symlinks and bytes agree with unsquashfs`, async (t) => {
    if (!hasTool('unsquashfs')) return t.skip('unsquashfs (squashfs-tools) not installed');
    const img = fixture(name);
    const want = unsquashfsListing(img);
    const vfs = await open(name);
    const w = await walk(vfs);
    const got = new Map<string, string>();
    for (const p of w.dirs) got.set(p, 'dir');
    for (const p of w.files.keys()) got.set(p, 'file');
    for (const p of w.symlinks.keys()) got.set(p, 'symlink');
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [p, e] of want) {
      assert.equal(got.get(p), e.kind, p);
      if (e.kind === 'file') assert.equal(w.sizes.get(p), e.size, p);
      if (e.kind === 'symlink') assert.equal(w.symlinks.get(p), e.target, p);
    }
    for (const p of [KERNEL, 'boot/initrd.img-6.1.0-tsgrub', 'sparse.bin', 'boot/grub/grub.cfg', 'etc/twelve', 'dir-many/file-150.txt']) {
      const ref = run('unsquashfs', ['-cat', img, `/${p}`]);
      assert.equal(w.files.get(p), sha256(ref), p);
    }
  });
}

for (const name of ['squashfs-gzip', 'squashfs-xz', 'squashfs-lzo']) {
  test(`${name}: kernel and config agree with grub-fstest`, async (t) => {
    if (!hasTool('grub-fstest')) return t.skip('grub-fstest (grub-common) not installed');
    const img = fixture(name);
    const vfs = await open(name);
    for (const p of [KERNEL, 'boot/grub/grub.cfg', 'sparse.bin']) {
      const ref = run('grub-fstest', [img, 'cat', `/${p}`]);
      assert.equal(sha256(await vfs.readFile(`/${p}`)), sha256(ref), p);
    }
  });
}

test('squashfs-bigdir: the directory index leads every lookup to its entry', async (t) => {
  const vfs = await open('squashfs-bigdir');
  const big = (await vfs.stat('/big')) as unknown as { indexCount: number };
  assert.ok(big.indexCount > 1, 'the 2000-entry directory has an index');
  const names = (await vfs.readdir('/big')).map((e) => new TextDecoder().decode(e.name));
  assert.equal(names.length, 2000);
  for (const n of names) {
    const num = n.slice(-4);
    assert.equal(new TextDecoder().decode(await vfs.readFile(`/big/${n}`)), `entry ${num}\n`, n);
  }
  // Names before the first, between two, and after the last index entry are absent.
  for (const n of ['a', 'a-longer-file-name-to-fill-blocks-1000x', 'zzz']) assert.equal(await vfs.exists(`/big/${n}`), false, n);
  if (!hasTool('unsquashfs')) return t.skip('unsquashfs not installed');
  const want = [...unsquashfsListing(fixture('squashfs-bigdir')).keys()].filter((p) => p.startsWith('big/')).map((p) => p.slice(4));
  assert.deepEqual(names, want);
});

test('a compressor the codec table lacks is Unsupported, naming it', async () => {
  const { xz: _xz, ...withoutXz } = nodeCodecs;
  const vfs = await open('squashfs-xz', withoutXz); // a codec table without xz
  let err: unknown;
  try {
    await vfs.readFile(`/${KERNEL}`);
  } catch (e) {
    err = e;
  }
  assert.ok(isTsgrubError(err));
  assert.equal(err.code, 'Unsupported');
  assert.deepEqual(err.data.features, ['codec-xz']);
});

test('other filesystems are not squashfs', async () => {
  for (const name of ['ext4', 'erofs']) {
    const src = new MemorySource(new Uint8Array(readFileSync(fixture(name))));
    assert.equal(await squashfs.probe(src, createContext()), null, name);
  }
  assert.equal(await erofs.probe(new MemorySource(new Uint8Array(readFileSync(fixture('squashfs-gzip')))), createContext()), null);
});

test('extents: an uncompressed file maps to its bytes, with sparse blocks as holes', async () => {
  const vfs = await open('squashfs-none');
  const vol = vfs.volume;
  const img = new Uint8Array(readFileSync(fixture('squashfs-none')));
  const node = await vfs.stat('/sparse.bin');
  const data = await vfs.readFile(node);
  let holes = 0;
  for await (const e of vol.extents!(node)) {
    if (e.physical === null) {
      holes++;
      assert.ok(data.subarray(e.logical, e.logical + e.length).every((x) => x === 0));
    } else assert.deepEqual(img.subarray(e.physical, e.physical + e.length), data.subarray(e.logical, e.logical + e.length));
  }
  assert.ok(holes > 0, 'sparse.bin has sparse blocks');
});
