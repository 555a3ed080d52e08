/**
 * GRUB 2 device semantics through the real CLI (`bin/tsgrub`, built by `npm run build`): the k3OS,
 * GPT `search --fs-uuid` and live-ISO `loopback` layouts of scripts/fixtures/grubdev.sh boot with the
 * kernel, initrd and args GRUB would use. Expected bytes: the sha256 of the files the fixture script
 * handed to mksquashfs/mke2fs/xorriso (test/fixtures/grubdev.sha256); every config filesystem also
 * holds decoys at the same paths, so reading from the wrong device fails these tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, ROOT, fixture, hasTool, run, sha256 } from '../helpers/fixtures.ts';

const BIN = join(ROOT, 'bin/tsgrub');
const BUILT = existsSync(join(ROOT, 'dist/cli/tsgrub.js'));

function sums(): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of readFileSync(join(FIXTURES, 'grubdev.sha256'), 'utf8').split('\n')) if (line) m.set(line.slice(66), line.slice(0, 64));
  return m;
}

interface Booted {
  status: number | null;
  stderr: string;
  kernel?: Uint8Array;
  ramdisk?: Uint8Array | null;
  args?: string;
}

function boot(name: string, extra: string[] = []): Booted {
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-dev-'));
  try {
    const r = spawnSync(BIN, ['-q', '--output-format=simple', `--output-directory=${dir}`, ...extra, fixture(name)], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) return { status: r.status, stderr: r.stderr };
    const fields = new Map<string, string>();
    for (const line of r.stdout.split('\n')) {
      const sp = line.indexOf(' ');
      if (sp > 0) fields.set(line.slice(0, sp), line.slice(sp + 1));
    }
    const k = fields.get('kernel');
    const rd = fields.get('ramdisk');
    return { status: 0, stderr: r.stderr, kernel: readFileSync(k!), ramdisk: rd ? readFileSync(rd) : null, args: fields.get('args') ?? '' };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('k3OS: search.fs_label + loopback of a squashfs file: kernel and initrd come from inside the squashfs', (t) => {
  if (!BUILT) return t.skip('dist/ not built (npm run build)');
  const s = sums();
  const b = boot('k3os');
  assert.equal(b.status, 0, b.stderr);
  assert.equal(sha256(b.kernel!), s.get('k3os:kernel'));
  assert.equal(sha256(b.ramdisk!), s.get('k3os:initrd'));
  assert.equal(b.args, 'printk.devkmsg=on console=ttyS0');
});

test('GPT: grub.cfg on p1, kernel on p2 found by search --fs-uuid; explicit (hd0,gpt2) and search --file too', (t) => {
  if (!BUILT) return t.skip('dist/ not built (npm run build)');
  const s = sums();
  const cases: Array<[string, string]> = [
    ['0', 'root=UUID=9d0e0000-0000-4000-8000-0000000000b2 ro quiet'],
    ['1', 'root=/dev/xvda2 ro'],
    ['2', 'root=/dev/xvda2 single'],
  ];
  for (const [entry, args] of cases) {
    const b = boot('gpt-search', [`--entry=${entry}`]);
    assert.equal(b.status, 0, b.stderr);
    assert.equal(sha256(b.kernel!), s.get('gpt-search:kernel'), `entry ${entry}`);
    assert.equal(sha256(b.ramdisk!), s.get('gpt-search:initrd'), `entry ${entry}`);
    assert.equal(b.args, args);
  }
});

test('GPT: a search that finds nothing and a disk that does not exist fail with the reason', (t) => {
  if (!BUILT) return t.skip('dist/ not built (npm run build)');
  const missing = boot('gpt-search', ['--entry=3']);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /vmlinuz-missing/);
  assert.match(missing.stderr, /00000000-dead-4000-8000-000000000000" found no device/);
  const nodisk = boot('gpt-search', ['--entry=4']);
  assert.notEqual(nodisk.status, 0);
  assert.match(nodisk.stderr, /cannot resolve GRUB device \(hd7,gpt99\)/);
});

test('live ISO: loopback of an ISO file inside ext4; loopback -d makes (loop) unresolvable', (t) => {
  if (!BUILT) return t.skip('dist/ not built (npm run build)');
  const s = sums();
  const b = boot('live-iso-loop');
  assert.equal(b.status, 0, b.stderr);
  assert.equal(sha256(b.kernel!), s.get('live-iso-loop:kernel'));
  assert.equal(sha256(b.ramdisk!), s.get('live-iso-loop:initrd'));
  assert.equal(b.args, 'boot=casper iso-scan/filename=/live/image.iso quiet splash --');
  const gone = boot('live-iso-loop', ['--entry=1']);
  assert.notEqual(gone.status, 0);
  assert.match(gone.stderr, /\(loop\).*loopback -d/);
});

test('differential: debugfs + unsquashfs and debugfs + isoinfo extract the same kernels tsgrub boots', (t) => {
  if (!BUILT) return t.skip('dist/ not built (npm run build)');
  if (!hasTool('debugfs') || !hasTool('unsquashfs') || !hasTool('isoinfo')) return t.skip('debugfs, unsquashfs or isoinfo not installed');
  const dir = mkdtempSync(join(tmpdir(), 'tsgrub-dev-oracle-'));
  try {
    // k3os: p1 starts at sector 2048 (sfdisk script); e2fsprogs reads at an offset with `?offset=`.
    const sq = join(dir, 'kernel.squashfs');
    run('debugfs', ['-R', `dump /k3os/system/kernel/current/kernel.squashfs ${sq}`, `${fixture('k3os')}?offset=${2048 * 512}`]);
    const k3 = boot('k3os');
    assert.equal(sha256(k3.kernel!), sha256(run('unsquashfs', ['-cat', sq, 'vmlinuz'])));
    assert.equal(sha256(k3.ramdisk!), sha256(run('unsquashfs', ['-cat', sq, 'initrd'])));
    const iso = join(dir, 'image.iso');
    run('debugfs', ['-R', `dump /live/image.iso ${iso}`, fixture('live-iso-loop')]);
    const live = boot('live-iso-loop');
    assert.equal(sha256(live.kernel!), sha256(run('isoinfo', ['-i', iso, '-R', '-x', '/casper/vmlinuz'])));
    assert.equal(sha256(live.ramdisk!), sha256(run('isoinfo', ['-i', iso, '-R', '-x', '/casper/initrd'])));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
