/**
 * btrfs driver: every manifest file on every fixture, compared with independent readers
 * (`btrfs restore`, grub-fstest, the kernel via a read-only loop mount), subvolumes, and hostile
 * images patched in memory (checksums recomputed so the mutation reaches the parser).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, lstatSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { nodeCodecs } from '../../../src/codec/node.ts';
import { TsgrubError } from '../../../src/errors.ts';
import { btrfs, nameHash } from '../../../src/fs/btrfs/index.ts';
import type { LeafItem, TreeNode, TreeRoot } from '../../../src/fs/btrfs/tree.ts';
import type { Volume } from '../../../src/fs/types.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { crc32c } from '../../../src/io/checksum.ts';
import { CountingSource, MemorySource } from '../../../src/io/source.ts';
import { createContext, type Limits } from '../../../src/limits.ts';
import { FIXTURES, fixture, hasTool, manifest, run, sha256 } from '../../helpers/fixtures.ts';

const COMPRESSED = ['btrfs-zstd', 'btrfs-lzo', 'btrfs-zlib'];
/** RAID fixtures hold the tree without the two big random files (scripts/fixtures/btrfs.sh). */
const RAID = ['btrfs-raid1-dev2', 'btrfs-raid10-dev2', 'btrfs-raid0'];
const ALL = ['btrfs', ...COMPRESSED, 'btrfs-subvol', ...RAID];
const BIG = /^boot\/(vmlinuz|initrd\.img)-/;
function expectedFiles(name: string): [string, string][] {
  return [...manifest()].filter(([p]) => !(RAID.includes(name) && BIG.test(p)));
}
const have = (name: string) => existsSync(join(FIXTURES, `${name}.img.gz`));
const images = new Map<string, Uint8Array>();
function image(name: string): Uint8Array {
  let b = images.get(name);
  if (!b) {
    b = new Uint8Array(readFileSync(fixture(name)));
    images.set(name, b);
  }
  return b;
}

async function open(bytes: Uint8Array, subvolume?: string, limits: Partial<Limits> = {}): Promise<{ vol: Volume; vfs: Vfs }> {
  const ctx = createContext(limits, nodeCodecs);
  const vol = await btrfs.open(new MemorySource(bytes, 'img'), ctx, subvolume === undefined ? undefined : { subvolume });
  return { vol, vfs: new Vfs(vol, ctx) };
}

/** Independent expected contents of the extras written into the compressed fixtures. */
function expectedSeq(): Uint8Array {
  const lines: string[] = [];
  for (let i = 1; i <= 100000; i++) lines.push(String(i));
  return new TextEncoder().encode(lines.join('\n') + '\n');
}
function expectedPrealloc(): Uint8Array {
  const b = new Uint8Array(262144);
  b.set(new TextEncoder().encode('hello'), 100000);
  return b;
}

async function expectTyped(p: Promise<unknown>, code: string, kind?: string | RegExp): Promise<TsgrubError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof TsgrubError, `untyped error: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (kind instanceof RegExp) assert.match(String(e.data.kind ?? e.data.limit), kind, e.message);
    else if (kind) assert.equal(e.data.kind ?? e.data.limit, kind, e.message);
    return e;
  }
  assert.fail(`expected a ${code} error`);
}

describe('btrfs: contents', () => {
  for (const name of ALL) {
    it(`${name}: every manifest file matches its sha256`, async (t) => {
      if (!have(name)) return t.skip(`${name} fixture not built (needs root + loop mounts)`);
      const { vol, vfs } = await open(image(name));
      assert.equal(vol.type, 'btrfs');
      let n = 0;
      for (const [path, hash] of expectedFiles(name)) {
        assert.equal(sha256(await vfs.readFile(path)), hash, path);
        n++;
      }
      assert.ok(n > 300);
      assert.deepEqual(new TextDecoder().decode(await vfs.readlink('vmlinuz')), 'boot/vmlinuz-6.1.0-tsgrub');
      assert.deepEqual(new TextDecoder().decode(await vfs.readlink('initrd.img')), '/boot/initrd.img-6.1.0-tsgrub');
      if (!RAID.includes(name)) assert.equal((await vfs.stat('vmlinuz')).size, 400 * 1024 + 1234);
      const many = await vfs.readdir('dir-many');
      assert.equal(many.length, 300);
    });
  }

  for (const name of COMPRESSED) {
    it(`${name}: compressed extents, holes and prealloc extents`, async (t) => {
      if (!have(name)) return t.skip(`${name} fixture not built`);
      const { vfs } = await open(image(name));
      const seq = await vfs.readFile('extra/seq.txt');
      assert.deepEqual(seq, expectedSeq());
      assert.deepEqual(await vfs.readFile('extra/prealloc.bin'), expectedPrealloc());
      // Unaligned reads across compressed extent boundaries.
      const node = await vfs.stat('extra/seq.txt');
      const vol = vfs.volume;
      const want = expectedSeq();
      for (const [o, l] of [[131000, 2000], [1, 300000], [want.length - 10, 100]] as const) {
        assert.deepEqual(await vol.read(node, o, l), want.subarray(o, o + l));
      }
    });
  }

  it('label and uuid agree with btrfs inspect-internal dump-super', async (t) => {
    if (!hasTool('btrfs')) return t.skip('btrfs-progs not installed');
    for (const name of ALL.filter(have)) {
      const out = run('btrfs', ['inspect-internal', 'dump-super', fixture(name)]).toString();
      const { vol } = await open(image(name));
      assert.equal(vol.label, /^label\s+(.*)$/m.exec(out)?.[1], name);
      assert.equal(vol.uuid, /^fsid\s+(\S+)$/m.exec(out)?.[1], name);
      assert.deepEqual(await btrfs.probe(new MemorySource(image(name)), createContext()), { type: 'btrfs', label: vol.label, uuid: vol.uuid });
    }
  });

  it('large reads become few large source reads', async (t) => {
    if (!have('btrfs')) return t.skip('btrfs fixture not built');
    const src = new CountingSource(new MemorySource(image('btrfs')));
    const ctx = createContext({}, nodeCodecs);
    const vol = await btrfs.open(src, ctx);
    const vfs = new Vfs(vol, ctx);
    for (const path of ['boot/initrd.img-6.1.0-tsgrub', 'sparse.bin']) {
      const node = await vfs.stat(path);
      await vol.read(node, 0, 4096); // warm the metadata path
      src.readCalls = 0;
      src.bytesRead = 0;
      const data = await vol.read(node, 0, node.size);
      assert.equal(sha256(data), manifest().get(path));
      assert.ok(src.readCalls <= 4, `${path}: ${src.readCalls} source reads for ${node.size} bytes`);
      assert.ok(src.bytesRead < node.size + 64 * 1024, `${path}: ${src.bytesRead} bytes read`);
    }
  });

  it('probe says null for non-btrfs bytes', async () => {
    assert.equal(await btrfs.probe(new MemorySource(new Uint8Array(1 << 20)), createContext()), null);
    assert.equal(await btrfs.probe(new MemorySource(new Uint8Array(100)), createContext()), null);
  });
});

describe('btrfs: subvolumes', () => {
  it('opens the default subvolume (@), a named snapshot, and refuses a missing one', async (t) => {
    if (!have('btrfs-subvol')) return t.skip('btrfs-subvol fixture not built');
    const img = image('btrfs-subvol');
    const def = await open(img);
    assert.ok(await def.vfs.exists('.snapshots/1/snapshot/boot/grub/grub.cfg'), 'snapshot reachable from @ by crossing a subvolume dir item');
    const top = await open(img, '/');
    const names = (await top.vfs.readdir('/')).map((e) => new TextDecoder().decode(e.name));
    assert.deepEqual(names, ['@']);
    const snap = await open(img, '@/.snapshots/1/snapshot');
    for (const [path, hash] of manifest()) assert.equal(sha256(await snap.vfs.readFile(path)), hash, path);
    assert.deepEqual(await snap.vfs.readdir('.snapshots/1'), []);
    await expectTyped(open(img, '@/nope'), 'Unsupported');
  });
});

/** Walks a directory tree on the host (an oracle's output) into path → bytes / link target. */
function hostTree(dir: string, prefix = '', out = new Map<string, string>()): Map<string, string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const rel = prefix + name;
    const st = lstatSync(p);
    if (st.isSymbolicLink()) out.set(rel, `link:${readlinkSync(p)}`);
    else if (st.isDirectory()) {
      out.set(rel, 'dir');
      hostTree(p, `${rel}/`, out);
    } else out.set(rel, sha256(readFileSync(p)));
  }
  return out;
}

async function ourTree(vfs: Vfs, dir = '', out = new Map<string, string>()): Promise<Map<string, string>> {
  for (const e of await vfs.readdir(dir || '/')) {
    const rel = (dir ? `${dir}/` : '') + new TextDecoder().decode(e.name);
    const node = await vfs.lstat(rel);
    if (node.kind === 'symlink') out.set(rel, `link:${new TextDecoder().decode(await vfs.readlink(rel))}`);
    else if (node.kind === 'dir') {
      out.set(rel, 'dir');
      await ourTree(vfs, rel, out);
    } else out.set(rel, sha256(await vfs.readFile(rel)));
  }
  return out;
}

describe('btrfs: differential', () => {
  for (const name of ALL) {
    it(`${name}: whole tree equals btrfs restore (offline)`, async (t) => {
      if (!have(name)) return t.skip(`${name} fixture not built`);
      if (!hasTool('btrfs')) return t.skip('btrfs-progs not installed');
      const dir = mkdtempSync(join(tmpdir(), 'tsgrub-btrfs-restore-'));
      try {
        // -s: also snapshots (our walk crosses into subvolumes); compare from the top level.
        run('btrfs', ['restore', '-S', '-s', fixture(name), dir], { timeout: 120_000 });
        const want = hostTree(dir);
        const { vfs } = await open(image(name), '/');
        const got = await ourTree(vfs);
        assert.ok(want.size > 300);
        assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
        for (const [k, v] of want) assert.equal(got.get(k), v, k);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('kernel (read-only loop mount) agrees on every file of every fixture', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('not root: no loop mount');
    const unmountable: string[] = [];
    for (const name of ALL.filter(have)) {
      const mnt = mkdtempSync(join(tmpdir(), 'tsgrub-btrfs-mnt-'));
      // One device of a two-device filesystem mounts only degraded.
      const opts = name.endsWith('-dev2') ? 'loop,ro,degraded' : 'loop,ro';
      const m = spawnSync('mount', ['-o', opts, fixture(name), mnt], { stdio: 'ignore' });
      if (m.status !== 0) {
        rmSync(mnt, { recursive: true, force: true });
        unmountable.push(name);
        continue;
      }
      try {
        const want = hostTree(mnt);
        const { vfs } = await open(image(name));
        const got = await ourTree(vfs);
        assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), name);
        for (const [k, v] of want) assert.equal(got.get(k), v, `${name}: ${k}`);
      } finally {
        spawnSync('umount', [mnt]);
        rmSync(mnt, { recursive: true, force: true });
      }
    }
    if (unmountable.length) t.skip(`mount -o loop failed for ${unmountable.join(', ')}`);
  });

  it('grub-fstest agrees on the files it can read (§6.4: not no-holes sparse files)', async (t) => {
    if (!hasTool('grub-fstest')) return t.skip('grub-fstest not installed');
    const files = ['boot/vmlinuz-6.1.0-tsgrub', 'boot/initrd.img-6.1.0-tsgrub', 'boot/grub/grub.cfg', 'etc/hostname'];
    let compared = 0;
    for (const name of ALL.filter(have)) {
      const { vfs } = await open(image(name));
      const list = name === 'btrfs' ? [...files, 'sparse.bin'] : COMPRESSED.includes(name) ? [...files, 'extra/seq.txt'] : files.filter((f) => !(RAID.includes(name) && BIG.test(f)));
      for (const f of list) {
        const r = spawnSync('grub-fstest', [fixture(name), 'cat', `/${name === 'btrfs-subvol' ? '@/' : ''}${f}`], { maxBuffer: 64 << 20 });
        assert.equal(r.status, 0, `grub-fstest ${name} ${f}: ${r.stderr}`);
        assert.equal(sha256(await vfs.readFile(f)), sha256(r.stdout), `${name}: ${f}`);
        compared++;
      }
    }
    assert.ok(compared > 0);
  });
});

// ---- hostile images -------------------------------------------------------------------------

interface Internals {
  sb: { nodesize: number; root: number; rootLevel: number };
  chunks: { map(l: number, n: number): { physical: number; length: number }[] };
  reader: { read(l: number, level: number): Promise<TreeNode> };
  subvolume(id: bigint): Promise<{ root: TreeRoot }>;
}

async function internals(bytes: Uint8Array): Promise<Internals> {
  const { vol } = await open(bytes);
  return vol as unknown as Internals;
}

/** Applies `patch` to every physical copy of the node at `logical` and recomputes its crc32c. */
function patchNode(img: Uint8Array, it: Internals, logical: number, patch: (node: Uint8Array) => void, copies = Infinity): void {
  const places = it.chunks.map(logical, it.sb.nodesize).slice(0, copies);
  for (const p of places) {
    const node = img.subarray(p.physical, p.physical + it.sb.nodesize);
    patch(node);
    new DataView(node.buffer, node.byteOffset).setUint32(0, crc32c(node.subarray(0x20)), true);
  }
}

function patchSuper(img: Uint8Array, patch: (sb: Uint8Array, dv: DataView) => void): void {
  const sb = img.subarray(0x10000, 0x11000);
  const dv = new DataView(sb.buffer, sb.byteOffset, 4096);
  patch(sb, dv);
  dv.setUint32(0, crc32c(sb.subarray(0x20)), true);
}

/** A fresh copy of a fixture to mutate. */
const copy = (name: string) => image(name).slice();

describe('btrfs: hostile images', () => {
  const base = 'btrfs-zstd';
  const skip = (t: { skip(m: string): void }) => (have(base) ? false : (t.skip(`${base} fixture not built`), true));

  it('a child node with the same level as its parent', async (t) => {
    if (skip(t)) return;
    const img = copy(base);
    const it0 = await internals(img);
    const fs = (await it0.subvolume(5n)).root;
    assert.ok(fs.level >= 1, 'fixture FS tree has an internal root');
    const rootNode = await it0.reader.read(fs.logical, fs.level);
    patchNode(img, it0, rootNode.children[1] as number, (n) => {
      n[0x64] = fs.level;
    });
    const { vfs } = await open(img);
    const t0 = Date.now();
    let err: TsgrubError | null = null;
    // Something under the patched child fails, with the level named, not a hang or a wrong answer.
    for (const [path] of manifest()) {
      try {
        await vfs.readFile(path);
      } catch (e) {
        assert.ok(e instanceof TsgrubError);
        err = e;
        break;
      }
    }
    assert.ok(err, 'the damaged subtree was noticed');
    assert.equal(err.data.kind, 'btrfs.NodeLevel');
    assert.ok(Date.now() - t0 < 5000);
  });

  it('a leaf item whose body lies outside the leaf', async (t) => {
    if (skip(t)) return;
    const img = copy(base);
    const it0 = await internals(img);
    patchNode(img, it0, it0.sb.root, (n) => {
      new DataView(n.buffer, n.byteOffset).setUint32(101 + 17, 0xfff00000, true); // item 0 offset
    });
    await expectTyped(open(img), 'Corrupt', 'btrfs.LeafItem');
  });

  it('a dir item whose name_len + data_len runs past the item', async (t) => {
    if (skip(t)) return;
    const img = copy(base);
    const it0 = await internals(img);
    const fs = (await it0.subvolume(5n)).root;
    // Find the DIR_ITEM of "boot" in the root directory (256) through the tree, as lookup does.
    const { findExact } = await import('../../../src/fs/btrfs/tree.ts');
    const item = (await findExact(it0.reader as never, fs, { objectid: 256n, type: 84, offset: nameHash(new TextEncoder().encode('boot')) })) as LeafItem;
    assert.ok(item);
    const at = item.where - item.node + 25; // data_len of the first entry
    patchNode(img, it0, item.node, (n) => {
      new DataView(n.buffer, n.byteOffset).setUint16(at, 0x4000, true);
    });
    const { vfs } = await open(img);
    await expectTyped(vfs.stat('boot/grub/grub.cfg'), 'Corrupt', 'btrfs.DirItem');
    assert.equal(sha256(await vfs.readFile('etc/hostname')), manifest().get('etc/hostname'));
  });

  it('a chunk stripe outside the image; one bad DUP stripe falls back to the other copy', async (t) => {
    if (skip(t)) return;
    // sys_chunk_array: key (17) + chunk (48) + stripes (32 each: devid, offset, uuid).
    const stripeOffset = (i: number) => 0x32b + 17 + 48 + i * 32 + 8;
    const img = copy(base);
    patchSuper(img, (_sb, dv) => dv.setBigUint64(stripeOffset(0), 2n ** 40n, true));
    const { vfs } = await open(img);
    assert.equal(sha256(await vfs.readFile('boot/grub/grub.cfg')), manifest().get('boot/grub/grub.cfg'));
    patchSuper(img, (_sb, dv) => dv.setBigUint64(stripeOffset(1), 2n ** 40n, true));
    await expectTyped(open(img), 'Corrupt', 'btrfs.ChunkStripe');
  });

  it('a compressed extent whose ram_bytes claims 1 GiB', async (t) => {
    if (skip(t)) return;
    const img = copy(base);
    const it0 = await internals(img);
    const { vfs } = await open(img);
    const node = (await vfs.stat('extra/seq.txt')) as unknown as { ino: bigint; subvol: { root: TreeRoot } };
    const { findExact } = await import('../../../src/fs/btrfs/tree.ts');
    const item = (await findExact(it0.reader as never, node.subvol.root, { objectid: node.ino, type: 108, offset: 0n })) as LeafItem;
    assert.equal(item.data[16], 3, 'extent is zstd-compressed');
    patchNode(img, it0, item.node, (n) => {
      new DataView(n.buffer, n.byteOffset).setBigUint64(item.where - item.node + 8, 2n ** 30n, true);
    });
    const t0 = Date.now();
    await expectTyped((await open(img)).vfs.readFile('extra/seq.txt'), 'Corrupt', 'btrfs.FileExtentRamBytes');
    assert.ok(Date.now() - t0 < 2000);
  });

  it('a 200-level root', async (t) => {
    if (skip(t)) return;
    const img = copy(base);
    const it0 = await internals(img);
    patchNode(img, it0, it0.sb.root, (n) => {
      n[0x64] = 200;
    });
    patchSuper(img, (sb) => {
      sb[0xc6] = 200;
    });
    const t0 = Date.now();
    await expectTyped(open(img), 'Corrupt', 'btrfs.NodeLevel');
    assert.ok(Date.now() - t0 < 1000);
  });

  it('a node with a bad checksum in one DUP copy is read from the other; both bad is an error', async (t) => {
    if (skip(t)) return;
    const img = copy(base);
    const it0 = await internals(img);
    const [first, second] = it0.chunks.map(it0.sb.root, it0.sb.nodesize);
    assert.ok(first && second, 'metadata is DUP');
    img[first.physical + 200] ^= 0xff;
    const { vfs } = await open(img);
    assert.equal(sha256(await vfs.readFile('etc/hostname')), manifest().get('etc/hostname'));
    img[second.physical + 200] ^= 0xff;
    await expectTyped(open(img), 'Corrupt', 'btrfs.NodeCsum');
  });

  it('a damaged primary superblock falls back to the 64 MiB mirror', async (t) => {
    if (skip(t)) return;
    const img = copy(base);
    img[0x10000 + 0x100] ^= 0xff;
    const { vfs } = await open(img);
    assert.equal(sha256(await vfs.readFile('etc/hostname')), manifest().get('etc/hostname'));
    img.fill(0, 64 << 20, (64 << 20) + 4096);
    await expectTyped(open(img), 'Corrupt', 'btrfs.SuperblockCsum');
  });

  it('unsupported checksum types are named', async (t) => {
    if (skip(t)) return;
    const img = copy(base);
    patchSuper(img, (_sb, dv) => dv.setUint16(0xc4, 2, true));
    const e = await expectTyped(open(img), 'Unsupported');
    assert.deepEqual(e.data.features, ['sha256']);
  });

  it('the visited-node budget trips', async (t) => {
    if (skip(t)) return;
    await expectTyped(
      (async () => {
        const { vfs } = await open(image(base), undefined, { nodesVisited: 200 });
        for (const [path] of manifest()) await vfs.readFile(path);
      })(),
      'LimitExceeded',
      'nodesVisited',
    );
  });

  for (const name of COMPRESSED) {
    it(`${name}: 300 corruptions of a compressed extent's bytes (framing and stream) give data or typed errors`, async (t) => {
      if (!have(name)) return t.skip(`${name} fixture not built`);
      const img = image(name).slice();
      const it0 = await internals(img);
      const { vfs } = await open(img);
      const node = (await vfs.stat('extra/seq.txt')) as unknown as { ino: bigint; subvol: { root: TreeRoot } };
      const { findExact } = await import('../../../src/fs/btrfs/tree.ts');
      const item = (await findExact(it0.reader as never, node.subvol.root, { objectid: node.ino, type: 108, offset: 0n })) as LeafItem;
      const dv = new DataView(item.data.buffer, item.data.byteOffset, item.data.byteLength);
      assert.notEqual(item.data[16], 0, 'first extent is compressed');
      const places = it0.chunks.map(Number(dv.getBigUint64(21, true)), Number(dv.getBigUint64(29, true)));
      const p = places[0] as { physical: number; length: number };
      const saved = img.slice(p.physical, p.physical + p.length);
      let x = 777;
      const rnd = (m: number) => {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        return (x >>> 8) % m;
      };
      let typed = 0;
      for (let r = 0; r < 300; r++) {
        for (let k = 0; k < 1 + rnd(4); k++) img[p.physical + (rnd(3) === 0 ? rnd(16) : rnd(p.length))] = rnd(256);
        try {
          const { vfs: v } = await open(img);
          const d = await v.readFile('extra/seq.txt');
          assert.equal(d.length, expectedSeq().length);
        } catch (e) {
          if (!(e instanceof TsgrubError)) throw new Error(`round ${r}: untyped ${String(e)}`);
          typed++;
        }
        img.set(saved, p.physical);
      }
      assert.ok(typed > 0, 'some corruptions were detected');
    });
  }

  it('fuzz: 300 images with random bytes flipped in metadata give data or typed errors', async (t) => {
    if (skip(t)) return;
    const pristine = image(base);
    const it0 = await internals(pristine);
    const fs = (await it0.subvolume(5n)).root;
    const nodes = [it0.sb.root, fs.logical, ...(await it0.reader.read(fs.logical, fs.level)).children];
    let x = 12345;
    const rnd = (m: number) => {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      return (x >>> 8) % m;
    };
    const paths = ['boot/grub/grub.cfg', 'extra/seq.txt', 'etc/hostname', 'dir-many/file-150.txt'];
    const img = pristine.slice();
    for (let r = 0; r < 300; r++) {
      const target = nodes[rnd(nodes.length)] as number;
      // Restore the previous round's damage: only the target's copies change.
      const places = it0.chunks.map(target, it0.sb.nodesize);
      const saved = places.map((p) => img.slice(p.physical, p.physical + p.length));
      patchNode(img, it0, target, (n) => {
        for (let k = 0; k < 1 + rnd(6); k++) n[0x20 + rnd(n.length - 0x20)] = rnd(256);
      });
      try {
        const { vfs } = await open(img, undefined, { nodesVisited: 20000 });
        for (const p of paths) await vfs.readFile(p).catch((e) => {
          if (!(e instanceof TsgrubError)) throw e;
        });
      } catch (e) {
        if (!(e instanceof TsgrubError)) throw new Error(`round ${r}: untyped ${String(e)}`);
      }
      places.forEach((p, i) => img.set(saved[i] as Uint8Array, p.physical));
    }
  });
});
