/**
 * EROFS on real mkfs.erofs 1.5 images (flat plain/inline, lz4hc compact indexes, lz4 ztailpacking,
 * full indexes, chunk-based): every file's sha256 against the tree manifest (the long name is one
 * byte shorter: erofs-utils 1.5 cannot store 255 bytes) and erofs-extra.sha256, and listings,
 * symlinks and bytes against `fsck.erofs --extract`; UUID against blkid.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, lstatSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemorySource } from '../../../src/io/source.ts';
import { createContext } from '../../../src/limits.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { erofs } from '../../../src/fs/erofs/index.ts';
import { FIXTURES, fixture, hasTool, manifest, run, sha256 } from '../../helpers/fixtures.ts';
import { codecs, walk } from '../squashfs/walk.ts';

const IMAGES = ['erofs', 'erofs-lz4hc', 'erofs-ztail', 'erofs-full', 'erofs-chunk'];
const UUID = '6f2c1a3e-5b4d-4c8e-9a7f-0123456789ab'; // given to mkfs.erofs -U by scripts/fixtures/erofs.sh

async function open(name: string): Promise<Vfs> {
  const ctx = createContext({}, codecs);
  return new Vfs(await erofs.open(new MemorySource(new Uint8Array(readFileSync(fixture(name)))), ctx), ctx);
}

/** The manifest as the staging tree holds it (long name shortened) plus the erofs-only files. */
function expected(): Map<string, string> {
  const m = new Map<string, string>();
  for (const [p, h] of manifest()) m.set(p.replace(/^long\/L/, 'long/'), h);
  for (const line of readFileSync(join(FIXTURES, 'erofs-extra.sha256'), 'utf8').trim().split('\n')) m.set(line.slice(66), line.slice(0, 64));
  return m;
}

/** Walks an extracted directory: path → sha256 / 'dir' / '-> target'. */
function walkDisk(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const stack = [''];
  while (stack.length) {
    const d = stack.pop() as string;
    for (const name of readdirSync(join(root, d))) {
      const p = d ? `${d}/${name}` : name;
      const st = lstatSync(join(root, p));
      if (st.isDirectory()) {
        out.set(p, 'dir');
        stack.push(p);
      } else if (st.isSymbolicLink()) out.set(p, `-> ${readlinkSync(join(root, p))}`);
      else out.set(p, sha256(readFileSync(join(root, p))));
    }
  }
  return out;
}

for (const name of IMAGES) {
  test(`${name}: every file matches the manifest; probe, UUID, hard link`, async () => {
    const vfs = await open(name);
    const w = await walk(vfs);
    const m = expected();
    assert.equal(w.files.size, m.size);
    for (const [p, h] of m) assert.equal(w.files.get(p), h, p);
    const probed = await erofs.probe(new MemorySource(new Uint8Array(readFileSync(fixture(name)))), createContext());
    assert.deepEqual(probed, { type: 'erofs', uuid: UUID });
    assert.equal(vfs.volume.uuid, UUID);
    assert.equal(vfs.volume.label, undefined);
    assert.equal((await vfs.stat('/etc/hostname')).id, (await vfs.stat('/etc/hostname.hardlink')).id);
    assert.equal(sha256(await vfs.readFile('/vmlinuz')), m.get('boot/vmlinuz-6.1.0-tsgrub'));
    assert.equal(await vfs.exists('/dir-many/file-301.txt'), false);
    assert.equal(await vfs.exists('/dir-many/file-000.txt'), false);
    assert.equal(await vfs.exists('/dir-many/file-300.txt'), true);
  });

  test(`${name}: listing, symlinks and bytes agree with fsck.erofs --extract`, async (t) => {
    if (!hasTool('fsck.erofs')) return t.skip('fsck.erofs (erofs-utils) not installed');
    const dir = mkdtempSync(join(tmpdir(), 'tsgrub-erofs-'));
    try {
      run('fsck.erofs', [`--extract=${join(dir, 'x')}`, fixture(name)], { timeout: 60_000 });
      const want = walkDisk(join(dir, 'x'));
      const w = await walk(await open(name));
      const got = new Map<string, string>();
      for (const p of w.dirs) got.set(p, 'dir');
      for (const [p, h] of w.files) got.set(p, h);
      for (const [p, tg] of w.symlinks) got.set(p, `-> ${tg}`);
      assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
      for (const [p, v] of want) assert.equal(got.get(p), v, p);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('UUID agrees with blkid', async (t) => {
  if (!hasTool('blkid')) return t.skip('blkid not installed');
  const out = run('blkid', ['-p', '-o', 'value', '-s', 'UUID', fixture('erofs')]).toString().trim();
  assert.equal((await open('erofs')).volume.uuid, out);
});

test('erofs-chunk: chunk extents hold the bytes; a null chunk reads as zeros', async () => {
  const img = new Uint8Array(readFileSync(fixture('erofs-chunk')));
  const vfs = await open('erofs-chunk');
  const node = (await vfs.stat('/sparse.bin')) as unknown as { loc: number; inodeSize: number; xattrSize: number; iU: number; size: number };
  const data = await vfs.readFile(node as never);
  const seen = new Map<number, number>();
  for await (const e of vfs.volume.extents!(node as never)) {
    assert.notEqual(e.physical, null);
    const phys = e.physical as number;
    seen.set(phys, (seen.get(phys) ?? 0) + 1);
    assert.deepEqual(img.subarray(phys, phys + e.length), data.subarray(e.logical, e.logical + e.length));
  }
  // erofs-utils 1.5 writes holes as one shared zero chunk (deduplicated), not as null chunks.
  assert.ok([...seen.values()].some((n) => n > 1), 'zero chunks are shared');
  // Make chunk 0 (random data) a null chunk: it must read as zeros, the rest unchanged.
  assert.equal(node.iU & 0x20, 0, 'block-map chunk format (4-byte entries)');
  const table = Math.ceil((node.loc + node.inodeSize + node.xattrSize) / 4) * 4;
  new DataView(img.buffer).setUint32(table, 0xffffffff, true);
  const ctx = createContext({}, codecs);
  const patched = new Vfs(await erofs.open(new MemorySource(img), ctx), ctx);
  const got = await patched.readFile('/sparse.bin');
  assert.ok(got.subarray(0, 65536).every((x) => x === 0));
  assert.deepEqual(got.subarray(65536), data.subarray(65536));
  const ext = [];
  for await (const e of patched.volume.extents!(await patched.stat('/sparse.bin'))) ext.push(e);
  assert.equal(ext[0]?.physical, null);
});

test('compressed reads at odd offsets match the whole file', async () => {
  for (const name of ['erofs-lz4hc', 'erofs-ztail', 'erofs-full']) {
    const vfs = await open(name);
    for (const p of ['/text.txt', '/mixed.bin']) {
      const node = await vfs.stat(p);
      const whole = await vfs.readFile(node);
      for (const [off, len] of [[1, 10], [4095, 2], [4096 * 7 + 123, 9000], [node.size - 5, 100]] as const) {
        const part = await vfs.volume.read(node, off, len);
        assert.deepEqual(part, whole.subarray(off, Math.min(node.size, off + len)), `${name} ${p} ${off}+${len}`);
      }
    }
  }
});
