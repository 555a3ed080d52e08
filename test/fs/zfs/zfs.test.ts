/**
 * ZFS driver: zfs-fuse fixtures (every manifest file), grub-fstest and libxenfsimage as oracles,
 * mirror fallback, the OpenZFS corpus (typed outcome, time-bounded) and hostile inputs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { lzjbDecompress } from '../../../src/codec/lzjb.ts';
import { nodeCodecs } from '../../../src/codec/node.ts';
import { zleDecompress } from '../../../src/codec/zle.ts';
import { isTsgrubError } from '../../../src/errors.ts';
import type { FsNode, Volume } from '../../../src/fs/types.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { decodeBlkptr } from '../../../src/fs/zfs/blkptr.ts';
import { fletcher4, sha256 as zsha256 } from '../../../src/fs/zfs/checksum.ts';
import { openZfsPool, zfs } from '../../../src/fs/zfs/index.ts';
import { decodeNvlist } from '../../../src/fs/zfs/nvlist.ts';
import { decodeDnode } from '../../../src/fs/zfs/objset.ts';
import { MemorySource, SliceSource, type ByteSource } from '../../../src/io/source.ts';
import { createContext } from '../../../src/limits.ts';
import { FIXTURES, PYTHON, SHARED, fixture, hasTool, manifest, run, sha256 } from '../../helpers/fixtures.ts';

const have = (n: string) => existsSync(join(FIXTURES, `${n}.img.gz`));
const VTOC_S0 = (2048 + 1008) * 512;
const VTOC_S0_SIZE = 150 * 1008 * 512;
const dec = new TextDecoder();

function img(name: string): Uint8Array {
  return new Uint8Array(readFileSync(fixture(name)));
}
async function open(srcs: ByteSource[], dataset?: string): Promise<{ vol: Volume; vfs: Vfs }> {
  const ctx = createContext({}, nodeCodecs);
  const vol = await openZfsPool(srcs, ctx, dataset === undefined ? {} : { dataset });
  return { vol, vfs: new Vfs(vol, ctx) };
}
async function checkManifest(vfs: Vfs, vol: Volume, filter: (p: string) => boolean = () => true): Promise<number> {
  let n = 0;
  for (const [p, h] of manifest()) {
    if (!filter(p)) continue;
    const node = await vfs.resolve(p);
    assert.equal(sha256(await vol.read(node, 0, node.size)), h, p);
    n++;
  }
  return n;
}
async function walk(vol: Volume, n: FsNode, depth = 0): Promise<{ files: number; bytes: number }> {
  let files = 0, bytes = 0;
  for await (const e of vol.readdir(n)) {
    const c = await vol.lookup(n, e.name);
    assert.ok(c, dec.decode(e.name));
    if (c.kind === 'dir' && depth < 32) {
      const r = await walk(vol, c, depth + 1);
      files += r.files; bytes += r.bytes;
    } else if (c.kind === 'file') {
      files++;
      bytes += (await vol.read(c, 0, c.size)).length;
    } else if (c.kind === 'symlink') await vol.readlink(c);
  }
  return { files, bytes };
}

describe('zfs fixtures (zfs-fuse, pool v23)', { skip: !have('zfs-lzjb') && 'zfs fixtures not built (scripts/mkfixtures.sh zfs)' }, () => {
  it('zfs-lzjb: probe, bootfs by default, every manifest file', async () => {
    const src = new MemorySource(img('zfs-lzjb'), 'img');
    const p = await zfs.probe(src, createContext());
    assert.equal(p?.label, 'fstestpool');
    const { vol, vfs } = await open([src]);
    assert.equal(vol.label, 'fstestpool');
    assert.equal(vol.uuid, p?.uuid);
    assert.equal(await checkManifest(vfs, vol), manifest().size);
    assert.equal(dec.decode(await vol.readlink(await vfs.resolve('vmlinuz', false))), 'boot/vmlinuz-6.1.0-tsgrub');
    // The same dataset by name and by object number (the zfs-bootfs form).
    const bs = vol.bootstring!()!;
    const m = /^zfs-bootfs=fstestpool\/(\d+),bootpath=''$/.exec(bs);
    assert.ok(m, bs);
    const byName = await open([src], 'fstestpool/ROOT/fstest');
    assert.equal(byName.vol.bootstring!(), bs);
    const byNum = await open([src], `fstestpool/${m[1]}`);
    assert.equal((await byNum.vfs.resolve('etc/hostname')).size, 12);
    // The pool's root dataset is empty; a missing dataset is NotFound.
    const rootDs = await open([src], 'fstestpool');
    const names: string[] = [];
    for await (const e of rootDs.vol.readdir(await rootDs.vol.root())) names.push(dec.decode(e.name));
    assert.deepEqual(names, []);
    await assert.rejects(open([src], 'fstestpool/nope'), (e) => isTsgrubError(e) && e.code === 'NotFound');
  });

  it('zfs-gzip (ashift 12, gzip-9) and the zle dataset', { skip: !have('zfs-gzip') && 'no zfs-gzip' }, async () => {
    const src = new MemorySource(img('zfs-gzip'), 'img');
    const g = await open([src], 'fstestpool/ROOT/fstest');
    assert.equal(await checkManifest(g.vfs, g.vol), manifest().size);
    const z = await open([src], 'fstestpool/zle');
    assert.ok((await checkManifest(z.vfs, z.vol, (p) => !p.startsWith('boot/'))) > 300);
  });

  it('zfs-mirror: each side alone, and the pair with one side damaged', { skip: !have('zfs-mirror') && 'no zfs-mirror' }, async () => {
    const bytes = img('zfs-mirror');
    const half = 64 << 20;
    const notInitrd = (p: string) => !p.startsWith('boot/initrd.img');
    for (const start of [0, half]) {
      const { vol, vfs } = await open([new SliceSource(new MemorySource(bytes), start, half, 'side')], 'fstestpool/data');
      assert.equal(await checkManifest(vfs, vol, notInitrd), manifest().size - 1);
    }
    // Scribble over side A's data area (past the labels and first metaslab headers): every block
    // that fails its checksum there must be read from side B.
    const a = bytes.slice(0, half);
    for (let o = 4 << 20; o < half - (1 << 20); o += 4096) a.fill(0x5a, o, o + 2048);
    const { vol, vfs } = await open([new MemorySource(a, 'A'), new SliceSource(new MemorySource(bytes), half, half, 'B')], 'fstestpool/data');
    assert.equal(await checkManifest(vfs, vol, notInitrd), manifest().size - 1);
    // Side A alone is now unreadable, with a typed error.
    await assert.rejects(open([new MemorySource(a, 'A')], 'fstestpool/data').then(({ vol: v, vfs: f }) => checkManifest(f, v, notInitrd)), (e) => isTsgrubError(e));
  });

  it('vtoc-zfs: Solaris layout, bootstring as libxenfsimage builds it', { skip: !have('vtoc-zfs') && 'no vtoc-zfs' }, async (t) => {
    const bytes = img('vtoc-zfs');
    const s0 = new SliceSource(new MemorySource(bytes), VTOC_S0, VTOC_S0_SIZE, 's0');
    const { vol, vfs } = await open([s0]);
    const unix = await vfs.resolve('platform/i86xpv/kernel/amd64/unix');
    assert.equal(unix.size, 300 * 1024 + 17);
    assert.equal((await vfs.resolve('platform/i86pc/amd64/boot_archive')).size, 200 * 1024 + 5);
    const top = await open([s0], 'fstestpool');
    const menu = dec.decode(await top.vol.read(await top.vfs.resolve('boot/grub/menu.lst'), 0, 4096));
    assert.match(menu, /bootfs fstestpool\/ROOT\/fstest/);
    const py = '/usr/lib/xen-4.17/lib/python';
    if (!existsSync(py)) return t.skip('libxenfsimage (xen-utils-4.17) not installed');
    const path = fixture('vtoc-zfs');
    const r = spawnSync(PYTHON, ['-c', `import sys; sys.path.insert(1, '${py}'); import xenfsimage, hashlib
fs = xenfsimage.open('${path}', ${VTOC_S0}, '')
f = fs.open_file('/platform/i86xpv/kernel/amd64/unix'); d = f.read(1 << 20, 0)
print(hashlib.sha256(d).hexdigest()); print(xenfsimage.getbootstring(fs))`], { encoding: 'utf8', timeout: 30000 });
    if (r.status !== 0) return t.skip(`xenfsimage failed: ${r.stderr}`);
    const [h, bs] = r.stdout.trim().split('\n');
    assert.equal(sha256(await vol.read(unix, 0, unix.size)), h);
    assert.equal(vol.bootstring!(), bs);
  });

  it('grub-fstest agrees on listings and bytes', { skip: !hasTool('grub-fstest') && 'grub-fstest not installed' }, async () => {
    const path = fixture('zfs-lzjb');
    const { vol, vfs } = await open([new MemorySource(img('zfs-lzjb'))]);
    const out = dec.decode(run('grub-fstest', [path, 'ls', '/ROOT/fstest@/dir-many']));
    const grubNames = out.split(/\s+/).filter((x) => x.length > 0).sort();
    const ours: string[] = [];
    for await (const e of vol.readdir(await vfs.resolve('dir-many'))) ours.push(dec.decode(e.name));
    assert.equal(grubNames.length, 300);
    assert.deepEqual(ours.sort(), grubNames);
    for (const p of ['boot/grub/grub.cfg', 'boot/vmlinuz-6.1.0-tsgrub', 'boot/initrd.img-6.1.0-tsgrub', 'sparse.bin', 'etc/twelve']) {
      const g = run('grub-fstest', [path, 'cat', `/ROOT/fstest@/${p}`]);
      const n = await vfs.resolve(p);
      assert.equal(sha256(await vol.read(n, 0, n.size)), sha256(g), p);
    }
  });
});

// ------------------------------------------------------------------------------------------ corpus
const CORPUS = join(SHARED, 'corpus/openzfs');
function corpusDir(): string | null {
  if (!existsSync(CORPUS)) return null;
  const dir = join(tmpdir(), 'tsgrub-openzfs-corpus');
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(CORPUS)) {
    if (f.endsWith('.bz2')) {
      const out = join(dir, f.slice(0, -4));
      if (!existsSync(out)) writeFileSync(out, run('bzip2', ['-dc', join(CORPUS, f)], { timeout: 60000 }));
    } else if (f.endsWith('.tar.gz') && !existsSync(join(dir, 'testpool_zstd'))) {
      run('tar', ['xzf', join(CORPUS, f), '-C', dir]);
    }
  }
  return dir;
}

describe('OpenZFS corpus', { skip: !existsSync(CORPUS) && '../shared/corpus/openzfs absent' }, () => {
  it('every pool (and every multi-device set) reads or fails typed, each in < 10 s', { timeout: 600_000 }, async () => {
    const dir = corpusDir()!;
    const files = readdirSync(dir).filter((f) => !f.includes('.tar')).sort();
    // Multi-device pools: the numbered files of one name are the devices of one pool.
    const sets = new Map<string, string[]>();
    for (const f of files) {
      const m = /^(zfs-pool-v\d+(?:mirror|raidz2?|stripe|hotspare)|zfs-broken-mirror)\d\.dat$/.exec(f);
      if (m) sets.set(m[1]!, [...(sets.get(m[1]!) ?? []), f]);
    }
    const cases: string[][] = [...files.map((f) => [f]), ...sets.values()];
    const outcome: Record<string, number> = {};
    const readable = new Set<string>();
    for (const c of cases) {
      const t0 = Date.now();
      let res: string;
      try {
        const { vol } = await open(c.map((f) => new MemorySource(new Uint8Array(readFileSync(join(dir, f))), f)));
        await walk(vol, await vol.root());
        res = 'ok';
        readable.add(c.join('+'));
      } catch (e) {
        assert.ok(isTsgrubError(e), `${c.join('+')}: untyped ${String(e)}`);
        res = e.code;
      }
      const ms = Date.now() - t0;
      assert.ok(ms < 10_000, `${c.join('+')} took ${ms} ms`);
      outcome[res] = (outcome[res] ?? 0) + 1;
    }
    console.log('openzfs corpus outcomes:', outcome, `(${cases.length} cases: ${files.length} files + ${sets.size} device sets)`);
    // Every multi-device set with all its devices present is readable (mirror, raidz1–3, stripe, spare).
    for (const [name, devs] of sets) if (name !== 'zfs-broken-mirror') assert.ok(readable.has(devs.join('+')), `${name} set`);
    assert.ok(readable.has(sets.get('zfs-broken-mirror')!.join('+')), 'broken mirror pair');
    for (const v of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]) assert.ok(readable.has(`zfs-pool-v${v}.dat`), `v${v}`);
    assert.ok(readable.has('testpool_zstd'), 'zstd pool');
  });

  it('future and encrypted pools are Unsupported', async () => {
    const dir = corpusDir()!;
    await assert.rejects(open([new MemorySource(new Uint8Array(readFileSync(join(dir, 'zfs-pool-v999.dat'))))]), (e) => isTsgrubError(e) && e.code === 'Unsupported');
  });

  it('grub-fstest reads the same bytes from the v1 pool', { skip: !hasTool('grub-fstest') && 'grub-fstest not installed' }, async (t) => {
    const dir = corpusDir()!;
    const path = join(dir, 'zfs-pool-v1.dat');
    const { vol, vfs } = await open([new MemorySource(new Uint8Array(readFileSync(path)))]);
    const root = await vol.root();
    const names: string[] = [];
    for await (const e of vol.readdir(root)) names.push(dec.decode(e.name));
    const g = spawnSync('grub-fstest', [path, 'ls', '/@/'], { encoding: 'utf8', timeout: 30000 });
    if (g.status !== 0 || !g.stdout.trim()) return t.skip('grub-fstest does not read this pool');
    const grubNames = g.stdout.split(/\s+/).filter((x) => x.length > 0).map((x) => x.replace(/\/$/, '')).sort();
    assert.deepEqual(names.sort(), grubNames);
    for (const n of names.slice(0, 20)) {
      const node = await vfs.resolve(n);
      if (node.kind !== 'file') continue;
      const c = spawnSync('grub-fstest', [path, 'cat', `/@/${n}`], { timeout: 30000 });
      assert.equal(sha256(await vol.read(node, 0, node.size)), sha256(c.stdout), n);
    }
  });
});

// ------------------------------------------------------------------------------------------ hostile
describe('hostile inputs', () => {
  it('lzjb/zle bombs are bounded by the logical size and truncated input is Corrupt', () => {
    // A copy-map of all matches repeats the first byte: output stops at the declared size.
    const bomb = new Uint8Array(1 + 2 * 8);
    bomb[0] = 0xfe;
    for (let i = 0; i < 7; i++) { bomb[1 + 1 + i * 2] = 0xfc; bomb[2 + 1 + i * 2] = 0x01; }
    bomb[1] = 0x41;
    assert.throws(() => lzjbDecompress(bomb, 1 << 20), (e) => isTsgrubError(e) && e.code === 'Corrupt');
    assert.throws(() => lzjbDecompress(new Uint8Array([0x01, 0x00, 0x05]), 64), (e) => isTsgrubError(e) && e.code === 'Corrupt');
    assert.throws(() => zleDecompress(new Uint8Array([0xff, 0xff, 0xff]), 128), (e) => isTsgrubError(e) && e.code === 'Corrupt');
    assert.deepEqual(zleDecompress(new Uint8Array([0x41, 0x00, 0x07, 0x40]), 4), new Uint8Array([0, 0, 7, 0]));
  });

  it('a logical size over 16 MiB and an lz4 length past the block are Corrupt, fast', async () => {
    const { vol } = await open([new MemorySource(img('zfs-lzjb'))]);
    const pool = (vol as unknown as { pool: { decompress(bp: unknown, raw: Uint8Array): Uint8Array } }).pool;
    const bp = { lsize: 32 << 20, psize: 512, compress: 15, embedded: false, at: 0 };
    assert.throws(() => pool.decompress(bp, new Uint8Array(512)), (e) => isTsgrubError(e) && e.code === 'Corrupt');
    const raw = new Uint8Array(512);
    new DataView(raw.buffer).setUint32(0, 0x7fffffff);
    assert.throws(() => pool.decompress({ ...bp, lsize: 128 << 10 }, raw), (e) => isTsgrubError(e) && e.code === 'Corrupt');
    // An lz4 block that claims to expand 500 bytes into 16 MiB stops at the logical size.
    const lz = new Uint8Array(4 + 3 + 200);
    new DataView(lz.buffer).setUint32(0, 203);
    lz.set([0x1f, 0x41, 0x01, 0x00], 4);
    lz.fill(0xff, 8, 8 + 198);
    assert.throws(() => pool.decompress({ ...bp, lsize: 4096 }, lz), (e) => isTsgrubError(e));
  });

  it('nvlists with absurd counts and lengths are Corrupt', () => {
    const b = new Uint8Array(128);
    const dv = new DataView(b.buffer);
    b[0] = 1; b[1] = 1;
    dv.setInt32(12, 48); dv.setInt32(16, 48); dv.setUint32(20, 0x7fffffff); // name length 2^31
    assert.throws(() => decodeNvlist(b), (e) => isTsgrubError(e) && e.code === 'Corrupt');
    dv.setUint32(20, 1); b[24] = 0x61; dv.setInt32(28, 16); dv.setInt32(32, 0x7fffffff); // uint64 array of 2^31
    assert.throws(() => decodeNvlist(b), (e) => isTsgrubError(e) && e.code === 'Corrupt');
    // Deep nesting: each pair an nvlist holding the next.
    const deep = new Uint8Array(4 + 40 * 32 + 64);
    const dd = new DataView(deep.buffer);
    deep[0] = 1;
    let o = 4;
    for (let i = 0; i < 40; i++) {
      o += 8; // version, flags
      dd.setInt32(o, 0x7fff); dd.setInt32(o + 4, 0x7fff); dd.setUint32(o + 8, 1); deep[o + 12] = 0x61; dd.setInt32(o + 16, 19); dd.setInt32(o + 20, 1);
      o += 24;
    }
    assert.throws(() => decodeNvlist(deep), (e) => isTsgrubError(e) && e.code === 'Corrupt');
  });

  it('an uberblock with a huge txg but a bad checksum is skipped', async () => {
    const bytes = img('zfs-lzjb');
    const { vol: v0 } = await open([new MemorySource(bytes)]);
    const good = (v0 as unknown as { pool: { ub: { at: number; txg: bigint } } }).pool.ub;
    const patched = bytes.slice();
    const ring = 128 * 1024;
    // Copy the active uberblock into an empty-or-old slot of label 0 with txg 2^62, checksum untouched.
    const slot = ring + 1024 * ((Number(good.txg % 128n) + 1) % 128);
    patched.copyWithin(slot, good.at % (256 * 1024) + (good.at - (good.at % (256 * 1024))), good.at + 1024);
    new DataView(patched.buffer).setBigUint64(slot + 16, 1n << 62n, true);
    const { vol, vfs } = await open([new MemorySource(patched)]);
    assert.equal((vol as unknown as { pool: { ub: { txg: bigint } } }).pool.ub.txg, good.txg);
    assert.equal((await vfs.resolve('etc/hostname')).size, 12);
  });

  it('a dnode with nlevels 50, or whose block pointer is not one level down, is Corrupt', async () => {
    const d = new Uint8Array(512);
    d[0] = 19; d[1] = 17; d[2] = 50; d[3] = 1; d.set([1, 0], 8);
    assert.throws(() => decodeDnode(d, 0, true, 5, 1), (e) => isTsgrubError(e) && e.code === 'Corrupt');
    // An indirect block that points at itself: the child keeps the parent's level, which the walk refuses.
    const { vol, vfs } = await open([new MemorySource(img('zfs-lzjb'))]);
    const file = await vfs.resolve('boot/vmlinuz-6.1.0-tsgrub');
    const dn = (file as unknown as { dn: { nlevels: number; blkptrs: { level: number }[] } }).dn;
    assert.ok(dn.nlevels >= 2, 'the 400 KiB kernel needs an indirect block');
    const selfRef = { ...file, dn: { ...dn, blkptrs: [{ ...dn.blkptrs[0], level: 0 }] } } as unknown as FsNode;
    await assert.rejects(vol.read(selfRef, 0, 4096), (e) => isTsgrubError(e) && e.code === 'Corrupt');
  });

  it('checksums: fletcher4 and sha256 against known values', () => {
    assert.equal(Buffer.from(zsha256(new TextEncoder().encode('abc'))).toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const big = new Uint8Array(100_000).map((_, i) => (i * 7) & 255);
    assert.equal(Buffer.from(zsha256(big)).toString('hex'), sha256(big));
    const [a, b] = fletcher4(new Uint8Array([1, 0, 0, 0, 2, 0, 0, 0]), true);
    assert.deepEqual([a, b], [3n, 4n]);
    assert.equal(decodeBlkptr(new Uint8Array(128), 0, true).hole, true);
  });
});
