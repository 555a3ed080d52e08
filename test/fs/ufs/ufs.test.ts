/**
 * UFS driver on real makefs images (UFS1/UFS2, both byte orders) and the Solaris-converted UFS1:
 * every file against the tree manifest, listings and bytes against grub-fstest and sleuthkit,
 * identity against blkid.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture, hasTool, manifest, run, sha256 } from '../../helpers/fixtures.ts';
import { MemorySource, CountingSource } from '../../../src/io/source.ts';
import { createContext } from '../../../src/limits.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { ufs } from '../../../src/fs/ufs/index.ts';
import { dec, imageBytes, openBytes, walk } from './helpers.ts';

const IMAGES = [
  { name: 'ufs1-le', type: 'ufs1' },
  { name: 'ufs1-be', type: 'ufs1' },
  { name: 'ufs2-le', type: 'ufs2' },
  { name: 'ufs2-be', type: 'ufs2' },
  { name: 'ufs1-solaris', type: 'ufs1' },
] as const;

const KVER = '6.1.0-tsgrub';
/** The standard tree's symlinks (scripts/fixtures/common.sh mktree). */
const LINKS = new Map([
  ['vmlinuz', `boot/vmlinuz-${KVER}`],
  ['initrd.img', `/boot/initrd.img-${KVER}`],
  ['deep/d01/d02/d03/d04/d05/d06/d07/d08/d09/d10/d11/d12/up', `${'../'.repeat(13)}etc/hostname`],
]);

for (const { name, type } of IMAGES) {
  test(`${name}: every file matches the manifest, symlinks resolve`, async () => {
    const bytes = imageBytes(fixture(name));
    const ctx = createContext();
    const probe = await ufs.probe(new MemorySource(bytes), ctx);
    assert.equal(probe?.type, type);
    const { vfs } = await openBytes(bytes);
    const want = manifest();
    const seen = new Map<string, string>();
    const links = new Map<string, string>();
    for (const { path, node } of await walk(vfs)) {
      if (node.kind === 'file') seen.set(path, sha256(await vfs.readFile(node)));
      if (node.kind === 'symlink') links.set(path, dec.decode(await vfs.readlink(path)));
    }
    assert.deepEqual([...seen.keys()].sort(), [...want.keys()].sort());
    for (const [p, h] of want) assert.equal(seen.get(p), h, p);
    assert.deepEqual(links, LINKS);
    // Through the symlinks (relative, absolute, 13 levels of ..).
    assert.equal(sha256(await vfs.readFile('/vmlinuz')), want.get(`boot/vmlinuz-${KVER}`));
    assert.equal(sha256(await vfs.readFile('/initrd.img')), want.get(`boot/initrd.img-${KVER}`));
    assert.equal(dec.decode(await vfs.readFile('/deep/d01/d02/d03/d04/d05/d06/d07/d08/d09/d10/d11/d12/up')), 'tsgrub-host\n');
    // Hard link: same inode.
    assert.equal((await vfs.stat('/etc/hostname')).id, (await vfs.stat('/etc/hostname.hardlink')).id);
  });

  test(`${name}: UUID and type agree with blkid`, async (t) => {
    if (!hasTool('blkid')) return t.skip('blkid not installed');
    const img = fixture(name);
    const out = run('blkid', ['-p', '-o', 'export', img]).toString();
    const field = (k: string) => out.split('\n').find((l) => l.startsWith(`${k}=`))?.slice(k.length + 1);
    const probe = await ufs.probe(new MemorySource(imageBytes(img)), createContext());
    assert.equal(field('TYPE'), 'ufs');
    assert.equal(field('VERSION'), type === 'ufs2' ? '2' : '1');
    assert.equal(probe?.uuid, field('UUID'));
  });
}

test('large reads are served by few, large source reads', async () => {
  const src = new CountingSource(new MemorySource(imageBytes(fixture('ufs2-le'))));
  const ctx = createContext();
  const vfs = new Vfs(await ufs.open(src, ctx), ctx);
  const node = await vfs.stat(`/boot/initrd.img-${KVER}`);
  const before = { calls: src.readCalls, bytes: src.bytesRead };
  const data = await vfs.volume.read(node, 0, node.size);
  assert.equal(data.length, node.size);
  // makefs lays the file out contiguously: a handful of data reads plus a few indirect blocks.
  assert.ok(src.readCalls - before.calls <= 8, `${src.readCalls - before.calls} source reads`);
  assert.ok(src.bytesRead - before.bytes < node.size + 64 * 1024);
});

test('holes read as zeros and partial reads at odd offsets', async () => {
  const { vfs } = await openBytes(imageBytes(fixture('ufs1-le')));
  const node = await vfs.stat('/sparse.bin');
  assert.equal(node.size, 2 * 1024 * 1024);
  const whole = await vfs.readFile(node);
  const part = await vfs.volume.read(node, 4000, 1_048_600);
  assert.deepEqual(part, whole.subarray(4000, 4000 + 1_048_600));
  assert.equal((await vfs.volume.read(node, node.size - 10, 100)).length, 10);
  assert.equal((await vfs.volume.read(node, node.size, 100)).length, 0);
});

test('ufs1-solaris: 16-bit d_namlen directories, uid/gid from icommon 116/120', async () => {
  const { vfs } = await openBytes(imageBytes(fixture('ufs1-solaris')));
  // scripts/fixtures/ufs.sh chowns etc/twelve to 1234:5678 before building the source image.
  const twelve = await vfs.stat('/etc/twelve');
  assert.equal(twelve.uid, 1234);
  assert.equal(twelve.gid, 5678);
  assert.equal((await vfs.stat('/etc/hostname')).uid, 0);
  const names = (await vfs.readdir('/long')).map((e) => dec.decode(e.name));
  assert.deepEqual(names, [`${'L'.repeat(251)}.txt`]);
  // Solaris records no d_type: every entry is 'unknown' and the vfs must stat it.
  assert.ok((await vfs.readdir('/')).every((e) => e.kind === 'unknown'));
});

test('4.4BSD images record d_type', async () => {
  const { vfs } = await openBytes(imageBytes(fixture('ufs2-be')));
  const kinds = new Map((await vfs.readdir('/')).map((e) => [dec.decode(e.name), e.kind]));
  assert.equal(kinds.get('boot'), 'dir');
  assert.equal(kinds.get('vmlinuz'), 'symlink');
  assert.equal(kinds.get('sparse.bin'), 'file');
});

/** grub-fstest `ls -la DIR` lines: "DIR <time> name/" or "<size> <time> name". */
function grubLs(img: string, dir: string): Map<string, string> {
  const out = run('grub-fstest', [img, 'ls', '--', '-la', dir]).toString();
  const m = new Map<string, string>();
  for (const line of out.split('\n')) {
    const r = /^(\S+)\s+\d{14} (.*)$/.exec(line.trimEnd());
    if (!r) continue;
    const name = (r[2] as string).replace(/\/$/, '');
    if (name === '.' || name === '..') continue;
    m.set(name, r[1] as string);
  }
  return m;
}

// GRUB 2.06 reads 4.4BSD UFS1 LE and UFS2 LE; it fails on big-endian UFS1 files past the direct
// blocks (fs-images.md §6.4), lists nothing on big-endian UFS2 (no ufs2_be module; exit 0, no
// output) and does not know Solaris directories.
for (const name of ['ufs1-le', 'ufs2-le']) {
  test(`${name}: listings and bytes agree with grub-fstest`, async (t) => {
    if (!hasTool('grub-fstest')) return t.skip('grub-fstest not installed');
    const img = fixture(name);
    const { vfs } = await openBytes(imageBytes(img));
    let dirs = 0;
    let files = 0;
    for (const dir of ['/', '/boot', '/etc', '/dir-many', '/long', '/deep/d01/d02/d03/d04/d05/d06/d07/d08/d09/d10/d11/d12']) {
      const grub = grubLs(img, dir);
      const ours = new Map<string, string>();
      for (const e of await vfs.readdir(dir)) {
        const n = dec.decode(e.name);
        const node = await vfs.lstat(`${dir}/${n}`);
        // grub lists symlinks by their target's size or not at all; compare files and dirs only.
        if (node.kind === 'dir') ours.set(n, 'DIR');
        else if (node.kind === 'file') ours.set(n, String(node.size));
      }
      for (const [n, v] of [...grub]) if (!ours.has(n) && v !== 'DIR') grub.delete(n); // symlinks
      assert.deepEqual(ours, grub, dir);
      dirs++;
    }
    for (const p of [`/boot/vmlinuz-${KVER}`, `/boot/initrd.img-${KVER}`, '/sparse.bin', '/boot/grub/grub.cfg', '/etc/twelve']) {
      const g = run('grub-fstest', [img, 'cat', p]);
      assert.equal(sha256(await vfs.readFile(p)), sha256(g), p);
      files++;
    }
    assert.equal(dirs, 6);
    assert.equal(files, 5);
  });
}

/** sleuthkit `fls -r -p` lines: "r/r 15:\tboot/vmlinuz-…". */
function fls(img: string): Map<string, { type: string; ino: number }> {
  const m = new Map<string, { type: string; ino: number }>();
  for (const line of run('fls', ['-r', '-p', img]).toString().split('\n')) {
    const r = /^(\S)\/\S\s+(\d+):\t(.*)$/.exec(line);
    if (!r || r[1] === 'V') continue; // V/V $OrphanFiles is sleuthkit's virtual directory
    m.set(r[3] as string, { type: r[1] as string, ino: Number(r[2]) });
  }
  return m;
}

for (const name of ['ufs1-le', 'ufs1-be']) {
  test(`${name}: tree, inode numbers and bytes agree with sleuthkit fls/icat`, async (t) => {
    if (!hasTool('fls') || !hasTool('icat')) return t.skip('sleuthkit (fls, icat) not installed');
    const img = fixture(name);
    const { vfs } = await openBytes(imageBytes(img));
    const tsk = fls(img);
    const ours = new Map<string, { type: string; ino: number }>();
    const TYPE = { file: 'r', dir: 'd', symlink: 'l', other: '-' } as const;
    for (const { path, node } of await walk(vfs)) ours.set(path, { type: TYPE[node.kind], ino: node.id as number });
    assert.deepEqual(ours, tsk);
    let compared = 0;
    for (const [path, { type, ino }] of tsk) {
      if (type !== 'r') continue;
      const theirs = run('icat', [img, String(ino)]);
      assert.equal(sha256(await vfs.readFile(`/${path}`)), sha256(theirs), path);
      compared++;
    }
    assert.ok(compared >= 300, `${compared} files compared`);
  });
}
