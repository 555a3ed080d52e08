/**
 * Partition tables of real images (scripts/fixtures/partitions.sh) against independent readers:
 * sfdisk -J (MBR, GPT, backup GPT), sgdisk -p (GPT), mmls (GPT with 4096-byte sectors, nested VTOC
 * and BSD labels). Every partition that holds the fixture's ext4 filesystem must start with its
 * superblock magic 0xEF53 at +1080, read through the partition's own clamped source.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FileSource } from '../../src/node/file-source.ts';
import { createContext } from '../../src/limits.ts';
import { scanPartitions } from '../../src/partition/index.ts';
import type { Partition, PartitionTable } from '../../src/partition/types.ts';
import { fixture, hasTool, run } from '../helpers/fixtures.ts';

async function scan(name: string): Promise<PartitionTable> {
  return scanPartitions(FileSource.open(fixture(name)), createContext());
}

async function hasExtMagic(p: Partition): Promise<boolean> {
  const b = await p.source.read(1080, 2);
  return b[0] === 0x53 && b[1] === 0xef;
}

interface SfdiskPart {
  node: string;
  start: number;
  size: number;
  type: string;
  bootable?: boolean;
  uuid?: string;
  name?: string;
  attrs?: string;
}

function sfdisk(name: string): { label: string; id: string; sectorsize: number; partitions: SfdiskPart[] } {
  return JSON.parse(run('sfdisk', ['-J', fixture(name)]).toString()).partitiontable;
}

/** mmls rows with a numeric slot: [slot, start, length, description]. */
function mmls(args: string[]): { slot: number; start: number; length: number; desc: string }[] {
  const out: { slot: number; start: number; length: number; desc: string }[] = [];
  for (const line of run('mmls', args).toString().split('\n')) {
    const m = /^\d+:\s+(?:\d+:)?(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (m) out.push({ slot: Number(m[1]), start: Number(m[2]), length: Number(m[4]), desc: m[5] as string });
  }
  return out;
}

/** Compares our table with sfdisk's: same numbers, starts, sizes, types, flags, names, uuids. */
function compareSfdisk(t: PartitionTable, name: string): number {
  const ref = sfdisk(name);
  const ss = ref.sectorsize;
  const ours = t.partitions.filter((p) => p.parent === undefined);
  assert.equal(ours.length, ref.partitions.length, 'partition count');
  for (const r of ref.partitions) {
    const num = /(\d+)$/.exec(r.node)![1];
    const p = ours.find((x) => x.path === num);
    assert.ok(p, `partition ${num} found`);
    assert.equal(p.start, r.start * ss, `p${num} start`);
    assert.equal(p.size, r.size * ss, `p${num} size`);
    if (ref.label === 'dos') {
      assert.equal(p.type, `0x${r.type.padStart(2, '0')}`, `p${num} type`);
      assert.equal(p.bootable, r.bootable === true, `p${num} bootable`);
    } else {
      assert.equal(p.type, r.type.toLowerCase(), `p${num} type`);
      assert.equal(p.uuid, r.uuid?.toLowerCase(), `p${num} uuid`);
      assert.equal(p.name, r.name ?? '', `p${num} name`);
      assert.equal(p.bootable, (r.attrs ?? '').includes('LegacyBIOSBootable'), `p${num} bootable`);
    }
  }
  assert.equal(t.id?.toLowerCase(), ref.id.toLowerCase(), 'disk id');
  return ref.partitions.length;
}

test('mbr-primary: two primaries, second active, equal to sfdisk -J', async (t) => {
  const table = await scan('mbr-primary');
  assert.equal(table.scheme, 'mbr');
  assert.deepEqual(table.warnings, []);
  assert.deepEqual(table.partitions.map((p) => p.path), ['1', '2']);
  assert.equal(table.partitions[1]!.bootable, true);
  assert.equal(await hasExtMagic(table.partitions[1]!), true);
  if (!hasTool('sfdisk')) return t.skip('sfdisk not installed');
  compareSfdisk(table, 'mbr-primary');
});

test('mbr-logical: extended chain, logicals numbered from 5, equal to sfdisk -J and mmls', async (t) => {
  const table = await scan('mbr-logical');
  assert.equal(table.scheme, 'mbr');
  assert.deepEqual(table.warnings, []);
  assert.deepEqual(table.partitions.map((p) => p.path), ['1', '2', '5', '6', '7']);
  const ext = table.partitions.find((p) => p.path === '2')!;
  assert.equal(ext.container, true);
  for (const p of table.partitions.filter((x) => x.number >= 5)) {
    assert.ok(p.start >= ext.start && p.start + p.size <= ext.start + ext.size, `logical ${p.path} inside the extended partition`);
  }
  assert.equal(await hasExtMagic(table.partitions.find((p) => p.path === '6')!), true);
  if (!hasTool('sfdisk')) return t.skip('sfdisk not installed');
  compareSfdisk(table, 'mbr-logical');
  if (!hasTool('mmls')) return t.skip('mmls not installed');
  // mmls numbers data partitions by table (EBR) and slot; compare the set of data extents.
  const ref = mmls([fixture('mbr-logical')]).map((r) => `${r.start * 512}+${r.length * 512}`).sort();
  const ours = table.partitions.filter((p) => !p.container).map((p) => `${p.start}+${p.size}`).sort();
  assert.deepEqual(ours, ref);
});

test('gpt: BIOS boot, ESP, root; equal to sfdisk -J and sgdisk -p', async (t) => {
  const table = await scan('gpt');
  assert.equal(table.scheme, 'gpt');
  assert.deepEqual(table.warnings, []);
  assert.deepEqual(table.partitions.map((p) => p.typeName), ['BIOS boot', 'EFI System', 'Linux filesystem']);
  assert.equal(await hasExtMagic(table.partitions[2]!), true);
  if (!hasTool('sfdisk')) return t.skip('sfdisk not installed');
  compareSfdisk(table, 'gpt');
  if (!hasTool('sgdisk')) return t.skip('sgdisk not installed');
  const rows = run('sgdisk', ['-p', fixture('gpt')])
    .toString()
    .split('\n')
    .map((l) => /^\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+ \S+\s+(\w{4})\s+(.*)$/.exec(l))
    .filter((m) => m !== null);
  assert.equal(rows.length, table.partitions.length);
  for (const m of rows) {
    const p = table.partitions.find((x) => x.path === m[1])!;
    assert.equal(p.start, Number(m[2]) * 512);
    assert.equal(p.size, (Number(m[3]) - Number(m[2]) + 1) * 512);
    assert.equal(p.name, m[5]);
  }
});

test('gpt-backup: primary header zeroed, the backup is used with a warning, equal to sfdisk -J', async (t) => {
  const table = await scan('gpt-backup');
  assert.equal(table.scheme, 'gpt');
  assert.equal(table.warnings.length, 1);
  assert.match(table.warnings[0]!, /backup/);
  assert.equal(await hasExtMagic(table.partitions[2]!), true);
  const good = await scan('gpt');
  assert.deepEqual(
    table.partitions.map((p) => [p.path, p.start, p.size, p.type, p.uuid, p.name]),
    good.partitions.map((p) => [p.path, p.start, p.size, p.type, p.uuid, p.name]),
  );
  if (!hasTool('sfdisk')) return t.skip('sfdisk not installed');
  compareSfdisk(table, 'gpt-backup'); // sfdisk: "The primary GPT table is corrupt, but the backup appears OK"
});

test('gpt-4k: 4096-byte logical sectors, equal to mmls -b 4096 and fdisk -b 4096', async (t) => {
  const table = await scan('gpt-4k');
  assert.equal(table.scheme, 'gpt');
  assert.deepEqual(table.warnings, []);
  assert.equal(table.partitions.length, 2);
  assert.equal(table.partitions[1]!.bootable, true);
  assert.equal(await hasExtMagic(table.partitions[1]!), true);
  if (!hasTool('mmls')) return t.skip('mmls not installed');
  const ref = mmls(['-b', '4096', fixture('gpt-4k')]);
  assert.equal(ref.length, table.partitions.length);
  for (const r of ref) {
    const p = table.partitions.find((x) => x.number === r.slot + 1)!;
    assert.equal(p.start, r.start * 4096);
    assert.equal(p.size, r.length * 4096);
    assert.equal(p.name, r.desc);
  }
  if (!hasTool('fdisk')) return t.skip('fdisk not installed');
  const rows = run('fdisk', ['-b', '4096', '-l', fixture('gpt-4k')])
    .toString()
    .split('\n')
    .map((l) => /img(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(l))
    .filter((m) => m !== null);
  assert.equal(rows.length, 2);
  for (const m of rows) {
    const p = table.partitions.find((x) => x.path === m[1])!;
    assert.equal(p.start, Number(m[2]) * 4096);
    assert.equal(p.size, Number(m[4]) * 4096);
  }
});

test('vtoc: 0xBF partition with a Solaris x86 VTOC, slices equal to mmls -t sun', async (t) => {
  const table = await scan('vtoc');
  assert.equal(table.scheme, 'mbr');
  assert.deepEqual(table.warnings, []);
  const p1 = table.partitions[0]!;
  assert.equal(p1.container, true);
  assert.deepEqual(table.partitions.map((p) => p.path), ['1', '1s0', '1s1', '1s2', '1s8']);
  const root = table.partitions.find((p) => p.tag === 2)!;
  assert.equal(root.path, '1s0');
  assert.equal(root.type, 'root');
  assert.equal(root.parent, '1');
  assert.equal(await hasExtMagic(root), true);
  if (!hasTool('mmls')) return t.skip('mmls not installed');
  const base = p1.start / 512;
  // mmls -t sun lists slices relative to -o and shows the backup slice as "Meta".
  const ref = mmls(['-t', 'sun', '-o', String(base), fixture('vtoc')]);
  const ours = table.partitions.filter((p) => p.parent === '1' && p.type !== 'backup');
  assert.equal(ref.length, ours.length);
  for (const r of ref) {
    const p = ours.find((x) => x.number === r.slot)!;
    assert.ok(p, `slice ${r.slot}`);
    assert.equal(p.start, (base + r.start) * 512);
    assert.equal(p.size, r.length * 512);
  }
});

test('bsd: 0xA5 slice with an fdisk-written disklabel, partitions equal to mmls -t bsd', async (t) => {
  const table = await scan('bsd');
  assert.equal(table.scheme, 'mbr');
  assert.deepEqual(table.warnings, []);
  assert.deepEqual(table.partitions.map((p) => p.path), ['1', '1a', '1b']); // raw c and d are not listed
  const a = table.partitions[1]!;
  assert.equal(a.type, '4.2BSD');
  assert.equal(await hasExtMagic(a), true);
  if (!hasTool('mmls')) return t.skip('mmls not installed');
  const base = table.partitions[0]!.start / 512;
  const ref = mmls(['-t', 'bsd', '-o', String(base), fixture('bsd')]).filter((r) => !r.desc.startsWith('Unused'));
  assert.equal(ref.length, 2);
  for (const r of ref) {
    const p = table.partitions.find((x) => x.parent === '1' && x.number === r.slot)!;
    assert.ok(p, `bsd partition ${r.slot}`);
    assert.equal(p.start, r.start * 512);
    assert.equal(p.size, r.length * 512);
  }
});

test('every fixture partition source is clamped to its partition', async () => {
  const table = await scan('mbr-logical');
  const p5 = table.partitions.find((p) => p.path === '5')!;
  await assert.rejects(p5.source.read(p5.size - 512, 1024), { code: 'Corrupt' });
});
