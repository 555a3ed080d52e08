/**
 * ReiserFS images of the standard tree, populated by the Linux kernel in a VM: 3.6 with the r5, tea and
 * rupasov hashes, and 3.5 (v1 keys, v1 stat data, unpadded names; scripts/fixtures/reiserfs.sh).
 * Whole-tree walk, every file's sha256 against the manifest, symlinks and hard links as built by
 * mktree, holes, big reads merged into few source reads, and every 3.5 stat data against debugreiserfs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture, hasTool, manifest, run, sha256 } from '../../helpers/fixtures.ts';
import { CountingSource, MemorySource } from '../../../src/io/source.ts';
import { createContext } from '../../../src/limits.ts';
import { reiserfs } from '../../../src/fs/reiserfs/index.ts';
import { ReiserNode } from '../../../src/fs/reiserfs/volume.ts';
import { dec, imageBytes, openBytes, openSource, walk } from './helpers.ts';

const KVER = '6.1.0-tsgrub';
// The 3.5 superblock has neither label nor UUID (they live beyond struct reiserfs_super_block_v1).
const IMAGES = [
  { name: 'reiserfs', label: 'tsgrub-r5' },
  { name: 'reiserfs-tea', label: 'tsgrub-tea' },
  { name: 'reiserfs-yura', label: 'tsgrub-yura' },
  { name: 'reiserfs-35', label: undefined },
];

for (const { name, label } of IMAGES) {
  test(`${name}: every file of the tree matches the manifest`, async () => {
    const { vfs, vol } = await openBytes(imageBytes(fixture(name)));
    assert.equal(vol.type, 'reiserfs');
    assert.equal(vol.label, label);
    if (label === undefined) assert.equal(vol.uuid, undefined);
    else assert.match(vol.uuid ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
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

for (const name of ['reiserfs', 'reiserfs-35']) {
  test(`${name}: holes read as zeros, at any offset`, async () => {
    const { vfs, vol } = await openBytes(imageBytes(fixture(name)));
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

  test(`${name}: a 1 MiB read of a contiguous file is a few large source reads`, async () => {
    const counting = new CountingSource(new MemorySource(imageBytes(fixture(name))));
    const { vfs, vol } = await openSource(counting);
    const node = await vfs.stat(`/boot/initrd.img-${KVER}`);
    const before = { calls: counting.readCalls, bytes: counting.bytesRead };
    const data = await vol.read(node, 0, 1 << 20);
    assert.equal(data.length, node.size);
    assert.equal(sha256(data), manifest().get(`boot/initrd.img-${KVER}`));
    const calls = counting.readCalls - before.calls;
    assert.ok(calls <= 8, `${calls} source reads for ${node.size} bytes`);
  });
}

test('reiserfs: probe says what it is, and not for other images', async () => {
  const ctx = createContext();
  const r = await reiserfs.probe(new MemorySource(imageBytes(fixture('reiserfs'))), ctx);
  assert.equal(r?.type, 'reiserfs');
  assert.equal(r?.label, 'tsgrub-r5');
  assert.equal(await reiserfs.probe(new MemorySource(imageBytes(fixture('ext4'))), ctx), null);
  assert.equal(await reiserfs.probe(new MemorySource(new Uint8Array(1000)), ctx), null);
});

/** `ls -l` style mode, as debugreiserfs prints it (the tree has no setuid/sticky bits). */
function modeString(mode: number): string {
  const type = { 0o040000: 'd', 0o100000: '-', 0o120000: 'l' }[mode & 0o170000] ?? '?';
  let s = type;
  for (const shift of [6, 3, 0]) {
    const p = (mode >> shift) & 7;
    s += (p & 4 ? 'r' : '-') + (p & 2 ? 'w' : '-') + (p & 1 ? 'x' : '-');
  }
  return s;
}

test('reiserfs-35: every object is 3.5 (v1 keys, v1 stat data) and its stat data agrees with debugreiserfs', async (t) => {
  const img = fixture('reiserfs-35');
  const { vfs } = await openBytes(imageBytes(img));
  if (!hasTool('debugreiserfs')) return t.skip('debugreiserfs (reiserfsprogs) not installed');
  const out = run('debugreiserfs', ['-d', img]).toString();
  assert.match(out, /of format 3\.5/);
  // Every item head of the tree: its key format, and each stat data item's fields.
  const formats = [...out.matchAll(/^\|\s*\d+\|.*, format (old|new)\|$/gm)].map((m) => m[1]);
  assert.ok(formats.length > 600, `${formats.length} items`);
  assert.deepEqual(new Set(formats), new Set(['old']));
  assert.doesNotMatch(out, /NEW SD/);
  const theirs = new Map<string, { mode: string; size: number; nlink: number; uid: number }>();
  const sd = /^\|\s*\d+\|(\d+) (\d+) 0x0 SD \(0\), len 32,.*\n\(OLD SD\), mode (\S+), size (\d+), nlink (\d+), uid (\d+),/gm;
  for (const m of out.matchAll(sd)) {
    theirs.set(`${m[1]} ${m[2]}`, { mode: m[3] as string, size: Number(m[4]), nlink: Number(m[5]), uid: Number(m[6]) });
  }
  // Ours: the root, the (hidden) private root and everything under the root; hard links are one object.
  const nodes = [await vfs.lstat('/'), await vfs.lstat('/.reiserfs_priv'), ...(await walk(vfs)).map((e) => e.node)];
  const ours = new Map<string, { mode: string; size: number; nlink: number; uid: number }>();
  for (const n of nodes) {
    assert.ok(n instanceof ReiserNode);
    ours.set(`${n.dirId} ${n.objectId}`, { mode: modeString(n.mode), size: n.size, nlink: n.nlink, uid: n.uid });
  }
  assert.ok(ours.size > 320, `${ours.size} objects`);
  assert.deepEqual([...ours].sort(), [...theirs].sort());
});
