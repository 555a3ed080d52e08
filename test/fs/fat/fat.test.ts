import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, hasTool, manifest, run, sha256, SHARED } from '../../helpers/fixtures.ts';
import { FileSource } from '../../../src/node/file-source.ts';
import { CountingSource, MemorySource, type ByteSource } from '../../../src/io/source.ts';
import { createContext } from '../../../src/limits.ts';
import { isTsgrubError } from '../../../src/errors.ts';
import { decodeUtf8 } from '../../../src/io/bytes.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { fat, VisitedClusters, type FatNode, type FatVolume } from '../../../src/fs/fat/index.ts';
import { foldName } from '../../../src/fs/fat/dirent.ts';
import { readAll, walk } from '../iso9660/walk.ts';

const KVER = '6.1.0-tsgrub';
const MT = { ...process.env, MTOOLS_SKIP_CHECK: '1', LC_ALL: 'C.UTF-8' };
function mtools(cmd: string, args: string[]): Buffer {
  return execFileSync(cmd, args, { env: MT, maxBuffer: 64 << 20 });
}

async function openFat(src: ByteSource) {
  const ctx = createContext();
  const vol = (await fat.open(src, ctx)) as FatVolume;
  return { ctx, vol, vfs: new Vfs(vol, ctx) };
}

const EXTRA = ['café.txt', 'Grüße.TXT', '日本.txt', `${'n'.repeat(196)}.txt`, 'CaseName.txt', 'lower.txt', 'MiXeD.Cfg'];

for (const [name, type] of [['fat12', 'fat12'], ['fat16', 'fat16'], ['fat32', 'fat32']] as const) {
  test(`${name}: tree matches the manifest, long and non-ASCII names`, async () => {
    const img = fixture(name);
    const p = await fat.probe(FileSource.open(img), createContext());
    assert.deepEqual(p, { type, label: 'FSTEST', uuid: '1234-5678' });
    const { ctx, vol, vfs } = await openFat(FileSource.open(img));
    const w = await walk(vol, ctx);
    const m = manifest();
    for (const [path, h] of m) {
      const e = w.get(path);
      assert.ok(e, `${path} missing`);
      assert.equal(sha256(await readAll(vol, ctx, e.node)), h, path);
    }
    const names = (await vfs.readdir('/names')).map((e) => decodeUtf8(e.name)).sort();
    assert.deepEqual(names, [...EXTRA].sort());
    // Case-insensitive lookups, on long and 8.3 names, as Linux vfat resolves them.
    assert.equal(decodeUtf8(await vfs.readFile('/NAMES/CAFÉ.TXT')), 'e acute\n');
    assert.equal(decodeUtf8(await vfs.readFile('/names/GRÜßE.txt')), 'u umlaut\n');
    assert.equal(decodeUtf8(await vfs.readFile('/names/casename.TXT')), 'upper case\n');
    assert.equal(decodeUtf8(await vfs.readFile('/names/NNNNNN~1.TXT')), 'two hundred\n');
    assert.equal(decodeUtf8(await vfs.readFile('/Boot/Grub/GRUB.CFG')).includes('menuentry'), true);
    assert.equal(await vfs.exists('/names/casename.tx'), false);
  });
}

test('listings equal mdir -/ -b and bytes equal mtype', async (t) => {
  if (!hasTool('mdir') || !hasTool('mtype')) return t.skip('mtools not installed');
  let files = 0;
  for (const name of ['fat12', 'fat16', 'fat32']) {
    const img = fixture(name);
    const { ctx, vol } = await openFat(FileSource.open(img));
    const w = await walk(vol, ctx);
    // mtools lower-cases only ASCII for the NT case flags ("cafÉ"); compare names case-folded.
    const theirs = mtools('mdir', ['-/', '-b', '-i', img, '::/']).toString('utf8').split('\n').filter(Boolean)
      .map((l) => foldName(l.replace(/^::\//, '').replace(/\/$/, '')));
    assert.deepEqual([...w.keys()].map(foldName).sort(), theirs.sort());
    for (const [p, e] of w) {
      if (e.kind !== 'file') continue;
      assert.equal(sha256(await readAll(vol, ctx, e.node)), sha256(mtools('mtype', ['-i', img, `::/${p}`])), p);
      files++;
    }
  }
  assert.ok(files >= 3 * 317);
});

test('grub-fstest reads the same files', async (t) => {
  if (!hasTool('grub-fstest')) return t.skip('grub-fstest not installed');
  for (const name of ['fat12', 'fat32']) {
    const img = fixture(name);
    const { vfs } = await openFat(FileSource.open(img));
    for (const p of [`/boot/vmlinuz-${KVER}`, '/boot/grub/grub.cfg', '/sparse.bin']) {
      assert.equal(sha256(await vfs.readFile(p)), sha256(run('grub-fstest', [img, 'cat', p])), `${name}${p}`);
    }
  }
});

test('large reads merge contiguous clusters into few source reads', async () => {
  const counting = new CountingSource(FileSource.open(fixture('fat32')));
  const { vol, vfs } = await openFat(counting);
  const k = await vfs.stat(`/boot/initrd.img-${KVER}`);
  let runs = 0;
  for await (const _ of vol.extents(k)) runs++;
  const before = counting.readCalls;
  const data = await vol.read(k, 0, k.size);
  assert.equal(data.length, k.size);
  assert.ok(runs <= 4, `${runs} runs for a file mcopy wrote in one go`);
  assert.ok(counting.readCalls - before <= runs + 8, `${counting.readCalls - before} source reads`);
});

// ---- hostile images, patched in memory -------------------------------------------------------

async function patched(name: string) {
  const img = new Uint8Array(readFileSync(fixture(name)));
  const { vol, vfs } = await openFat(new MemorySource(img));
  const entryBytes = vol.bpb.type === 'fat32' ? 4 : 2;
  const setFat = (n: number, v: number) => {
    const dv = new DataView(img.buffer);
    if (entryBytes === 4) dv.setUint32(vol.bpb.fatOffset + n * 4, v, true);
    else dv.setUint16(vol.bpb.fatOffset + n * 2, v, true);
  };
  const getFat = (n: number) => {
    const dv = new DataView(img.buffer);
    return entryBytes === 4 ? dv.getUint32(vol.bpb.fatOffset + n * 4, true) % 0x10000000 : dv.getUint16(vol.bpb.fatOffset + n * 2, true);
  };
  const lastOf = (c: number) => {
    for (let i = 0; i < 1e6; i++) { const n = getFat(c); if (n >= (entryBytes === 4 ? 0x0ffffff8 : 0xfff8)) return c; c = n; }
    throw new Error('loop');
  };
  return { img, vol, vfs, setFat, getFat, lastOf };
}

async function expectTyped(img: Uint8Array, action: (vfs: Vfs) => Promise<unknown>, code: string, kind: RegExp): Promise<void> {
  const t0 = Date.now();
  const { vfs } = await openFat(new MemorySource(img));
  await assert.rejects(action(vfs), (e: unknown) => {
    assert.ok(isTsgrubError(e), `untyped: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(String(e.data.kind), kind);
    return true;
  });
  assert.ok(Date.now() - t0 < 3000, 'fast');
}

for (const name of ['fat16', 'fat32']) {
  test(`hostile ${name}: cluster chain loop`, async () => {
    const { img, vfs, setFat } = await patched(name);
    const k = (await vfs.stat(`/boot/vmlinuz-${KVER}`)) as FatNode;
    setFat(k.firstCluster + 5, k.firstCluster + 2);
    await expectTyped(img, (v) => v.readFile(`/boot/vmlinuz-${KVER}`), 'Corrupt', /fat\.ClusterChain/);
  });

  test(`hostile ${name}: FAT entry past the last cluster`, async () => {
    const { img, vol, vfs, setFat } = await patched(name);
    const k = (await vfs.stat(`/boot/vmlinuz-${KVER}`)) as FatNode;
    setFat(k.firstCluster + 3, vol.bpb.maxCluster + 1);
    await expectTyped(img, (v) => v.readFile(`/boot/vmlinuz-${KVER}`), 'Corrupt', /fat\.ClusterChain/);
  });

  test(`hostile ${name}: file size larger than its chain`, async () => {
    const { img, vfs } = await patched(name);
    const h = (await vfs.stat('/etc/hostname')) as FatNode;
    new DataView(img.buffer).setUint32((h.id as number) + 28, 10_000_000, true);
    await expectTyped(img, (v) => v.readFile('/etc/hostname'), 'Corrupt', /fat\.ClusterChain/);
  });

  test(`hostile ${name}: directory pointing at itself or its parent`, async () => {
    const { img, vfs } = await patched(name);
    const grub = (await vfs.lstat('/boot/grub')) as FatNode;
    const boot = (await vfs.lstat('/boot')) as FatNode;
    const a = img.slice();
    new DataView(a.buffer).setUint16((grub.id as number) + 26, boot.firstCluster % 65536, true);
    new DataView(a.buffer).setUint16((grub.id as number) + 20, Math.floor(boot.firstCluster / 65536), true);
    await expectTyped(a, (v) => v.stat('/boot/grub/grub.cfg'), 'Corrupt', /fat\.DirectoryCycle/);
    const b = img.slice();
    new DataView(b.buffer).setUint16((boot.id as number) + 26, 0, true);
    new DataView(b.buffer).setUint16((boot.id as number) + 20, 0, true);
    await expectTyped(b, (v) => v.stat('/boot/grub'), 'Corrupt', /fat\.DirectoryCycle/);
  });

  test(`hostile ${name}: directory without end marker over many clusters`, async () => {
    const { img, vol, vfs, setFat, getFat, lastOf } = await patched(name);
    const dir = (await vfs.stat('/dir-many')) as FatNode;
    const sparse = (await vfs.stat('/sparse.bin')) as FatNode;
    const initrd = (await vfs.stat(`/boot/initrd.img-${KVER}`)) as FatNode;
    // Fill the sparse file's clusters with deleted entries (no end marker) and chain them after the directory.
    const cb = vol.bpb.clusterBytes;
    const end = vol.bpb.type === 'fat32' ? 0x0ffffff8 : 0xfff8;
    for (let c = sparse.firstCluster, i = 0; c < end && i < 100_000; c = getFat(c), i++) {
      img.fill(0xe5, vol.bpb.dataOffset + (c - 2) * cb, vol.bpb.dataOffset + (c - 1) * cb);
    }
    setFat(lastOf(dir.firstCluster), sparse.firstCluster);
    setFat(lastOf(sparse.firstCluster), initrd.firstCluster);
    setFat(lastOf(initrd.firstCluster), (await vfs.stat(`/boot/vmlinuz-${KVER}`) as FatNode).firstCluster);
    await expectTyped(img, (v) => v.readdir('/dir-many'), 'Corrupt', /fat\.Directory/);
  });
}

test('robustness: sleuthkit FAT images open, walk and read with typed errors only', async (t) => {
  const sk = join(SHARED, 'corpus/sleuthkit_test_data');
  if (!existsSync(sk) || !hasTool('unzip')) return t.skip('../shared corpus or unzip not available');
  const imgs: [string, string][] = [
    ['2-kwsrch-fat.zip', '2-kwsrch-fat/fat-img-kw.dd'], ['5-fat-daylight.zip', '5-fat-daylight/daylight.dd'],
    ['6-undel-fat.zip', '6-undel-fat/6-fat-undel.dd'], ['9-fat-label.zip', '9-fat-label/9-fat-label.dd'],
  ];
  let opened = 0;
  for (const [zip, member] of imgs) {
    const data = new Uint8Array(run('unzip', ['-p', join(sk, zip), member]));
    const t0 = Date.now();
    const ctx = createContext();
    try {
      const vol = await fat.open(new MemorySource(data), ctx);
      opened++;
      const w = await walk(vol, ctx);
      for (const e of w.values()) if (e.kind === 'file') await readAll(vol, ctx, e.node);
    } catch (e) {
      assert.ok(isTsgrubError(e), `${member}: untyped ${String(e)}`);
    }
    assert.ok(Date.now() - t0 < 10_000, `${member} took too long`);
  }
  assert.ok(opened >= 3, 'the DFTT FAT images are valid FAT');
});

test('VisitedClusters: ranges and single clusters agree with a plain set, in Set and bitmap mode', () => {
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  for (const maxCluster of [5000, 70_000, 2 ** 20]) {
    for (let round = 0; round < 40; round++) {
      const v = new VisitedClusters(maxCluster, round % 2 === 0);
      const ref = new Set<number>();
      for (let k = 0; k < 60; k++) {
        if (rnd(3) === 0) {
          const c = 2 + rnd(maxCluster - 1);
          assert.equal(v.add(c), !ref.has(c), `add ${c}`);
          ref.add(c);
        } else {
          const lo = 2 + rnd(maxCluster - 1);
          const hi = Math.min(maxCluster, lo + rnd(rnd(2) ? 40 : 3000));
          let fresh = true;
          for (let c = lo; c <= hi; c++) if (ref.has(c)) fresh = false;
          assert.equal(v.addRange(lo, hi), fresh, `range ${lo}..${hi}`);
          if (!fresh) break; // the walk stops at the first revisit: what was added is unspecified
          for (let c = lo; c <= hi; c++) ref.add(c);
        }
      }
    }
  }
});

test('hostile fat32: a consecutive stretch that runs into clusters the chain already took is caught', async () => {
  const { img, vfs, setFat } = await patched('fat32');
  const r = (await vfs.stat(`/boot/initrd.img-${KVER}`)) as FatNode;
  const f = r.firstCluster;
  // f → f+700 … f+1000 (consecutive) → f+1 → f+2 → … → f+699 → f+700 → …: the stretch from f+2 runs
  // into f+700, already taken, and the file's 1,202 clusters are counted before the walk jumps again.
  // Each jump lands on a fresh cluster, so only the stretch check (VisitedClusters.addRange) sees it.
  assert.ok(Math.ceil(r.size / 512) > 1001, 'a ramdisk of more than 1001 clusters');
  setFat(f, f + 700);
  setFat(f + 1000, f + 1);
  await expectTyped(img, (v) => v.readFile(`/boot/initrd.img-${KVER}`), 'Corrupt', /fat\.ClusterChain/);
});
