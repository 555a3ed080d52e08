/**
 * The plugin API's worked example: a filesystem driver written outside the package (tar-driver.ts,
 * against the public entry only), registered by passing it in, probed on a whole disk and inside a
 * GPT partition, read through the vfs and the boot loader, and checked against the tree `tar` was
 * given and against `tar -t`'s own listing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, readdirSync, lstatSync, readlinkSync, openSync, writeSync, closeSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasTool, run, sha256 } from '../helpers/fixtures.ts';
import { builtinDrivers, openDisk, type Vfs } from '../../src/index.ts';
import { openImageFile } from '../../src/node/index.ts';
import { ustar } from './tar-driver.ts';

let work = '';
let tarBytes: Uint8Array | null = null;
const missing = !hasTool('tar') ? 'tar not installed' : '';

before(() => {
  if (missing) return;
  work = mkdtempSync(join(tmpdir(), 'tsgrub-plugin-'));
  const tree = join(work, 'tree');
  mkdirSync(join(tree, 'boot/grub'), { recursive: true });
  mkdirSync(join(tree, 'etc/deep/er'), { recursive: true });
  writeFileSync(join(tree, 'boot/grub/grub.cfg'), 'set default=1\ntimeout=3\nmenuentry "tar one" {\n linux /boot/vmlinuz-one root=/dev/xvda1\n}\nmenuentry "tar two" {\n linux /boot/vmlinuz-two ro\n initrd /boot/initrd-two\n}\n');
  const big = new Uint8Array(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
  writeFileSync(join(tree, 'boot/vmlinuz-two'), big);
  writeFileSync(join(tree, 'boot/initrd-two'), 'initrd\n');
  writeFileSync(join(tree, 'etc/deep/er/hostname'), 'tarhost\n');
  writeFileSync(join(tree, 'etc/empty'), '');
  symlinkSync('boot/vmlinuz-two', join(tree, 'vmlinuz'));
  run('tar', ['--format=ustar', '--owner=0', '--group=0', '-C', tree, '-cf', join(work, 'tree.tar'), '.']);
  tarBytes = new Uint8Array(readFileSync(join(work, 'tree.tar')));
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Every path under `dir` in the real tree, with its kind and (for files) sha256 or (for links) target. */
function walkReal(root: string, rel = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(join(root, rel))) {
    const p = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(root, p));
    if (st.isDirectory()) {
      out.set(p, 'dir');
      for (const [k, v] of walkReal(root, p)) out.set(k, v);
    } else if (st.isSymbolicLink()) out.set(p, `link ${readlinkSync(join(root, p))}`);
    else out.set(p, `file ${sha256(readFileSync(join(root, p)))}`);
  }
  return out;
}

async function walkVfs(vfs: Vfs, rel = ''): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const dec = new TextDecoder();
  for (const e of await vfs.readdir(`/${rel}`)) {
    const p = rel ? `${rel}/${dec.decode(e.name)}` : dec.decode(e.name);
    const n = await vfs.lstat(`/${p}`);
    if (n.kind === 'dir') {
      out.set(p, 'dir');
      for (const [k, v] of await walkVfs(vfs, p)) out.set(k, v);
    } else if (n.kind === 'symlink') out.set(p, `link ${dec.decode(await vfs.readlink(`/${p}`))}`);
    else out.set(p, `file ${sha256(await vfs.readFile(n))}`);
  }
  return out;
}

test('a third-party driver passed in is probed on a whole disk and reads every file as tar wrote it', async (t) => {
  if (missing) return t.skip(missing);
  const img = await openDisk(tarBytes!, { drivers: [ustar, ...builtinDrivers] });
  const fss = await img.filesystems();
  assert.deepEqual(fss.map((f) => [f.path, f.type]), [['0', 'ustar']]);
  const vfs = await img.mount();
  assert.deepEqual(await walkVfs(vfs), walkReal(join(work, 'tree')));
  // tar's own listing names the same members.
  const listed = run('tar', ['-tf', join(work, 'tree.tar')]).toString().split('\n').filter(Boolean).map((l) => l.replace(/^\.\/?/, '').replace(/\/$/, '')).filter(Boolean).sort();
  assert.deepEqual([...(await walkVfs(vfs)).keys()].sort(), listed);
  // Symlinks are followed by the vfs, not the driver.
  assert.equal(sha256(await vfs.readFile('/vmlinuz')), sha256(readFileSync(join(work, 'tree/boot/vmlinuz-two'))));
});

test('without the driver the same image has no filesystem (nothing registers itself)', async (t) => {
  if (missing) return t.skip(missing);
  const img = await openDisk(tarBytes!);
  assert.deepEqual((await img.filesystems()).map((f) => f.type), [null]);
});

test('the boot loader finds the menu inside the plugin filesystem, in a GPT partition, through the Node entry', async (t) => {
  if (missing) return t.skip(missing);
  if (!hasTool('sfdisk')) return t.skip('sfdisk not installed');
  const disk = join(work, 'disk.img');
  writeFileSync(disk, new Uint8Array(0));
  truncateSync(disk, 16 * 1024 * 1024);
  run('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', disk], { input: Buffer.from('label: gpt\nstart=2048, size=2048, type=L\nstart=4096, size=20480, type=L\n') });
  const fd = openSync(disk, 'r+');
  writeSync(fd, tarBytes!, 0, tarBytes!.length, 4096 * 512);
  closeSync(fd);
  const img = await openImageFile(disk, { drivers: [...builtinDrivers, ustar] });
  try {
    assert.equal(img.partitionTable.scheme, 'gpt');
    assert.deepEqual((await img.filesystems()).map((f) => [f.path, f.type]), [['1', null], ['2', 'ustar']]);
    const { menu } = await img.bootMenu();
    assert.ok(menu);
    assert.equal(menu.path, '2');
    assert.deepEqual(menu.menu.entries.map((e) => e.title), ['tar one', 'tar two']);
    assert.equal(menu.selected, 1);
    assert.equal(menu.kernel, '/boot/vmlinuz-two');
    assert.equal(menu.ramdisk, '/boot/initrd-two');
    const vfs = await img.mount('2');
    const chunks: Uint8Array[] = [];
    for await (const c of vfs.chunks(await vfs.stat(menu.kernel))) chunks.push(c);
    assert.ok(chunks.length >= 4, 'streamed in 1 MiB chunks');
    assert.equal(sha256(Buffer.concat(chunks)), sha256(readFileSync(join(work, 'tree/boot/vmlinuz-two'))));
  } finally {
    img.close();
  }
});

test('a damaged archive is a typed error naming the structure and offset', async (t) => {
  if (missing) return t.skip(missing);
  const bad = tarBytes!.slice();
  // Second header: the first member is "./" (a directory, no data), so its header is at 512.
  bad[512 + 124] = 0x39; // '9' is not octal, and the checksum no longer matches
  const img = await openDisk(bad, { drivers: [ustar] });
  await assert.rejects(img.mount('0'), (e: unknown) => {
    const err = e as { code?: string; data?: { kind?: string; offset?: number } };
    return err.code === 'Corrupt' && err.data?.kind === 'tar.Header' && err.data.offset !== undefined && err.data.offset >= 512;
  });
});
