/**
 * Differential: the same ReiserFS images read by GRUB (grub-fstest `ls -l`, `cat`) and by Xen's real
 * libxenfsimage reiserfs plugin (what pygrub calls). Skips with a message when a tool is missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { PYTHON, fixture, hasTool, manifest, run, sha256 } from '../../helpers/fixtures.ts';
import { dec, imageBytes, openBytes, walk } from './helpers.ts';

const IMAGES = ['reiserfs', 'reiserfs-tea', 'reiserfs-yura', 'reiserfs-35'];
const XENPY = '/usr/lib/xen-4.17/lib/python';
const DIRS = ['/', '/boot', '/boot/grub', '/etc', '/long', '/dir-many', '/deep/d01/d02/d03/d04/d05/d06/d07/d08/d09/d10/d11/d12'];

for (const name of IMAGES) {
  test(`${name}: listings and bytes agree with grub-fstest`, async (t) => {
    if (!hasTool('grub-fstest')) return t.skip('grub-fstest (grub-common) not installed');
    const img = fixture(name);
    const { vfs } = await openBytes(imageBytes(img));
    let listed = 0;
    for (const dir of DIRS) {
      // GRUB prints "DIR <date> name/" or "<size> <date> name" (sizes of symlink targets); it hides dot names.
      const grub = new Map<string, string>();
      for (const line of run('grub-fstest', [img, '--', 'ls', '-l', dir]).toString().split('\n')) {
        const m = /^(DIR|\d+)\s+\d+\s+(.+?)\/?$/.exec(line.trim());
        if (m) grub.set(m[2] as string, m[1] as string);
      }
      const ours = new Map<string, string>();
      for (const e of await vfs.readdir(dir)) {
        const n = dec.decode(e.name);
        if (n.startsWith('.')) continue;
        const st = await vfs.stat(`${dir}/${n}`);
        ours.set(n, st.kind === 'dir' ? 'DIR' : String(st.size));
      }
      assert.deepEqual([...ours].sort(), [...grub].sort(), dir);
      listed += ours.size;
    }
    assert.ok(listed > 310);
    const files = ['/boot/grub/grub.cfg', '/boot/vmlinuz-6.1.0-tsgrub', '/boot/initrd.img-6.1.0-tsgrub', '/vmlinuz', '/sparse.bin', '/etc/twelve', '/etc/empty', '/dir-many/file-150.txt', `/long/${'L'.repeat(251)}.txt`];
    for (const f of files) {
      const theirs = run('grub-fstest', [img, '--', 'cat', f]);
      assert.equal(sha256(await vfs.readFile(f)), sha256(theirs), f);
    }
  });

  test(`${name}: every file agrees with Xen's libxenfsimage`, async (t) => {
    if (!existsSync(XENPY) || !existsSync(PYTHON)) return t.skip('libxenfsimage (xen-utils-4.17) not installed');
    const img = fixture(name);
    const { vfs } = await openBytes(imageBytes(img));
    const files = (await walk(vfs)).filter((e) => e.node.kind === 'file').map((e) => e.path);
    const script = [
      'import sys, hashlib',
      `sys.path.insert(1, ${JSON.stringify(XENPY)})`,
      'import xenfsimage',
      'fs = xenfsimage.open(sys.argv[1], 0, "")',
      'for p in sys.stdin.read().split("\\n"):',
      '    if p:',
      '        d = fs.open_file("/" + p).read(64 << 20, 0)',
      '        print(hashlib.sha256(d).hexdigest(), p)',
    ].join('\n');
    let out: string;
    try {
      out = run(PYTHON, ['-c', script, img], { input: Buffer.from(files.join('\n')), timeout: 60_000 }).toString();
    } catch (e) {
      return t.skip(`xenfsimage could not run: ${String(e).slice(0, 200)}`);
    }
    const theirs = new Map(out.trim().split('\n').map((l) => [l.slice(65), l.slice(0, 64)] as const));
    assert.equal(theirs.size, files.length);
    const m = manifest();
    for (const f of files) {
      const ours = sha256(await vfs.readFile(`/${f}`));
      assert.equal(ours, theirs.get(f), f);
      assert.equal(ours, m.get(f), f);
    }
  });
}
