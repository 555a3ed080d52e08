/**
 * XFS driver on real images made by mkfs.xfs (protofile: v5, v4 ftype=0, v5 sparse/bigtime/nrext64)
 * and by the kernel (loop mount + cp -a), compared with the tree manifest, grub-fstest, xfs_db and a
 * read-only loop mount.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, lstatSync, readlinkSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSource } from '../../../src/node/file-source.ts';
import { CountingSource, type ByteSource } from '../../../src/io/source.ts';
import { createContext } from '../../../src/limits.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import type { FsNode, Volume } from '../../../src/fs/types.ts';
import { xfs } from '../../../src/fs/xfs/index.ts';
import { daHashName } from '../../../src/fs/xfs/dir.ts';
import { FIXTURES, fixture, hasTool, manifest, run, sha256 } from '../../helpers/fixtures.ts';

const dec = new TextDecoder();
const enc = new TextEncoder();
const IMAGES = ['xfs5', 'xfs4', 'xfs5-sparse', 'xfs5-mount'] as const;
/** Images built from the staging tree (dir-node/, frag.bin) rather than the standard tree alone. */
const STAGED = new Set(['xfs5', 'xfs4', 'xfs5-mount']);

async function openImage(name: string, src?: ByteSource): Promise<{ vol: Volume; vfs: Vfs; path: string }> {
  const path = fixture(name);
  const ctx = createContext();
  const vol = await xfs.open(src ?? FileSource.open(path, name), ctx);
  return { vol, vfs: new Vfs(vol, ctx), path };
}

function xfsDb(path: string, ...cmds: string[]): string {
  return run('xfs_db', ['-r', ...cmds.flatMap((c) => ['-c', c]), path]).toString();
}

/** Every path in the volume (no leading slash) with its node, depth first. */
async function walk(vfs: Vfs): Promise<Map<string, FsNode>> {
  const out = new Map<string, FsNode>();
  const todo = [''];
  while (todo.length) {
    const dir = todo.pop() as string;
    for (const e of await vfs.readdir(dir === '' ? '/' : `/${dir}`)) {
      const p = dir === '' ? dec.decode(e.name) : `${dir}/${dec.decode(e.name)}`;
      const node = await vfs.lstat(`/${p}`);
      if (e.kind !== 'unknown') assert.equal(e.kind, node.kind, `${p}: directory entry type vs inode`);
      out.set(p, node);
      if (node.kind === 'dir') todo.push(p);
    }
  }
  return out;
}

const extra = new Map(
  readFileSync(join(FIXTURES, 'xfs-extra.sha256'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => [l.slice(66), l.slice(0, 64)] as const),
);

for (const name of IMAGES) {
  test(`${name}: every file matches the manifest`, async () => {
    const { vfs } = await openImage(name);
    const all = await walk(vfs);
    const m = manifest();
    for (const [p, sum] of m) {
      const node = all.get(p);
      assert.ok(node, `${p} listed`);
      assert.equal(sha256(await vfs.readFile(node)), sum, p);
    }
    assert.equal(dec.decode(await vfs.readlink('/vmlinuz')), 'boot/vmlinuz-6.1.0-tsgrub');
    assert.equal(dec.decode(await vfs.readlink('/initrd.img')), '/boot/initrd.img-6.1.0-tsgrub');
    assert.equal(dec.decode(await vfs.readFile('/deep/d01/d02/d03/d04/d05/d06/d07/d08/d09/d10/d11/d12/up')), 'tsgrub-host\n');
    const dirMany = [...all.keys()].filter((p) => p.startsWith('dir-many/'));
    assert.equal(dirMany.length, 300);
    if (STAGED.has(name)) {
      const nodeDir = [...all.entries()].filter(([p]) => p.startsWith('dir-node/'));
      assert.equal(nodeDir.length, 3000);
      for (const [p, node] of nodeDir) {
        const n = p.slice(-4);
        assert.equal(dec.decode(await vfs.readFile(node)), `node entry ${n}\n`, p);
      }
      assert.equal(sha256(await vfs.readFile('/frag.bin')), extra.get('frag.bin'));
      const blockDir = [...all.entries()].filter(([p]) => p.startsWith('dir-block/'));
      assert.equal(blockDir.length, 30);
      for (const [p, node] of blockDir) assert.equal(dec.decode(await vfs.readFile(node)), `block entry ${p.slice(-6, -4)}\n`, p);
      assert.equal(await vfs.exists('/dir-block/blk-31.txt'), false);
      // Lookups through the hash index, present and absent names.
      assert.ok(await vfs.exists('/dir-node/entry-with-a-longer-name-for-node-format-2999'));
      assert.equal(await vfs.exists('/dir-node/entry-with-a-longer-name-for-node-format-3001'), false);
      assert.equal(await vfs.exists('/dir-many/file-301.txt'), false);
    }
    // Every regular file in the image is one we expect (no phantom entries).
    for (const [p, node] of all) {
      if (node.kind !== 'file') continue;
      assert.ok(m.has(p) || extra.has(p) || p.startsWith('dir-node/') || p.startsWith('dir-block/') || p === 'prealloc.bin', `unexpected file ${p}`);
    }
  });

  test(`${name}: superblock, formats and inode metadata agree with xfs_db`, async (t) => {
    if (!hasTool('xfs_db')) return t.skip('xfs_db not installed');
    const { vol, vfs, path } = await openImage(name);
    const sb = xfsDb(path, 'sb 0', 'p fname uuid');
    assert.match(sb, new RegExp(`fname = "${vol.label}(\\\\000)*"`));
    assert.match(sb, new RegExp(`uuid = ${vol.uuid}`));
    const probe = await xfs.probe(FileSource.open(path), createContext());
    assert.deepEqual(probe, { type: 'xfs', label: vol.label, uuid: vol.uuid });
    const checks = ['/', '/etc', '/dir-many', '/boot/vmlinuz-6.1.0-tsgrub', '/sparse.bin'];
    if (STAGED.has(name)) checks.push('/dir-node', '/dir-block', '/frag.bin');
    for (const p of checks) {
      const node = await vfs.lstat(p);
      const out = xfsDb(path, `path ${p}`, 'p core.mode core.size core.nlinkv2 core.format');
      assert.match(out, new RegExp(`core.size = ${node.size}\\b`), p);
      assert.match(out, new RegExp(`core.mode = 0?${(node.mode as number).toString(8)}\\b`), p);
      assert.match(out, new RegExp(`core.nlinkv2 = ${node.nlink}\\b`), p);
    }
    // The fixtures must contain the structures this driver claims to read.
    assert.match(xfsDb(path, 'path /etc', 'p core.format'), /local/);
    assert.match(xfsDb(path, 'path /dir-many', 'p core.format'), /extents/);
    if (STAGED.has(name)) {
      assert.match(xfsDb(path, 'path /dir-node', 'p core.format'), /btree/);
      // Block form: one directory block, no leaf block in the fork.
      assert.match(xfsDb(path, 'path /dir-block', 'p core.format core.nextents'), /extents[\s\S]*core.nextents = 1\b/);
    }
    if (name === 'xfs5-mount') assert.match(xfsDb(path, 'path /frag.bin', 'p core.format'), /btree/);
  });

  test(`${name}: listings, sizes, times and bytes agree with grub-fstest`, async (t) => {
    if (!hasTool('grub-fstest')) return t.skip('grub-fstest not installed');
    const { vfs, path } = await openImage(name);
    const dirs = ['/', '/boot', '/etc', '/dir-many', '/long', '/deep/d01/d02/d03/d04/d05/d06/d07/d08/d09/d10/d11/d12'];
    if (STAGED.has(name)) dirs.push('/dir-node', '/dir-block');
    let compared = 0;
    for (const d of dirs) {
      // Plain `ls` gives every name; `ls -l` (sizes, times) is slow on big dirs and, on v4 ftype=0
      // B+tree directories, GRUB 2.06 lists only part of them, so it is used where it is complete.
      const names = run('grub-fstest', [path, 'ls', d]).toString().trim().split(/ +/).map((n) => n.replace(/\/$/, ''));
      const ours = (await vfs.readdir(d)).map((e) => dec.decode(e.name));
      assert.deepEqual([...ours].sort(), [...names].sort(), d);
      if (d === '/dir-node') continue;
      const grub = new Map<string, { size: string; time: string }>();
      for (const line of run('grub-fstest', [path, 'ls', '--', '-l', d]).toString().split('\n')) {
        const m = /^(\S+)\s+(\d{14}) (.+)$/.exec(line);
        if (m) grub.set((m[3] as string).replace(/\/$/, ''), { size: m[1] as string, time: m[2] as string });
      }
      for (const n of ours) {
        const p = `${d === '/' ? '' : d}/${n}`;
        // GRUB's long listing follows symlinks and drops a dangling one (/longlink).
        if (!(await vfs.exists(p))) continue;
        const node = await vfs.stat(p);
        const g = grub.get(n);
        assert.ok(g, `${p} in grub's long listing`);
        assert.equal(g.size, node.kind === 'dir' ? 'DIR' : String(node.size), `${p} size`);
        const iso = new Date((node.mtime as number) * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
        assert.equal(g.time, iso, `${p} mtime`);
        compared++;
      }
    }
    assert.ok(compared >= 315, `${compared} entries compared`);
    const files = ['/boot/vmlinuz-6.1.0-tsgrub', '/boot/initrd.img-6.1.0-tsgrub', '/boot/grub/grub.cfg', '/sparse.bin', '/etc/empty'];
    if (STAGED.has(name)) files.push('/frag.bin', '/dir-node/entry-with-a-longer-name-for-node-format-1234');
    for (const f of files) {
      const grubBytes = run('grub-fstest', [path, 'cat', f]);
      assert.equal(sha256(await vfs.readFile(f)), sha256(grubBytes), f);
    }
  });

  test(`${name}: extents() covers the file and reads back the same bytes`, async () => {
    const { vol, vfs } = await openImage(name);
    for (const p of ['/sparse.bin', '/boot/initrd.img-6.1.0-tsgrub', ...(STAGED.has(name) ? ['/frag.bin'] : [])]) {
      const node = await vfs.stat(p);
      const whole = await vfs.readFile(node);
      let pos = 0;
      for await (const e of (vol.extents as NonNullable<Volume['extents']>).call(vol, node)) {
        assert.equal(e.logical, pos, `${p}: extents are contiguous`);
        const bytes = e.physical === null ? new Uint8Array(e.length) : await vol.source.read(e.physical, e.length);
        assert.ok(Buffer.from(bytes).equals(whole.subarray(pos, pos + e.length)), `${p} at ${pos}`);
        pos += e.length;
      }
      assert.equal(pos, node.size);
    }
  });
}

test('xfs5-mount: kernel-written holes, hard links, remote symlink, bmbt file', async () => {
  const { vol, vfs } = await openImage('xfs5-mount');
  const a = await vfs.stat('/etc/hostname');
  const b = await vfs.stat('/etc/hostname.hardlink');
  assert.equal(a.id, b.id);
  assert.equal(a.nlink, 2);
  const holes: number[] = [];
  for await (const e of (vol.extents as NonNullable<Volume['extents']>).call(vol, await vfs.stat('/sparse.bin'))) if (e.physical === null) holes.push(e.length);
  assert.ok(holes.length >= 2, 'sparse.bin keeps its holes');
  const frag: number[] = [];
  for await (const e of (vol.extents as NonNullable<Volume['extents']>).call(vol, await vfs.stat('/frag.bin'))) if (e.physical !== null) frag.push(e.length);
  assert.equal(frag.length, 32, 'frag.bin: 32 written extents through the bmbt');
  // fallocate leaves unwritten extents: they read as zeros and have no physical bytes.
  const pre = await vfs.readFile('/prealloc.bin');
  assert.equal(pre.length, 65536);
  const want = new Uint8Array(65536);
  want.set(enc.encode('written'), 4 * 4096);
  assert.ok(Buffer.from(pre).equals(want));
  const kinds: string[] = [];
  for await (const e of (vol.extents as NonNullable<Volume['extents']>).call(vol, await vfs.stat('/prealloc.bin'))) kinds.push(e.physical === null ? 'none' : 'data');
  assert.ok(kinds.includes('none') && kinds.includes('data'), kinds.join());
  const target = dec.decode(await vfs.readlink('/longlink'));
  assert.equal(target.length, 58 * 12 + 3);
  assert.ok(target.startsWith('target-0001/target-0002/') && target.endsWith('target-0058/end'));
});

test('large reads are served by few large source reads', async () => {
  const path = fixture('xfs5');
  const counting = new CountingSource(FileSource.open(path));
  const ctx = createContext();
  const vol = await xfs.open(counting, ctx);
  const vfs = new Vfs(vol, ctx);
  const node = await vfs.stat('/boot/initrd.img-6.1.0-tsgrub');
  const before = counting.readCalls;
  const data = await vol.read(node, 0, 4 << 20);
  assert.equal(data.length, node.size);
  assert.equal(counting.readCalls - before, 1, 'one extent, one read');
});

test('xfs_da_hashname matches the hashes stored in a leaf', async (t) => {
  if (!hasTool('xfs_db')) return t.skip('xfs_db not installed');
  // xfs_db's `hash` command is xfsprogs' own implementation of the same function.
  for (const n of ['a', 'ab', 'abc', 'abcd', 'grub.cfg', 'entry-with-a-longer-name-for-node-format-0001']) {
    const out = xfsDb(fixture('xfs5'), `hash ${n}`).trim();
    assert.equal(daHashName(enc.encode(n)), Number(out), n);
  }
});

test('xfs5-mount: files, listings and symlinks agree with a read-only loop mount', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('loop mount needs root');
  const path = fixture('xfs5-mount');
  const mnt = mkdtempSync(join(tmpdir(), 'tsgrub-xfs-mnt-'));
  const r = spawnSync('mount', ['-o', 'loop,ro,norecovery', path, mnt], { stdio: 'pipe' });
  if (r.status !== 0) {
    rmdirSync(mnt);
    return t.skip(`loop mount unavailable: ${r.stderr.toString().trim()}`);
  }
  try {
    const { vfs } = await openImage('xfs5-mount');
    const ours = await walk(vfs);
    let files = 0;
    const kernel = new Set<string>();
    const todo = [''];
    while (todo.length) {
      const d = todo.pop() as string;
      for (const n of readdirSync(join(mnt, d))) {
        const p = d ? `${d}/${n}` : n;
        kernel.add(p);
        const st = lstatSync(join(mnt, p));
        const node = ours.get(p);
        assert.ok(node, `${p} missing from our listing`);
        assert.equal(node.size, st.size, p);
        assert.equal(node.mode, st.mode, p);
        if (st.isDirectory()) todo.push(p);
        else if (st.isSymbolicLink()) assert.equal(dec.decode(await vfs.readlink(`/${p}`)), readlinkSync(join(mnt, p)), p);
        else if (st.isFile()) {
          assert.equal(sha256(await vfs.readFile(node)), sha256(readFileSync(join(mnt, p))), p);
          files++;
        }
      }
    }
    assert.deepEqual([...ours.keys()].sort(), [...kernel].sort());
    assert.ok(files > 3300);
  } finally {
    spawnSync('umount', [mnt]);
    rmdirSync(mnt);
  }
});
