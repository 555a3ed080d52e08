/**
 * tsgrub boots every fixture image that carries the standard tree's /boot (every filesystem, every
 * partition layout, containers, an LVM /boot, a hybrid ISO): the copied kernel and ramdisk must have
 * the manifest's bytes and the args must be the grub.cfg's. Where the real pygrub boots the same
 * image, its records must equal ours; where it cannot (XFS v5, btrfs, logical partitions, UFS2,
 * squashfs, EROFS, hybrid ISOs, qcow2 …) we must still boot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, fixtureNames, hasTool, manifest, ROOT } from '../helpers/fixtures.ts';
import { openImage } from '../../src/node/index.ts';
import { SliceSource } from '../../src/io/source.ts';

const TSGRUB = join(ROOT, 'bin/tsgrub');
const PYGRUB = '/usr/lib/xen-4.17/bin/pygrub';
const KERNEL = 'boot/vmlinuz-6.1.0-tsgrub';
const INITRD = 'boot/initrd.img-6.1.0-tsgrub';
const ARGS = 'root=/dev/xvda1 ro console=hvc0';

/** Fixtures whose tree has the standard /boot (others omit the big files or hold no boot config). */
const BOOTABLE = [
  'ext2-1k', 'ext3-1k', 'ext3-4k', 'ext4', 'ext4-64k', 'ext4-inline', 'ext4-metabg', 'ext4-noext',
  'xfs4', 'xfs5', 'xfs5-sparse', 'xfs5-mount', 'btrfs', 'btrfs-zstd', 'btrfs-lzo', 'btrfs-zlib', 'btrfs-subvol',
  'reiserfs', 'reiserfs-tea', 'reiserfs-yura', 'ufs1-le', 'ufs1-be', 'ufs2-le', 'ufs2-be', 'ufs1-solaris', 'zfs-lzjb',
  'iso-xorriso', 'iso-genisoimage', 'fat12', 'fat16', 'fat32',
  'squashfs-gzip', 'squashfs-xz', 'squashfs-lzo', 'squashfs-lz4', 'squashfs-zstd', 'squashfs-none',
  'erofs', 'erofs-lz4hc', 'erofs-ztail', 'erofs-chunk',
  'mbr-primary', 'mbr-logical', 'gpt', 'gpt-4k', 'gpt-backup', 'vtoc', 'bsd',
];

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, TERM: 'vt100' };
  delete e.NODE_EXTRA_CA_CERTS;
  return e;
}

interface Boot {
  rc: number | null;
  records: Map<string, string>;
  stderr: string;
  files: string[];
}

function boot(tool: string, img: string, work: string, extra: string[] = []): Boot {
  const out = mkdtempSync(join(work, 'out-'));
  const result = `${out}.result`;
  writeFileSync(result, '');
  const r = spawnSync(tool, ['-q', '--output-format=simple0', `--output=${result}`, `--output-directory=${out}`, ...extra, img], { env: env(), encoding: 'utf8', timeout: 60_000 });
  const records = new Map<string, string>();
  for (const item of readFileSync(result, 'latin1').split('\0')) {
    if (!item) continue;
    const sp = item.indexOf(' ');
    records.set(item.slice(0, sp), item.slice(sp + 1));
  }
  return { rc: r.status, records, stderr: r.stderr, files: readdirSync(out) };
}

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

function assertBoots(b: Boot, what: string, args = ARGS): void {
  const m = manifest();
  assert.equal(b.rc, 0, `${what}: ${b.stderr}`);
  assert.equal(sha(b.records.get('kernel') as string), m.get(KERNEL), `${what}: kernel bytes`);
  assert.equal(sha(b.records.get('ramdisk') as string), m.get(INITRD), `${what}: ramdisk bytes`);
  assert.equal(b.records.get('args'), args, `${what}: args`);
  assert.equal(b.files.length, 2, `${what}: only the two reported files`);
}

test('every bootable fixture boots with the manifest kernel, ramdisk and args; same records as pygrub where it boots', { timeout: 900_000 }, (t) => {
  const work = mkdtempSync(join(tmpdir(), 'tsgrub-boot-'));
  const names = new Set(fixtureNames());
  let withPygrub = 0;
  let pygrubFails = 0;
  try {
    for (const name of BOOTABLE) {
      assert.ok(names.has(name), `fixture ${name} exists`);
      const img = fixture(name);
      const ours = boot(TSGRUB, img, work);
      // pygrub appends the ZFS boot string to non-empty args on a ZFS filesystem (pygrub-spec §5).
      assertBoots(ours, name, name.startsWith('zfs') ? `${ARGS} -B zfs-bootfs=fstestpool/37,bootpath=''` : ARGS);
      if (!existsSync(PYGRUB)) continue;
      const theirs = boot(PYGRUB, img, work);
      if (theirs.rc === 0 && theirs.records.has('kernel')) {
        withPygrub++;
        assert.equal(sha(theirs.records.get('kernel') as string), sha(ours.records.get('kernel') as string), `${name}: pygrub's kernel`);
        assert.equal(theirs.records.get('args'), ours.records.get('args'), `${name}: pygrub's args`);
      } else pygrubFails++;
    }
    t.diagnostic(`${BOOTABLE.length} fixtures boot; pygrub agrees on ${withPygrub}, cannot boot ${pygrubFails}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('containers: qcow2 (plain and compressed), VHD, VHDX and VMDK guests boot', (t) => {
  if (!hasTool('qemu-img')) return t.skip('qemu-img not installed');
  const work = mkdtempSync(join(tmpdir(), 'tsgrub-boot-ct-'));
  try {
    const raw = fixture('gpt');
    for (const [fmt, opts] of [['qcow2', []], ['qcow2', ['-c']], ['vpc', []], ['vhdx', []], ['vmdk', ['-o', 'subformat=streamOptimized']]] as const) {
      const img = join(work, `disk-${fmt}${opts.length ? '-x' : ''}.img`);
      const r = spawnSync('qemu-img', ['convert', '-O', fmt, ...opts, raw, img]);
      assert.equal(r.status, 0, r.stderr?.toString());
      assertBoots(boot(TSGRUB, img, work), `${fmt} ${opts.join(' ')}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('a guest whose /boot is an LVM logical volume boots', async (t) => {
  if (!hasTool('mke2fs')) return t.skip('mke2fs not installed');
  const work = mkdtempSync(join(tmpdir(), 'tsgrub-boot-lv-'));
  try {
    // The real LVM disk (pvcreate/vgcreate/lvcreate, scripts/fixtures/lvm.sh) with a /boot made by
    // mke2fs -d written over the vg0/boot LV's extents (a linear LV: one contiguous region).
    const disk = join(work, 'lvm.img');
    writeFileSync(disk, readFileSync(fixture('lvm')));
    const { disk: d, close } = await openImage(disk);
    const lv = d.lvs.find((x) => x.name === 'vg0/boot');
    const area = lv?.segments[0]?.areas[0];
    const part = d.table.partitions.find((p) => p.path === area?.path);
    close();
    assert.ok(lv && lv.available && lv.segments.length === 1 && lv.source instanceof SliceSource && part, 'vg0/boot is a linear LV on a partition');
    const offset = part.start + lv.source.start;
    const tree = join(work, 'boot');
    mkdirSync(join(tree, 'grub'), { recursive: true });
    const kernel = randomBytes(300_000);
    const initrd = randomBytes(400_001);
    writeFileSync(join(tree, 'vmlinuz-6.1.0-lvm'), kernel);
    writeFileSync(join(tree, 'initrd.img-6.1.0-lvm'), initrd);
    // A separate /boot: GRUB writes paths relative to it (pygrub's /grub/grub.cfg search path).
    writeFileSync(join(tree, 'grub/grub.cfg'), "set root='lvm/vg0-boot'\nmenuentry 'Debian on LVM' {\n\tlinux /vmlinuz-6.1.0-lvm root=/dev/mapper/vg0-root ro quiet\n\tinitrd /initrd.img-6.1.0-lvm\n}\n");
    const fs = join(work, 'boot.fs');
    assert.equal(spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', tree, fs, String(lv.size / 1024)]).status, 0);
    const fd = openSync(disk, 'r+');
    writeSync(fd, readFileSync(fs), 0, lv.size, offset);
    closeSync(fd);
    const b = boot(TSGRUB, disk, work);
    assert.equal(b.rc, 0, b.stderr);
    assert.deepEqual(readFileSync(b.records.get('kernel') as string), kernel);
    assert.deepEqual(readFileSync(b.records.get('ramdisk') as string), initrd);
    assert.equal(b.records.get('args'), 'root=/dev/mapper/vg0-root ro quiet');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('a hybrid ISO (MBR whose partition 1 starts at 0, xorriso -isohybrid) boots where pygrub cannot', (t) => {
  if (!hasTool('xorriso')) return t.skip('xorriso not installed');
  const work = mkdtempSync(join(tmpdir(), 'tsgrub-boot-hy-'));
  try {
    const tree = join(work, 'tree');
    mkdirSync(join(tree, 'boot/grub'), { recursive: true });
    const kernel = randomBytes(200_000);
    const initrd = randomBytes(300_000);
    writeFileSync(join(tree, 'boot/vmlinuz'), kernel);
    writeFileSync(join(tree, 'boot/initrd.img'), initrd);
    writeFileSync(join(tree, 'boot/grub/grub.cfg'), "menuentry 'Live' {\n linux /boot/vmlinuz boot=live quiet\n initrd /boot/initrd.img\n}\n");
    writeFileSync(join(tree, 'boot/eltorito.img'), Buffer.alloc(2048, 0x90));
    const iso = join(work, 'hybrid.iso');
    // An El Torito image plus a protective MBR with partition 1 at LBA 0 (what isohybrid writes).
    const r = spawnSync('xorriso', ['-as', 'mkisofs', '-quiet', '-R', '-J', '-b', 'boot/eltorito.img', '-no-emul-boot', '-boot-load-size', '4', '-partition_offset', '0', '-isohybrid-mbr', '--interval:zero_mbrpt:0-0::', '-o', iso, tree], { encoding: 'utf8' });
    if (r.status !== 0) {
      const r2 = spawnSync('xorriso', ['-as', 'mkisofs', '-quiet', '-R', '-J', '-b', 'boot/eltorito.img', '-no-emul-boot', '-boot-load-size', '4', '-append_partition', '2', '0xef', join(tree, 'boot/eltorito.img'), '-o', iso, tree], { encoding: 'utf8' });
      assert.equal(r2.status, 0, r2.stderr);
    }
    const mbr = readFileSync(iso).subarray(0, 512);
    assert.equal(mbr.readUInt16LE(510), 0xaa55, 'the ISO carries an MBR');
    const b = boot(TSGRUB, iso, work);
    assert.equal(b.rc, 0, b.stderr);
    assert.deepEqual(readFileSync(b.records.get('kernel') as string), kernel);
    assert.deepEqual(readFileSync(b.records.get('ramdisk') as string), initrd);
    assert.equal(b.records.get('args'), 'boot=live quiet');
    if (existsSync(PYGRUB)) {
      const p = boot(PYGRUB, iso, work);
      t.diagnostic(`real pygrub on the hybrid ISO: exit ${p.rc}${p.rc === 0 ? ' (it booted)' : ''}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
