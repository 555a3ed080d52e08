/**
 * ReiserFS 3.6 images of the standard tree, populated by the Linux kernel in a VM (r5, tea and rupasov
 * hashes), and an empty 3.5 image from mkreiserfs: whole-tree walk, every file's sha256 against the
 * manifest, symlinks and hard links as built by mktree, holes, big reads merged into few source reads,
 * and the 3.5 root's stat data against debugreiserfs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { fixture, hasTool, manifest, run, sha256 } from '../../helpers/fixtures.ts';
import { CountingSource, MemorySource } from '../../../src/io/source.ts';
import { createContext } from '../../../src/limits.ts';
import { reiserfs } from '../../../src/fs/reiserfs/index.ts';
import { dec, imageBytes, openBytes, openSource, walk } from './helpers.ts';

const KVER = '6.1.0-tsgrub';
const IMAGES = [
  { name: 'reiserfs', label: 'tsgrub-r5' },
  { name: 'reiserfs-tea', label: 'tsgrub-tea' },
  { name: 'reiserfs-yura', label: 'tsgrub-yura' },
];

for (const { name, label } of IMAGES) {
  test(`${name}: every file of the tree matches the manifest`, async () => {
    const { vfs, vol } = await openBytes(imageBytes(fixture(name)));
    assert.equal(vol.type, 'reiserfs');
    assert.equal(vol.label, label);
    assert.match(vol.uuid ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const m = manifest();
    const entries = await walk(vfs);
    const files = entries.filter((e) => e.node.kind === 'file');
    assert.deepEqual(files.map((f) => f.path).sort(), [...m.keys()].sort());
    for (const f of files) {
      const data = await vfs.readFile(`/${f.path}`);
      assert.equal(data.length, f.node.size, f.path);
      assert.equal(sha256(data), m.get(f.path), f.path);
    }
    // boot, boot/grub, etc, long, dir-many, deep, d01..d12; the kernel's .reiserfs_priv stays hidden.
    assert.equal(entries.filter((e) => e.node.kind === 'dir').length, 18);
    assert.equal((await vfs.stat('/.reiserfs_priv')).kind, 'dir');
  });

  test(`${name}: symlinks, hard links, lookups by hash`, async () => {
    const { vfs } = await openBytes(imageBytes(fixture(name)));
    assert.equal(dec.decode(await vfs.readlink('/vmlinuz')), `boot/vmlinuz-${KVER}`);
    assert.equal(dec.decode(await vfs.readlink('/initrd.img')), `/boot/initrd.img-${KVER}`);
    assert.equal(dec.decode(await vfs.readFile('/deep/d01/d02/d03/d04/d05/d06/d07/d08/d09/d10/d11/d12/up')), 'tsgrub-host\n');
    const a = await vfs.stat('/etc/hostname');
    const b = await vfs.stat('/etc/hostname.hardlink');
    assert.equal(a.id, b.id);
    assert.equal(a.nlink, 2);
    assert.equal((await vfs.stat('/vmlinuz')).size, 400 * 1024 + 1234);
    // Every name of the 300-entry directory is found through its hash (a wrong hash finds nothing).
    for (let i = 1; i <= 300; i++) {
      const n = `file-${String(i).padStart(3, '0')}.txt`;
      assert.equal(dec.decode(await vfs.readFile(`/dir-many/${n}`)), `file ${String(i).padStart(3, '0')}\n`);
    }
    assert.equal(await vfs.exists('/dir-many/file-301.txt'), false);
    assert.equal(await vfs.exists(`/long/${'L'.repeat(251)}.txt`), true);
    assert.equal(await vfs.exists('/etc/hostnam'), false);
  });
}

test('reiserfs: holes read as zeros, at any offset', async () => {
  const { vfs, vol } = await openBytes(imageBytes(fixture('reiserfs')));
  const node = await vfs.stat('/sparse.bin');
  assert.equal(node.size, 2 * 1024 * 1024);
  const whole = await vfs.readFile('/sparse.bin');
  // mktree: data at [0, 4 KiB), [1 MiB, 1 MiB + 8 KiB) and the last 4 KiB; zeros elsewhere.
  const zero = (a: number, b: number) => whole.subarray(a, b).every((x) => x === 0);
  assert.ok(zero(4096, 1 << 20));
  assert.ok(zero((1 << 20) + 8192, (2 << 20) - 4096));
  assert.ok(!zero(0, 4096) && !zero(1 << 20, (1 << 20) + 8192) && !zero((2 << 20) - 4096, 2 << 20));
  // Unaligned windows agree with the whole read.
  for (const [o, l] of [[4000, 200], [(1 << 20) - 10, 30], [(2 << 20) - 4100, 5000], [12345, 1 << 20]] as const) {
    const part = await vol.read(node, o, l);
    assert.deepEqual(part, whole.subarray(o, Math.min(o + l, whole.length)));
  }
});

test('reiserfs: a 1 MiB read of a contiguous file is a few large source reads', async () => {
  const counting = new CountingSource(new MemorySource(imageBytes(fixture('reiserfs'))));
  const { vfs, vol } = await openSource(counting);
  const node = await vfs.stat(`/boot/initrd.img-${KVER}`);
  const before = { calls: counting.readCalls, bytes: counting.bytesRead };
  const data = await vol.read(node, 0, 1 << 20);
  assert.equal(data.length, node.size);
  assert.equal(sha256(data), manifest().get(`boot/initrd.img-${KVER}`));
  const calls = counting.readCalls - before.calls;
  assert.ok(calls <= 8, `${calls} source reads for ${node.size} bytes`);
});

test('reiserfs: probe says what it is, and not for other images', async () => {
  const ctx = createContext();
  const r = await reiserfs.probe(new MemorySource(imageBytes(fixture('reiserfs'))), ctx);
  assert.equal(r?.type, 'reiserfs');
  assert.equal(r?.label, 'tsgrub-r5');
  assert.equal(await reiserfs.probe(new MemorySource(imageBytes(fixture('ext4'))), ctx), null);
  assert.equal(await reiserfs.probe(new MemorySource(new Uint8Array(1000)), ctx), null);
});

test('reiserfs-35: 3.5 format (v1 keys, v1 stat data) root agrees with debugreiserfs', async (t) => {
  const img = fixture('reiserfs-35');
  const { vfs } = await openBytes(imageBytes(img));
  const root = await vfs.stat('/');
  assert.equal(root.kind, 'dir');
  assert.deepEqual(await vfs.readdir('/'), []);
  assert.equal(await vfs.exists('/boot'), false);
  if (!hasTool('debugreiserfs')) return t.skip('debugreiserfs (reiserfsprogs) not installed');
  assert.ok(statSync(img).size > 0);
  const out = run('debugreiserfs', ['-d', img]).toString();
  assert.match(out, /format 3\.5/);
  const m = /\(OLD SD\), mode (\S+), size (\d+), nlink (\d+), uid (\d+)/.exec(out);
  assert.ok(m, 'debugreiserfs printed the root stat data');
  assert.equal(root.size, Number(m[2]));
  assert.equal(root.nlink, Number(m[3]));
  assert.equal(root.uid, Number(m[4]));
  assert.equal((root.mode ?? 0) & 0o777, 0o755);
  assert.equal(m[1], 'drwxr-xr-x');
});
