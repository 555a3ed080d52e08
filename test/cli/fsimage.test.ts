/**
 * The fsimage CLI against debugfs and sfdisk: on bare ext2/3/4 images and inside MBR (primary and
 * logical), GPT, VTOC and BSD-label partitions, `probe --json` lists the partitions at the offsets
 * sfdisk reports and `cat` returns the bytes debugfs returns for the same partition.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, hasTool, manifest, ROOT, sha256 } from '../helpers/fixtures.ts';

const FSIMAGE = join(ROOT, 'bin/fsimage');

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env };
  delete e.NODE_EXTRA_CA_CERTS;
  return e;
}

function fsimage(args: string[]) {
  const r = spawnSync(FSIMAGE, args, { env: env(), maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

interface ProbeRow {
  path: string;
  start: number;
  size: number;
  container: boolean;
  filesystem: { type: string; label: string | null; uuid: string | null } | null;
}

/** Files compared per image: the boot files, a sparse file, a small one, a deep one, a hard link. */
const FILES = ['boot/vmlinuz-6.1.0-tsgrub', 'boot/initrd.img-6.1.0-tsgrub', 'boot/grub/grub.cfg', 'sparse.bin', 'etc/twelve', 'etc/hostname.hardlink', 'deep/d01/d02/d03/d04/d05/d06/d07/d08/d09/d10/d11/d12/leaf.txt', 'dir-many/file-150.txt'];

const LAYOUTS: Array<[string, string | null]> = [
  ['ext2-1k', null], ['ext3-4k', null], ['ext4', null], ['ext4-inline', null],
  ['mbr-primary', '2'], ['mbr-logical', '6'], ['gpt', '3'], ['vtoc', '1s0'], ['bsd', '1a'],
];

test('fsimage probe --json lists the partitions sfdisk sees, each with its filesystem', (t) => {
  if (!hasTool('sfdisk')) return t.skip('sfdisk not installed');
  for (const [name, part] of LAYOUTS) {
    if (part === null) continue;
    const img = fixture(name);
    const r = fsimage(['probe', '--json', img]);
    assert.equal(r.status, 0, r.stderr);
    const probe = JSON.parse(r.stdout.toString()) as { scheme: string; partitions: ProbeRow[] };
    const sf = JSON.parse(spawnSync('sfdisk', ['-J', img], { encoding: 'utf8' }).stdout) as { partitiontable: { partitions: Array<{ node: string; start: number; size: number }> } };
    for (const p of sf.partitiontable.partitions) {
      const num = p.node.replace(/^.*?(\d+)$/, '$1');
      const row = probe.partitions.find((x) => x.path === num);
      assert.ok(row, `${name}: partition ${num} listed`);
      assert.equal(row.start, p.start * 512, `${name} p${num} start`);
      assert.equal(row.size, p.size * 512, `${name} p${num} size`);
    }
    const fsRow = probe.partitions.find((x) => x.path === part);
    assert.ok(fsRow?.filesystem, `${name}: partition ${part} has a filesystem`);
    assert.equal(fsRow.filesystem.type, 'ext4');
  }
});

test('fsimage cat returns what debugfs returns, on bare images and inside every partition layout', (t) => {
  if (!hasTool('debugfs')) return t.skip('debugfs not installed');
  const m = manifest();
  let compared = 0;
  for (const [name, part] of LAYOUTS) {
    const img = fixture(name);
    let offset = 0;
    if (part !== null) {
      const probe = JSON.parse(fsimage(['probe', '--json', img]).stdout.toString()) as { partitions: ProbeRow[] };
      offset = probe.partitions.find((x) => x.path === part)?.start ?? -1;
    }
    for (const f of FILES) {
      const ours = fsimage(['cat', ...(part ? ['-p', part] : []), img, `/${f}`]);
      assert.equal(ours.status, 0, `${name} ${f}: ${ours.stderr}`);
      const dbg = spawnSync('debugfs', ['-R', `cat /${f}`, `${img}?offset=${offset}`], { maxBuffer: 64 << 20 });
      const want = dbg.stdout;
      // libext2fs pads small inline-data files to 60 bytes (fs-images.md §6.1); compare the real size.
      if (name === 'ext4-inline' && want.length === 60 && ours.stdout.length < 60) assert.deepEqual(ours.stdout, want.subarray(0, ours.stdout.length));
      else assert.deepEqual(ours.stdout, want, `${name} ${f}`);
      assert.equal(sha256(ours.stdout), m.get(f), `${name} ${f}: manifest`);
      compared++;
    }
    // Without -p, the first partition whose filesystem holds the path is used.
    const auto = fsimage(['cat', img, '/etc/hostname']);
    assert.equal(auto.stdout.toString(), 'tsgrub-host\n');
  }
  t.diagnostic(`${compared} files compared with debugfs`);
});

test('fsimage ls, stat, cp and errors', () => {
  const img = fixture('mbr-logical');
  const ls = fsimage(['ls', '-p', '6', img, '/etc']);
  assert.equal(ls.status, 0, ls.stderr);
  assert.deepEqual(ls.stdout.toString().trim().split('\n'), ['empty', 'hostname', 'hostname.hardlink', 'twelve']);
  const long = fsimage(['ls', '-l', img, '/']).stdout.toString();
  assert.match(long, /^l[rwx-]{9} .* vmlinuz -> boot\/vmlinuz-6\.1\.0-tsgrub$/m);
  assert.match(long, /^l[rwx-]{9} .* initrd\.img -> \/boot\/initrd\.img-6\.1\.0-tsgrub$/m);
  const st = fsimage(['stat', '--json', img, '/etc/twelve']);
  const s = JSON.parse(st.stdout.toString()) as { size: number; kind: string; type: string };
  assert.deepEqual([s.size, s.kind, s.type], [12, 'file', 'ext4']);
  const work = mkdtempSync(join(tmpdir(), 'fsimage-cp-'));
  try {
    const dest = join(work, 'k');
    assert.equal(fsimage(['cp', img, '/vmlinuz', dest]).status, 0);
    assert.equal(sha256(readFileSync(dest)), manifest().get('boot/vmlinuz-6.1.0-tsgrub'));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const missing = fsimage(['cat', img, '/no/such']);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^fsimage: no such file or directory: \/no\/such/);
  assert.equal(missing.stderr.split('\n').length, 2, 'one line, no stack trace');
  const dbg = fsimage(['cat', '--debug', img, '/no/such']);
  assert.match(dbg.stderr, /\n {4}at /, '--debug shows the stack');
  const usage = fsimage(['frobnicate', img]);
  assert.equal(usage.status, 2);
});

test('fsimage probe shows the El Torito boot catalog as xorriso reports it', (t) => {
  if (!hasTool('xorriso')) return t.skip('xorriso not installed');
  const img = fixture('iso-hybrid');
  const probe = JSON.parse(fsimage(['probe', '--json', img]).stdout.toString()) as { elTorito: Array<{ path: string; entries: Array<{ platform: string; bootable: boolean; sectorCount: number; loadRba: number }> }> };
  const whole = probe.elTorito.find((e) => e.path === '0');
  assert.ok(whole, 'catalog of the whole-disk ISO');
  const report = spawnSync('xorriso', ['-indev', img, '-report_el_torito', 'plain'], { encoding: 'utf8' }).stdout;
  // "El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4         272"
  const rows = [...report.matchAll(/^El Torito boot img :\s+\d+\s+(\S+)\s+([yn])\s+\S+\s+\S+\s+\S+\s+(\d+)\s+(\d+)/gm)];
  assert.equal(rows.length, whole.entries.length);
  rows.forEach((m, i) => {
    const e = whole.entries[i];
    assert.equal(e?.platform, m[1] === 'BIOS' ? 'x86' : m[1] === 'UEFI' ? 'efi' : m[1]?.toLowerCase());
    assert.equal(e?.bootable, m[2] === 'y');
    assert.equal(e?.sectorCount, Number(m[3]));
    assert.equal(e?.loadRba, Number(m[4]));
  });
  assert.match(fsimage(['probe', img]).stdout.toString(), /El Torito boot catalog \(whole disk\):\n {2}bootable x86 no-emulation, load RBA \d+, 4 sectors/);
});
