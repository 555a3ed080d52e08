/**
 * The ext driver on real images made by mke2fs -d (scripts/fixtures/ext.sh), through the Vfs as the
 * product uses it: file checksums against the tree's manifest, directory listings, file bytes and
 * symlinks against debugfs (icat from sleuthkit for inline_data, where debugfs pads small files).
 */
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ext } from '../../../src/fs/ext/index.ts';
import { dxHash } from '../../../src/fs/ext/dxhash.ts';
import type { FsNode } from '../../../src/fs/types.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { CountingSource, MemorySource } from '../../../src/io/source.ts';
import { createContext } from '../../../src/limits.ts';
import { copyToFd } from '../../../src/node/copy.ts';
import { FileSource } from '../../../src/node/file-source.ts';
import { fixture, hasTool, manifest, run, sha256 } from '../../helpers/fixtures.ts';

const IMAGES: { name: string; type: string; inline?: boolean }[] = [
  { name: 'ext2-1k', type: 'ext2' },
  { name: 'ext3-1k', type: 'ext3' },
  { name: 'ext3-4k', type: 'ext3' },
  { name: 'ext4', type: 'ext4' },
  { name: 'ext4-inline', type: 'ext4', inline: true },
  { name: 'ext4-metabg', type: 'ext4' },
  { name: 'ext4-noext', type: 'ext4' },
  { name: 'ext4-64k', type: 'ext4' },
];

const dec = new TextDecoder();
const hasDebugfs = hasTool('debugfs');

async function openImage(name: string) {
  const path = fixture(name);
  // A fresh Uint8Array: the driver must never write into the caller's bytes.
  const src = new MemorySource(new Uint8Array(readFileSync(path)), name);
  const ctx = createContext();
  const vol = await ext.open(src, ctx);
  return { path, src, ctx, vol, vfs: new Vfs(vol, ctx) };
}

interface Walked {
  files: Map<string, FsNode>;
  dirs: Map<string, FsNode>;
  links: Map<string, FsNode>;
}

async function walk(vfs: Vfs): Promise<Walked> {
  const out: Walked = { files: new Map(), dirs: new Map(), links: new Map() };
  const todo: [string, number][] = [['', 0]];
  while (todo.length) {
    const [dir, depth] = todo.pop() as [string, number];
    assert.ok(depth < 32, 'tree too deep');
    const node = await vfs.lstat(`/${dir}`);
    out.dirs.set(dir, node);
    for (const e of await vfs.readdir(node)) {
      const p = dir ? `${dir}/${dec.decode(e.name)}` : dec.decode(e.name);
      if (p === 'lost+found') continue;
      const n = await vfs.lstat(`/${p}`);
      if (e.kind !== 'unknown') assert.equal(e.kind, n.kind, `${p}: entry type and inode type agree`);
      if (n.kind === 'dir') todo.push([p, depth + 1]);
      else if (n.kind === 'file') out.files.set(p, n);
      else if (n.kind === 'symlink') out.links.set(p, n);
    }
  }
  return out;
}

const sizeCache = new Map<string, Map<string, number>>();
/** name → size from debugfs "ls -p" (cached per directory). */
function debugfsSizes(img: string, dir: string): Map<string, number> {
  const key = `${img}\0${dir}`;
  let m = sizeCache.get(key);
  if (!m) {
    m = new Map();
    for (const line of run('debugfs', ['-R', `ls -p "/${dir}"`, img]).toString('utf8').split('\n')) {
      const f = line.split('/');
      if (f.length >= 8) m.set(f.slice(5, f.length - 2).join('/'), Number(f[f.length - 2]));
    }
    sizeCache.set(key, m);
  }
  return m;
}

/** debugfs "ls -p": /inode/mode/uid/gid/name/size/ per line. */
function debugfsLs(img: string, dir: string): string[] {
  const out = run('debugfs', ['-R', `ls -p "/${dir}"`, img]).toString('utf8');
  const names: string[] = [];
  for (const line of out.split('\n')) {
    const f = line.split('/');
    if (f.length < 8 || f[1] === '0') continue;
    const name = f.slice(5, f.length - 2).join('/');
    if (name !== '.' && name !== '..') names.push(name);
  }
  return names.sort();
}

for (const img of IMAGES) {
  describe(`ext fixture ${img.name}`, () => {
    test('probe reports type, label and UUID (as dumpe2fs does)', async (t) => {
      const src = new MemorySource(new Uint8Array(readFileSync(fixture(img.name))));
      const r = await ext.probe(src, createContext());
      assert.ok(r);
      assert.equal(r.type, img.type);
      if (!hasTool('dumpe2fs')) return t.skip('dumpe2fs not installed');
      const h = run('dumpe2fs', ['-h', fixture(img.name)]).toString();
      assert.equal(r.label, /Filesystem volume name:\s+(\S+)/.exec(h)?.[1]);
      assert.equal(r.uuid, /Filesystem UUID:\s+(\S+)/.exec(h)?.[1]);
    });

    test('every file of the standard tree matches the manifest', async () => {
      const { vfs } = await openImage(img.name);
      const m = manifest();
      assert.ok(m.size > 300);
      for (const [p, sum] of m) assert.equal(sha256(await vfs.readFile(p)), sum, p);
      // The 12-byte file is exactly 12 bytes (an inline file is not padded to 60).
      assert.equal((await vfs.readFile('/etc/twelve')).length, 12);
      assert.equal(dec.decode(await vfs.readFile('/etc/twelve')), 'twelve bytes');
    });

    test('directory listings match debugfs ls -p', async (t) => {
      if (!hasDebugfs) return t.skip('debugfs not installed');
      const { vfs, path } = await openImage(img.name);
      const w = await walk(vfs);
      assert.ok(w.dirs.size >= 18, `${w.dirs.size} dirs`);
      for (const [dir, node] of w.dirs) {
        const ours = (await vfs.readdir(node)).map((e) => dec.decode(e.name)).sort();
        assert.deepEqual(ours, debugfsLs(path, dir), `listing of /${dir}`);
      }
    });

    test('file bytes match debugfs (icat for inline_data), symlinks match the tree', async (t) => {
      if (!hasDebugfs) return t.skip('debugfs not installed');
      if (img.inline && !hasTool('icat')) return t.skip('icat (sleuthkit) not installed');
      const { vfs, path } = await openImage(img.name);
      const w = await walk(vfs);
      let compared = 0;
      const out = mkdtempSync(join(tmpdir(), 'tsgrub-ext-rdump-'));
      try {
        run('debugfs', ['-R', `rdump / ${out}`, path], { timeout: 60_000 });
        for (const [p, node] of w.files) {
          let theirs: Uint8Array = readFileSync(join(out, p));
          const ours = await vfs.readFile(node);
          if (img.inline && ours.length <= 60) {
            // debugfs pads inline files to 60 bytes: the size comes from debugfs's own ls -p, the bytes
            // from icat for the small files of /etc, and from debugfs's padded copy elsewhere.
            const slash = p.lastIndexOf('/');
            const size = debugfsSizes(path, slash < 0 ? '' : p.slice(0, slash)).get(p.slice(slash + 1));
            assert.equal(ours.length, size, `${p} size per debugfs ls -p`);
            theirs = p.startsWith('etc/') ? run('icat', [path, String(node.id)]) : theirs.subarray(0, size);
          }
          assert.equal(sha256(ours), sha256(theirs), p);
          compared++;
        }
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
      assert.equal(compared, w.files.size);
      assert.ok(compared >= 311, `${compared} files compared`);
      for (const [p, node] of w.links) {
        const st = run('debugfs', ['-R', `stat "/${p}"`, path]).toString();
        const fast = /Fast link dest: "(.*)"/.exec(st)?.[1];
        const target = dec.decode(await vfs.readlink(`/${p}`));
        if (fast !== undefined) assert.equal(target, fast, p);
        assert.equal(node.size, target.length);
      }
      assert.equal(dec.decode(await vfs.readlink('/vmlinuz')), 'boot/vmlinuz-6.1.0-tsgrub');
      assert.equal(dec.decode(await vfs.readlink('/initrd.img')), '/boot/initrd.img-6.1.0-tsgrub');
      const slow = dec.decode(await vfs.readlink('/x/slowlink'));
      assert.ok(slow.length > 60 && slow.endsWith('/grub.cfg'));
      assert.equal(slow, run('debugfs', ['-R', 'cat /x/slowlink', path]).toString());
      // Symlinks resolve through the vfs: relative, absolute, and the deep '..' chain.
      assert.equal(dec.decode(await vfs.readFile('/deep/d01/d02/d03/d04/d05/d06/d07/d08/d09/d10/d11/d12/up')), 'tsgrub-host\n');
      assert.equal((await vfs.stat('/initrd.img')).size, 600 * 1024 + 777);
    });

    test('extents() covers the file exactly; reads use few large source reads', async () => {
      const { vol, vfs, ctx } = await openImage(img.name);
      const counting = new CountingSource(vol.source);
      const node = await vfs.stat('/sparse.bin');
      let pos = 0;
      for await (const e of vol.extents?.(node) ?? []) {
        assert.equal(e.logical, pos);
        assert.ok(e.length > 0);
        pos += e.length;
      }
      assert.equal(pos, node.size);
      // Read the whole 600 KiB initrd in one call: it is contiguous in these fresh images.
      const vol2 = await ext.open(counting, ctx);
      const initrd = await new Vfs(vol2, ctx).stat('/boot/initrd.img-6.1.0-tsgrub');
      const before = counting.readCalls;
      const data = await vol2.read(initrd, 0, initrd.size);
      assert.equal(data.length, initrd.size);
      assert.ok(counting.readCalls - before <= 8, `${counting.readCalls - before} source reads for one 600 KiB read`);
    });
  });
}

/** `path` of the ext image file `img` copied by the copy fast path (copyToFd) into `out`: its bytes, after checking it wrote `size`. */
async function copiedOut(img: string, path: string, out: string, size: number): Promise<Buffer> {
  const ctx = createContext();
  const ofd = openSync(out, 'w');
  const file = FileSource.open(img);
  try {
    const vfs = new Vfs(await ext.open(file, ctx), ctx);
    assert.equal(await copyToFd(vfs, await vfs.stat(path), ofd), size);
  } finally {
    file.close();
    closeSync(ofd);
  }
  return readFileSync(out);
}

describe('ext extras', () => {
  test('extentBatches: a file of 5,000 fragments between holes, packed over several batches, equals debugfs and its bytes', async (t) => {
    if (!hasDebugfs || !hasTool('mke2fs')) return t.skip('mke2fs/debugfs not installed');
    const dir = mkdtempSync(join(tmpdir(), 'tsgrub-holes-'));
    try {
      // One 4 KiB block of data every 8 KiB (a hole between each), and a hole at the end.
      const blocks = 5000;
      const size = blocks * 8192 + 12345;
      const content = new Uint8Array(size);
      for (let i = 0; i < blocks; i++) for (let j = 0; j < 4096; j++) content[i * 8192 + j] = (i * 7 + j) & 0xff;
      mkdirSync(join(dir, 'tree'));
      const fd = openSync(join(dir, 'tree', 'holes.bin'), 'w');
      for (let i = 0; i < blocks; i++) writeSync(fd, content, i * 8192, 4096, i * 8192);
      ftruncateSync(fd, size);
      closeSync(fd);
      const img = join(dir, 'holes.img');
      run('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-d', join(dir, 'tree'), img, '64M']);
      // debugfs's leaf extents: "2/ 2   1/339     0 -     0  2065 -  2065      1".
      const theirs: Array<[number, number, number]> = [];
      for (const line of run('debugfs', ['-R', 'ex /holes.bin', img]).toString().split('\n')) {
        const m = /^\s*(\d+)\/\s*(\d+)\s+\d+\/\s*\d+\s+(\d+) -\s*(\d+)\s+(\d+) -\s*\d+\s+(\d+)/.exec(line);
        if (m && m[1] === m[2]) theirs.push([Number(m[3]) * 4096, Number(m[6]) * 4096, Number(m[5]) * 4096]);
      }
      assert.equal(theirs.length, blocks);
      const src = new MemorySource(new Uint8Array(readFileSync(img)), 'holes');
      const ctx = createContext();
      const vol = await ext.open(src, ctx);
      const node = await new Vfs(vol, ctx).stat('/holes.bin');
      let batches = 0;
      let pos = 0;
      const data: Array<[number, number, number]> = [];
      let nodesAtFirst = -1;
      const nodesBefore = ctx.budget.nodesVisited;
      for await (const b of vol.extentBatches?.(node) ?? []) {
        if (nodesAtFirst < 0) nodesAtFirst = ctx.budget.nodesVisited;
        batches++;
        assert.ok(b.count > 0 && b.data.length >= 3 * b.count);
        for (let i = 0; i < b.count; i++) {
          const [logical, length, physical] = [b.data[3 * i], b.data[3 * i + 1], b.data[3 * i + 2]] as number[];
          assert.equal(logical, pos, 'extents are contiguous, holes included');
          assert.ok(length > 0);
          if (physical !== -1) data.push([logical, length, physical]);
          else assert.ok(logical === 0 || i === 0 || b.data[3 * i - 1] !== -1, 'no two holes in a row');
          pos = logical + length;
        }
      }
      assert.equal(pos, size, 'up to the file size, the tail hole included');
      assert.ok(batches >= 3, `${batches} batches`);
      assert.deepEqual(data, theirs);
      // Leaf by leaf: the first batch came out before the tree's ~15 leaves had all been visited.
      const nodesAtEnd = ctx.budget.nodesVisited;
      assert.ok(nodesAtFirst - nodesBefore < (nodesAtEnd - nodesBefore) / 2, `first batch after ${nodesAtFirst - nodesBefore} of ${nodesAtEnd - nodesBefore} tree nodes`);
      // A second walk comes from the map kept by the first, and yields the same extents.
      const again: Array<[number, number, number]> = [];
      for await (const b of vol.extentBatches?.(node) ?? []) {
        for (let i = 0; i < b.count; i++) if (b.data[3 * i + 2] !== -1) again.push([b.data[3 * i], b.data[3 * i + 1], b.data[3 * i + 2]] as [number, number, number]);
      }
      assert.equal(ctx.budget.nodesVisited, nodesAtEnd, 'no tree node visited twice');
      assert.deepEqual(again, theirs);
      // The copy along them gives the file's bytes (holes as zeros).
      assert.equal(sha256(await copiedOut(img, '/holes.bin', join(dir, 'out'), size)), sha256(content));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('unwritten (preallocated) extents read as zeros over stale bytes, by read and by the copy', async (t) => {
    if (!hasDebugfs || !hasTool('mke2fs')) return t.skip('mke2fs/debugfs not installed');
    const dir = mkdtempSync(join(tmpdir(), 'tsgrub-unwritten-'));
    try {
      const img = join(dir, 'u.img');
      const head = join(dir, 'head');
      const headBytes = new Uint8Array(4096).fill(0x68);
      writeFileSync(head, headBytes);
      run('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', img, '16M']);
      // One written block, then 99 blocks preallocated (debugfs marks them Uninit), inside the size.
      run('debugfs', ['-w', '-R', `write ${head} /f`, img]);
      run('debugfs', ['-w', '-R', 'fallocate /f 1 99', img]);
      run('debugfs', ['-w', '-R', `sif /f size ${100 * 4096}`, img]);
      const m = /^\s*\d+\/\s*\d+\s+\d+\/\s*\d+\s+1 -\s*99\s+(\d+) -\s*\d+\s+99 Uninit/m.exec(run('debugfs', ['-R', 'ex /f', img]).toString());
      assert.ok(m, 'blocks 1-99 preallocated, unwritten');
      // Stale bytes in the preallocated blocks: what was on the disk before must not be read back.
      const bytes = new Uint8Array(readFileSync(img));
      bytes.fill(0x5a, Number(m[1]) * 4096, (Number(m[1]) + 99) * 4096);
      writeFileSync(img, bytes);
      const want = new Uint8Array(100 * 4096);
      want.set(headBytes);
      const ctx = createContext();
      const vol = await ext.open(new MemorySource(bytes, 'u'), ctx);
      const vfs = new Vfs(vol, ctx);
      const node = await vfs.stat('/f');
      assert.equal(sha256(await vol.read(node, 0, node.size)), sha256(want));
      let mapped = 0;
      for await (const b of vol.extentBatches?.(node) ?? []) for (let i = 0; i < b.count; i++) if (b.data[3 * i + 2] !== -1) mapped += b.data[3 * i + 1] as number;
      assert.equal(mapped, 4096, 'only the written block is mapped to the disk');
      assert.equal(sha256(await copiedOut(img, '/f', join(dir, 'out'), want.length)), sha256(want));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('fragmented file with an index node (depth 1) and triple-indirect sparse file match debugfs', async (t) => {
    if (!hasDebugfs) return t.skip('debugfs not installed');
    for (const name of ['ext4', 'ext2-1k', 'ext4-noext', 'ext4-64k']) {
      const { vfs, path } = await openImage(name);
      if (name === 'ext4') {
        const ex = run('debugfs', ['-R', 'ex /x/frag.bin', path]).toString();
        assert.match(ex, /^\s*0\/\s*1\s/m, 'frag.bin has a depth-1 extent tree');
      }
      const frag = await vfs.readFile('/x/frag.bin');
      assert.equal(sha256(frag), sha256(run('debugfs', ['-R', 'cat /x/frag.bin', path])), `${name} frag.bin`);
      if (name !== 'ext4' && name !== 'ext4-64k') {
        const st = run('debugfs', ['-R', 'stat /x/triple.bin', path]).toString();
        assert.match(st, /\(TIND\)/, 'triple.bin uses the triple-indirect block');
        const tri = await vfs.stat('/x/triple.bin');
        const theirs = run('debugfs', ['-R', 'cat /x/triple.bin', path], { timeout: 60_000 });
        const ours = await vfs.readFile(tri);
        assert.equal(ours.length, theirs.length);
        assert.equal(sha256(ours), sha256(theirs), `${name} triple.bin`);
      }
    }
  });

  test('htree name hashes match debugfs dx_hash', async (t) => {
    if (!hasDebugfs) return t.skip('debugfs not installed');
    const seed = '5e1f0000-0000-4000-8000-0000000005ed';
    const seedWords = [0, 1, 2, 3].map((i) => {
      const hex = seed.replace(/-/g, '');
      return parseInt(hex.slice(i * 8, i * 8 + 8).match(/../g)!.reverse().join(''), 16);
    });
    const names = ['file-001.txt', 'a', 'grub.cfg', 'x'.repeat(70), 'héllo-sïgned'];
    const enc = new TextEncoder();
    for (const [alg, version] of [['legacy', 0], ['half_md4', 1], ['tea', 2]] as const) {
      for (const n of names) {
        const out = run('debugfs', ['-R', `dx_hash -h ${alg} -s ${seed} "${n}"`, '/dev/null']).toString();
        const m = /Hash of .* is (0x[0-9a-f]+)/.exec(out);
        if (!m) return t.skip(`debugfs dx_hash output not understood: ${out.slice(0, 200)}`);
        assert.equal(dxHash(enc.encode(n), version, seedWords), Number(m[1]), `${alg} ${n}`);
        // debugfs 1.47 ignores the *_unsigned names; for ASCII names both flavours agree by definition.
        if (/^[\x00-\x7f]*$/.test(n)) assert.equal(dxHash(enc.encode(n), version + 3, seedWords), Number(m[1]), `${alg}_unsigned ${n}`);
        else assert.notEqual(dxHash(enc.encode(n), version + 3, seedWords), Number(m[1]), `${alg}_unsigned ${n} differs for bytes ≥ 0x80`);
      }
    }
  });

  test('every name of the 300-entry htree directory is found through the index, near misses are not', async () => {
    const { vfs } = await openImage('ext2-1k');
    const dec = new TextDecoder();
    for (let i = 1; i <= 300; i++) {
      const n = String(i).padStart(3, '0');
      assert.equal(dec.decode(await vfs.readFile(`/dir-many/file-${n}.txt`)), `file ${n}\n`);
    }
    const dir = await vfs.stat('/dir-many');
    for (const miss of ['file-1500.txt', 'file-15.txt', 'file-150.tx', 'file-150.txT', 'file-150.txt\u00a0', 'ile-150.txt']) {
      assert.equal(await vfs.volume.lookup(dir, new TextEncoder().encode(miss)), null, miss);
    }
  });

  test('lookups in the 300-entry htree directory use the index (no linear scan)', async (t) => {
    if (!hasDebugfs) return t.skip('debugfs not installed');
    const { vfs, ctx, path } = await openImage('ext2-1k');
    assert.match(run('debugfs', ['-R', 'htree /dir-many', path]).toString(), /Root node dump/);
    const dir = await vfs.stat('/dir-many');
    assert.ok(dir.size >= 7 * 1024, 'dir-many spans many 1 KiB blocks');
    // One lookup through the index reads the root, one leaf and the inode; a linear scan reads ~8 blocks.
    for (const name of ['file-300.txt', 'file-150.txt', 'file-301.txt', 'no-such-name']) {
      const before = ctx.budget.metadataBytes;
      const n = await vfs.volume.lookup(dir, new TextEncoder().encode(name));
      assert.equal(n === null, name === 'file-301.txt' || name === 'no-such-name', name);
      assert.ok(ctx.budget.metadataBytes - before <= 2 * 1024 + 256, `${name}: ${ctx.budget.metadataBytes - before} metadata bytes`);
    }
  });
});
