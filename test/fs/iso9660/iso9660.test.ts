import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fixture, hasTool, manifest, run, sha256, SHARED } from '../../helpers/fixtures.ts';
import { FileSource } from '../../../src/node/file-source.ts';
import { CountingSource, MemorySource, type ByteSource } from '../../../src/io/source.ts';
import { createContext } from '../../../src/limits.ts';
import { isTsgrubError } from '../../../src/errors.ts';
import { decodeUtf8 } from '../../../src/io/bytes.ts';
import { Vfs } from '../../../src/fs/vfs.ts';
import { iso9660, readElTorito, type IsoVolume } from '../../../src/fs/iso9660/index.ts';
import { readAll, walk } from './walk.ts';

const KVER = '6.1.0-tsgrub';
const DEEP = 'deep/d01/d02/d03/d04/d05/d06/d07/d08/d09/d10/d11/d12';

async function openIso(src: ByteSource) {
  const ctx = createContext();
  const vol = (await iso9660.open(src, ctx)) as IsoVolume;
  return { ctx, vol, vfs: new Vfs(vol, ctx) };
}

/** Paths listed by `isoinfo -l` (with -R / -J / nothing), '.'/'..' and symlink arrows removed. */
function isoinfoList(img: string, mode: string[]): Set<string> {
  const out = new Set<string>();
  let dir = '';
  for (const line of run('isoinfo', [...mode, '-i', img, '-l']).toString('utf8').split('\n')) {
    const m = /^Directory listing of (.*)$/.exec(line);
    if (m) { dir = (m[1] as string).replace(/^\//, ''); continue; }
    const i = line.indexOf(']  ');
    if (i < 0) continue;
    let name = line.slice(i + 3).replace(/ $/, '');
    name = name.replace(/ -> .*$/, '');
    if (name === '.' || name === '..') continue;
    out.add(dir + name);
  }
  return out;
}

for (const name of ['iso-xorriso', 'iso-genisoimage', 'iso-hybrid']) {
  test(`${name}: Rock Ridge tree matches the manifest`, async () => {
    const { ctx, vol, vfs } = await openIso(FileSource.open(fixture(name)));
    assert.equal(vol.nameMode, 'rockridge');
    const m = manifest();
    const w = await walk(vol, ctx);
    let compared = 0;
    for (const [p, h] of m) {
      if (name === 'iso-hybrid' && p.startsWith('boot/initrd.img')) continue; // left out of that image
      const e = w.get(p);
      assert.ok(e, `${p} missing`);
      assert.equal(sha256(await readAll(vol, ctx, e.node)), h, p);
      compared++;
    }
    assert.ok(compared >= 309);
    assert.equal(decodeUtf8(await vfs.readlink('/vmlinuz')), `boot/vmlinuz-${KVER}`);
    assert.equal(decodeUtf8(await vfs.readlink('/initrd.img')), `/boot/initrd.img-${KVER}`);
    assert.equal(decodeUtf8(await vfs.readlink(`/${DEEP}/up`)), '../'.repeat(13) + 'etc/hostname');
    assert.equal(decodeUtf8(await vfs.readFile(`/${DEEP}/up`)), 'tsgrub-host\n');
    assert.equal(decodeUtf8(await vfs.readFile(`/${DEEP}/leaf.txt`)), 'deep leaf\n');
    assert.equal(vol.label, name === 'iso-hybrid' ? 'FSHYBRID' : 'FSTEST');
  });
}

test('genisoimage relocation: CL followed, RE directories hidden in rr_moved', async () => {
  const img = fixture('iso-genisoimage');
  const { ctx, vol, vfs } = await openIso(FileSource.open(img));
  const top = (await vfs.readdir('/')).map((e) => decodeUtf8(e.name));
  assert.ok(top.includes('rr_moved'), 'genisoimage writes rr_moved');
  const moved = (await vfs.readdir('/rr_moved')).map((e) => decodeUtf8(e.name));
  assert.deepEqual(moved, [], 'relocated directories are shown only at their CL place');
  const leaf = await vfs.stat(`/${DEEP}/leaf.txt`);
  assert.equal(decodeUtf8(await readAll(vol, ctx, leaf)), 'deep leaf\n');
  assert.equal((await vfs.stat(`/${DEEP}/../../d11/d12/leaf.txt`)).size, 10);
});

test('iso-xorriso: listing and bytes equal isoinfo -R', async (t) => {
  if (!hasTool('isoinfo')) return t.skip('isoinfo not installed');
  const img = fixture('iso-xorriso');
  const { ctx, vol } = await openIso(FileSource.open(img));
  const w = await walk(vol, ctx);
  const theirs = isoinfoList(img, ['-R']);
  assert.deepEqual([...w.keys()].sort(), [...theirs].sort());
  let n = 0;
  for (const [p, e] of w) {
    if (e.kind !== 'file') continue;
    const ref = run('isoinfo', ['-R', '-i', img, '-x', `/${p}`]);
    assert.equal(sha256(await readAll(vol, ctx, e.node)), sha256(ref), p);
    n++;
  }
  assert.ok(n >= 310);
});

test('iso-joliet: Joliet names and bytes equal isoinfo -J', async (t) => {
  if (!hasTool('isoinfo')) return t.skip('isoinfo not installed');
  const img = fixture('iso-joliet');
  const { ctx, vol, vfs } = await openIso(FileSource.open(img));
  assert.equal(vol.nameMode, 'joliet');
  const w = await walk(vol, ctx);
  assert.deepEqual([...w.keys()].sort(), [...isoinfoList(img, ['-J'])].sort());
  let n = 0;
  for (const [p, e] of w) {
    if (e.kind !== 'file') continue;
    assert.equal(sha256(await readAll(vol, ctx, e.node)), sha256(run('isoinfo', ['-J', '-i', img, '-x', `/${p}`])), p);
    n++;
  }
  assert.ok(n >= 300);
  assert.equal(decodeUtf8(await vfs.readFile('/boot/grub/grub.cfg')).includes('menuentry'), true);
});

test('iso-plain: map=normal names (lower case, no ;1) and bytes equal isoinfo', async (t) => {
  if (!hasTool('isoinfo')) return t.skip('isoinfo not installed');
  const img = fixture('iso-plain');
  const { ctx, vol, vfs } = await openIso(FileSource.open(img));
  assert.equal(vol.nameMode, 'plain');
  const w = await walk(vol, ctx);
  const theirs = new Map<string, string>();
  for (const p of isoinfoList(img, [])) theirs.set(p.split('/').map((c) => c.replace(/;[0-9]+$/, '').replace(/\.$/, '').toLowerCase()).join('/'), p);
  assert.deepEqual([...w.keys()].sort(), [...theirs.keys()].sort());
  for (const [p, e] of w) {
    if (e.kind !== 'file') continue;
    assert.equal(sha256(await readAll(vol, ctx, e.node)), sha256(run('isoinfo', ['-i', img, '-x', `/${theirs.get(p)}`])), p);
  }
  // Case-insensitive lookup of plain names, as GRUB and pygrub users write them.
  assert.equal((await vfs.stat('/BOOT/GRUB/GRUB.CFG')).kind, 'file');
});

test('grub-fstest reads the same kernel and config', async (t) => {
  if (!hasTool('grub-fstest')) return t.skip('grub-fstest not installed');
  const img = fixture('iso-xorriso');
  const { vfs } = await openIso(FileSource.open(img));
  for (const p of [`/boot/vmlinuz-${KVER}`, '/boot/grub/grub.cfg', '/etc/hostname']) {
    assert.equal(sha256(await vfs.readFile(p)), sha256(run('grub-fstest', [img, 'cat', p])), p);
  }
});

test('label and UUID equal blkid', async (t) => {
  if (!hasTool('blkid')) return t.skip('blkid not installed');
  for (const name of ['iso-xorriso', 'iso-genisoimage', 'iso-joliet']) {
    const img = fixture(name);
    const ref = run('blkid', ['-p', '-o', 'export', img]).toString();
    const p = await iso9660.probe(FileSource.open(img), createContext());
    assert.ok(p);
    assert.equal(p.uuid, /^UUID=(.*)$/m.exec(ref)?.[1]);
    assert.equal(p.label, /^LABEL=(.*)$/m.exec(ref)?.[1]);
  }
});

test('El Torito catalog equals xorriso -report_el_torito', async (t) => {
  const img = fixture('iso-hybrid');
  const entries = await readElTorito(FileSource.open(img), createContext());
  assert.ok(entries);
  if (!hasTool('xorriso')) return t.skip('xorriso not installed');
  const rep = run('xorriso', ['-indev', img, '-report_el_torito', 'plain']).toString();
  const rows = [...rep.matchAll(/^El Torito boot img :\s+\d+\s+(\S+)\s+(\S)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)\s+(\d+)$/gm)];
  assert.equal(entries.length, rows.length);
  rows.forEach((r, i) => {
    const e = entries[i]!;
    assert.equal(e.platform, r[1] === 'BIOS' ? 'x86' : r[1] === 'UEFI' ? 'efi' : r[1]);
    assert.equal(e.bootable, r[2] === 'y');
    assert.equal(e.mediaType, r[3] === 'none' ? 'no-emulation' : r[3]);
    assert.equal(e.sectorCount, Number(r[6]));
    assert.equal(e.loadRba, Number(r[7]));
  });
  assert.equal(await readElTorito(FileSource.open(fixture('iso-xorriso')), createContext()), null);
});

test('large reads: one contiguous extent, one source read', async () => {
  const counting = new CountingSource(FileSource.open(fixture('iso-xorriso')));
  const { vol, vfs } = await openIso(counting);
  const k = await vfs.stat(`/boot/vmlinuz-${KVER}`);
  const ext = [];
  for await (const e of vol.extents(k)) ext.push(e);
  assert.equal(ext.length, 1);
  assert.equal(ext[0]!.length, k.size);
  const before = counting.readCalls;
  const data = await vol.read(k, 0, k.size);
  assert.equal(counting.readCalls - before, 1);
  assert.equal(data.length, k.size);
});

// ---- hostile images, patched in memory -------------------------------------------------------

const SECTOR = 2048;
function le32(b: Uint8Array, off: number): number {
  return new DataView(b.buffer, b.byteOffset).getUint32(off, true);
}
function put32both(b: Uint8Array, off: number, v: number): void {
  const dv = new DataView(b.buffer, b.byteOffset);
  dv.setUint32(off, v, true);
  dv.setUint32(off + 4, v, false);
}
/** Offset of the directory record whose ISO identifier is `ident` in the directory at `lba`. */
function findRecord(img: Uint8Array, lba: number, ident: string): number {
  const size = le32(img, lba * SECTOR + 10);
  for (let s = 0; s * SECTOR < size; s++) {
    let off = (lba + s) * SECTOR;
    const end = off + SECTOR;
    while (off < end && img[off] !== 0) {
      const idLen = img[off + 32] as number;
      const id = String.fromCharCode(...img.subarray(off + 33, off + 33 + idLen));
      if (id === ident || id.startsWith(ident + ';')) return off;
      off += img[off] as number;
    }
  }
  throw new Error(`record ${ident} not found`);
}
/** Offset of SUSP entry `sig` inside the record at `rec`. */
function findSusp(img: Uint8Array, rec: number, sig: string): number {
  const idLen = img[rec + 32] as number;
  let off = rec + 33 + idLen + (idLen % 2 === 0 ? 1 : 0);
  const end = rec + (img[rec] as number);
  while (off + 4 <= end) {
    if (String.fromCharCode(img[off] as number, img[off + 1] as number) === sig) return off;
    off += img[off + 2] as number;
  }
  throw new Error(`${sig} not found`);
}

function baseImage(): { img: Uint8Array; root: number } {
  const img = new Uint8Array(readFileSync(fixture('iso-xorriso')));
  return { img, root: le32(img, 16 * SECTOR + 156 + 2) };
}

async function expectTyped(img: Uint8Array, action: (vfs: Vfs, vol: IsoVolume) => Promise<unknown>, code: string, kind?: RegExp): Promise<void> {
  const t0 = Date.now();
  const { vol, vfs } = await openIso(new MemorySource(img));
  await assert.rejects(action(vfs, vol), (e: unknown) => {
    assert.ok(isTsgrubError(e), `untyped: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (kind) assert.match(String(e.data.kind ?? e.data.limit), kind);
    return true;
  });
  assert.ok(Date.now() - t0 < 2000, 'fast');
}

test('hostile: SUSP entry length 0 (XSA-497 spin)', async () => {
  const { img, root } = baseImage();
  const rec = findRecord(img, root, 'ETC');
  img[findSusp(img, rec, 'PX') + 2] = 0;
  await expectTyped(img, (vfs) => vfs.readdir('/'), 'Corrupt', /SUSP/);
});

test('hostile: SUSP entry length beyond the area', async () => {
  const { img, root } = baseImage();
  const rec = findRecord(img, root, 'ETC');
  img[findSusp(img, rec, 'PX') + 2] = 250;
  await expectTyped(img, (vfs) => vfs.readdir('/'), 'Corrupt', /SUSP/);
});

test('hostile: NM length 4', async () => {
  const { img, root } = baseImage();
  const rec = findRecord(img, root, 'ETC');
  const nm = findSusp(img, rec, 'NM');
  // Shrink NM to 4 bytes and pad the freed bytes with an unknown entry so the area stays well-formed.
  const old = img[nm + 2] as number;
  img[nm + 2] = 4;
  img.set([0x58, 0x58, old - 4, 1], nm + 4);
  await expectTyped(img, (vfs) => vfs.readdir('/'), 'Corrupt', /NM/);
});

test('hostile: CE window outside its sector and outside the image', async () => {
  const base = baseImage();
  const longLba = le32(base.img, findRecord(base.img, base.root, 'LONG') + 2);
  // The 255-byte Rock Ridge name does not fit its record: xorriso continues it in a CE area.
  let ce = -1;
  for (let off = longLba * SECTOR; base.img[off] !== 0 && ce < 0; off += base.img[off] as number) {
    try { ce = findSusp(base.img, off, 'CE'); } catch { /* no CE in this record */ }
  }
  assert.ok(ce > 0, 'the long-name record carries a CE entry');
  const a = base.img.slice();
  put32both(a, ce + 12, 2040);
  await expectTyped(a, (vfs) => vfs.readdir('/long'), 'Corrupt', /SUSP\.CE/);
  const b = base.img.slice();
  put32both(b, ce + 4, 0x7fffffff);
  await expectTyped(b, (vfs) => vfs.readdir('/long'), 'Corrupt', /SUSP\.CE/);
  const c = base.img.slice();
  put32both(c, ce + 20, 4096);
  await expectTyped(c, (vfs) => vfs.readdir('/long'), 'Corrupt', /SUSP\.CE/);
});

test('hostile: directory record shorter than its header', async () => {
  const { img, root } = baseImage();
  img[findRecord(img, root, 'ETC')] = 20;
  await expectTyped(img, (vfs) => vfs.readdir('/'), 'Corrupt', /DirectoryRecord/);
});

test('hostile: both-endian mismatch', async () => {
  const { img, root } = baseImage();
  const rec = findRecord(img, root, 'ETC');
  new DataView(img.buffer).setUint32(rec + 6, 12345, false);
  await expectTyped(img, (vfs) => vfs.stat('/etc/hostname'), 'Corrupt', /DirectoryRecord/);
});

test('hostile: directory extent pointing at itself or its parent', async () => {
  const { img, root } = baseImage();
  const etc = findRecord(img, root, 'ETC');
  const a = img.slice();
  put32both(a, etc + 2, root); // /etc -> the root directory
  await expectTyped(a, (vfs) => vfs.stat('/etc/x'), 'Corrupt', /DirectoryCycle/);
  const b = img.slice();
  const bootLba = le32(b, findRecord(b, root, 'BOOT') + 2);
  put32both(b, findRecord(b, bootLba, 'GRUB') + 2, bootLba); // /boot/grub -> /boot
  await expectTyped(b, (vfs) => vfs.stat('/boot/grub/grub.cfg'), 'Corrupt', /DirectoryCycle/);
  // A bounded walk of the patched image ends with the typed error, not a hang.
  const { vol, ctx } = await openIso(new MemorySource(b));
  await assert.rejects(walk(vol, ctx), (e: unknown) => isTsgrubError(e));
});

// ---- robustness corpora ----------------------------------------------------------------------

function corpusIsos(): { name: string; data: Uint8Array }[] {
  const out: { name: string; data: Uint8Array }[] = [];
  const sk = join(SHARED, 'corpus/sleuthkit_test_data');
  if (existsSync(join(sk, '14-iso9660-1.zip')) && hasTool('unzip')) {
    for (const f of ['iso-dirtree1.iso', 'iso-dirtree2.iso', 'iso-endian.iso']) {
      out.push({ name: f, data: new Uint8Array(run('unzip', ['-p', join(sk, '14-iso9660-1.zip'), `14-iso9660-1/${f}`])) });
    }
  }
  if (existsSync(join(sk, 'tsk-image.iso'))) out.push({ name: 'tsk-image.iso', data: new Uint8Array(readFileSync(join(sk, 'tsk-image.iso'))) });
  const gd = join(SHARED, 'corpus/go-diskfs');
  if (existsSync(gd)) for (const f of readdirSync(gd).filter((x) => x.endsWith('.iso'))) out.push({ name: f, data: new Uint8Array(readFileSync(join(gd, f))) });
  return out;
}

test('robustness: public ISO corpora open, walk and read with typed errors only', async (t) => {
  const imgs = corpusIsos();
  if (imgs.length === 0) return t.skip('../shared corpus (or unzip) not available');
  for (const { name, data } of imgs) {
    const t0 = Date.now();
    const ctx = createContext();
    try {
      const vol = await iso9660.open(new MemorySource(data), ctx);
      const w = await walk(vol, ctx);
      for (const e of w.values()) if (e.kind === 'file') await readAll(vol, ctx, e.node);
    } catch (e) {
      assert.ok(isTsgrubError(e), `${name}: untyped ${String(e)}`);
    }
    assert.ok(Date.now() - t0 < 10_000, `${name} took too long`);
  }
});
