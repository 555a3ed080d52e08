/**
 * Hostile partition tables built in memory (threat-model.md §partition tables): each must end quickly
 * with the right partitions plus a warning, or a typed error naming the structure.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CorruptError, LimitExceededError } from '../../src/errors.ts';
import { MemorySource } from '../../src/io/source.ts';
import { createContext } from '../../src/limits.ts';
import { gptScheme, scanPartitions, vtocScheme } from '../../src/partition/index.ts';
import { hasTool } from '../helpers/fixtures.ts';
import { SparseDisk, disklabel, dkLabel, guidBytes, mbrSector, writeGpt } from './builders.ts';

const MiB = 1 << 20;
const LINUX = guidBytes('0fc63daf-8483-4772-8e79-3d69d8477de4');

/** Runs `f`, asserting it settles within `ms` (no hang, no linear walk of a huge disk). */
async function quick<T>(f: () => Promise<T>, ms = 2000): Promise<T> {
  const t0 = Date.now();
  try {
    return await f();
  } finally {
    assert.ok(Date.now() - t0 < ms, `took ${Date.now() - t0} ms`);
  }
}

test('GPT NumberOfPartitionEntries = 0xFFFFFFFF with entry size 40 or 0 on a 20 GiB disk: Corrupt at once', async () => {
  for (const entrySize of [40, 0]) {
    const disk = new SparseDisk(20 * 1024 * MiB);
    writeGpt(disk, { count: 0xffffffff, entrySize });
    await quick(() =>
      assert.rejects(scanPartitions(disk, createContext()), (e: unknown) => e instanceof CorruptError && e.data.kind === 'gpt.SizeOfPartitionEntry'),
    );
    assert.ok(disk.bytesRead < 64 * 1024, `read ${disk.bytesRead} bytes`);
  }
});

test('GPT entry count × size over 1 MiB is Corrupt; over limits.partitionEntries is LimitExceeded', async () => {
  const disk = new SparseDisk(256 * MiB);
  writeGpt(disk, { count: 0xffffffff, entrySize: 128 });
  await assert.rejects(scanPartitions(disk, createContext()), (e: unknown) => e instanceof CorruptError && e.data.kind === 'gpt.NumberOfPartitionEntries');
  const disk2 = new SparseDisk(256 * MiB);
  writeGpt(disk2, { count: 4096, entrySize: 128 });
  await assert.rejects(scanPartitions(disk2, createContext()), (e: unknown) => e instanceof LimitExceededError && e.data.limit === 'partitionEntries');
});

test('GPT with a bad header CRC and no backup: Corrupt gpt.HeaderCRC32', async () => {
  const disk = new SparseDisk(64 * MiB);
  writeGpt(disk, { badPrimary: true, entries: [{ type: LINUX, first: 2048n, last: 4095n }] });
  await assert.rejects(scanPartitions(disk, createContext()), (e: unknown) => e instanceof CorruptError && e.data.kind === 'gpt.HeaderCRC32');
});

test('GPT with a bad header CRC and a good backup: backup used, warning names the failure', async () => {
  const disk = new SparseDisk(64 * MiB);
  writeGpt(disk, { badPrimary: true, backup: true, entries: [{ type: LINUX, first: 2048n, last: 4095n, name: 'r' }] });
  const t = await scanPartitions(disk, createContext());
  assert.equal(t.scheme, 'gpt');
  assert.equal(t.partitions.length, 1);
  assert.equal(t.partitions[0]!.start, 2048 * 512);
  assert.match(t.warnings.join('\n'), /HeaderCRC32.*backup at LBA 131071/s);
});

test('GPT entry array CRC mismatch is Corrupt gpt.PartitionEntryArrayCRC32', async () => {
  const disk = new SparseDisk(64 * MiB);
  writeGpt(disk, { arrayCrc: 1234, entries: [{ type: LINUX, first: 2048n, last: 4095n }] });
  await assert.rejects(gptScheme.scan(disk, createContext()), (e: unknown) => e instanceof CorruptError && e.data.kind === 'gpt.PartitionEntryArrayCRC32');
});

test('GPT entries outside the usable range or past 2^53 are skipped with a warning; bootable bit 2', async () => {
  const disk = new SparseDisk(64 * MiB);
  writeGpt(disk, {
    entries: [
      { type: LINUX, first: 2048n, last: 4095n, attrs: 4n },
      { type: LINUX, first: 4096n, last: 1n << 60n },
      { type: LINUX, first: 9000n, last: 8000n },
      { type: LINUX, first: 0n, last: 100n },
    ],
  });
  const t = await scanPartitions(disk, createContext());
  assert.deepEqual(t.partitions.map((p) => p.path), ['1']);
  assert.equal(t.partitions[0]!.bootable, true);
  assert.equal(t.warnings.length, 3);
});

test('a real MBR wins over a stale GPT header', async () => {
  const disk = new SparseDisk(64 * MiB);
  writeGpt(disk, { entries: [{ type: LINUX, first: 2048n, last: 4095n }] });
  disk.write(0, mbrSector([{ type: 0x83, start: 4096, sectors: 8192 }]));
  const t = await scanPartitions(disk, createContext());
  assert.equal(t.scheme, 'mbr');
  assert.equal(t.partitions[0]!.start, 4096 * 512);
});

/** Disk with p1 extended at 2048 (size 100000) and EBRs given as [ebrSector, logical, link]. */
function extendedDisk(ebrs: { at: number; logical?: [number, number]; link?: [number, number] }[], size = 64 * MiB): SparseDisk {
  const disk = new SparseDisk(size);
  disk.write(0, mbrSector([{ type: 0x05, start: 2048, sectors: 100000 }]));
  for (const e of ebrs) {
    const recs = [];
    recs.push(e.logical ? { type: 0x83, start: e.logical[0], sectors: e.logical[1] } : { type: 0, start: 0, sectors: 0 });
    if (e.link) recs.push({ type: 0x05, start: e.link[0], sectors: e.link[1] });
    disk.write(e.at * 512, mbrSector(recs));
  }
  return disk;
}

test('EBR pointing to itself: one logical, a loop warning, no hang', async () => {
  const disk = extendedDisk([{ at: 2048, logical: [63, 100], link: [0, 200] }]);
  const t = await quick(() => scanPartitions(disk, createContext()));
  assert.deepEqual(t.partitions.map((p) => p.path), ['1', '5']);
  assert.match(t.warnings.join('\n'), /loops back to sector 2048/);
});

test('EBR chain A → B → A: two logicals, a loop warning', async () => {
  const disk = extendedDisk([
    { at: 2048, logical: [63, 100], link: [1000, 300] },
    { at: 3048, logical: [63, 100], link: [0, 300] },
  ]);
  const t = await quick(() => scanPartitions(disk, createContext()));
  assert.deepEqual(t.partitions.map((p) => [p.path, p.start / 512]), [['1', 2048], ['5', 2111], ['6', 3111]]);
  assert.match(t.warnings.join('\n'), /loops back/);
});

test('EBR link outside the extended partition, and an overlapping logical, stop the chain', async () => {
  const out = extendedDisk([{ at: 2048, logical: [63, 100], link: [500000, 300] }]);
  const t1 = await scanPartitions(out, createContext());
  assert.deepEqual(t1.partitions.map((p) => p.path), ['1', '5']);
  assert.match(t1.warnings.join('\n'), /outside the extended partition/);
  const ov = extendedDisk([
    { at: 2048, logical: [63, 2000], link: [1000, 300] }, // next EBR at 3048 lies inside logical 5
    { at: 3048, logical: [63, 100] },
  ]);
  const t2 = await scanPartitions(ov, createContext());
  assert.deepEqual(t2.partitions.map((p) => p.path), ['1', '5']);
  assert.match(t2.warnings.join('\n'), /inside an earlier logical/);
});

test('1000 logical partitions: all found under the default budget, stopped at limits.partitionEntries', async () => {
  const ebrs = [];
  for (let i = 0; i < 1000; i++) ebrs.push({ at: 2048 + 64 * i, logical: [1, 32] as [number, number], ...(i < 999 ? { link: [64 * (i + 1), 64] as [number, number] } : {}) });
  const disk = extendedDisk(ebrs);
  const all = await quick(() => scanPartitions(disk, createContext()));
  assert.equal(all.partitions.length, 1001);
  assert.equal(all.partitions.at(-1)!.path, '1004');
  const capped = await quick(() => scanPartitions(disk, createContext({ partitionEntries: 128 })));
  assert.equal(capped.partitions.length, 1 + 128);
  assert.match(capped.warnings.join('\n'), /partitionEntries/);
});

test('VTOC with v_nparts = 300: nested label ignored with a warning; whole-disk label is Corrupt', async () => {
  const disk = new SparseDisk(64 * MiB);
  disk.write(0, mbrSector([{ type: 0xbf, start: 2048, sectors: 50000 }]));
  disk.write(2049 * 512, dkLabel([{ i: 0, tag: 2, start: 100, size: 1000 }], 300));
  const t = await scanPartitions(disk, createContext());
  assert.deepEqual(t.partitions.map((p) => p.path), ['1']);
  assert.equal(t.partitions[0]!.container, undefined);
  assert.match(t.warnings.join('\n'), /v_nparts/);
  const whole = new SparseDisk(MiB).write(512, dkLabel([{ i: 0, tag: 2, start: 100, size: 1000 }], 300));
  await assert.rejects(vtocScheme.scan(whole, createContext()), (e: unknown) => e instanceof CorruptError && e.data.kind === 'vtoc.v_nparts');
});

test('VTOC checksum mismatch is refused; 0x82 without a VTOC is plain swap', async () => {
  const disk = new SparseDisk(64 * MiB);
  disk.write(0, mbrSector([{ type: 0xbf, start: 2048, sectors: 50000 }, { type: 0x82, start: 60000, sectors: 1000 }]));
  disk.write(2049 * 512, dkLabel([{ i: 0, tag: 2, start: 100, size: 1000 }], 16, true));
  const t = await scanPartitions(disk, createContext());
  assert.deepEqual(t.partitions.map((p) => p.path), ['1', '2']);
  assert.match(t.warnings.join('\n'), /dkl_cksum/);
});

test('VTOC slices past their partition are clamped, those starting outside skipped; whole-disk VTOC read', async () => {
  const disk = new SparseDisk(64 * MiB);
  disk.write(0, mbrSector([{ type: 0x82, start: 2048, sectors: 10000 }]));
  disk.write(2049 * 512, dkLabel([
    { i: 0, tag: 2, start: 1000, size: 20000 },
    { i: 1, tag: 3, start: 0xffffff00, size: 0xffff },
    { i: 7, tag: 4, start: 16, size: 100 },
  ]));
  const t = await scanPartitions(disk, createContext());
  assert.deepEqual(t.partitions.map((p) => [p.path, p.start / 512, p.size / 512]), [['1', 2048, 10000], ['1s0', 3048, 9000], ['1s7', 2064, 100]]);
  assert.equal(t.warnings.length, 2);
  const whole = new SparseDisk(8 * MiB).write(512, dkLabel([{ i: 0, tag: 2, start: 1008, size: 4000 }, { i: 2, tag: 5, start: 0, size: 16384 }]));
  const w = await scanPartitions(whole, createContext());
  assert.equal(w.scheme, 'vtoc');
  assert.deepEqual(w.partitions.map((p) => [p.path, p.type, p.start / 512]), [['s0', 'root', 1008], ['s2', 'backup', 0]]);
});

test('BSD label: absolute offsets, raw c/d skipped, relative offsets detected, bad checksum refused', async () => {
  const abs = new SparseDisk(64 * MiB);
  abs.write(0, mbrSector([{ type: 0xa5, start: 2048, sectors: 60000 }]));
  abs.write(2049 * 512, disklabel([
    { i: 0, offset: 4096, size: 1000, fstype: 7 },
    { i: 1, offset: 5096, size: 999999, fstype: 1 },
    { i: 2, offset: 2048, size: 60000, fstype: 0 },
    { i: 3, offset: 0, size: 62048, fstype: 0 },
  ]));
  const t = await scanPartitions(abs, createContext());
  assert.deepEqual(t.partitions.map((p) => [p.path, p.start / 512, p.size / 512]), [['1', 2048, 60000], ['1a', 4096, 1000], ['1b', 5096, 56952]]);
  assert.equal(t.warnings.length, 1); // b clamped
  const rel = new SparseDisk(64 * MiB);
  rel.write(0, mbrSector([{ type: 0xa9, start: 2048, sectors: 60000 }]));
  rel.write(2049 * 512, disklabel([{ i: 0, offset: 16, size: 1000, fstype: 7 }]));
  const r = await scanPartitions(rel, createContext());
  assert.deepEqual(r.partitions.map((p) => [p.path, p.start / 512]), [['1', 2048], ['1a', 2064]]);
  assert.match(r.warnings.join('\n'), /slice-relative/);
  const bad = new SparseDisk(64 * MiB);
  bad.write(0, mbrSector([{ type: 0xa5, start: 2048, sectors: 60000 }]));
  const lab = disklabel([{ i: 0, offset: 4096, size: 1000, fstype: 7 }], 30);
  bad.write(2049 * 512, lab);
  const b = await scanPartitions(bad, createContext());
  assert.deepEqual(b.partitions.map((p) => p.path), ['1']);
  assert.match(b.warnings.join('\n'), /d_npartitions/);
});

test('primaries past the disk end: clamped or skipped with warnings; a 1-sector disk', async () => {
  const disk = new SparseDisk(8 * MiB).write(0, mbrSector([
    { type: 0x83, start: 2048, sectors: 100000 },
    { type: 0x83, start: 0xfffffff0, sectors: 0xffffffff },
  ]));
  const t = await scanPartitions(disk, createContext());
  assert.deepEqual(t.partitions.map((p) => [p.path, p.start / 512, p.size / 512]), [['1', 2048, 16384 - 2048]]);
  assert.equal(t.warnings.length, 2);
  const one = new MemorySource(mbrSector([{ type: 0x83, start: 2048, sectors: 8192 }, { type: 0x05, start: 1, sectors: 10 }]));
  const o = await quick(() => scanPartitions(one, createContext()));
  assert.equal(o.scheme, 'mbr');
  assert.deepEqual(o.partitions, []);
  assert.equal(o.warnings.length, 2);
  const tiny = await scanPartitions(new MemorySource(new Uint8Array(100)), createContext());
  assert.deepEqual(tiny, { scheme: null, partitions: [], warnings: [] });
});

test('hybrid ISO: partition 1 at LBA 0 covering the image is reported as is, no overlap warning', async () => {
  const disk = new SparseDisk(8 * MiB).write(0, mbrSector([{ status: 0x80, type: 0x17, start: 0, sectors: 16384 }, { type: 0xef, start: 100, sectors: 200 }]));
  const t = await scanPartitions(disk, createContext());
  assert.deepEqual(t.partitions.map((p) => [p.path, p.start, p.size]), [['1', 0, 8 * MiB], ['2', 51200, 102400]]);
  assert.deepEqual(t.warnings, []);
});

/** A FAT16 boot sector as mkfs.fat writes it (jump, OEM, BPB, "FAT16   "), with boot code over 446..509. */
function fatBootSector(code: number): Uint8Array {
  const b = new Uint8Array(512);
  const v = new DataView(b.buffer);
  b.set([0xeb, 0x3c, 0x90], 0);
  b.set(new TextEncoder().encode('mkfs.fat'), 3);
  v.setUint16(11, 512, true);
  b[13] = 4;
  v.setUint16(14, 4, true);
  b[16] = 2;
  b[21] = 0xf8;
  b.set(new TextEncoder().encode('FAT16   '), 0x36);
  for (let i = 446; i < 510; i++) b[i] = (i * code) & 0xff;
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

test('a FAT boot sector is not an MBR (bad boot flags, or plausible flags with implausible entries, or none)', async () => {
  for (const code of [7, 0]) {
    const disk = new SparseDisk(8 * MiB).write(0, fatBootSector(code));
    assert.equal((await scanPartitions(disk, createContext())).scheme, null, `code pattern ${code}`);
  }
  // Boot flags 0 but entries overlapping / past the disk: still the FAT boot sector.
  const b = fatBootSector(0);
  b.set(mbrSector([{ type: 0x83, start: 10, sectors: 100 }, { type: 0x07, start: 50, sectors: 100 }]).subarray(446, 510), 446);
  assert.equal((await scanPartitions(new SparseDisk(8 * MiB).write(0, b), createContext())).scheme, null);
});

test('a real mkfs.fat image has no partition table', async (t) => {
  if (!hasTool('mkfs.fat')) return t.skip('mkfs.fat not installed');
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-fat-'));
  try {
    for (const bits of ['12', '16', '32']) {
      const img = join(dir, `fat${bits}.img`);
      const r = spawnSync('mkfs.fat', ['-C', '-F', bits, img, bits === '32' ? '40000' : bits === '16' ? '20000' : '8000'], { stdio: 'ignore' });
      assert.equal(r.status, 0);
      const table = await scanPartitions(new MemorySource(new Uint8Array(readFileSync(img))), createContext());
      assert.equal(table.scheme, null, `FAT${bits}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
